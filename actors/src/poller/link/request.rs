//! What a link sends: one read or one write, and how each goes on an
//! open connection (functions 1 to 4 to read; 5, 6, 16 and 22 to write).

use tokio_modbus::client::{Context, Reader, Writer};

use crate::settings::RegisterKind;

/// One read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    /// Unit id (slave address).
    pub unit: u8,
    /// Which table.
    pub kind: RegisterKind,
    /// First address.
    pub start: u16,
    /// Registers or bits.
    pub count: u16,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterData {
    /// Holding or input registers.
    Words(Vec<u16>),
    /// Coils or discrete inputs.
    Bits(Vec<bool>),
}

/// One write (functions 5, 6, 16 and 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequest {
    /// One coil (function 5).
    Coil {
        /// Unit id.
        unit: u8,
        /// Coil address.
        address: u16,
        /// On or off.
        on: bool,
    },
    /// Holding registers: one (function 6) or several (function 16).
    Registers {
        /// Unit id.
        unit: u8,
        /// First address.
        start: u16,
        /// The words, in address order.
        words: Vec<u16>,
    },
    /// One bit of a holding register, the others untouched by the device
    /// itself (function 22, mask write register: no read-modify-write race
    /// with the device's own program).
    Bit {
        /// Unit id.
        unit: u8,
        /// Register address.
        address: u16,
        /// 0..=15.
        bit: u8,
        /// Set or clear.
        on: bool,
    },
}

impl WriteRequest {
    pub(super) fn unit(&self) -> u8 {
        match self {
            WriteRequest::Coil { unit, .. }
            | WriteRequest::Registers { unit, .. }
            | WriteRequest::Bit { unit, .. } => *unit,
        }
    }

    /// The Modbus function code it is sent with.
    pub fn function(&self) -> u8 {
        match self {
            WriteRequest::Coil { .. } => 5,
            WriteRequest::Registers { words, .. } if words.len() == 1 => 6,
            WriteRequest::Registers { .. } => 16,
            WriteRequest::Bit { .. } => 22,
        }
    }
}

/// What a job asks of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    Read(ReadRequest),
    Write(WriteRequest),
}

/// One request on an open connection.
pub(super) async fn perform(ctx: &mut Context, op: &Op) -> tokio_modbus::Result<RegisterData> {
    let r = match op {
        Op::Read(r) => r,
        Op::Write(w) => return write_on(ctx, w).await,
    };
    match r.kind {
        RegisterKind::Holding => ctx
            .read_holding_registers(r.start, r.count)
            .await
            .map(|a| a.map(RegisterData::Words)),
        RegisterKind::Input => ctx
            .read_input_registers(r.start, r.count)
            .await
            .map(|a| a.map(RegisterData::Words)),
        RegisterKind::Coil => ctx
            .read_coils(r.start, r.count)
            .await
            .map(|a| a.map(RegisterData::Bits)),
        RegisterKind::Discrete => ctx
            .read_discrete_inputs(r.start, r.count)
            .await
            .map(|a| a.map(RegisterData::Bits)),
    }
}

async fn write_on(ctx: &mut Context, w: &WriteRequest) -> tokio_modbus::Result<RegisterData> {
    let done = match w {
        WriteRequest::Coil { address, on, .. } => ctx.write_single_coil(*address, *on).await,
        WriteRequest::Registers { start, words, .. } if words.len() == 1 => {
            ctx.write_single_register(*start, words[0]).await
        }
        WriteRequest::Registers { start, words, .. } => {
            ctx.write_multiple_registers(*start, words).await
        }
        WriteRequest::Bit {
            address, bit, on, ..
        } => {
            let mask = 1u16 << (bit & 15);
            let or_mask = if *on { mask } else { 0 };
            ctx.masked_write_register(*address, !mask, or_mask).await
        }
    };
    done.map(|a| a.map(|()| RegisterData::Words(Vec::new())))
}

//! `[[devices.tags]]`: one value each, where it lives and how it decodes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DeviceSettings;

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum RegisterKind {
    /// Holding registers (function 3).
    Holding,
    /// Input registers (function 4).
    Input,
    /// Coils (function 1).
    Coil,
    /// Discrete inputs (function 2).
    Discrete,
}

impl RegisterKind {
    /// Coils and discrete inputs are one bit per address.
    pub fn is_bits(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }
}

/// The data type a tag decodes to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TagType {
    /// One bit.
    Bool,
    /// One register, unsigned.
    U16,
    /// One register, signed.
    I16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, signed.
    I32,
    /// Four registers, unsigned.
    U64,
    /// Four registers, signed.
    I64,
    /// Two registers, IEEE 754.
    F32,
    /// Four registers, IEEE 754.
    F64,
    /// `length` registers, two ASCII bytes each.
    String,
}

impl TagType {
    /// A number (every type but `bool` and `string`): `deadband` applies.
    pub fn is_numeric(self) -> bool {
        !matches!(self, TagType::Bool | TagType::String)
    }

    /// Registers a value of this type spans (`string`: its `length`).
    pub fn registers(self, length: Option<u16>) -> u16 {
        match self {
            TagType::Bool | TagType::U16 | TagType::I16 => 1,
            TagType::U32 | TagType::I32 | TagType::F32 => 2,
            TagType::U64 | TagType::I64 | TagType::F64 => 4,
            TagType::String => length.unwrap_or(1),
        }
    }
}

/// Word/byte order of multi-register values, named as in vendor manuals:
/// the bytes of the value, most significant first, as they arrive.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// Big-endian bytes, big-endian words (Modbus standard).
    #[default]
    ABCD,
    /// Fully little-endian.
    DCBA,
    /// Bytes swapped within each word.
    BADC,
    /// Words swapped, bytes big-endian ("word swap").
    CDAB,
}

/// One `[[devices.tags]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagSettings {
    /// `[A-Za-z0-9_]+`, unique within the device.
    pub name: String,
    /// `holding`, `input`, `coil` or `discrete`.
    pub register: RegisterKind,
    /// 0-based protocol address.
    pub address: u16,
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: TagType,
    /// Word/byte order of multi-register values.
    #[serde(default)]
    pub order: WordOrder,
    /// Registers, for `string` only.
    pub length: Option<u16>,
    /// One bit (0..=15) of a holding/input register, with type `bool`.
    pub bit: Option<u8>,
    /// value = raw * scale + offset
    pub scale: Option<f64>,
    /// value = raw * scale + offset
    pub offset: Option<f64>,
    /// Free text, shown by `poll` and carried in metadata.
    pub unit: Option<String>,
    /// Overrides the device's `poll_interval`; tags with one interval form a
    /// poll group (own schedule, own requests, one batch per group poll).
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
    /// Numeric tags: sent only when the value moved at least this far
    /// (scaled units) from the last value sent.
    pub deadband: Option<f64>,
    /// Sent at least this often, also when unchanged (heartbeat).
    #[serde(default, with = "humantime_serde")]
    pub max_silence: Option<Duration>,
    /// Writes allowed (NATS request/reply, `ingestor write`); holding
    /// registers and coils only.
    #[serde(default)]
    pub writable: bool,
    /// Writable numeric tags: the lowest value a write may set (engineering units).
    pub min: Option<f64>,
    /// Writable numeric tags: the highest value a write may set (engineering units).
    pub max: Option<f64>,
}

impl TagSettings {
    /// This tag's poll interval on `device`: its own, else the device's.
    pub fn interval(&self, device: &DeviceSettings) -> Duration {
        self.poll_interval.unwrap_or(device.poll_interval)
    }

    /// Registers (or bits) this tag spans.
    pub fn span(&self) -> u16 {
        if self.register.is_bits() {
            1
        } else {
            self.kind.registers(self.length)
        }
    }
}

#[cfg(test)]
impl TagSettings {
    /// A tag named `t<address>` with every optional key unset (unit tests).
    pub(crate) fn bare(
        register: RegisterKind,
        address: u16,
        kind: TagType,
        order: WordOrder,
    ) -> TagSettings {
        TagSettings {
            name: format!("t{address}"),
            register,
            address,
            kind,
            order,
            length: None,
            bit: None,
            scale: None,
            offset: None,
            unit: None,
            poll_interval: None,
            deadband: None,
            max_silence: None,
            writable: false,
            min: None,
            max: None,
        }
    }
}

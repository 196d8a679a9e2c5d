//! A Modbus slave that serves a config's devices, for demos, tests and
//! benchmarks (`ingestor simulate`).
//!
//! Each `unit` is a register space of its own; devices that share a unit
//! share its space. Each tag's registers hold its *simulated value* encoded
//! with its own `type`, `order`, `scale` and `offset`, so that a poller
//! configured the same way reads the value back. Addresses no tag covers
//! read as 0. A unit no device names answers exception 0x0B.
//!
//! # The simulated value (deterministic, so tests can predict it)
//! With `t` the whole seconds since the Unix epoch (or the frozen time set
//! with [`Simulator::frozen_at`]) and `a` the tag's address,
//! `p = (t + a) mod 100`, and the tag reads as:
//! - `bool`: `p` is odd (so it flips every second);
//! - `u16`, `u32`, `u64`, `f32`, `f64`: `a + p/10` (e.g. 100.0 ... 109.9);
//! - `i16`, `i32`, `i64`: `−(a + p/10)`;
//! - `string`: `SIM-<a>-<p>` (p two digits), cut to the tag's length.
//!
//! Integer types round the unscaled value (`(v − offset) / scale`) to the
//! nearest integer their range holds.
//!
//! # Writes
//! Holding registers and coils that a tag serves accept writes (functions
//! 5, 6, 15, 16 and 22, mask write): a written address reads as written
//! from then on, whatever the clock says, so a demo or a test can write a
//! setpoint and see it read back. Writes elsewhere (an address no tag
//! covers, input registers, discrete inputs) answer exception 0x02.
//!
//! # Transports
//! Modbus TCP ([`Simulator::serve_tcp`]), RTU frames over TCP
//! ([`Simulator::serve_rtu_over_tcp`]) and Modbus/TCP Security, MBAP over
//! TLS ([`Simulator::serve_tls`]). A TLS client whose handshake fails (no
//! certificate when one is demanded, one the client CA did not sign) is
//! logged and dropped; the server goes on. Handshakes run one at a time
//! (at most [`TLS_HANDSHAKE_LIMIT`] each): enough for demos and tests.

use std::collections::{BTreeMap, HashMap};
use std::future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_rustls::TlsAcceptor;

use crate::poller::decode::{encode, EngineeringValue};
use crate::poller::plan::{MAX_BITS, MAX_REGISTERS};
use crate::settings::{DeviceSettings, RegisterKind, TagSettings, TagType};
use crate::tls::TlsServer;

/// The simulated value of `tag` at `t` seconds since the epoch (see the module docs).
pub fn simulated_value(tag: &TagSettings, t: u64) -> EngineeringValue {
    let a = u64::from(tag.address);
    let p = (t.wrapping_add(a)) % 100;
    let base = a as f64 + p as f64 / 10.0;
    match tag.kind {
        TagType::Bool => EngineeringValue::Bool(p % 2 == 1),
        TagType::I16 | TagType::I32 | TagType::I64 => EngineeringValue::Number(-base),
        TagType::String => EngineeringValue::Text(format!("SIM-{a}-{p:02}")),
        _ => EngineeringValue::Number(base),
    }
}

#[derive(Debug, Default)]
struct UnitSpace {
    tables: HashMap<RegisterKind, BTreeMap<u16, TagSettings>>,
}

/// The simulated slave. Share it with `Arc` to serve it.
#[derive(Debug, Default)]
pub struct Simulator {
    units: HashMap<u8, UnitSpace>,
    frozen_at: Option<u64>,
    /// Words (coils: 0/1) written, by unit, table and address; they read
    /// as written from then on. A std mutex: every critical section is a
    /// few map lookups, never across an `.await`.
    written: Mutex<HashMap<(u8, RegisterKind, u16), u16>>,
}

impl Simulator {
    /// Serves the tags of `devices`. Where two tags of one unit overlap,
    /// the first one in the config wins.
    pub fn new(devices: &[DeviceSettings]) -> Self {
        let mut units: HashMap<u8, UnitSpace> = HashMap::new();
        for device in devices {
            let space = units.entry(device.unit).or_default();
            for tag in &device.tags {
                let table = space.tables.entry(tag.register).or_default();
                let end = tag.address.saturating_add(tag.span());
                let taken = table.range(..end).next_back().is_some_and(|(&a, t)| {
                    u32::from(a) + u32::from(t.span()) > u32::from(tag.address)
                });
                if !taken {
                    table.insert(tag.address, tag.clone());
                }
            }
        }
        Simulator {
            units,
            frozen_at: None,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Stops the clock at `t` seconds since the epoch (tests).
    pub fn frozen_at(mut self, t: u64) -> Self {
        self.frozen_at = Some(t);
        self
    }

    fn now(&self) -> u64 {
        self.frozen_at.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
    }

    /// The words (or bits as 0/1) a read of `count` from `start` returns now.
    pub fn read(
        &self,
        unit: u8,
        kind: RegisterKind,
        start: u16,
        count: u16,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let space = self
            .units
            .get(&unit)
            .ok_or(ExceptionCode::GatewayTargetDevice)?;
        let cap = if kind.is_bits() {
            MAX_BITS
        } else {
            MAX_REGISTERS
        };
        if count == 0 || count > cap {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let end = u32::from(start) + u32::from(count);
        if end > 0x1_0000 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let mut out = vec![0u16; usize::from(count)];
        let Some(table) = space.tables.get(&kind) else {
            return Ok(out);
        };
        let t = self.now();
        let from = start.saturating_sub(MAX_REGISTERS);
        for (&address, tag) in table.range(from..) {
            if u32::from(address) >= end {
                break;
            }
            let words = encode(tag, &simulated_value(tag, t));
            for (i, w) in words.into_iter().enumerate() {
                let at = u32::from(address) + i as u32;
                if at >= u32::from(start) && at < end {
                    out[(at - u32::from(start)) as usize] = w;
                }
            }
        }
        self.overlay_written(unit, kind, start, &mut out);
        Ok(out)
    }

    fn overlay_written(&self, unit: u8, kind: RegisterKind, start: u16, out: &mut [u16]) {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.is_empty() {
            return;
        }
        for (i, word) in out.iter_mut().enumerate() {
            let Ok(at) = u16::try_from(usize::from(start) + i) else {
                break;
            };
            if let Some(w) = written.get(&(unit, kind, at)) {
                *word = *w;
            }
        }
    }

    /// Whether every address of `start..start+count` in `kind` is served
    /// by some tag of `unit`.
    fn served(
        &self,
        unit: u8,
        kind: RegisterKind,
        start: u16,
        count: u16,
    ) -> Result<(), ExceptionCode> {
        let space = self
            .units
            .get(&unit)
            .ok_or(ExceptionCode::GatewayTargetDevice)?;
        let table = space
            .tables
            .get(&kind)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        for at in u32::from(start)..u32::from(start) + u32::from(count) {
            let covered = table
                .range(..=at.min(0xFFFF) as u16)
                .next_back()
                .is_some_and(|(&a, t)| u32::from(a) + u32::from(t.span()) > at);
            if !covered {
                return Err(ExceptionCode::IllegalDataAddress);
            }
        }
        Ok(())
    }

    /// Writes `words` (coils: 0/1) from `start` in `kind` of `unit`:
    /// holding registers and coils a tag serves only.
    pub fn write(
        &self,
        unit: u8,
        kind: RegisterKind,
        start: u16,
        words: &[u16],
    ) -> Result<(), ExceptionCode> {
        if !matches!(kind, RegisterKind::Holding | RegisterKind::Coil) {
            return Err(ExceptionCode::IllegalFunction);
        }
        let count = u16::try_from(words.len()).map_err(|_| ExceptionCode::IllegalDataValue)?;
        if count == 0 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        self.served(unit, kind, start, count)?;
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        for (i, w) in words.iter().enumerate() {
            written.insert((unit, kind, start + i as u16), *w);
        }
        Ok(())
    }

    /// Function 22: `(current AND and_mask) OR (or_mask AND NOT and_mask)`.
    fn mask_write(
        &self,
        unit: u8,
        address: u16,
        and_mask: u16,
        or_mask: u16,
    ) -> Result<(), ExceptionCode> {
        let current = self.read(unit, RegisterKind::Holding, address, 1)?[0];
        let new = (current & and_mask) | (or_mask & !and_mask);
        self.write(unit, RegisterKind::Holding, address, &[new])
    }

    fn answer(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        let unit = req.slave;
        let bits = |v: Vec<u16>| v.into_iter().map(|w| w != 0).collect::<Vec<bool>>();
        match req.request {
            Request::ReadHoldingRegisters(s, c) => self
                .read(unit, RegisterKind::Holding, s, c)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(s, c) => self
                .read(unit, RegisterKind::Input, s, c)
                .map(Response::ReadInputRegisters),
            Request::ReadCoils(s, c) => self
                .read(unit, RegisterKind::Coil, s, c)
                .map(|v| Response::ReadCoils(bits(v))),
            Request::ReadDiscreteInputs(s, c) => self
                .read(unit, RegisterKind::Discrete, s, c)
                .map(|v| Response::ReadDiscreteInputs(bits(v))),
            Request::WriteSingleCoil(a, on) => self
                .write(unit, RegisterKind::Coil, a, &[u16::from(on)])
                .map(|()| Response::WriteSingleCoil(a, on)),
            Request::WriteMultipleCoils(a, coils) => {
                let words: Vec<u16> = coils.iter().map(|c| u16::from(*c)).collect();
                self.write(unit, RegisterKind::Coil, a, &words)
                    .map(|()| Response::WriteMultipleCoils(a, words.len() as u16))
            }
            Request::WriteSingleRegister(a, w) => self
                .write(unit, RegisterKind::Holding, a, &[w])
                .map(|()| Response::WriteSingleRegister(a, w)),
            Request::WriteMultipleRegisters(a, words) => self
                .write(unit, RegisterKind::Holding, a, &words)
                .map(|()| Response::WriteMultipleRegisters(a, words.len() as u16)),
            Request::MaskWriteRegister(a, and_mask, or_mask) => self
                .mask_write(unit, a, and_mask, or_mask)
                .map(|()| Response::MaskWriteRegister(a, and_mask, or_mask)),
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    /// Serves Modbus TCP on `listener` until the future is dropped.
    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
        let new_service = |_| Ok(Some(SimService(Arc::clone(&self))));
        let on_connected =
            |stream, addr| async move { accept_tcp_connection(stream, addr, new_service) };
        Server::new(listener)
            .serve(
                &on_connected,
                |e| tracing::debug!(error = %e, "simulator connection ended"),
            )
            .await
    }

    /// Serves RTU frames over TCP (like a cheap serial gateway) on `listener`.
    pub async fn serve_rtu_over_tcp(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        use tokio_modbus::server::rtu_over_tcp::{accept_tcp_connection, Server};
        let new_service = |_| Ok(Some(SimService(Arc::clone(&self))));
        let on_connected =
            |stream, addr| async move { accept_tcp_connection(stream, addr, new_service) };
        Server::new(listener)
            .serve(
                &on_connected,
                |e| tracing::debug!(error = %e, "simulator connection ended"),
            )
            .await
    }
}

/// The longest a TLS client may take over its handshake with the simulator.
pub const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

impl Simulator {
    /// Serves Modbus/TCP Security (MBAP over TLS) on `listener` with the
    /// certificate (and client CAs) of `tls` until the future is dropped.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: TlsServer,
    ) -> io::Result<()> {
        use tokio_modbus::server::tcp::Server;
        let acceptor = TlsAcceptor::from(tls.0);
        let on_connected = |stream, addr| {
            let acceptor = acceptor.clone();
            let sim = Arc::clone(&self);
            async move {
                match tokio::time::timeout(TLS_HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                    Ok(Ok(session)) => Ok(Some((SimService(sim), session))),
                    Ok(Err(error)) => {
                        tracing::warn!(client = %addr, %error, "TLS handshake failed, client dropped");
                        Ok(None)
                    }
                    Err(_) => {
                        tracing::warn!(client = %addr, "no TLS handshake within the limit, client dropped");
                        Ok(None)
                    }
                }
            }
        };
        Server::new(listener)
            .serve(
                &on_connected,
                |e| tracing::debug!(error = %e, "simulator connection ended"),
            )
            .await
    }
}

struct SimService(Arc<Simulator>);

impl Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        future::ready(self.0.answer(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::decode::decode_registers;
    use crate::settings::WordOrder;
    use crate::Value;

    fn tag(address: u16, kind: TagType, order: WordOrder) -> TagSettings {
        TagSettings {
            name: "t".into(),
            length: Some(8),
            ..TagSettings::bare(RegisterKind::Holding, address, kind, order)
        }
    }

    #[test]
    fn simulated_registers_decode_to_the_documented_value() {
        let t = 1_700_000_007; // p = (t + 100) % 100 = 7 for address 100
        let f = tag(100, TagType::F32, WordOrder::CDAB);
        let mut u = tag(100, TagType::U32, WordOrder::ABCD);
        u.scale = Some(0.1);
        let s = tag(100, TagType::String, WordOrder::BADC);
        for (tg, expect) in [
            (&f, Value::Float(100.7)),
            (&u, Value::Float(100.7)),
            (&s, Value::Str("SIM-100-07".into())),
        ] {
            let words = encode(tg, &simulated_value(tg, t));
            assert_eq!(decode_registers(tg, &words), Ok(expect));
        }
    }

    #[test]
    fn unknown_unit_and_oversized_reads_are_exceptions() {
        let sim = Simulator::new(&[]);
        assert_eq!(
            sim.read(9, RegisterKind::Holding, 0, 1),
            Err(ExceptionCode::GatewayTargetDevice)
        );
    }

    #[test]
    fn writes_to_served_holding_registers_and_coils_read_back_others_are_refused() {
        let mut device: DeviceSettings =
            toml::from_str("id = \"d\"\naddress = \"127.0.0.1:1\"").expect("device");
        device.tags = vec![
            tag(10, TagType::U32, WordOrder::ABCD),
            TagSettings::bare(RegisterKind::Coil, 3, TagType::Bool, WordOrder::ABCD),
            TagSettings::bare(RegisterKind::Input, 0, TagType::U16, WordOrder::ABCD),
        ];
        let sim = Simulator::new(&[device]).frozen_at(1_700_000_000);
        sim.write(1, RegisterKind::Holding, 10, &[0x1234, 0x5678])
            .expect("written");
        assert_eq!(
            sim.read(1, RegisterKind::Holding, 10, 2),
            Ok(vec![0x1234, 0x5678])
        );
        sim.write(1, RegisterKind::Coil, 3, &[1]).expect("written");
        assert_eq!(sim.read(1, RegisterKind::Coil, 3, 1), Ok(vec![1]));
        sim.mask_write(1, 10, !0x0010, 0x0010).expect("masked");
        assert_eq!(
            sim.read(1, RegisterKind::Holding, 10, 1),
            Ok(vec![0x1234 | 0x0010])
        );
        assert_eq!(
            sim.write(1, RegisterKind::Input, 0, &[1]),
            Err(ExceptionCode::IllegalFunction)
        );
        assert_eq!(
            sim.write(1, RegisterKind::Holding, 12, &[1]),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            sim.write(1, RegisterKind::Holding, 11, &[1, 2]),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            sim.write(7, RegisterKind::Holding, 10, &[1]),
            Err(ExceptionCode::GatewayTargetDevice)
        );
    }
}

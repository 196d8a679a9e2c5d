//! Setpoints: writes to writable tags, safe by default
//! (docs/reference.md §3, "Writes").
//!
//! # What is refused, and in which order
//! A request is `{"tag":"…","value":…}` or `{"values":{"tag":value,…}}`.
//! Every tag of it is checked before any is written ([`check`]):
//! 1. `bad_request`: not JSON of either form;
//! 2. `disabled`: `[writes] enabled` is not true;
//! 3. `not_writable`: no such tag on the device, or no `writable = true`;
//! 4. `bad_request`: a value of the wrong JSON type for its tag (a bool
//!    for `bool` tags, a string for `string`, a number for the others);
//! 5. `out_of_range`: outside the tag's `min..=max`, or not something its
//!    registers can hold exactly (beyond the type, not a whole step of
//!    `scale`, a string longer than `length`);
//! 6. `rate`: the tag was written less than `rate_per_tag` ago.
//!
//! # How a write is done ([`execute`])
//! The value is encoded exactly as the tag is decoded (type, order, scale,
//! offset). A coil takes function 5; holding registers function 6 (one)
//! or 16 (several); a `bit` of a holding register function 22 (mask
//! write), so the device changes that bit alone, atomically: no
//! read-modify-write racing the device's own program. A device without
//! function 22 answers exception 0x01 and the write is refused
//! (`modbus_exception`), never emulated.
//!
//! The write waits for the device's turn ([`DeviceTurn`]): never during one
//! of its polls, and on a gateway's link after the requests queued before it.
//! Then the tag is read back: the reply carries what the device holds,
//! and if that is not what was written the result is `mismatch`. The
//! whole of it (turn, write, read back) has `[writes] timeout`; past it,
//! `timeout`. Device trouble: `modbus_exception` (the device refused),
//! `timeout` (no answer), `unreachable` (no connection).
//!
//! # Where requests come from
//! [`serve`]: NATS request/reply on `<writes.subject_prefix>.<service.id>.<device>`,
//! run by the DevicePoller of a device with writable tags; every request,
//! done or refused, is recorded on `<prefix>.<service.id>._writes` through
//! the buffer ([`record`]), and counted in `ingestor_writes_total`.
//! `ingestor write` uses [`check`] and [`execute`] directly.

pub mod check;
pub mod execute;
pub mod record;
pub mod serve;

use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};

pub use check::{check_request, parse_request, wire_of, Asked, CheckedWrite, RateLimit, Wire};
pub use execute::{execute, execute_all};
pub use record::{audit_event, reply_json, Outcome, WRITES_DEVICE};
pub use serve::{serve, WriteContext, WritePath};

/// Why a write was not done: the `code` of a refusal and the `result`
/// label of `ingestor_writes_total` (with `ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteCode {
    /// The request is not JSON of the contract's forms, or a value has the
    /// wrong JSON type for its tag.
    BadRequest,
    /// `[writes] enabled` is not true.
    Disabled,
    /// No such tag on the device, or it has no `writable = true`.
    NotWritable,
    /// Outside `min..=max`, or not representable in the tag's registers.
    OutOfRange,
    /// The tag was written less than `rate_per_tag` ago.
    Rate,
    /// The device answered with a Modbus exception.
    ModbusException,
    /// No answer within the device's `timeout`, or the whole write took
    /// longer than `[writes] timeout`.
    Timeout,
    /// The read back is not what was written.
    Mismatch,
    /// The device could not be reached (no connection, TLS refused, garbled
    /// answers).
    Unreachable,
}

impl WriteCode {
    /// As in the reply's `code` and the metric's `result`.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteCode::BadRequest => "bad_request",
            WriteCode::Disabled => "disabled",
            WriteCode::NotWritable => "not_writable",
            WriteCode::OutOfRange => "out_of_range",
            WriteCode::Rate => "rate",
            WriteCode::ModbusException => "modbus_exception",
            WriteCode::Timeout => "timeout",
            WriteCode::Mismatch => "mismatch",
            WriteCode::Unreachable => "unreachable",
        }
    }

    /// Every code, for pre-registering the metric.
    pub const ALL: [WriteCode; 9] = [
        WriteCode::BadRequest,
        WriteCode::Disabled,
        WriteCode::NotWritable,
        WriteCode::OutOfRange,
        WriteCode::Rate,
        WriteCode::ModbusException,
        WriteCode::Timeout,
        WriteCode::Mismatch,
        WriteCode::Unreachable,
    ];
}

/// A write not done (or, for `mismatch`, done but not held): the code, the
/// reason in words, and the tag it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// What kind of refusal.
    pub code: WriteCode,
    /// What happened, for a person.
    pub error: String,
    /// The tag, when it is about one.
    pub tag: Option<String>,
    /// For `mismatch`: what the device holds.
    pub value: Option<crate::Value>,
}

impl Refusal {
    /// A refusal about `tag` (or the whole request).
    pub fn new(code: WriteCode, tag: Option<&str>, error: impl Into<String>) -> Self {
        Refusal {
            code,
            error: error.into(),
            tag: tag.map(str::to_owned),
            value: None,
        }
    }
}

/// One device's turn on its connection: a poll holds it while it polls,
/// a write while it writes and reads back, so the two never overlap.
/// A tokio semaphore with one permit, fair (first come, first served): a
/// write that arrives during a poll goes next, before the following poll.
/// It guards no data, only the order of requests; holding it across the
/// Modbus exchange is its purpose.
#[derive(Debug, Clone)]
pub struct DeviceTurn(Arc<Semaphore>);

impl Default for DeviceTurn {
    fn default() -> Self {
        DeviceTurn(Arc::new(Semaphore::new(1)))
    }
}

impl DeviceTurn {
    /// Waits for the turn; it is given back when the permit is dropped.
    pub async fn take(&self) -> Option<SemaphorePermit<'_>> {
        self.0.acquire().await.ok()
    }
}

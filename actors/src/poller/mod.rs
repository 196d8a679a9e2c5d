//! Modbus acquisition: one DevicePoller per `[[devices]]` entry.
//!
//! - [`plan`]: which reads a cycle makes (fewest within the caps; re-plan
//!   around bad addresses). `describe_plan` is what `ingestor check` prints.
//! - [`decode`]: registers → values (every type × ABCD/DCBA/BADC/CDAB,
//!   scale/offset, NaN as error); [`encode`]: the way back, for the
//!   [`simulator`](crate::simulator).
//! - [`link`]: one shared connection per address or serial port (Modbus TCP,
//!   Modbus/TCP Security over TLS, RTU over serial, RTU framing over TCP);
//!   per-request timeout; reconnect.
//! - [`group`]: the device's tags by poll interval (a group each: own
//!   schedule, own request plan).
//! - [`cycle`]: one poll of one group, trouble kept per tag.
//! - [`deadband`]: which values a poll sends (`deadband`, `max_silence`).
//! - [`schedule`]: poll slots and back-off.
//! - [`setpoint`]: writes to writable tags (checks, encoding, the write
//!   and its read back, NATS request/reply, audit records).
//! - [`actor`]: the DevicePoller actor: one group poll at a time on the
//!   device's connection, metrics, one `Batch` per group poll with something
//!   to send to the BufferActor.

pub mod actor;
pub mod cycle;
pub mod deadband;
pub mod decode;
pub mod encode;
pub mod group;
pub mod link;
mod metrics;
pub mod plan;
pub mod schedule;
pub mod setpoint;
pub mod size;
pub mod status;

pub use actor::{DevicePoller, DevicePollerArgs, DevicePollerMsg};
pub use cycle::{DeviceReader, PollOutcome, PollResult};
pub use group::poll_groups;
pub use link::{Link, LinkError, Links};
pub use plan::describe_plan;
pub use schedule::spread_start;
pub use status::{DeviceStatus, LastPolls, TagLast};

//! Modbus acquisition: one DevicePoller per `[[devices]]` entry.
//!
//! - [`plan`]: which reads a cycle makes (fewest within the caps; re-plan
//!   around bad addresses). `describe_plan` is what `ingestor check` prints.
//! - [`decode`]: registers → values (every type × ABCD/DCBA/BADC/CDAB,
//!   scale/offset, NaN as error), and `encode` for the simulator.
//! - [`link`]: one shared connection per address or serial port (Modbus TCP,
//!   RTU over serial, RTU framing over TCP); per-request timeout; reconnect.
//! - [`cycle`]: one poll of one device, trouble kept per tag.
//! - [`actor`]: the DevicePoller actor: deadline schedule, back-off,
//!   metrics, one `Batch` per poll to the BufferActor.
//! - [`simulator`]: a Modbus slave serving a config's devices with values
//!   that follow a documented function of (address, time).

pub mod actor;
pub mod cycle;
pub mod decode;
pub mod link;
pub mod plan;
pub mod simulator;

pub use actor::{DevicePoller, DevicePollerArgs, DevicePollerMsg};
pub use cycle::{DeviceReader, PollOutcome, PollResult};
pub use link::{Link, LinkError, Links};
pub use plan::describe_plan;

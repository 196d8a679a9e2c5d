//! The config file's schema (docs/reference.md §2) as plain serde types.
//!
//! Parsing only: every field has its contract default, unknown keys are
//! refused. Cross-field validation (ids, ranges, duplicates) and error
//! reporting with key paths live in the service (`src/config`).
//!
//! One file per group of sections, every type re-exported here
//! (`crate::settings::X`):
//! - `service.rs`: `[service]`, `[metrics]`, `[supervision]`;
//! - `nats.rs`: `[nats]` and its `mode`;
//! - `buffer.rs`: `[buffer]`, its `persist` and `when_disk_full`;
//! - `device.rs`: `[[devices]]`, its `framing`, serial `parity` and TLS keys;
//! - `tag.rs`: `[[devices.tags]]`, its `register`, `type` and `order`;
//! - `writes.rs`: `[writes]` (setpoints through NATS request/reply).

use serde::{Deserialize, Serialize};

mod buffer;
mod device;
mod nats;
mod service;
mod tag;
mod writes;

pub use buffer::{BufferSettings, PersistMode, WhenDiskFull};
pub use device::{has_port, DeviceSettings, Framing, Parity, TLS_PORT};
pub use nats::{NatsMode, NatsSettings};
pub use service::{MetricsSettings, ServiceSettings, SupervisionSettings};
pub use tag::{RegisterKind, TagSettings, TagType, WordOrder};
pub use writes::WriteSettings;

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[service]`
    pub service: ServiceSettings,
    /// `[nats]`
    #[serde(default)]
    pub nats: NatsSettings,
    /// `[buffer]`
    #[serde(default)]
    pub buffer: BufferSettings,
    /// `[metrics]`
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// `[supervision]`
    #[serde(default)]
    pub supervision: SupervisionSettings,
    /// `[[devices]]`
    #[serde(default)]
    pub devices: Vec<DeviceSettings>,
    /// `[writes]`
    #[serde(default)]
    pub writes: WriteSettings,
}

impl Settings {
    /// Whether any tag may be written (else no write subject is opened).
    pub fn has_writable_tags(&self) -> bool {
        self.devices.iter().any(DeviceSettings::has_writable_tags)
    }
}

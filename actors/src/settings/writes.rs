//! `[writes]`: setpoints written through NATS request/reply (and
//! `ingestor write`), refused unless turned on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[writes]`. Only tags with `writable = true` can ever be written; this
/// section turns the write path on and sets its limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WriteSettings {
    /// Off by default: even writable tags refuse every write (`disabled`).
    pub enabled: bool,
    /// Requests arrive on `<subject_prefix>.<service.id>.<device>`; must
    /// lie outside the stream's `<nats.subject_prefix>.>`.
    pub subject_prefix: String,
    /// At most one write per tag within this interval (`rate`).
    #[serde(with = "humantime_serde")]
    pub rate_per_tag: Duration,
    /// Longest a write may take: waiting for the device's turn, the write
    /// and the read back (`timeout`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WriteSettings {
    fn default() -> Self {
        WriteSettings {
            enabled: false,
            subject_prefix: "setpoint".into(),
            rate_per_tag: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }
}

impl WriteSettings {
    /// The subject write requests for `device` arrive on.
    pub fn subject(&self, service_id: &str, device: &str) -> String {
        format!("{}.{service_id}.{device}", self.subject_prefix)
    }
}

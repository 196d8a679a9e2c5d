//! `[service]`, `[metrics]` and `[supervision]`: the small sections.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[service]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Unique per installation: `[A-Za-z0-9_-]+`. Part of subjects and msg ids.
    pub id: String,
    /// Where the spool lives (`<data_dir>/spool`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The installation this one takes over `id` from: the id that a
    /// replaced PC's messages carry in `Ingestor-Installation` (the error
    /// of the conflict check names it). Unset: nobody's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/ingestor")
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// `host:port` for `GET /metrics` and `GET /health`.
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

/// `[supervision]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// Restarts of one actor within `within` before the service exits 1.
    pub max_restarts: u32,
    /// The window for `max_restarts`.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
    /// First restart delay.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Longest restart (and failing-device retry) delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        SupervisionSettings {
            max_restarts: 10,
            within: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

//! `[nats]`: where and how batches reach NATS.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How batches reach NATS.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum NatsMode {
    /// Every batch acknowledged by JetStream and de-duplicated by `Nats-Msg-Id`.
    #[default]
    Jetstream,
    /// Plain publish + flush: best effort, nothing confirms receipt.
    Core,
}

/// `[nats]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// Several = a cluster; any may be down.
    pub servers: Vec<String>,
    /// Subjects are `<subject_prefix>.<service.id>.<device.id>`.
    pub subject_prefix: String,
    /// `jetstream` or `core`.
    pub mode: NatsMode,
    /// JetStream stream name, created if missing when `create_stream`.
    pub stream: String,
    /// Create the stream (subjects `<prefix>.>`) when it does not exist.
    pub create_stream: bool,
    /// Unacknowledged messages at once.
    pub max_in_flight: usize,
    /// How long to wait for a PubAck.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// A `.creds` file (JWT + nkey).
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed.
    pub nkey_seed_file: Option<PathBuf>,
    /// Token auth.
    pub token: Option<String>,
    /// User/password auth (with `password`).
    pub user: Option<String>,
    /// User/password auth (with `user`).
    pub password: Option<String>,
    /// CA certificate (PEM) to verify the server.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Refuse to talk without TLS.
    pub tls_required: bool,
}

impl Default for NatsSettings {
    fn default() -> Self {
        NatsSettings {
            servers: vec!["nats://127.0.0.1:4222".into()],
            subject_prefix: "telemetry".into(),
            mode: NatsMode::Jetstream,
            stream: "TELEMETRY".into(),
            create_stream: true,
            max_in_flight: 256,
            ack_timeout: Duration::from_secs(5),
            creds_file: None,
            nkey_seed_file: None,
            token: None,
            user: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            tls_required: false,
        }
    }
}

//! The config file's schema (docs/reference.md §2) as plain serde types.
//!
//! Parsing only: every field has its contract default, unknown keys are
//! refused. Cross-field validation (ids, ranges, duplicates) and error
//! reporting with key paths live in the service (`src/config`).

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

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
}

/// `[service]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Unique per installation: `[A-Za-z0-9_-]+`. Part of subjects and msg ids.
    pub id: String,
    /// Where the spool lives (`<data_dir>/spool`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/ingestor")
}

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

/// When batches are written to disk. See `buffer` for what each survives.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PersistMode {
    /// Disk only when the ring is full (fewest disk writes).
    #[default]
    Overflow,
    /// Also everything while NATS is unreachable.
    Disconnect,
    /// Every batch on disk (synced) before it counts as accepted.
    Always,
}

/// What to drop when the spool reaches `disk_max`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenDiskFull {
    /// Delete the oldest batches on disk to make room.
    #[default]
    DropOldest,
    /// Refuse the batches that do not fit.
    DropNewest,
}

/// `[buffer]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSettings {
    /// Batches the in-memory ring holds.
    pub memory_batches: usize,
    /// `overflow`, `disconnect` or `always`.
    pub persist: PersistMode,
    /// The most the spool may occupy on disk, all its files included.
    pub disk_max: ByteSize,
    /// Free space the spool always leaves on its filesystem.
    pub disk_min_free: ByteSize,
    /// `drop_oldest` or `drop_newest`.
    pub when_disk_full: WhenDiskFull,
}

impl Default for BufferSettings {
    fn default() -> Self {
        BufferSettings {
            memory_batches: 10_000,
            persist: PersistMode::Overflow,
            disk_max: ByteSize::gib(1),
            disk_min_free: ByteSize::mib(256),
            when_disk_full: WhenDiskFull::DropOldest,
        }
    }
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

/// How Modbus frames travel.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Modbus TCP (MBAP header).
    #[default]
    Tcp,
    /// RTU frames (with CRC) over the TCP socket: cheap serial gateways.
    Rtu,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// One `[[devices]]` entry: one Modbus slave (unit) polled on its own schedule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    /// `[A-Za-z0-9_-]+`, unique.
    pub id: String,
    /// Modbus TCP `host:port` (exclusive with `serial`).
    pub address: Option<String>,
    /// Serial port path for RTU (exclusive with `address`).
    pub serial: Option<String>,
    /// Serial speed.
    #[serde(default = "d_baud")]
    pub baud_rate: u32,
    /// Serial parity.
    #[serde(default)]
    pub parity: Parity,
    /// Serial data bits (5..=8).
    #[serde(default = "d_data_bits")]
    pub data_bits: u8,
    /// Serial stop bits (1 or 2).
    #[serde(default = "d_stop_bits")]
    pub stop_bits: u8,
    /// `tcp` or `rtu` (RTU over the TCP socket).
    #[serde(default)]
    pub framing: Framing,
    /// Modbus unit id (slave address).
    #[serde(default = "d_unit")]
    pub unit: u8,
    /// Time between poll starts.
    #[serde(default = "d_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Per-request timeout.
    #[serde(default = "d_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of a request that timed out or failed in transport.
    #[serde(default = "d_retries")]
    pub retries: u32,
    /// Cap per request: registers (coils/discrete: bits, up to 2000).
    #[serde(default = "d_max_regs")]
    pub max_registers_per_request: u16,
    /// Registers read and thrown away to merge two requests.
    #[serde(default = "d_max_gap")]
    pub max_gap: u16,
    /// Quiet time after a connect before the first request.
    #[serde(default, with = "humantime_serde")]
    pub pause_after_connect: Duration,
    /// Quiet time between two requests.
    #[serde(default, with = "humantime_serde")]
    pub pause_between_requests: Duration,
    /// Re-asks after exception 0x06 (server busy).
    #[serde(default = "d_busy_retries")]
    pub busy_retries: u32,
    /// `[[devices.tags]]`
    #[serde(default)]
    pub tags: Vec<TagSettings>,
}

fn d_baud() -> u32 {
    19_200
}
fn d_data_bits() -> u8 {
    8
}
fn d_stop_bits() -> u8 {
    1
}
fn d_unit() -> u8 {
    1
}
fn d_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn d_timeout() -> Duration {
    Duration::from_millis(500)
}
fn d_retries() -> u32 {
    1
}
fn d_max_regs() -> u16 {
    125
}
fn d_max_gap() -> u16 {
    10
}
fn d_busy_retries() -> u32 {
    3
}

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

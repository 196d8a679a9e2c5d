//! Every metric name the ingestor exports (docs/reference.md §4), defined
//! once: the actors record under these names and the service's telemetry
//! describes, buckets and pre-registers them under the same ones.
//!
//! # Invariants
//! The names (and, in each doc line, the labels) are a contract with
//! dashboards and alerts: add, never rename or drop.

/// `ingestor_build_info{version}`
pub const BUILD_INFO: &str = "ingestor_build_info";
/// `ingestor_polls_total{device,result}`
pub const POLLS_TOTAL: &str = "ingestor_polls_total";
/// `ingestor_poll_duration_seconds{device}`
pub const POLL_DURATION: &str = "ingestor_poll_duration_seconds";
/// `ingestor_modbus_requests_total{device,function}`
pub const MODBUS_REQUESTS_TOTAL: &str = "ingestor_modbus_requests_total";
/// `ingestor_modbus_exceptions_total{device,code}`
pub const MODBUS_EXCEPTIONS_TOTAL: &str = "ingestor_modbus_exceptions_total";
/// `ingestor_device_up{device}`
pub const DEVICE_UP: &str = "ingestor_device_up";
/// `ingestor_poll_lag_seconds{device}`
pub const POLL_LAG: &str = "ingestor_poll_lag_seconds";
/// `ingestor_batches_total`
pub const BATCHES_TOTAL: &str = "ingestor_batches_total";
/// `ingestor_buffer_batches{tier}`
pub const BUFFER_BATCHES: &str = "ingestor_buffer_batches";
/// `ingestor_buffer_disk_bytes`
pub const BUFFER_DISK_BYTES: &str = "ingestor_buffer_disk_bytes";
/// `ingestor_buffer_spilled_total`
pub const BUFFER_SPILLED_TOTAL: &str = "ingestor_buffer_spilled_total";
/// `ingestor_buffer_dropped_total{reason}`
pub const BUFFER_DROPPED_TOTAL: &str = "ingestor_buffer_dropped_total";
/// `ingestor_buffer_corrupt_total`
pub const BUFFER_CORRUPT_TOTAL: &str = "ingestor_buffer_corrupt_total";
/// `ingestor_buffer_set_aside_total{reason}` (unreadable, too_big)
pub const BUFFER_SET_ASIDE_TOTAL: &str = "ingestor_buffer_set_aside_total";
/// `ingestor_spool_errors_total{op}`
pub const SPOOL_ERRORS_TOTAL: &str = "ingestor_spool_errors_total";
/// `ingestor_buffer_oldest_age_seconds`
pub const BUFFER_OLDEST_AGE: &str = "ingestor_buffer_oldest_age_seconds";
/// `ingestor_published_total`
pub const PUBLISHED_TOTAL: &str = "ingestor_published_total";
/// `ingestor_publish_errors_total{reason}`
pub const PUBLISH_ERRORS_TOTAL: &str = "ingestor_publish_errors_total";
/// `ingestor_publish_ack_seconds`
pub const PUBLISH_ACK: &str = "ingestor_publish_ack_seconds";
/// `ingestor_nats_connected`
pub const NATS_CONNECTED: &str = "ingestor_nats_connected";
/// `ingestor_nats_reconnects_total`
pub const NATS_RECONNECTS_TOTAL: &str = "ingestor_nats_reconnects_total";
/// `ingestor_actor_restarts_total{actor}`
pub const ACTOR_RESTARTS_TOTAL: &str = "ingestor_actor_restarts_total";
/// `ingestor_config_reloads_total{result}`
pub const CONFIG_RELOADS_TOTAL: &str = "ingestor_config_reloads_total";
/// `ingestor_values_suppressed_total{device}`
pub const VALUES_SUPPRESSED_TOTAL: &str = "ingestor_values_suppressed_total";
/// `ingestor_writes_total{device,result}` (result = ok or a refusal code)
pub const WRITES_TOTAL: &str = "ingestor_writes_total";

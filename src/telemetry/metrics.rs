//! The metrics catalogue (docs/reference.md §4) and the Prometheus recorder.
//!
//! [`install`] makes metrics-exporter-prometheus the global `metrics`
//! recorder, so every `metrics::counter!`/`gauge!`/`histogram!` in the actors
//! lands in one registry, rendered by `GET /metrics`. It also:
//!
//! - sets explicit buckets for the three histograms. Without buckets the
//!   exporter renders summaries, and `histogram_quantile` in the dashboards
//!   needs `_bucket` series;
//! - describes every metric (HELP text, base unit) from [`CATALOGUE`];
//! - sets `ingestor_build_info{version}` to 1;
//! - registers at zero the series whose labels are known up front
//!   (`tier`, drop `reason`, `actor`, ...). A counter that first appears at 1
//!   is invisible to `increase()`, so the very first drop or corrupt record
//!   would not fire its alert; and a series that exists from the start keeps
//!   dashboard panels from saying "No data" on a healthy site.
//!   [`register_devices`] does the same for the per-device series.
//!
//! - `super::exposition` renders `/metrics` without the series of devices
//!   a reload removed.
//!
//! The names are the contract: never rename or drop one. They are defined
//! once, in `ingestor_actors::metric_names`.

use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub(crate) use ingestor_actors::metric_names::{
    ACTOR_RESTARTS_TOTAL, BATCHES_TOTAL, BUFFER_BATCHES, BUFFER_CORRUPT_TOTAL, BUFFER_DISK_BYTES,
    BUFFER_DROPPED_TOTAL, BUFFER_OLDEST_AGE, BUFFER_SET_ASIDE_TOTAL, BUFFER_SPILLED_TOTAL,
    BUILD_INFO, CONFIG_RELOADS_TOTAL, DEVICE_UP, MODBUS_EXCEPTIONS_TOTAL, MODBUS_REQUESTS_TOTAL,
    NATS_CONNECTED, NATS_RECONNECTS_TOTAL, POLLS_TOTAL, POLL_DURATION, POLL_LAG, PUBLISHED_TOTAL,
    PUBLISH_ACK, PUBLISH_ERRORS_TOTAL, SPOOL_ERRORS_TOTAL, VALUES_SUPPRESSED_TOTAL, WRITES_TOTAL,
};

/// Poll duration and lag: 1 ms to 10 s (a poll cycle of a slow serial line
/// takes seconds; a late schedule by more than 10 s is "very late" anyway).
pub(crate) const POLL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Publish to acknowledgement: 0.5 ms (local server) to 30 s (a cluster
/// electing a leader; `ack_timeout` defaults to 5 s).
pub(crate) const ACK_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What kind of Prometheus metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// One metric of docs/reference.md §4.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricSpec {
    /// The exported name.
    pub(crate) name: &'static str,
    /// Counter, gauge or histogram.
    pub(crate) kind: Kind,
    /// Base unit (seconds, bytes, or a plain count).
    pub(crate) unit: Unit,
    /// The `# HELP` text.
    pub(crate) help: &'static str,
}

const fn spec(name: &'static str, kind: Kind, unit: Unit, help: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        kind,
        unit,
        help,
    }
}

/// Every metric the ingestor exports, in docs/reference.md §4 order.
pub(crate) const CATALOGUE: &[MetricSpec] = &[
    spec(
        BUILD_INFO,
        Kind::Gauge,
        Unit::Count,
        "Always 1; the version label says which ingestor runs.",
    ),
    spec(
        POLLS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Poll cycles per device by result (ok, partial, error, timeout).",
    ),
    spec(
        POLL_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Duration of one poll cycle of a device, in seconds.",
    ),
    spec(
        MODBUS_REQUESTS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Modbus requests sent, per device and function code.",
    ),
    spec(
        MODBUS_EXCEPTIONS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Modbus exception responses, per device and exception code.",
    ),
    spec(
        DEVICE_UP,
        Kind::Gauge,
        Unit::Count,
        "1 when the device's last poll got answers, 0 when it did not.",
    ),
    spec(
        POLL_LAG,
        Kind::Histogram,
        Unit::Seconds,
        "How late a poll started against its schedule, in seconds.",
    ),
    spec(
        BATCHES_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Batches accepted into the buffer (each got a seq).",
    ),
    spec(
        BUFFER_BATCHES,
        Kind::Gauge,
        Unit::Count,
        "Unpublished batches held in the buffer, per tier (memory, disk).",
    ),
    spec(
        BUFFER_DISK_BYTES,
        Kind::Gauge,
        Unit::Bytes,
        "Size of the spool on disk, in bytes.",
    ),
    spec(
        BUFFER_SPILLED_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Batches moved from the memory ring to disk.",
    ),
    spec(
        BUFFER_DROPPED_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Batches dropped because the disk tier was full, by reason (disk_full_oldest, disk_full_newest, storage_error).",
    ),
    spec(
        SPOOL_ERRORS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "I/O errors from the spool, by op (open, write, sync, read, delete, compact).",
    ),
    spec(
        BUFFER_CORRUPT_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Unreadable spool records set aside and not published.",
    ),
    spec(
        BUFFER_SET_ASIDE_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Batches kept but not published, by reason: unreadable (a spool record kept failing to read), too_big (over the server's max_payload or the stream's max_msg_size).",
    ),
    spec(
        BUFFER_OLDEST_AGE,
        Kind::Gauge,
        Unit::Seconds,
        "Age of the oldest unpublished batch, in seconds (0 when none).",
    ),
    spec(
        PUBLISHED_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Batches confirmed by NATS.",
    ),
    spec(
        PUBLISH_ERRORS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Failed publish attempts by reason (timeout, rejected, ...); the batch is retried.",
    ),
    spec(
        PUBLISH_ACK,
        Kind::Histogram,
        Unit::Seconds,
        "Time from publish to the NATS acknowledgement, in seconds.",
    ),
    spec(
        NATS_CONNECTED,
        Kind::Gauge,
        Unit::Count,
        "1 while connected to NATS, 0 while not.",
    ),
    spec(
        NATS_RECONNECTS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Reconnections to NATS after a lost connection.",
    ),
    spec(
        ACTOR_RESTARTS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Actors restarted by their supervisor, by actor (buffer, publisher, monitor, poller).",
    ),
    spec(
        CONFIG_RELOADS_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Config reloads (SIGHUP) by result: ok (applied), error (invalid file, ignored).",
    ),
    spec(
        VALUES_SUPPRESSED_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Tag values read but not sent, per device: within `deadband` of the last value sent and not yet due by `max_silence`.",
    ),
    spec(
        WRITES_TOTAL,
        Kind::Counter,
        Unit::Count,
        "Setpoint write requests per device, by result: ok (written and read back) or the refusal code.",
    ),
];

/// `tier` values of `ingestor_buffer_batches`.
pub(crate) const TIERS: &[&str] = &["memory", "disk"];
/// `reason` values of `ingestor_buffer_dropped_total`.
pub(crate) const DROP_REASONS: &[&str] = &["disk_full_oldest", "disk_full_newest", "storage_error"];
/// `reason` values of `ingestor_buffer_set_aside_total`.
pub(crate) const SET_ASIDE_REASONS: &[&str] = &["unreadable", "too_big"];
/// `op` values of `ingestor_spool_errors_total`.
pub(crate) const SPOOL_OPS: &[&str] = &["open", "write", "sync", "read", "delete", "compact"];
/// `reason` values of `ingestor_publish_errors_total` known up front.
pub(crate) const PUBLISH_ERROR_REASONS: &[&str] =
    &["timeout", "rejected", "disconnected", "id_conflict"];
/// `actor` values of `ingestor_actor_restarts_total`.
pub(crate) const ACTORS: &[&str] = &["buffer", "publisher", "monitor", "poller"];
/// `result` values of `ingestor_config_reloads_total`.
pub(crate) const RELOAD_RESULTS: &[&str] = &["ok", "error"];
/// `result` values of `ingestor_polls_total`.
pub(crate) const POLL_RESULTS: &[&str] = &["ok", "partial", "error", "timeout"];

/// `result` values of `ingestor_writes_total`: ok and every refusal code.
pub(crate) fn write_results() -> impl Iterator<Item = &'static str> {
    std::iter::once("ok").chain(
        ingestor_actors::poller::setpoint::WriteCode::ALL
            .iter()
            .map(|c| c.as_str()),
    )
}

/// The recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsError {
    /// Building the recorder failed (bad bucket list) or another global
    /// recorder was installed first (`install` called twice in one process).
    /// Not retryable: a programming error.
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Install(#[from] BuildError),
}

/// Installs the Prometheus recorder globally, describes every metric of the
/// catalogue and registers the series known up front. Call once, early in
/// `ingestor run`, before any actor records a metric. The returned handle
/// renders `/metrics` (see `super::http::serve`).
pub(crate) fn install() -> Result<PrometheusHandle, MetricsError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(POLL_DURATION.into()), POLL_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(POLL_LAG.into()), POLL_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(PUBLISH_ACK.into()), ACK_BUCKETS)?
        .install_recorder()?;
    describe_all();
    register_known_series();
    Ok(handle)
}

fn describe_all() {
    for m in CATALOGUE {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

fn register_known_series() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::counter!(BATCHES_TOTAL).increment(0);
    for tier in TIERS {
        metrics::gauge!(BUFFER_BATCHES, "tier" => *tier).set(0.0);
    }
    metrics::gauge!(BUFFER_DISK_BYTES).set(0.0);
    metrics::counter!(BUFFER_SPILLED_TOTAL).increment(0);
    for reason in DROP_REASONS {
        metrics::counter!(BUFFER_DROPPED_TOTAL, "reason" => *reason).increment(0);
    }
    metrics::counter!(BUFFER_CORRUPT_TOTAL).increment(0);
    for reason in SET_ASIDE_REASONS {
        metrics::counter!(BUFFER_SET_ASIDE_TOTAL, "reason" => *reason).increment(0);
    }
    for op in SPOOL_OPS {
        metrics::counter!(SPOOL_ERRORS_TOTAL, "op" => *op).increment(0);
    }
    metrics::gauge!(BUFFER_OLDEST_AGE).set(0.0);
    metrics::counter!(PUBLISHED_TOTAL).increment(0);
    for reason in PUBLISH_ERROR_REASONS {
        metrics::counter!(PUBLISH_ERRORS_TOTAL, "reason" => *reason).increment(0);
    }
    let _registered = metrics::histogram!(PUBLISH_ACK);
    metrics::gauge!(NATS_CONNECTED).set(0.0);
    metrics::counter!(NATS_RECONNECTS_TOTAL).increment(0);
    for actor in ACTORS {
        metrics::counter!(ACTOR_RESTARTS_TOTAL, "actor" => *actor).increment(0);
    }
    for result in RELOAD_RESULTS {
        metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => *result).increment(0);
    }
}

/// Registers the per-device series at zero (`device_up` = 0 until the first
/// poll answers), so a device that never answered shows as down instead of
/// missing. Call with every configured device id after [`install`].
pub(crate) fn register_devices<'a>(devices: impl IntoIterator<Item = &'a str>) {
    for device in devices {
        let device = device.to_owned();
        metrics::gauge!(DEVICE_UP, "device" => device.clone()).set(0.0);
        for result in POLL_RESULTS {
            metrics::counter!(POLLS_TOTAL, "device" => device.clone(), "result" => *result)
                .increment(0);
        }
        let _registered = metrics::histogram!(POLL_DURATION, "device" => device.clone());
        metrics::counter!(VALUES_SUPPRESSED_TOTAL, "device" => device.clone()).increment(0);
        for result in write_results() {
            metrics::counter!(WRITES_TOTAL, "device" => device.clone(), "result" => result)
                .increment(0);
        }
        let _registered = metrics::histogram!(POLL_LAG, "device" => device);
    }
}

//! Telemetry: logs (tracing: human by default, JSON on request), the
//! Prometheus metrics catalogue (`metrics`) and the HTTP endpoints
//! `GET /metrics` and `GET /health` (`http`).
//!
//! Metric names are fixed by CONTRACT §4: dashboards and alert rules under
//! `grafana/` query exactly those names.

use tracing_subscriber::EnvFilter;

// Wired into `ingestor run` by the supervision issue; until then the binary
// does not call them (the tests under `tests/metrics_*.rs` and
// `tests/grafana_*.rs` do).
pub(crate) mod http;
pub(crate) mod metrics;

/// Logs go to stderr so that CLI output on stdout stays clean.
pub(crate) fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("INGESTOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

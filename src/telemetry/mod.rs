//! Telemetry: logs (tracing: human by default, JSON on request), the
//! Prometheus metrics catalogue (`metrics`) and the HTTP endpoints
//! `GET /metrics` and `GET /health` (`http`), and the status page (`status`).
//!
//! Metric names are fixed by docs/reference.md §4: dashboards and alert rules under
//! `grafana/` query exactly those names.

use tracing_subscriber::EnvFilter;

mod conn;
pub(crate) mod exposition;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod status;

/// Logs go to stderr so that CLI output on stdout stays clean. The level is
/// `$INGESTOR_LOG` (an `EnvFilter`), else `default` (`info` for the service;
/// the demo, whose status line is the show, says `warn`).
///
/// async-nats' own log lines are off unless `$INGESTOR_LOG` names
/// `async_nats`: it logs a failed connect at ERROR on every attempt (twice a
/// second with a wrong password), while the ConnectionMonitor says each
/// cause once, with the key to fix (`ingestor_actors::monitor`).
pub(crate) fn init_logging(json: bool, default: &str) {
    let asked = std::env::var("INGESTOR_LOG").ok();
    let mut filter =
        EnvFilter::try_from_env("INGESTOR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if !asked.is_some_and(|a| a.contains("async_nats")) {
        if let Ok(off) = "async_nats=off".parse() {
            filter = filter.add_directive(off);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

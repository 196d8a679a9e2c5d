//! Shared by `tests/metrics_*.rs` and `tests/grafana_*.rs`: the real
//! telemetry code of the binary (compiled in via `#[path]`, since `ingestor`
//! has no library target), the metric names docs/reference.md §4 fixes, and a
//! `/metrics` + `/health` server on a free loopback port that has every
//! contract metric recorded, as a running service would.

#[path = "../../src/telemetry/conn.rs"]
pub mod conn;
#[path = "../../src/telemetry/exposition.rs"]
pub mod exposition;
#[path = "../../src/telemetry/http.rs"]
pub mod http;
#[path = "../../src/telemetry/metrics.rs"]
pub mod metrics;
#[path = "../../src/telemetry/status/mod.rs"]
pub mod status;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

/// docs/reference.md §4, copied by hand: the names dashboards and alerts rely on.
pub const CONTRACT_COUNTERS: &[&str] = &[
    "ingestor_polls_total",
    "ingestor_modbus_requests_total",
    "ingestor_modbus_exceptions_total",
    "ingestor_batches_total",
    "ingestor_buffer_spilled_total",
    "ingestor_buffer_dropped_total",
    "ingestor_buffer_corrupt_total",
    "ingestor_buffer_set_aside_total",
    "ingestor_published_total",
    "ingestor_publish_errors_total",
    "ingestor_nats_reconnects_total",
    "ingestor_actor_restarts_total",
    "ingestor_config_reloads_total",
    "ingestor_spool_errors_total",
    "ingestor_values_suppressed_total",
    "ingestor_writes_total",
];
/// docs/reference.md §4 gauges.
pub const CONTRACT_GAUGES: &[&str] = &[
    "ingestor_build_info",
    "ingestor_device_up",
    "ingestor_buffer_batches",
    "ingestor_buffer_disk_bytes",
    "ingestor_buffer_oldest_age_seconds",
    "ingestor_nats_connected",
];
/// docs/reference.md §4 histograms.
pub const CONTRACT_HISTOGRAMS: &[&str] = &[
    "ingestor_poll_duration_seconds",
    "ingestor_poll_lag_seconds",
    "ingestor_publish_ack_seconds",
];

/// Every docs/reference.md §4 name.
pub fn contract_metrics() -> impl Iterator<Item = &'static str> {
    CONTRACT_COUNTERS
        .iter()
        .chain(CONTRACT_GAUGES)
        .chain(CONTRACT_HISTOGRAMS)
        .copied()
}

/// Devices the fixture pretends to poll.
pub const DEVICES: &[&str] = &["press-01", "meter-02"];

/// The process-wide recorder (a `metrics` recorder can be installed once).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = metrics::install().expect("install the recorder once per test process");
            metrics::register_devices(DEVICES.iter().copied());
            handle
        })
        .clone()
}

/// One round of what a running service records: every contract metric,
/// with the labels the actors use.
pub fn record_every_metric() {
    use ::metrics::{counter, gauge, histogram};
    for (i, device) in DEVICES.iter().enumerate() {
        let device = *device;
        counter!("ingestor_polls_total", "device" => device, "result" => "ok").increment(1);
        histogram!("ingestor_poll_duration_seconds", "device" => device).record(0.012);
        histogram!("ingestor_poll_lag_seconds", "device" => device).record(0.002);
        counter!("ingestor_modbus_requests_total", "device" => device, "function" => "3")
            .increment(2);
        gauge!("ingestor_device_up", "device" => device).set(if i == 0 { 1.0 } else { 0.0 });
    }
    counter!("ingestor_polls_total", "device" => DEVICES[1], "result" => "timeout").increment(1);
    counter!("ingestor_modbus_exceptions_total", "device" => DEVICES[0], "code" => "2")
        .increment(1);
    counter!("ingestor_batches_total").increment(2);
    gauge!("ingestor_buffer_batches", "tier" => "memory").set(12.0);
    gauge!("ingestor_buffer_batches", "tier" => "disk").set(340.0);
    gauge!("ingestor_buffer_disk_bytes").set(81_920.0);
    counter!("ingestor_buffer_spilled_total").increment(1);
    counter!("ingestor_buffer_dropped_total", "reason" => "disk_full_oldest").increment(1);
    counter!("ingestor_buffer_corrupt_total").increment(1);
    counter!("ingestor_buffer_set_aside_total", "reason" => "too_big").increment(1);
    gauge!("ingestor_buffer_oldest_age_seconds").set(42.5);
    counter!("ingestor_published_total").increment(1);
    counter!("ingestor_publish_errors_total", "reason" => "timeout").increment(1);
    histogram!("ingestor_publish_ack_seconds").record(0.0031);
    gauge!("ingestor_nats_connected").set(1.0);
    counter!("ingestor_nats_reconnects_total").increment(1);
    counter!("ingestor_actor_restarts_total", "actor" => "poller").increment(1);
    counter!("ingestor_config_reloads_total", "result" => "ok").increment(1);
    counter!("ingestor_spool_errors_total", "op" => "write").increment(1);
    counter!("ingestor_values_suppressed_total", "device" => DEVICES[0]).increment(3);
    counter!("ingestor_writes_total", "device" => DEVICES[0], "result" => "ok").increment(1);
}

/// `/metrics` and `/health` served from a runtime of its own on
/// `127.0.0.1:<free port>`, so blocking test code can talk to it.
pub struct MetricsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl MetricsServer {
    /// Starts a server whose `/health` reports `health`.
    pub fn start(health: http::Health) -> MetricsServer {
        let handle = handle();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let listener = runtime
            .block_on(http::bind("127.0.0.1:0"))
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound address");
        runtime.spawn(http::serve_on(
            listener,
            handle,
            health,
            std::future::pending(),
        ));
        MetricsServer {
            addr,
            runtime: Some(runtime),
        }
    }

    /// Keeps recording every metric every `every`, like a service with data
    /// flowing, until the server is dropped.
    pub fn keep_recording(&self, every: Duration) {
        if let Some(rt) = &self.runtime {
            rt.spawn(async move {
                loop {
                    record_every_metric();
                    tokio::time::sleep(every).await;
                }
            });
        }
    }

    /// `GET path`, answering (status, content type, body).
    pub fn get(&self, path: &str) -> (u16, String, String) {
        let mut resp = ureq::get(&format!("http://{}{}", self.addr, path))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.body_mut().read_to_string().expect("utf-8 body");
        (status, content_type, body)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

//! `GET /metrics` and `GET /health` as Prometheus and an operator see them:
//! HELP for every docs/reference.md §4 metric, real `_bucket` series with the buckets
//! the dashboards assume, output `promtool check metrics` accepts, and the
//! `/health` JSON of docs/reference.md §5.

#[allow(dead_code)]
mod metrics_fixture;

use std::io::Write;
use std::process::{Command, Stdio};

use metrics_fixture::http::Health;
use metrics_fixture::{
    contract_metrics, record_every_metric, MetricsServer, CONTRACT_COUNTERS, CONTRACT_GAUGES,
    CONTRACT_HISTOGRAMS,
};

fn health(nats_connected: bool, backlog: u64, devices_up: usize, devices: usize) -> Health {
    Health {
        nats_connected,
        delivery_stalled: false,
        backlog,
        devices_up,
        devices,
        spool: ingestor_actors::buffer::SpoolState::Ok,
        id_conflict: false,
    }
}

fn health_json(server: &MetricsServer) -> serde_json::Value {
    let (status, content_type, body) = server.get("/health");
    assert_eq!(
        status, 200,
        "/health answers 200 even when degraded: {body}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/health is not JSON ({e}): {body}"))
}

#[test]
fn health_is_degraded_and_says_disconnected_while_nats_is_down() {
    let server = MetricsServer::start(health(false, 1234, 3, 3));
    assert_eq!(
        health_json(&server),
        serde_json::json!({"status": "degraded", "nats": "disconnected", "delivery": "ok", "spool": "ok",
                           "backlog": 1234, "devices_up": 3, "devices": 3})
    );
}

#[test]
fn health_is_degraded_and_says_spool_full_while_the_disk_is_full() {
    let mut h = health(true, 40, 3, 3);
    h.spool = ingestor_actors::buffer::SpoolState::Full;
    let server = MetricsServer::start(h);
    assert_eq!(
        health_json(&server),
        serde_json::json!({"status": "degraded", "nats": "connected", "delivery": "ok", "spool": "full",
                           "backlog": 40, "devices_up": 3, "devices": 3})
    );
}

#[test]
fn health_is_degraded_and_says_stalled_while_nothing_is_confirmed() {
    let mut h = health(true, 180, 3, 3);
    h.delivery_stalled = true;
    let server = MetricsServer::start(h);
    assert_eq!(
        health_json(&server),
        serde_json::json!({"status": "degraded", "nats": "connected", "delivery": "stalled",
                           "spool": "ok", "backlog": 180, "devices_up": 3, "devices": 3})
    );
}

#[test]
fn health_is_degraded_while_a_device_is_down() {
    let server = MetricsServer::start(health(true, 0, 2, 3));
    assert_eq!(
        health_json(&server),
        serde_json::json!({"status": "degraded", "nats": "connected", "delivery": "ok", "spool": "ok",
                           "backlog": 0, "devices_up": 2, "devices": 3})
    );
}

#[test]
fn health_is_ok_with_nats_connected_and_every_device_up() {
    let server = MetricsServer::start(health(true, 7, 3, 3));
    assert_eq!(
        health_json(&server),
        serde_json::json!({"status": "ok", "nats": "connected", "delivery": "ok", "spool": "ok",
                           "backlog": 7, "devices_up": 3, "devices": 3})
    );
}

#[test]
fn health_follows_the_latest_value_the_service_publishes() {
    let (tx, rx) = tokio::sync::watch::channel(health(false, 10, 1, 1));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(metrics_fixture::http::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    runtime.spawn(metrics_fixture::http::serve_on(
        listener,
        metrics_fixture::handle(),
        rx,
        std::future::pending(),
    ));
    let get = || -> serde_json::Value {
        ureq::get(&format!("http://{addr}/health"))
            .call()
            .expect("GET /health")
            .body_mut()
            .read_json()
            .expect("json")
    };
    assert_eq!(get()["status"], "degraded");
    tx.send_replace(health(true, 0, 1, 1));
    assert_eq!(get()["status"], "ok");
    assert_eq!(get()["nats"], "connected");
    runtime.shutdown_background();
}

fn scrape_with_everything_recorded() -> String {
    let server = MetricsServer::start(Health::default());
    record_every_metric();
    let (status, content_type, body) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "Prometheus text format, got {content_type}"
    );
    body
}

fn has_line_starting(body: &str, prefix: &str) -> bool {
    body.lines().any(|l| l.starts_with(prefix))
}

#[test]
fn metrics_has_help_and_type_for_every_contract_metric() {
    let body = scrape_with_everything_recorded();
    let mut missing = Vec::new();
    for (names, kind) in [
        (CONTRACT_COUNTERS, "counter"),
        (CONTRACT_GAUGES, "gauge"),
        (CONTRACT_HISTOGRAMS, "histogram"),
    ] {
        for name in names {
            if !has_line_starting(&body, &format!("# HELP {name} ")) {
                missing.push(format!("# HELP {name}"));
            }
            if !body.lines().any(|l| l == format!("# TYPE {name} {kind}")) {
                missing.push(format!("# TYPE {name} {kind}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing in /metrics: {missing:#?}\n{body}"
    );
}

#[test]
fn metrics_histograms_have_the_buckets_the_dashboards_assume() {
    let body = scrape_with_everything_recorded();
    for (series, smallest, largest) in [
        (
            r#"ingestor_poll_duration_seconds_bucket{device="press-01",le="#,
            "0.001",
            "10",
        ),
        (
            r#"ingestor_poll_lag_seconds_bucket{device="press-01",le="#,
            "0.001",
            "10",
        ),
        (r#"ingestor_publish_ack_seconds_bucket{le="#, "0.0005", "30"),
    ] {
        for le in [smallest, largest, "+Inf"] {
            let line = format!("{series}\"{le}\"}}");
            assert!(
                has_line_starting(&body, &line),
                "no {line} in /metrics:\n{body}"
            );
        }
    }
    for name in CONTRACT_HISTOGRAMS {
        assert!(
            has_line_starting(&body, &format!("{name}_sum")),
            "{name}_sum"
        );
        assert!(
            has_line_starting(&body, &format!("{name}_count")),
            "{name}_count"
        );
    }
}

#[test]
fn metrics_build_info_is_one_with_the_version() {
    let body = scrape_with_everything_recorded();
    let line = format!(
        "ingestor_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
}

#[test]
fn metrics_output_passes_promtool_check_metrics() {
    let body = scrape_with_everything_recorded();
    assert!(contract_metrics().all(|name| body.contains(name)));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/test.sh installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = promtool.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics complains:\n{}{}\n--- /metrics ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_on_a_taken_port_fails_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let err = runtime
        .block_on(metrics_fixture::http::serve(
            &listen,
            metrics_fixture::handle(),
            Health::default(),
            std::future::pending(),
        ))
        .expect_err("the port is taken");
    let message = err.to_string();
    assert!(
        message.contains(&listen) && message.contains("/metrics"),
        "the error names the address and what it was for: {message}"
    );
}

/// `increase()` cannot see a counter's first step if the series appears at
/// 1: the "any drop" and "any corrupt record" alerts and the dashboard's
/// tables need these series at 0 from the start. (The fixture never records
/// the label values checked here.)
#[test]
fn metrics_series_the_alerts_watch_exist_at_zero_before_any_event() {
    let server = MetricsServer::start(Health::default());
    let (_, _, body) = server.get("/metrics");
    for line in [
        r#"ingestor_buffer_dropped_total{reason="disk_full_newest"} 0"#,
        r#"ingestor_actor_restarts_total{actor="buffer"} 0"#,
        r#"ingestor_actor_restarts_total{actor="publisher"} 0"#,
        r#"ingestor_actor_restarts_total{actor="monitor"} 0"#,
        r#"ingestor_config_reloads_total{result="error"} 0"#,
        r#"ingestor_publish_errors_total{reason="rejected"} 0"#,
        r#"ingestor_publish_errors_total{reason="id_conflict"} 0"#,
        r#"ingestor_buffer_set_aside_total{reason="unreadable"} 0"#,
        r#"ingestor_polls_total{device="press-01",result="error"} 0"#,
        r#"ingestor_polls_total{device="meter-02",result="partial"} 0"#,
    ] {
        assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
    }
    for name in ["ingestor_buffer_corrupt_total", "ingestor_batches_total"] {
        assert!(
            has_line_starting(&body, &format!("{name} ")),
            "no {name} in:\n{body}"
        );
    }
}

//! SIGTERM during an NATS outage, restart with NATS up: every batch arrives,
//! once, in order; /health says degraded while NATS is down and ok after.
mod service_rig;

use std::time::Duration;

use service_rig::*;

#[test]
fn sigterm_during_outage_then_restart_delivers_every_batch_once_in_order() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(&url, "[buffer]\nmemory_batches = 50\n");

    // NATS absent at boot: the service starts and buffers.
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(10),
        "batches accepted while NATS is down",
        || service.metric("ingestor_batches_total") >= 80.0,
    );
    let health = service.health();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["nats"], "disconnected", "{health}");
    assert!(health["backlog"].as_u64().unwrap() > 0, "{health}");
    let status = service.term(Duration::from_secs(10));
    assert!(
        status.success(),
        "SIGTERM must exit 0: {status:?}\n{}",
        service.log_text()
    );

    // NATS comes; the restarted service sends the backlog, then new data.
    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "health ok with NATS up", || {
        service.health()["status"] == "ok"
    });
    wait_until(Duration::from_secs(20), "new batches published", || {
        service.metric("ingestor_published_total") >= 100.0
    });
    assert!(service.term(Duration::from_secs(10)).success());
    // What the second stop put on disk goes out on a third start, before new data.
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "more batches published", || {
        service.metric("ingestor_published_total") >= 30.0
    });
    assert!(service.term(Duration::from_secs(10)).success());

    let seqs = assert_stream_plus_spool_complete(&url, &plant.config);
    assert!(
        seqs.len() >= 130,
        "only {} batches in the stream",
        seqs.len()
    );
    drop(nats);
}

#[test]
fn second_ingestor_on_the_same_data_dir_exits_1_saying_so() {
    let plant = Plant::new(&format!("nats://127.0.0.1:{}", free_port()), "");
    let _first = plant.start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["run", "-c"])
        .arg(&plant.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another ingestor"), "{stderr}");
}

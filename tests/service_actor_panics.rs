//! A panic injected into each actor in turn while data flows with NATS up:
//! the restart is counted, and the stream holds every seq exactly once, in
//! order. And past `max_restarts` the service stops cleanly with exit 1,
//! losing nothing.
#![cfg(feature = "fault-injection")]
mod service_rig;

use std::time::Duration;

use service_rig::*;

const SUPERVISION: &str = "[supervision]\nmax_restarts = 3\nwithin = \"60s\"\nbackoff_min = \"50ms\"\nbackoff_max = \"1s\"\n";

#[test]
fn panic_in_each_actor_is_restarted_and_every_seq_arrives_once_in_order() {
    let nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, SUPERVISION);
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 20.0
    });
    for actor in ["poller", "publisher", "monitor", "buffer"] {
        let label = format!("ingestor_actor_restarts_total{{actor=\"{actor}\"}}");
        let before = service.metric(&label);
        let published = service.metric("ingestor_published_total");
        service.fault(actor, "panic");
        let counted = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            // Each /health request sends every actor a message: the armed
            // one panics on it even when it has no traffic of its own.
            let _ = service.health();
            service.metric(&label) > before
        });
        assert!(
            counted,
            "{actor} restart not counted; log:\n{}",
            service.log_text()
        );
        wait_until(
            Duration::from_secs(20),
            &format!("data flowing again after {actor}"),
            || service.metric("ingestor_published_total") >= published + 20.0,
        );
    }
    assert!(
        service.term(Duration::from_secs(10)).success(),
        "{}",
        service.log_text()
    );
    let seqs = assert_stream_plus_spool_complete(&url, &plant.config);
    assert!(seqs.len() >= 80);
}

#[test]
fn too_many_restarts_exit_1_with_the_ring_on_disk_and_nothing_lost() {
    let nats = NatsServer::start();
    let url = nats.url();
    // A big ring, so the data is in memory when the service gives up.
    let plant = Plant::new(
        &url,
        &format!("[buffer]\nmemory_batches = 100000\n\n{SUPERVISION}"),
    );
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 10.0
    });
    let label = "ingestor_actor_restarts_total{actor=\"publisher\"}";
    for n in 1..=3 {
        service.fault("publisher", "panic");
        wait_until(Duration::from_secs(20), "publisher restart", || {
            let _ = service.health();
            service.metric(label) >= f64::from(n)
        });
    }
    service.fault("publisher", "panic"); // the fourth within the window: give up
    let status = service.wait_poking_health(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{}", service.log_text());

    // Everything accepted is in the stream or on disk; the next start sends it.
    let (on_disk, _, _) = spool_stats(&plant.config);
    assert!(on_disk > 0, "ring was not written to disk");
    let service = plant.start();
    service.wait_backlog_empty(Duration::from_secs(30));
    let mut service = service;
    assert!(service.term(Duration::from_secs(10)).success());
    assert_stream_plus_spool_complete(&url, &plant.config);
}

#[test]
fn fault_endpoint_refuses_unknown_actor_names_and_arms_nothing() {
    let nats = NatsServer::start();
    let plant = Plant::new(&nats.url(), SUPERVISION);
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 5.0
    });
    for path in [
        "/fault/nobody/panic",
        "/fault/Buffer/panic",
        "/fault/buffer/explode",
    ] {
        assert_eq!(service.post(path), None, "{path} was accepted");
    }
    // Nothing was armed: a few rounds of messages to every actor restart none.
    let published = service.metric("ingestor_published_total");
    for _ in 0..5 {
        let _ = service.health();
    }
    wait_until(Duration::from_secs(20), "data still flowing", || {
        service.metric("ingestor_published_total") > published + 5.0
    });
    assert_eq!(service.metric("ingestor_actor_restarts_total"), 0.0);
    assert!(service.term(Duration::from_secs(15)).success());
}

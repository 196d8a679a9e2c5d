//! A panic in one of the actors' own tasks (the publisher's session, the
//! link every device at an address shares, a device's poll) while data
//! flows: logged with the actor and the task, counted in
//! `ingestor_actor_restarts_total`, and work goes on (before, each left a
//! silent stall: nothing published while /health said ok, or a device
//! never polled again, or NATS never connected again after a panicked
//! connect attempt). The stream holds every seq exactly once, in order.
#![cfg(feature = "fault-injection")]
mod service_rig;

use std::time::Duration;

use service_rig::*;

const SUPERVISION: &str = "[supervision]\nmax_restarts = 5\nwithin = \"60s\"\nbackoff_min = \"50ms\"\nbackoff_max = \"1s\"\n";

/// `ingestor_polls_total{device,result="ok"}`.
fn polls_ok(service: &Service, device: &str) -> f64 {
    service.metric(&format!(
        "ingestor_polls_total{{device=\"{device}\",result=\"ok\"}}"
    ))
}

#[test]
fn panic_in_the_session_link_and_poll_tasks_is_logged_counted_and_work_goes_on() {
    let nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, SUPERVISION);
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 20.0
    });
    let cases = [
        (
            "publisher.session",
            "publisher",
            "the publisher's session task panicked",
        ),
        ("poller.link", "poller", "the poller's link task panicked"),
        ("poller.poll", "poller", "the poller's poll task panicked"),
    ];
    for (task, actor, logged) in cases {
        let label = format!("ingestor_actor_restarts_total{{actor=\"{actor}\"}}");
        let before = service.metric(&label);
        let published = service.metric("ingestor_published_total");
        let polled = ["press-01", "meter-07"].map(|d| polls_ok(&service, d));
        service.fault(task, "panic");
        wait_until(
            Duration::from_secs(20),
            &format!("{task}: restart counted"),
            || service.metric(&label) > before,
        );
        let log = service.log_text();
        assert!(
            log.contains(logged),
            "{task}: not logged as {logged:?}:\n{log}"
        );
        wait_until(
            Duration::from_secs(20),
            &format!("{task}: publishing goes on"),
            || service.metric("ingestor_published_total") >= published + 20.0,
        );
        wait_until(
            Duration::from_secs(20),
            &format!("{task}: both devices poll on"),
            || {
                polls_ok(&service, "press-01") >= polled[0] + 5.0
                    && polls_ok(&service, "meter-07") >= polled[1] + 5.0
            },
        );
        wait_until(
            Duration::from_secs(10),
            &format!("{task}: /health ok again"),
            || service.health()["status"] == "ok",
        );
    }
    assert!(
        service.term(Duration::from_secs(10)).success(),
        "{}",
        service.log_text()
    );
    let seqs = assert_stream_plus_spool_complete(&url, &plant.config);
    assert!(seqs.len() >= 60);
}

#[test]
fn panic_in_the_monitors_connect_attempt_restarts_the_monitor_and_it_reconnects() {
    let mut nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, SUPERVISION);
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 20.0
    });
    let label = "ingestor_actor_restarts_total{actor=\"monitor\"}";
    service.fault("monitor.connect", "panic");
    // The next attempt comes with a lost connection.
    nats.restart();
    wait_until(Duration::from_secs(20), "monitor restart counted", || {
        service.metric(label) >= 1.0
    });
    let log = service.log_text();
    assert!(log.contains("the monitor's connect task panicked"), "{log}");
    let published = service.metric("ingestor_published_total");
    wait_until(
        Duration::from_secs(30),
        "publishing after the reconnect",
        || service.metric("ingestor_published_total") >= published + 20.0,
    );
    assert!(service.term(Duration::from_secs(10)).success(), "{log}");
    assert_stream_plus_spool_complete(&url, &plant.config);
}

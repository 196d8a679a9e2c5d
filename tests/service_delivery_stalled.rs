//! Delivery stalls while the socket to NATS stays up, with
//! `persist = "disconnect"`: a stream without quorum, a user without
//! publish permission, a server paused with SIGSTOP. `/health` says
//! `degraded` with `"delivery":"stalled"`, the service is killed (`kill -9`)
//! a few seconds in, delivery is made possible again and the service
//! restarted: every poll accepted before the kill arrives, once, in order,
//! and the only hole in the seqs is the crash's logged skip.
mod service_rig;

use std::time::Duration;

use service_rig::*;

const DISCONNECT: &str = "[buffer]\npersist = \"disconnect\"\nmemory_batches = 10000\n";

/// How long the service may take to notice and report the stall.
const NOTICE_WITHIN: Duration = Duration::from_secs(30);

/// Polls accepted after `/health` said stalled, before the kill (2 s of
/// the plant's 20 polls a second).
const POLLS_WHILE_STALLED: u64 = 40;

/// Runs the service until NATS confirmed `n` batches.
fn flowing(service: &Service, n: f64) {
    wait_until(Duration::from_secs(30), "batches confirmed", || {
        service.metric("ingestor_published_total") >= n
    });
}

/// What a stall looks like and what survives it: `/health` said so, `kill
/// -9`, `heal` makes delivery possible again, a restarted service delivers
/// what the dead one accepted (the stream as `read` finds it). Returns the health answer seen before the
/// kill, for the scenario's own checks.
fn kill9_while_stalled(
    plant: &Plant,
    mut service: Service,
    heal: impl FnOnce(),
    read: impl FnOnce() -> Vec<u64>,
) -> serde_json::Value {
    let said = wait_delivery_stalled(&service, NOTICE_WITHIN);
    let accepted = kill9_after(&mut service, POLLS_WHILE_STALLED);
    heal();
    let mut service = plant.start();
    service.wait_backlog_empty(Duration::from_secs(60));
    // New polls go out too (the seqs after the crash's skip).
    flowing(&service, service.metric("ingestor_published_total") + 20.0);
    let log = service.log_text();
    assert!(service.term(Duration::from_secs(30)).success());

    let seqs = read();
    eprintln!(
        "{accepted} accepted before the kill; the stream holds {} batches",
        seqs.len()
    );
    assert_complete_across_crash(&seqs, accepted, crash_skip(&log));
    assert_eq!(
        said["status"], "degraded",
        "/health before the kill: {said}"
    );
    assert_eq!(
        said["delivery"], "stalled",
        "/health before the kill: {said}"
    );
    said
}

/// An R3 stream on a 3-node cluster; the service talks to one node, and the
/// other two are stopped: the node still answers, the stream has no quorum.
#[test]
fn stream_without_quorum_kill9_loses_nothing_accepted() {
    let mut nodes = cluster();
    let url = nodes[2].url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        create_r3_stream(&client, STREAM).await;
    });
    let plant = Plant::with_nats(&[&url], "ack_timeout = \"2s\"", DISCONNECT);
    let service = plant.start();
    flowing(&service, 20.0);

    nodes[0].kill();
    nodes[1].kill();
    let heal = || {
        nodes[0].launch();
        nodes[1].launch();
    };
    let said = kill9_while_stalled(&plant, service, heal, || read_stream(&url));
    assert_eq!(said["nats"], "connected", "the socket stayed up: {said}");
}

/// A user who may use the JetStream API but not publish on the subjects:
/// the server answers every request and refuses every batch.
#[test]
fn publish_not_permitted_kill9_loses_nothing_accepted() {
    let mut nats = NatsServer::start_with(&users(r#""$JS.API.>", "_INBOX.>""#));
    let url = nats.url();
    let plant = Plant::with_nats(
        &[&url],
        "ack_timeout = \"2s\"\nuser = \"ingest\"\npassword = \"pw\"",
        DISCONNECT,
    );
    let service = plant.start();
    let heal = || nats.reload(&users(r#""$JS.API.>", "_INBOX.>", "telemetry.>""#));
    let reader = async_nats::ConnectOptions::with_user_and_password("reader".into(), "pw".into());
    let said = kill9_while_stalled(&plant, service, heal, || read_stream_as(&url, reader));
    assert_eq!(said["nats"], "connected", "the socket stayed up: {said}");
}

/// A server paused (SIGSTOP) mid-flow: its sockets stay open, nothing
/// answers, the acks are overdue; SIGCONT brings it back.
#[test]
fn server_paused_kill9_loses_nothing_accepted() {
    let nats = NatsServer::start();
    let plant = Plant::with_nats(&[&nats.url()], "ack_timeout = \"2s\"", DISCONNECT);
    let service = plant.start();
    flowing(&service, 20.0);

    nats.freeze();
    kill9_while_stalled(&plant, service, || nats.thaw(), || read_stream(&nats.url()));
}

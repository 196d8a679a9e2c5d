//! `kill -9` during an NATS outage with `persist = "disconnect"`: after the
//! restart every batch accepted before the kill arrives, once, in order, and
//! the new seqs are larger than every earlier one, and the skipped range is
//! explained by a gap event (`ingestor audit` exits 0).
mod service_rig;

use std::time::Duration;

use service_rig::*;

#[test]
fn kill9_during_outage_with_persist_disconnect_loses_nothing_accepted() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(
        &url,
        "[buffer]\npersist = \"disconnect\"\nmemory_batches = 10000\n",
    );
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(10),
        "batches accepted while NATS is down",
        || service.metric("ingestor_batches_total") >= 60.0,
    );
    // Everything accepted by now is on disk (written through while NATS is
    // down, flushed to the OS on write), so a process crash cannot take it.
    let accepted = service.metric("ingestor_batches_total") as u64;
    service.kill9();

    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(20),
        "backlog and new batches published",
        || service.metric("ingestor_published_total") >= accepted as f64 + 20.0,
    );
    assert!(service.term(Duration::from_secs(10)).success());

    let seqs = read_stream(&url);
    let before: Vec<u64> = seqs.iter().copied().filter(|s| *s <= accepted).collect();
    assert_eq!(
        before,
        (1..=accepted).collect::<Vec<_>>(),
        "batches accepted before kill -9 are missing"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "stream not ascending or duplicated"
    );
    // The crash skipped the whole reservation: every new seq is past it.
    let first_new = seqs
        .iter()
        .copied()
        .find(|s| *s > accepted + 1_000)
        .expect("new batches after the restart");
    assert!(
        first_new > 65_536,
        "seq after a crash must jump past the reservation, got {first_new}"
    );
    let old_max = seqs
        .iter()
        .copied()
        .filter(|s| *s < first_new)
        .max()
        .unwrap_or(0);
    assert!(old_max < first_new);
    let log = service.log_text();
    assert!(
        log.contains("did not stop cleanly"),
        "the crash's skipped range is not logged:\n{log}"
    );
    // The skipped range is explained in the stream itself: a gap event,
    // so the audit finds the record complete.
    let (code, out) = plant.audit(&[]);
    assert_eq!(code, 0, "audit after a crash:\n{out}");
    assert!(out.contains("crash"), "no crash gap explained:\n{out}");
}

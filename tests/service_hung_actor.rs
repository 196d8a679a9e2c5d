//! An actor that never returns from its handler (a deadlock), during an
//! NATS outage with everything in the memory ring (`persist = "overflow"`):
//! the service notices by itself, stops, writes the ring to disk, and exits
//! 1 (so systemd restarts it) without waiting for systemd's watchdog kill,
//! which would lose the ring. The next start with NATS up publishes every
//! seq once, ascending, none missing.
#![cfg(feature = "fault-injection")]
mod service_rig;

use std::time::{Duration, Instant};

use service_rig::*;

/// The service's hang bound (3 checks 2 s apart, each waiting 2 s) plus its
/// bounded stop and close, with room for a loaded machine.
const EXITS_WITHIN: Duration = Duration::from_secs(45);

#[test]
fn hung_buffer_during_outage_exits_1_with_the_ring_on_disk_and_nothing_lost() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    // A ring big enough that nothing is spilled: all of it is in memory.
    let plant = Plant::new(&url, "[buffer]\nmemory_batches = 100000\n");
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(20),
        "batches accepted into the ring while NATS is down",
        || service.metric("ingestor_buffer_batches{tier=\"memory\"}") >= 50.0,
    );
    assert_eq!(
        service.metric("ingestor_buffer_batches{tier=\"disk\"}"),
        0.0,
        "the test wants the backlog in memory only"
    );

    service.fault("buffer", "hang");
    // Pollers push all the time: the buffer hangs on its next message, and
    // from then on it accepts nothing (the count stops moving).
    let mut accepted = service.metric("ingestor_batches_total");
    let mut still_since = Instant::now();
    wait_until(Duration::from_secs(20), "the buffer to hang", || {
        let now = service.metric("ingestor_batches_total");
        if now != accepted {
            accepted = now;
            still_since = Instant::now();
        }
        still_since.elapsed() > Duration::from_millis(1500)
    });
    let accepted = accepted as u64;
    let hung_at = Instant::now();
    let status = service.wait(EXITS_WITHIN);
    let log = service.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    eprintln!(
        "hung buffer: {accepted} batches in the ring; exit 1 after {:?}",
        hung_at.elapsed()
    );
    assert!(
        log.contains("has not answered for 3 checks"),
        "the hang is not logged:\n{log}"
    );
    // The push the buffer hung on (and those behind it) never got a seq:
    // lost, and said so with a count, not in silence.
    assert!(
        log.contains("never reached the buffer before it closed"),
        "batches stuck in front of the hung buffer are not counted:\n{log}"
    );
    let (on_disk, oldest, newest) = spool_stats(&plant.config);
    assert_eq!(
        (on_disk, oldest, newest),
        (accepted, Some(1), Some(accepted)),
        "the ring was not written to disk whole"
    );

    // NATS comes; the restarted service sends the backlog, then new data.
    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(30),
        "backlog and new batches published",
        || service.metric("ingestor_published_total") >= accepted as f64 + 20.0,
    );
    assert!(service.term(Duration::from_secs(10)).success());
    let seqs = assert_stream_plus_spool_complete(&url, &plant.config);
    assert!(
        *seqs.last().unwrap() > accepted,
        "live data follows the backlog"
    );
    drop(nats);
}

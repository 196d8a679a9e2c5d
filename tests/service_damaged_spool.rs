//! A flash cell gone bad under the spool: 4 KiB in the middle of a table
//! file overwritten after a clean stop. The next start publishes every
//! readable batch once, in order, counts the unreadable seqs in
//! `ingestor_buffer_corrupt_total`, goes on with live data, and never
//! restarts the buffer in a loop.
mod service_support;
mod spool_support;

use std::time::Duration;

use ingestor_actors::{Batch, Value};
use service_support::*;
use spool_support::{damage_biggest_table, prefill};

/// Batches left on disk by an earlier run, for the configured device.
const BACKLOG: u64 = 3_000;

#[test]
fn damaged_table_block_is_skipped_counted_and_everything_else_flows() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(&url, "");
    let data = plant.dir.path().join("data");
    prefill(&data, 10, BACKLOG, |n| {
        let mut b = Batch::new("press-01", chrono::Utc::now());
        b.values.push(("oil_temp".into(), Value::Float(n as f64)));
        b.values.push(("pad".into(), Value::Str("p".repeat(40))));
        b
    });
    damage_biggest_table(&data.join("spool"));

    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(60),
        "the readable backlog and live batches published",
        || {
            let corrupt = service.metric("ingestor_buffer_corrupt_total");
            corrupt > 0.0
                && service.metric("ingestor_published_total") >= BACKLOG as f64 - corrupt + 20.0
        },
    );
    let corrupt = service.metric("ingestor_buffer_corrupt_total") as u64;
    let buffer_restarts = service.metric("ingestor_actor_restarts_total{actor=\"buffer\"}");
    assert_eq!(
        buffer_restarts, 0.0,
        "the buffer restarted over a damaged block"
    );
    assert!(service.term(Duration::from_secs(10)).success());

    let seqs = read_stream(&url);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "stream not strictly ascending or duplicated"
    );
    let old: Vec<u64> = seqs.iter().copied().filter(|s| *s <= BACKLOG).collect();
    let skipped: Vec<u64> = (1..=BACKLOG).filter(|s| !old.contains(s)).collect();
    assert!(
        !skipped.is_empty(),
        "the damage hid no batch: the test damaged nothing"
    );
    assert_eq!(
        skipped.len() as u64,
        corrupt,
        "every seq not published is counted as corrupt, and only those"
    );
    assert!(
        skipped.windows(2).all(|w| w[1] == w[0] + 1),
        "the unreadable seqs are one block's range, not scattered: {skipped:?}"
    );
    assert!(
        skipped[0] > 1 && *skipped.last().unwrap() < BACKLOG,
        "batches on both sides of the damage are published"
    );
    assert!(
        seqs.iter().any(|s| *s > BACKLOG),
        "live batches follow the backlog"
    );
    let log = service.log_text();
    assert!(
        log.contains("unreadable"),
        "the skipped range is not logged:\n{log}"
    );
}

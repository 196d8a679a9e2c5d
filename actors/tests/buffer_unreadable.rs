//! A spool record that keeps failing to read (an I/O error, as on a bad
//! sector; not a checksum) never stalls delivery: after a few tries it is
//! set aside (kept on disk, not published, counted as `unreadable`), and
//! the age gauge keeps counting while it holds the backlog up.
//!
//! Failpoints and the metrics recorder are global to the process: each
//! test holds a `fail::FailScenario`, which runs them one at a time.
#![cfg(feature = "failpoints")]
mod buffer_rig;
mod publisher_rig;

use std::sync::OnceLock;
use std::time::Duration;

use ingestor_actors::buffer::{BufferMsg, Store};
use ingestor_actors::settings::{BufferSettings, PersistMode};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use publisher_rig::proxy::Proxy;
use publisher_rig::*;

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        snapshotter
    })
}

/// The value of a metric (counters summed over `label`, when given).
fn value(name: &str, label: Option<(&str, &str)>) -> f64 {
    snapshotter()
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(k, ..)| {
            k.key().name() == name
                && label.is_none_or(|(key, value)| {
                    k.key()
                        .labels()
                        .any(|l| l.key() == key && l.value() == value)
                })
        })
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => *c as f64,
            DebugValue::Gauge(g) => g.0,
            DebugValue::Histogram(_) => 0.0,
        })
        .sum()
}

fn always() -> BufferSettings {
    BufferSettings {
        persist: PersistMode::Always,
        ..BufferSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_age_gauge_keeps_counting_while_the_oldest_record_cannot_be_read() {
    let scenario = fail::FailScenario::setup();
    snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), always()).unwrap().0;
    let (buffer, _) = buffer_rig::spawn_buffer(store.shared().expect("disk thread")).await;
    for i in 0..5 {
        push_one(&buffer, i).await;
    }
    fail::cfg("spool::unreadable", "return(1)").unwrap();
    wait_until(
        Duration::from_secs(15),
        "ingestor_buffer_oldest_age_seconds above 1 s while batch 1 waits, unreadable",
        || async { value("ingestor_buffer_oldest_age_seconds", None) > 1.0 },
    )
    .await;
    let stats = ractor::call!(buffer, BufferMsg::Stats).unwrap();
    assert_eq!(stats.disk_batches, 5, "nothing delivered meanwhile");
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_set_aside_and_every_other_arrives_once_in_order() {
    let scenario = fail::FailScenario::setup();
    let before = value(
        "ingestor_buffer_set_aside_total",
        Some(("reason", "unreadable")),
    );
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "SECTOR");
    let proxy = Proxy::start(&server.url()).await;
    // Every batch on disk before the first is published.
    proxy.refuse(true);
    let pipeline =
        Pipeline::start_with_buffer(nats_settings(&[proxy.url()], "SECTOR"), always()).await;
    pipeline.push(30).await;
    fail::cfg("spool::unreadable", "return(12)").unwrap();
    proxy.refuse(false);
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&reader(&direct).await, "SECTOR").await;
    let want: Vec<u64> = (1..=30).filter(|s| *s != 12).collect();
    assert_eq!(seqs, want, "everything but 12, once, in order");
    let after = value(
        "ingestor_buffer_set_aside_total",
        Some(("reason", "unreadable")),
    );
    assert_eq!(after - before, 1.0, "12 counted as set aside, unreadable");
    scenario.teardown();
}

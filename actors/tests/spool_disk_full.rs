//! The spool at `disk_max` (allocated bytes on disk): batches stay in
//! memory, `when_disk_full` applies to what memory cannot hold, counted.
mod buffer_rig;

use buffer_rig::*;
use ingestor_actors::buffer::SpoolState;
use ingestor_actors::settings::{PersistMode, WhenDiskFull};
use ingestor_actors::EncodedBatch;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

fn dropped(snapshotter: &Snapshotter, reason: &str) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(k, ..)| {
            k.key().name() == "ingestor_buffer_dropped_total"
                && k.key().labels().any(|l| l.value() == reason)
        })
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

/// Smaller than an empty fjall database: the first write finds it full.
const TINY: u64 = 4096;

#[test]
fn disk_max_reached_keeps_the_newest_in_memory_and_drop_oldest_counts() {
    let (got, snapshotter) = thirty_into_a_tiny_spool(WhenDiskFull::DropOldest);
    assert_eq!(seqs(&got), (21..=30).collect::<Vec<_>>());
    assert_eq!(dropped(&snapshotter, "disk_full_oldest"), 20);
}

#[test]
fn disk_max_reached_drop_newest_refuses_what_memory_cannot_hold() {
    let (got, snapshotter) = thirty_into_a_tiny_spool(WhenDiskFull::DropNewest);
    assert_eq!(seqs(&got), (1..=10).collect::<Vec<_>>());
    assert_eq!(dropped(&snapshotter, "disk_full_newest"), 20);
}

/// 30 batches, each committed, into a ring of 10 over a spool whose
/// `disk_max` nothing fits under (`persist = "always"`): the spool turns
/// full and nothing reaches the disk. What a take then hands out, and the
/// counters.
fn thirty_into_a_tiny_spool(when: WhenDiskFull) -> (Vec<EncodedBatch>, Snapshotter) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(10, PersistMode::Always);
    s.disk_max = bytesize::ByteSize::b(TINY);
    s.when_disk_full = when;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let got = metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), s);
        for n in 1..=30 {
            store.push(batch(n)).unwrap();
            store.commit().unwrap();
        }
        assert_eq!(store.spool_state(), SpoolState::Full);
        assert_eq!(store.stats().disk_batches, 0);
        take_all(&mut store, 100)
    });
    (got, snapshotter)
}

#[test]
fn full_spool_drop_oldest_spares_batches_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(2, PersistMode::Overflow);
    s.disk_max = bytesize::ByteSize::b(TINY);
    let mut store = open(dir.path(), s);
    for n in 1..=2 {
        store.push(batch(n)).unwrap();
    }
    let first = store.take(2).unwrap();
    assert_eq!(seqs(&first), vec![1, 2]);
    for n in 3..=20 {
        store.push(batch(n)).unwrap();
    }
    assert_eq!(store.spool_state(), SpoolState::Full);
    store.ack(2).unwrap();
    let rest = take_all(&mut store, 50);
    assert_eq!(seqs(&rest), vec![19, 20], "the newest survive drop_oldest");
}

#[test]
fn overflow_under_disk_max_spills_and_the_gauge_counts_allocated_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Overflow));
    for n in 1..=200 {
        store.push(batch(n)).unwrap();
    }
    store.refresh_and_retry();
    let stats = store.stats();
    assert_eq!(store.spool_state(), SpoolState::Ok);
    assert!(stats.disk_batches > 150);
    let du = ingestor_actors::buffer::space::allocated_bytes(&dir.path().join("spool")).unwrap();
    assert_eq!(stats.disk_bytes, du, "disk_bytes is what du measures");
    assert_eq!(
        seqs(&take_all(&mut store, 64)),
        (1..=200).collect::<Vec<_>>()
    );
}

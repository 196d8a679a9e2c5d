//! I/O errors at every spool call (failpoints): nothing accepted goes
//! missing, nothing restarts, the store recovers by itself.
//!
//! Failpoints are global to the process: each test holds a
//! `fail::FailScenario`, which runs them one at a time.
#![cfg(feature = "failpoints")]
mod buffer_rig;

use buffer_rig::*;
use ingestor_actors::buffer::SpoolState;
use ingestor_actors::settings::PersistMode;

#[test]
fn enospc_on_write_keeps_every_batch_in_memory_until_space_returns() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(50, PersistMode::Overflow));
    for n in 1..=40 {
        store.push(batch(n)).unwrap();
    }
    fail::cfg("spool::write", "return(enospc)").unwrap();
    for n in 41..=90 {
        store.push(batch(n)).unwrap();
    }
    assert_eq!(store.spool_state(), SpoolState::Full);
    assert_eq!(
        store.stats().memory_batches,
        50,
        "newest memory_batches kept"
    );
    fail::remove("spool::write");
    store.refresh_and_retry();
    assert_eq!(store.spool_state(), SpoolState::Ok, "back by itself");
    let got = seqs(&take_all(&mut store, 16));
    assert_eq!(
        got,
        (41..=90).collect::<Vec<_>>(),
        "the 40 oldest dropped (counted)"
    );
    scenario.teardown();
}

#[test]
fn a_failed_write_through_moves_pending_to_memory_not_away() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(1000, PersistMode::Always));
    fail::cfg("spool::write", "return(io)").unwrap();
    for n in 1..=30 {
        store.push(batch(n)).unwrap();
    }
    let fates = store.commit().unwrap();
    assert!(fates.iter().all(|c| c.result.is_ok()), "kept in memory");
    assert_eq!(store.spool_state(), SpoolState::Error);
    fail::remove("spool::write");
    store.refresh_and_retry();
    assert_eq!(store.spool_state(), SpoolState::Ok);
    assert_eq!(
        store.stats().disk_batches,
        30,
        "written through once writable"
    );
    for n in 31..=40 {
        store.push(batch(n)).unwrap();
    }
    store.commit().unwrap();
    let got = seqs(&take_all(&mut store, 7));
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
    scenario.teardown();
}

#[test]
fn failed_read_hands_out_nothing_and_the_next_take_gets_it_all() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Overflow));
    for n in 1..=30 {
        store.push(batch(n)).unwrap();
    }
    fail::cfg("spool::read", "return(io)").unwrap();
    assert!(
        store.take(10).unwrap().is_empty(),
        "no ring batch before the disk"
    );
    fail::remove("spool::read");
    let got = seqs(&take_all(&mut store, 10));
    assert_eq!(got, (1..=30).collect::<Vec<_>>());
    scenario.teardown();
}

#[test]
fn failed_delete_on_ack_loses_nothing_and_the_next_ack_deletes() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Overflow));
    for n in 1..=30 {
        store.push(batch(n)).unwrap();
    }
    let first = store.take(10).unwrap();
    fail::cfg("spool::delete", "return(io)").unwrap();
    store.ack(first.last().unwrap().seq).unwrap();
    assert!(store.stats().disk_batches >= 26, "nothing deleted");
    fail::remove("spool::delete");
    store.refresh_and_retry();
    let rest = take_all(&mut store, 10);
    store.ack(rest.last().unwrap().seq).unwrap();
    assert_eq!(seqs(&first), (1..=10).collect::<Vec<_>>());
    assert_eq!(seqs(&rest), (11..=30).collect::<Vec<_>>());
    assert_eq!(
        store.stats().disk_batches,
        0,
        "all deleted by the later ack"
    );
    scenario.teardown();
}

#[test]
fn failed_sync_then_reopen_keeps_what_was_written() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Disconnect));
    for n in 1..=20 {
        store.push(batch(n)).unwrap();
        store.commit().unwrap();
    }
    fail::cfg("spool::sync", "return(io)").unwrap();
    store.sync_if_dirty().unwrap();
    assert_eq!(store.spool_state(), SpoolState::Error);
    fail::remove("spool::sync");
    store.refresh_and_retry();
    assert_eq!(store.spool_state(), SpoolState::Ok);
    store.close().unwrap();
    drop(store);
    let mut store = open(dir.path(), settings(4, PersistMode::Disconnect));
    assert_eq!(seqs(&take_all(&mut store, 6)), (1..=20).collect::<Vec<_>>());
    scenario.teardown();
}

#[test]
fn an_ack_reaches_disk_durably_at_the_next_tick() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(1000, PersistMode::Always));
    for n in 1..=30 {
        store.push(batch(n)).unwrap();
    }
    store.commit().unwrap();
    let got = take_all(&mut store, 10);
    store.ack(got.last().unwrap().seq).unwrap();
    let syncs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = syncs.clone();
    fail::cfg_callback("spool::sync", move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .unwrap();
    // What the buffer's one-second tick does.
    store.sync_if_dirty().unwrap();
    assert_eq!(
        syncs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the acks (deletes and `acked`) were fdatasync'ed, not left in OS buffers"
    );
    store.sync_if_dirty().unwrap();
    assert_eq!(syncs.load(std::sync::atomic::Ordering::SeqCst), 1, "once");
    scenario.teardown();
}

#[test]
fn a_record_that_keeps_failing_to_read_is_set_aside_and_the_rest_flows() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), settings(4, PersistMode::Always));
        for n in 1..=30 {
            store.push(batch(n)).unwrap();
        }
        store.commit().unwrap();
        // Record 12 sits on a bad sector: every read of it fails (I/O error).
        fail::cfg("spool::unreadable", "return(12)").unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while got.len() < 29 {
            assert!(
                std::time::Instant::now() < deadline,
                "delivery stuck after {:?}",
                seqs(&got).last()
            );
            got.extend(store.take(10).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let want: Vec<u64> = (1..=30).filter(|s| *s != 12).collect();
        assert_eq!(seqs(&got), want, "everything but 12, in order");
        // A new session (Nack) does not meet it again.
        store.nack();
        assert_eq!(seqs(&take_all(&mut store, 10)), want);
        store.ack(30).unwrap();
        assert!(
            store
                .spool()
                .raw_batches()
                .unwrap()
                .get(12u64.to_be_bytes())
                .is_ok(),
            "kept on disk"
        );
        fail::remove("spool::unreadable");
        assert!(
            store
                .spool()
                .raw_batches()
                .unwrap()
                .get(12u64.to_be_bytes())
                .unwrap()
                .is_some(),
            "kept on disk, never deleted"
        );
    });
    let snap = snapshotter.snapshot().into_vec();
    let set_aside: u64 = snap
        .iter()
        .filter(|(k, ..)| {
            k.key().name() == "ingestor_buffer_set_aside_total"
                && k.key()
                    .labels()
                    .any(|l| l.key() == "reason" && l.value() == "unreadable")
        })
        .map(|(.., v)| match v {
            metrics_util::debugging::DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum();
    assert_eq!(set_aside, 1, "counted once, as unreadable");
    scenario.teardown();
}

/// Found by the fault model: a sync fails, the reopen's rewrite fails too,
/// then NATS confirms the whole disk. The drained spool's compaction must
/// not start on the database still to be reopened: it held the database, so
/// the healed tick could not reopen it, and until the reopen `take` handed
/// out nothing, the ring's batch included.
#[test]
fn a_drain_between_a_failed_sync_and_its_reopen_does_not_hold_delivery() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(1, PersistMode::Overflow));
    // seq 1 spills to disk (unsynced), seq 2 stays in the ring.
    store.push(batch(1)).unwrap();
    store.push(batch(2)).unwrap();
    assert_eq!(store.stats().disk_batches, 1);
    fail::cfg("spool::write", "return(io)").unwrap();
    fail::cfg("spool::sync", "return(enospc)").unwrap();
    let first = seqs(&store.take(1).unwrap());
    assert_eq!(first, vec![1]);
    store.sync_if_dirty().unwrap();
    store.refresh_and_retry();
    assert_eq!(
        store.spool_state(),
        SpoolState::Full,
        "sync failed, rewrite too"
    );
    store.ack(1).unwrap();
    fail::remove("spool::write");
    fail::remove("spool::sync");
    // One healed tick is enough.
    store.refresh_and_retry();
    assert_eq!(store.spool_state(), SpoolState::Ok, "reopened at once");
    assert_eq!(
        seqs(&take_all(&mut store, 5)),
        vec![2],
        "the ring's batch flows"
    );
    scenario.teardown();
}

/// Found by the fault model: a stop while a drained spool's compaction
/// holds the database and a failed sync's records wait for their rewrite.
/// The tick defers such a reopen; the stop's last chance must not, or it
/// counts as lost what it could have written again.
#[test]
fn a_stop_during_a_compaction_writes_a_failed_syncs_records_again() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(1, PersistMode::Overflow);
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), s.clone());
        store.push(batch(1)).unwrap();
        store.push(batch(2)).unwrap();
        store.take(1).unwrap();
        // The disk drains; the tick's sync fails (the spool is full), the
        // next tick reopens it, and the drained full spool's compaction
        // starts.
        fail::cfg("spool::sync", "return(enospc)").unwrap();
        store.ack(1).unwrap();
        store.sync_if_dirty().unwrap();
        store.refresh_and_retry();
        // seq 2 spills, unsynced, and the next sync fails: due for a
        // rewrite, its reopen deferred while the compaction runs.
        store.push(batch(3)).unwrap();
        store.sync_if_dirty().unwrap();
        assert_ne!(store.spool_state(), SpoolState::Ok);
        fail::remove("spool::sync");
        store.close().expect("everything saved");
    });
    assert_eq!(dropped_or_corrupt(&snap), 0, "nothing counted as lost");
    let mut store = open(dir.path(), s);
    let got = take_all(&mut store, 5);
    assert_eq!(seqs(&got), vec![2, 3], "both kept, once, in order");
    assert!(got.iter().all(|b| n_of(b) == b.seq));
    scenario.teardown();
}

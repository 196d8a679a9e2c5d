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

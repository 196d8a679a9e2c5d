//! A crash in the middle of the reclaim that gives a drained spool's space
//! back (failpoints on either side of the journal's truncation, the
//! database already closed): the reopened spool brings back nothing
//! published, keeps `acked`, the counters and quarantine, reuses no seq,
//! and works.
//!
//! Failpoints are global to the process: each test holds a
//! `fail::FailScenario`, and no test without one lives in this file.
#![cfg(feature = "failpoints")]
mod buffer_rig;

use std::path::Path;
use std::time::{Duration, Instant};

use buffer_rig::reclaim::*;
use buffer_rig::*;
use ingestor_actors::buffer::{Spool, SpoolState};
use ingestor_actors::settings::PersistMode;

/// Record `seq` made unreadable: the drain sets it aside in quarantine,
/// which no reclaim may lose.
fn damage(data_dir: &Path, seq: u64) {
    let (spool, _) = Spool::open(data_dir).unwrap();
    let ks = spool.raw_batches().unwrap();
    ks.insert(seq.to_be_bytes(), vec![9u8, 1, 2]).unwrap();
}

fn crash_at(failpoint: &str) {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let n = 12_000;
    fill(dir.path(), n);
    damage(dir.path(), 5);
    let mut store = open(dir.path(), settings(1_000, PersistMode::Disconnect));
    let want: Vec<u64> = (1..=n).filter(|s| *s != 5).collect();
    assert_eq!(seqs(&take_all(&mut store, 512)), want);
    fail::cfg(failpoint, "return(io)").unwrap();
    store.ack(n).unwrap();
    let since = Instant::now();
    while store.spool_state() == SpoolState::Ok {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "reclaim never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
        store.reclaim_if_due();
    }
    let last = store.push(wide(1)).unwrap();
    drop(store); // the crash
    fail::remove(failpoint);
    let mut store = open(dir.path(), settings(1_000, PersistMode::Disconnect));
    assert!(
        take_all(&mut store, 100).is_empty(),
        "nothing published comes back"
    );
    assert_eq!(store.stats().disk_batches, 0, "the counters say so too");
    assert_eq!(store.spool().acked(), n, "the acknowledged cursor kept");
    assert_eq!(store.spool().quarantined().unwrap(), 1, "quarantine kept");
    let next = store.stats().next_seq;
    assert!(next > last, "no seq reused ({next} after {last})");
    store.set_deliverable(false).unwrap();
    store.push(wide(7)).unwrap();
    store.commit().unwrap();
    assert_eq!(seqs(&take_all(&mut store, 10)), vec![next]);
    scenario.teardown();
}

#[test]
fn crash_after_the_close_before_the_truncation() {
    crash_at("spool::reclaim_closed");
}

#[test]
fn crash_after_the_truncation_before_the_reopen() {
    crash_at("spool::reclaim_truncated");
}

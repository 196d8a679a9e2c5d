//! The seq reservation on a full disk: a reading is never refused because
//! the next block of seqs could not be reserved while reserved ones are
//! left, and a crash afterwards still never reuses a seq.
//!
//! A real filesystem runs full (a small tmpfs, needs root: outside CI the
//! test says so and skips; under `CI=true` it must run).
mod buffer_rig;

use buffer_rig::tmpfs::{fill, Tmpfs};
use buffer_rig::*;
use ingestor_actors::buffer::{SpoolState, Store};
use ingestor_actors::settings::PersistMode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// More pushes than one reservation block (65 536) covers.
const PUSHES: u64 = 70_000;
const RING: usize = 100;

#[test]
fn full_disk_across_a_reservation_boundary_keeps_the_newest_and_never_reuses_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("data"), "8m") else {
        return;
    };
    let data = fs.path().to_path_buf();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let got = metrics::with_local_recorder(&recorder, || {
        let mut store = open(&data, settings(RING, PersistMode::Overflow));
        let _filler = fill(&data);
        for n in 1..=PUSHES {
            let seq = store
                .push(batch(n))
                .unwrap_or_else(|e| panic!("push {n} refused on a full disk: {e}"));
            assert_eq!(seq, n, "seqs continue one by one");
        }
        assert_eq!(store.spool_state(), SpoolState::Full);
        let got = take_all(&mut store, 1000);
        // A crash (no close): the next start must not hand out any seq
        // that left this run.
        drop(store);
        got
    });
    // drop_oldest: the ring keeps the newest, every other batch is counted.
    assert_eq!(
        seqs(&got),
        (PUSHES - RING as u64 + 1..=PUSHES).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|b| n_of(b) == b.seq));
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(k, ..)| k.key().name() == "ingestor_buffer_dropped_total")
        .map(|(k, _, _, v)| match v {
            DebugValue::Counter(c) => {
                let reason = k.key().labels().next().map(|l| l.value().to_string());
                assert_eq!(reason.as_deref(), Some("disk_full_oldest"));
                *c
            }
            _ => 0,
        })
        .sum();
    assert_eq!(
        counted,
        PUSHES - RING as u64,
        "every drop counted by its policy"
    );

    let (_store, report) =
        Store::open(&data, settings(RING, PersistMode::Overflow)).expect("a full disk still opens");
    assert!(
        report.next_seq > PUSHES,
        "after the crash seq continues past every seq handed out, got {}",
        report.next_seq
    );
}

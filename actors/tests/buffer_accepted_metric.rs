//! `ingestor_batches_total` counts a batch once it is accepted: in
//! `persist = "always"` only after the group commit wrote and synced it
//! (a power cut before the sync takes it, so it was never accepted), in
//! memory modes at the push.
mod buffer_rig;

use buffer_rig::*;
use ingestor_actors::settings::PersistMode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

fn accepted(snapshotter: &Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "ingestor_batches_total")
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

#[test]
fn always_counts_a_batch_as_accepted_only_after_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), settings(16, PersistMode::Always));
        for n in 1..=3 {
            store.push(batch(n)).unwrap();
        }
        assert_eq!(
            accepted(&snapshotter),
            0,
            "counted as accepted before the group commit synced them"
        );
        store.commit().unwrap();
        assert_eq!(accepted(&snapshotter), 3);
    });
}

#[test]
fn overflow_counts_a_batch_at_the_push() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), settings(16, PersistMode::Overflow));
        for n in 1..=3 {
            store.push(batch(n)).unwrap();
        }
        assert_eq!(accepted(&snapshotter), 3);
    });
}

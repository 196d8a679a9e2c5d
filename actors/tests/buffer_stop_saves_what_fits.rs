//! A stop whose ring does not fit under `disk_max` keeps the oldest part
//! that does, and says how many batches it could not keep.
mod buffer_rig;

use buffer_rig::*;
use ingestor_actors::buffer::{CloseError, SpoolError, Store};
use ingestor_actors::settings::PersistMode;

const RING: u64 = 1000;

#[test]
fn stop_over_disk_max_saves_the_oldest_that_fit_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(RING as usize, PersistMode::Overflow);
    // Room for a part of the ring: about 40 KiB over what the empty
    // spool occupies, for batches of ~100 bytes.
    let empty = open(dir.path(), s.clone()).stats().disk_bytes;
    s.disk_max = bytesize::ByteSize::b(empty + (40 << 10));
    let mut store = open(dir.path(), s.clone());
    for n in 1..=RING {
        assert_eq!(store.push(batch(n)).unwrap(), n);
    }
    assert_eq!(store.stats().disk_batches, 0, "everything is in memory");

    let unsaved = match store.close() {
        Err(SpoolError::CloseFailed(CloseError::Unsaved { batches, .. })) => batches as u64,
        other => panic!("the ring does not fit: the close must say so, got {other:?}"),
    };
    assert!(
        unsaved > 0 && unsaved < RING,
        "a part of the ring fits and is kept: {unsaved} of {RING} unsaved"
    );
    drop(store);

    let (mut store, report) =
        Store::open(dir.path(), settings(RING as usize, PersistMode::Overflow))
            .expect("reopen after the stop");
    assert_eq!(
        report.skipped, None,
        "a stop that saved what fit is a clean stop"
    );
    assert_eq!(
        report.next_seq,
        RING + 1,
        "seq continues after the clean stop"
    );
    let kept = take_all(&mut store, 100);
    let kept_n = RING - unsaved;
    assert_eq!(
        seqs(&kept),
        (1..=kept_n).collect::<Vec<_>>(),
        "the oldest batches are the ones kept, in order"
    );
    assert!(kept.iter().all(|b| n_of(b) == b.seq));
}

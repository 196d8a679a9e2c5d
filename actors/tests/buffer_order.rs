//! Order and completeness through ring, spill and restart, on real fjall.
mod buffer_rig;

use buffer_rig::*;
use ingestor_actors::settings::PersistMode;

#[test]
fn spill_keeps_order_disk_first_then_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(8, PersistMode::Overflow));
    for n in 1..=100 {
        assert_eq!(store.push(batch(n)).unwrap(), n);
    }
    let stats = store.stats();
    assert!(stats.memory_batches <= 8, "ring over capacity: {stats:?}");
    assert!(
        stats.disk_batches >= 92,
        "overflow did not spill: {stats:?}"
    );
    let all = take_all(&mut store, 7);
    assert_eq!(seqs(&all), (1..=100).collect::<Vec<_>>());
    assert!(
        all.iter().all(|b| n_of(b) == b.seq),
        "payload does not match seq"
    );
}

#[test]
fn ring_wraps_many_times_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(5, PersistMode::Overflow));
    let mut seen = Vec::new();
    for round in 0..50u64 {
        for k in 0..3 {
            store.push(batch(round * 3 + k + 1)).unwrap();
        }
        let got = store.take(3).unwrap();
        store.ack(got.last().unwrap().seq).unwrap();
        seen.extend(seqs(&got));
    }
    assert_eq!(seen, (1..=150).collect::<Vec<_>>());
    assert_eq!(store.stats().disk_batches, 0);
    assert_eq!(store.stats().memory_batches, 0);
}

#[test]
fn nack_resends_in_flight_first_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Overflow));
    for n in 1..=10 {
        store.push(batch(n)).unwrap();
    }
    assert_eq!(seqs(&store.take(3).unwrap()), vec![1, 2, 3]);
    store.ack(2).unwrap();
    assert_eq!(seqs(&store.take(3).unwrap()), vec![4, 5, 6]);
    store.nack();
    assert_eq!(seqs(&take_all(&mut store, 4)), (3..=10).collect::<Vec<_>>());
}

#[test]
fn ack_beyond_what_was_taken_deletes_nothing_untaken() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(4, PersistMode::Overflow));
    for n in 1..=6 {
        store.push(batch(n)).unwrap();
    }
    store.take(2).unwrap();
    store.ack(99).unwrap();
    assert_eq!(seqs(&take_all(&mut store, 10)), vec![3, 4, 5, 6]);
}

#[test]
fn clean_close_and_reopen_continues_seq_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), settings(16, PersistMode::Overflow));
        for n in 1..=10 {
            store.push(batch(n)).unwrap();
        }
        store.take(4).unwrap(); // in flight at close: must come back
        store.close().unwrap();
        assert!(
            store.push(batch(11)).is_err(),
            "closed store accepted a batch"
        );
    }
    let (mut store, report) =
        ingestor_actors::buffer::Store::open(dir.path(), settings(16, PersistMode::Overflow))
            .unwrap();
    assert_eq!(report.skipped, None);
    assert_eq!(store.push(batch(11)).unwrap(), 11);
    let all = take_all(&mut store, 3);
    assert_eq!(seqs(&all), (1..=11).collect::<Vec<_>>());
    assert!(all.iter().all(|b| n_of(b) == b.seq));
}

#[test]
fn reopen_without_close_skips_the_whole_reservation() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), settings(16, PersistMode::Always));
        for n in 1..=5 {
            store.push(batch(n)).unwrap();
        }
        store.commit().unwrap();
        // dropped without close: what a crash leaves behind
    }
    let (mut store, report) =
        ingestor_actors::buffer::Store::open(dir.path(), settings(16, PersistMode::Always))
            .unwrap();
    let (from, to) = report.skipped.expect("a crash must be reported");
    assert_eq!(from, 6);
    let next = store.push(batch(6)).unwrap();
    assert_eq!(next, to + 1);
    assert!(next > 5);
    store.commit().unwrap();
    assert_eq!(seqs(&take_all(&mut store, 10)), vec![1, 2, 3, 4, 5, next]);
}

#[test]
fn disconnect_mode_moves_ring_to_disk_when_nats_drops_and_writes_through_until_drained() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(100, PersistMode::Disconnect));
    store.set_deliverable(true).unwrap();
    for n in 1..=5 {
        store.push(batch(n)).unwrap();
    }
    assert_eq!(store.stats().memory_batches, 5);
    store.set_deliverable(false).unwrap();
    assert_eq!(store.stats().memory_batches, 0);
    assert_eq!(store.stats().disk_batches, 5);
    for n in 6..=8 {
        store.push(batch(n)).unwrap();
    }
    store.commit().unwrap();
    assert_eq!(store.stats().disk_batches, 8);
    // Confirmations flow again, but a backlog still waits on disk: new
    // batches are written through behind it (a power cut during a long
    // drain must not cost what was polled meanwhile).
    store.set_deliverable(true).unwrap();
    store.push(batch(9)).unwrap();
    store.commit().unwrap();
    assert_eq!(store.stats().memory_batches, 0);
    assert_eq!(store.stats().disk_batches, 9);
    assert_eq!(seqs(&take_all(&mut store, 4)), (1..=9).collect::<Vec<_>>());
    store.ack(9).unwrap();
    // Drained: the ring takes new batches again.
    store.push(batch(10)).unwrap();
    assert_eq!(store.stats().memory_batches, 1);
    assert_eq!(seqs(&take_all(&mut store, 4)), vec![10]);
}

#[test]
fn second_open_of_the_same_data_dir_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path(), settings(4, PersistMode::Overflow));
    let err = ingestor_actors::buffer::Store::open(dir.path(), settings(4, PersistMode::Overflow))
        .err()
        .expect("second open must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another ingestor"),
        "unclear message: {msg}"
    );
}

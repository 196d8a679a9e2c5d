//! Damaged records on disk: set aside, counted, the rest flows in order.
mod support;

use ingestor_actors::buffer::{Spool, Store};
use ingestor_actors::settings::PersistMode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::*;

fn counter(
    snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
) -> u64 {
    snapshot
        .iter()
        .filter(|(k, ..)| k.key().name() == name)
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

#[test]
fn flipped_bytes_are_quarantined_counted_and_the_rest_replays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(dir.path(), settings(1000, PersistMode::Always));
        for n in 1..=50 {
            store.push(batch(n)).unwrap();
        }
        store.commit().unwrap();
        store.close().unwrap();
    }
    let damaged = [3u64, 17, 18, 50];
    {
        let (spool, _) = Spool::open(dir.path()).unwrap();
        let ks = spool.raw_batches().unwrap();
        for seq in damaged {
            let key = seq.to_be_bytes();
            let mut v = ks.get(key).unwrap().unwrap().to_vec();
            let mid = v.len() / 2;
            v[mid] ^= 0xff;
            ks.insert(key, v).unwrap();
        }
        // a record of a format from the future and a truncated one
        ks.insert(51u64.to_be_bytes(), vec![9u8, 1, 2, 3, 4, 5])
            .unwrap();
        ks.insert(52u64.to_be_bytes(), vec![1u8, 0]).unwrap();
    }
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (got, quarantined) = metrics::with_local_recorder(&recorder, || {
        let (mut store, _) = Store::open(dir.path(), settings(1000, PersistMode::Always)).unwrap();
        let got = take_all(&mut store, 7);
        store.ack(got.last().unwrap().seq).unwrap();
        (got, store.spool().quarantined().unwrap())
    });
    let want: Vec<u64> = (1..=49).filter(|s| !damaged.contains(s)).collect();
    assert_eq!(seqs(&got), want);
    assert!(got.iter().all(|b| n_of(b) == b.seq));
    assert_eq!(
        quarantined,
        damaged.len() + 2,
        "every bad record kept in quarantine"
    );
    let snap = snapshotter.snapshot().into_vec();
    assert_eq!(
        counter(&snap, "ingestor_buffer_corrupt_total"),
        damaged.len() as u64 + 2
    );
}

#[test]
fn drop_oldest_keeps_the_newest_within_disk_max_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(1, PersistMode::Always);
    let one = ingestor_actors::buffer::record::encode(&batch(1)).len() as u64;
    s.disk_max = bytesize::ByteSize::b(one * 10 + one / 2);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let got = metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), s);
        for n in 1..=30 {
            store.push(batch(n)).unwrap();
            store.commit().unwrap();
        }
        assert!(store.stats().disk_bytes <= one * 10 + one / 2);
        take_all(&mut store, 100)
    });
    assert_eq!(seqs(&got), (21..=30).collect::<Vec<_>>());
    let snap = snapshotter.snapshot().into_vec();
    assert_eq!(counter(&snap, "ingestor_buffer_dropped_total"), 20);
}

#[test]
fn drop_newest_refuses_what_does_not_fit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(1, PersistMode::Always);
    let one = ingestor_actors::buffer::record::encode(&batch(1)).len() as u64;
    s.disk_max = bytesize::ByteSize::b(one * 10 + one / 2);
    s.when_disk_full = ingestor_actors::settings::WhenDiskFull::DropNewest;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (fates, got) = metrics::with_local_recorder(&recorder, || {
        let mut store = open(dir.path(), s);
        let mut fates = Vec::new();
        for n in 1..=30 {
            store.push(batch(n)).unwrap();
            fates.extend(store.commit().unwrap());
        }
        (fates, take_all(&mut store, 100))
    });
    assert_eq!(seqs(&got), (1..=10).collect::<Vec<_>>());
    assert!(fates[..10].iter().all(|(_, f)| f.is_ok()));
    assert!(fates[10..]
        .iter()
        .all(|(_, f)| f.as_ref().is_err_and(|e| e.contains("drop_newest"))));
    let snap = snapshotter.snapshot().into_vec();
    assert_eq!(counter(&snap, "ingestor_buffer_dropped_total"), 20);
}

#[test]
fn overflow_drop_oldest_spares_batches_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(2, PersistMode::Overflow);
    let one = ingestor_actors::buffer::record::encode(&batch(1)).len() as u64;
    s.disk_max = bytesize::ByteSize::b(one * 6);
    let mut store = open(dir.path(), s);
    for n in 1..=6 {
        store.push(batch(n)).unwrap();
    }
    let first = store.take(2).unwrap();
    assert_eq!(seqs(&first), vec![1, 2]);
    for n in 7..=20 {
        store.push(batch(n)).unwrap();
    }
    store.ack(2).unwrap();
    let rest = take_all(&mut store, 50);
    let rest = seqs(&rest);
    assert!(
        rest.windows(2).all(|w| w[0] < w[1]),
        "out of order: {rest:?}"
    );
    assert_eq!(rest.last(), Some(&20), "newest must survive drop_oldest");
    assert!(store.stats().disk_bytes <= one * 6);
}

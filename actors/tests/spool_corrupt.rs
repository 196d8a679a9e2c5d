//! Damaged records on disk: set aside, counted, the rest flows in order.
mod buffer_rig;
#[path = "../../tests/spool_rig/mod.rs"]
mod spool_rig;

use buffer_rig::*;
use ingestor_actors::buffer::{Spool, Store};
use ingestor_actors::settings::PersistMode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

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
fn a_take_window_that_meets_a_quarantined_record_does_not_step_over_disk_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(5, PersistMode::Overflow));
    for n in 1..=20 {
        store.push(batch(n)).unwrap();
    }
    assert!(store.stats().disk_batches >= 10, "most of it spilled");
    let ks = store.spool().raw_batches().unwrap().clone();
    ks.insert(3u64.to_be_bytes(), vec![1u8, 0]).unwrap();
    // 1, 2, (3 set aside), 4: the window is full with disk records left.
    let first = store.take(4).unwrap();
    assert_eq!(
        seqs(&first),
        vec![1, 2, 4],
        "no ring batch before the disk is read"
    );
    let rest = take_all(&mut store, 4);
    let mut all = seqs(&first);
    all.extend(seqs(&rest));
    let want: Vec<u64> = (1..=20).filter(|s| *s != 3).collect();
    assert_eq!(all, want, "every readable seq once, ascending");
}

/// The largest table file of the `batches` keyspace.
fn biggest_table(spool_dir: &std::path::Path) -> std::path::PathBuf {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    let mut stack = vec![spool_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.components().any(|c| c.as_os_str() == "tables") {
                let len = p.metadata().unwrap().len();
                if best.as_ref().is_none_or(|(l, _)| len > *l) {
                    best = Some((len, p));
                }
            }
        }
    }
    best.expect("a table file").1
}

#[test]
fn a_damaged_table_block_is_skipped_counted_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let total = 3000u64;
    {
        let mut store = open(dir.path(), settings(10, PersistMode::Always));
        for n in 1..=total {
            store.push(batch(n)).unwrap();
            if n % 100 == 0 {
                store.commit().unwrap();
            }
        }
        store.commit().unwrap();
        store.close().unwrap();
    }
    let table = biggest_table(&dir.path().join("spool"));
    let mut bytes = std::fs::read(&table).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0x5a;
    }
    std::fs::write(&table, bytes).unwrap();

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let got = metrics::with_local_recorder(&recorder, || {
        let (mut store, _) = Store::open(dir.path(), settings(10, PersistMode::Always)).unwrap();
        let got = take_all(&mut store, 64);
        store.ack(got.last().unwrap().seq).unwrap();
        // Live data flows after the damage.
        let live = store.push(batch(total + 1)).unwrap();
        store.commit().unwrap();
        let next = take_all(&mut store, 64);
        assert_eq!(seqs(&next), vec![live]);
        got
    });
    let got = seqs(&got);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending, each once");
    assert_eq!(
        got.first(),
        Some(&1),
        "what precedes the damage is published"
    );
    assert_eq!(
        got.last(),
        Some(&total),
        "what follows the damage is published"
    );
    let missing = total - got.len() as u64;
    assert!(missing > 0, "the overwritten block held records");
    let snap = snapshotter.snapshot().into_vec();
    assert_eq!(
        counter(&snap, "ingestor_buffer_corrupt_total"),
        missing,
        "every unreadable seq counted"
    );
}

/// Writes 400 synced batches and stops without closing (as a power cut).
fn crashed_spool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(10, PersistMode::Always));
    for n in 1..=400 {
        store.push(batch(n)).unwrap();
        if n % 20 == 0 {
            store.commit().unwrap();
        }
    }
    drop(store);
    dir
}

/// After damage: what is readable comes out once, ascending, and live data follows.
fn assert_readable_prefix_then_live(dir: &std::path::Path) {
    let (mut store, _) = Store::open(dir, settings(10, PersistMode::Always))
        .expect("a damaged journal must not stop the spool from opening");
    let got = seqs(&take_all(&mut store, 64));
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "ascending, once: {got:?}"
    );
    assert!(got.iter().all(|s| *s <= 400));
    if let Some(last) = got.last() {
        store.ack(*last).unwrap();
    }
    let live = store.push(batch(1000)).unwrap();
    store.commit().unwrap();
    assert!(live > 400, "seq continues past everything handed out");
    assert_eq!(seqs(&take_all(&mut store, 64)), vec![live]);
}

#[test]
fn a_journal_cut_short_at_random_points_keeps_what_it_holds_in_order() {
    for permille in [3, 97, 371, 555, 808, 999] {
        let dir = crashed_spool();
        spool_rig::cut_journal(&dir.path().join("spool"), permille);
        assert_readable_prefix_then_live(dir.path());
    }
}

#[test]
fn garbled_bytes_in_the_journal_never_stop_the_spool_from_opening() {
    let dir = crashed_spool();
    let (path, used) = spool_rig::journal(&dir.path().join("spool"));
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside a record near the middle (a cell gone bad under a value, which
    // fails the journal's checksum; bytes that break its framing make fjall
    // cut the journal there instead, as after a power cut: the test above).
    let needle = b"\"values\":{";
    let mid = used / 2;
    let at = bytes[mid..]
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a record after the middle of the journal")
        + mid
        + needle.len();
    bytes[at..at + 16].fill(0x5a);
    std::fs::write(&path, bytes).unwrap();
    assert_readable_prefix_then_live(dir.path());
    // The journal is kept for a post-mortem, not deleted.
    let kept = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".jnl.damaged")
        });
    assert!(kept, "damaged journal set aside");
}

/// 400 batches, the first 100 published, then a clean stop.
fn cleanly_stopped_spool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(10, PersistMode::Overflow));
    for n in 1..=400 {
        store.push(batch(n)).unwrap();
    }
    let first = take_all(&mut store, 64);
    store.nack();
    let _ = take_all(&mut store, 100);
    store.ack(first[99].seq).unwrap();
    store.close().unwrap();
    dir
}

#[test]
fn a_journal_damaged_after_a_clean_stop_loses_nothing_and_counts_exactly_zero() {
    let mut set_aside_seen = 0;
    // (where, garble 64 bytes or cut the file there)
    for (permille, garble) in [
        (500, true),
        (130, true),
        (870, true),
        (20, true),
        (420, false),
    ] {
        let dir = cleanly_stopped_spool();
        let spool = dir.path().join("spool");
        let (_, used) = spool_rig::journal(&spool);
        assert!(used > 1024, "the clean stop left a journal to damage");
        if garble {
            spool_rig::garble_journal(&spool, permille, 64);
        } else {
            spool_rig::cut_journal(&spool, permille);
        }

        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let (report, got) = metrics::with_local_recorder(&recorder, || {
            let (mut store, report) =
                Store::open(dir.path(), settings(10, PersistMode::Overflow)).unwrap();
            (report, seqs(&take_all(&mut store, 64)))
        });
        let set_aside = std::fs::read_dir(dir.path().join("spool"))
            .unwrap()
            .any(|e| {
                e.unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".jnl.damaged")
            });
        set_aside_seen += usize::from(set_aside);
        eprintln!("damage at {permille}‰ (garble {garble}): set aside {set_aside}");
        // Everything was in tables: the unpublished batches, the clean mark
        // (seq continues without a gap) and the acknowledged cursor.
        assert_eq!(got, (101..=400).collect::<Vec<_>>(), "at {permille}‰");
        assert_eq!(
            (report.next_seq, report.skipped),
            (401, None),
            "at {permille}‰"
        );
        let snap = snapshotter.snapshot().into_vec();
        assert_eq!(counter(&snap, "ingestor_buffer_corrupt_total"), 0);
    }
    eprintln!("journals set aside: {set_aside_seen} of 5 (the rest cut by fjall itself)");
}

#[test]
fn a_journal_lost_after_a_crash_never_brings_back_the_previous_clean_mark() {
    let dir = cleanly_stopped_spool();
    {
        // A run that continues at 401, writes 50 batches and crashes.
        let mut store = open(dir.path(), settings(10, PersistMode::Always));
        for n in 1..=50 {
            assert_eq!(store.push(batch(n)).unwrap(), 400 + n);
        }
        store.commit().unwrap();
        drop(store);
    }
    // The power cut took the whole journal of that run.
    let (path, _) = spool_rig::journal(&dir.path().join("spool"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (_, report) = Store::open(dir.path(), settings(10, PersistMode::Always)).unwrap();
    assert!(
        report.next_seq > 450,
        "seqs handed out by the crashed run would be reused: {report:?}"
    );
}

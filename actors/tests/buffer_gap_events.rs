//! Gap events (docs/reference.md §3): every seq the buffer makes missing
//! is explained by an event that travels like a batch, with a seq of its
//! own, on the service's own device `_gaps`: so every seq is a batch, an
//! event, or covered by an event.
mod buffer_rig;

use std::collections::BTreeSet;

use buffer_rig::*;
use ingestor_actors::buffer::SpoolState;
use ingestor_actors::encoded::GAPS_DEVICE;
use ingestor_actors::settings::{PersistMode, WhenDiskFull};
use ingestor_actors::EncodedBatch;

/// Smaller than an empty fjall database: the first write finds it full.
const TINY: u64 = 4096;

/// The `gap` object of an event, as a consumer reads it from the payload.
fn gap_of(event: &EncodedBatch) -> (u64, u64, String, u64) {
    let json: serde_json::Value = serde_json::from_slice(&event.payload()).expect("JSON");
    assert_eq!(json["seq"].as_u64(), Some(event.seq), "the event's own seq");
    assert!(
        json["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    let gap = &json["gap"];
    (
        gap["from"].as_u64().expect("from"),
        gap["to"].as_u64().expect("to"),
        gap["reason"].as_str().expect("reason").to_owned(),
        gap["count"].as_u64().expect("count"),
    )
}

/// Every seq from 1 to the newest handed out is a batch, an event, or
/// inside an event's range.
fn assert_every_seq_accounted_for(out: &[EncodedBatch]) {
    let present: BTreeSet<u64> = out.iter().map(|b| b.seq).collect();
    let covered: Vec<(u64, u64)> = out
        .iter()
        .filter(|b| b.device() == GAPS_DEVICE)
        .map(|e| {
            let (from, to, ..) = gap_of(e);
            (from, to)
        })
        .collect();
    let newest = present.iter().max().copied().unwrap_or(0);
    for seq in 1..=newest {
        assert!(
            present.contains(&seq) || covered.iter().any(|(f, t)| (*f..=*t).contains(&seq)),
            "seq {seq} is neither in the stream nor explained by a gap event"
        );
    }
}

#[test]
fn batches_dropped_by_a_full_disk_are_explained_by_one_event_with_their_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(10, PersistMode::Always);
    s.disk_max = bytesize::ByteSize::b(TINY);
    s.when_disk_full = WhenDiskFull::DropOldest;
    let mut store = open(dir.path(), s);
    for n in 1..=30 {
        store.push(batch(n)).unwrap();
        store.commit().unwrap();
    }
    assert_eq!(store.spool_state(), SpoolState::Full);
    assert_eq!(
        store.emit_gap_events(),
        1,
        "one event for one contiguous drop"
    );
    store.commit().unwrap();
    let out = take_all(&mut store, 100);
    let events: Vec<_> = out.iter().filter(|b| b.device() == GAPS_DEVICE).collect();
    assert_eq!(events.len(), 1);
    // The event made room for itself: it pushed out the oldest batch left.
    assert_eq!(
        gap_of(events[0]),
        (1, 20, "disk_full_oldest".to_owned(), 20),
        "seqs 1..=20 dropped"
    );
    assert_eq!(
        events[0].seq, 31,
        "the event has a seq of its own, after the data"
    );
    let next = store.emit_gap_events();
    assert_eq!(next, 1, "the batch the event pushed out gets an event too");
    store.commit().unwrap();
    let later = take_all(&mut store, 100);
    assert_eq!(gap_of(&later[later.len() - 1]).2, "disk_full_oldest");
    let mut all = out.clone();
    all.extend(later);
    assert_every_seq_accounted_for(&all);
}

#[test]
fn seqs_skipped_after_a_crash_are_explained_by_a_crash_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(100, PersistMode::Always);
    let mut store = open(dir.path(), s.clone());
    for n in 1..=5 {
        store.push(batch(n)).unwrap();
    }
    store.commit().unwrap();
    drop(store); // no close: what a kill -9 leaves

    let (mut store, report) = ingestor_actors::buffer::Store::open(dir.path(), s).unwrap();
    let (from, to) = report.skipped.expect("a crash skips the reservation");
    assert_eq!(store.emit_gap_events(), 1);
    store.commit().unwrap();
    let out = take_all(&mut store, 1000);
    assert_eq!(seqs(&out[..5]), vec![1, 2, 3, 4, 5], "kept batches first");
    let event = &out[5];
    assert_eq!(event.device(), GAPS_DEVICE);
    assert_eq!(gap_of(event), (from, to, "crash".to_owned(), to - from + 1));
    assert!(event.seq > to, "the event's seq is after the skipped range");
    assert_every_seq_accounted_for(&out);
}

#[test]
fn no_gap_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), settings(100, PersistMode::Overflow));
    for n in 1..=10 {
        store.push(batch(n)).unwrap();
    }
    assert_eq!(store.emit_gap_events(), 0);
    let out = take_all(&mut store, 100);
    assert_eq!(seqs(&out), (1..=10).collect::<Vec<_>>());
}

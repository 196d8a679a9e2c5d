//! `PushMany`, the inlet's way in: a chunk of batches for one message and one
//! reply, each batch answered as if pushed alone, on a real fjall spool.
mod buffer_rig;

use std::time::Duration;

use buffer_rig::*;
use ingestor_actors::buffer::{BufferMsg, Lease, PushError};
use ingestor_actors::settings::PersistMode;
use ingestor_actors::EncodedBatch;
use ractor::ActorRef;

fn chunk(ns: std::ops::RangeInclusive<u64>) -> Vec<EncodedBatch> {
    ns.map(|n| batch(n).into()).collect()
}

async fn push_many(
    buffer: &ActorRef<BufferMsg>,
    batches: Vec<EncodedBatch>,
) -> Vec<Result<u64, PushError>> {
    ractor::call!(buffer, |p| BufferMsg::PushMany(batches, Some(p))).unwrap()
}

/// Takes `n` batches (a Take is answered once something is there).
async fn take(buffer: &ActorRef<BufferMsg>, n: usize) -> Vec<EncodedBatch> {
    let mut out = Vec::new();
    let lease = Lease::new(buffer.clone());
    while out.len() < n {
        let got = ractor::call_t!(
            buffer,
            |reply| BufferMsg::Take {
                lease: lease.id(),
                max: 64,
                reply
            },
            5_000
        );
        out.extend(got.expect("the buffer hands out what it accepted"));
    }
    out
}

#[tokio::test]
async fn persist_always_answers_each_batch_in_order_once_synced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), settings(10_000, PersistMode::Always))
        .shared()
        .expect("disk thread");
    let buffer = spawn_buffer(store).await.0;
    let one = ractor::call!(buffer, |p| BufferMsg::Push(batch(1).into(), Some(p))).unwrap();
    assert_eq!(one.unwrap(), 1);

    let results = push_many(&buffer, chunk(2..=301)).await;
    let answered: Vec<u64> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(answered, (2..=301).collect::<Vec<_>>());
    // Accepted in `always` means on disk: nothing waits for a commit.
    let stats = ractor::call!(buffer, BufferMsg::Stats).unwrap();
    assert_eq!((stats.pending, stats.disk_batches), (0, 301), "{stats:?}");

    let all = take(&buffer, 301).await;
    assert_eq!(seqs(&all), (1..=301).collect::<Vec<_>>());
    assert!(
        all.iter().all(|b| n_of(b) == b.seq),
        "payload does not match seq"
    );
    buffer.stop(None);
}

#[tokio::test]
async fn a_chunk_that_spills_midway_keeps_order_disk_first() {
    let dir = tempfile::tempdir().unwrap();
    // A ring of 8 in `overflow`: the chunk's later batches spill its earlier ones.
    let store = open(dir.path(), settings(8, PersistMode::Overflow))
        .shared()
        .expect("disk thread");
    let buffer = spawn_buffer(store).await.0;
    let first = push_many(&buffer, chunk(1..=100)).await;
    let second = push_many(&buffer, chunk(101..=150)).await;
    let answered: Vec<u64> = first
        .into_iter()
        .chain(second)
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(answered, (1..=150).collect::<Vec<_>>());
    let stats = ractor::call!(buffer, BufferMsg::Stats).unwrap();
    assert!(
        stats.disk_batches >= 142,
        "overflow did not spill: {stats:?}"
    );

    let all = take(&buffer, 150).await;
    assert_eq!(seqs(&all), (1..=150).collect::<Vec<_>>());
    assert!(
        all.iter().all(|b| n_of(b) == b.seq),
        "payload does not match seq"
    );
    buffer.stop(None);
}

#[tokio::test]
async fn a_closed_buffer_refuses_every_batch_of_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), settings(16, PersistMode::Overflow))
        .shared()
        .expect("disk thread");
    let control = store.control();
    let buffer = spawn_buffer(store).await.0;
    assert_eq!(push_many(&buffer, chunk(1..=2)).await.len(), 2);
    let closed = control.close(Duration::from_secs(30)).await;
    assert!(closed.is_clean(), "{closed}");

    let results = push_many(&buffer, chunk(3..=5)).await;
    assert_eq!(results.len(), 3);
    assert!(
        results.iter().all(|r| matches!(r, Err(PushError::Closed))),
        "{results:?}"
    );
    buffer.stop(None);
}

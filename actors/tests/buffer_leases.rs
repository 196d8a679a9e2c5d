//! Leases through a real BufferActor on a real spool: a session's end
//! requeues what it held without anyone sending a Nack, a dead session's
//! late Take gets nothing, and what a session confirmed before it ended
//! is never handed out again.
mod buffer_rig;

use std::time::Duration;

use buffer_rig::*;
use ingestor_actors::buffer::{BufferMsg, Lease, LeaseId};
use ingestor_actors::settings::PersistMode;
use ractor::rpc::CallResult;
use ractor::ActorRef;

async fn buffer_with(n: u64) -> (tempfile::TempDir, ActorRef<BufferMsg>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), settings(4, PersistMode::Overflow))
        .shared()
        .expect("disk thread");
    let (buffer, _) = spawn_buffer(store).await;
    for i in 1..=n {
        buffer.cast(BufferMsg::Push(batch(i).into(), None)).unwrap();
    }
    (dir, buffer)
}

/// A Take under `lease`: `None` when the buffer gives no answer.
async fn take(buffer: &ActorRef<BufferMsg>, lease: LeaseId, max: usize) -> Option<Vec<u64>> {
    let asked = buffer
        .call(
            |reply| BufferMsg::Take { lease, max, reply },
            Some(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    match asked {
        CallResult::Success(b) => Some(seqs(&b)),
        CallResult::Timeout => panic!("a Take under a live lease was not answered"),
        CallResult::SenderError => None,
    }
}

#[tokio::test]
async fn a_dropped_lease_requeues_its_batches_for_the_next_session_first() {
    let (_dir, buffer) = buffer_with(10).await;
    let first = Lease::new(buffer.clone());
    assert_eq!(take(&buffer, first.id(), 4).await, Some(vec![1, 2, 3, 4]));
    drop(first); // the session ended: no Nack from anyone
    let next = Lease::new(buffer.clone());
    assert_eq!(
        take(&buffer, next.id(), 6).await,
        Some(vec![1, 2, 3, 4, 5, 6])
    );
}

#[tokio::test]
async fn a_newer_lease_takes_over_what_an_older_one_still_holds() {
    let (_dir, buffer) = buffer_with(8).await;
    let old = Lease::new(buffer.clone());
    assert_eq!(take(&buffer, old.id(), 3).await, Some(vec![1, 2, 3]));
    let new = Lease::new(buffer.clone());
    assert_eq!(take(&buffer, new.id(), 5).await, Some(vec![1, 2, 3, 4, 5]));
    // The old session's late Take gets nothing: it cannot hold batches
    // the new session's acks would sweep away.
    assert_eq!(take(&buffer, old.id(), 5).await, None);
    new.ack(5).unwrap();
    assert_eq!(take(&buffer, new.id(), 5).await, Some(vec![6, 7, 8]));
}

#[tokio::test]
async fn what_a_session_confirmed_before_its_lease_ended_is_not_handed_out_again() {
    let (_dir, buffer) = buffer_with(6).await;
    let first = Lease::new(buffer.clone());
    assert_eq!(
        take(&buffer, first.id(), 6).await,
        Some(vec![1, 2, 3, 4, 5, 6])
    );
    first.ack(4).unwrap(); // the held-back Ack goes out before the lease ends
    drop(first);
    let next = Lease::new(buffer.clone());
    assert_eq!(take(&buffer, next.id(), 6).await, Some(vec![5, 6]));
}

#[tokio::test]
async fn a_lease_that_ended_before_its_first_take_gets_nothing() {
    let (_dir, buffer) = buffer_with(3).await;
    let gone = Lease::new(buffer.clone());
    let id = gone.id();
    drop(gone);
    assert_eq!(take(&buffer, id, 3).await, None);
    let live = Lease::new(buffer.clone());
    assert_eq!(take(&buffer, live.id(), 3).await, Some(vec![1, 2, 3]));
}

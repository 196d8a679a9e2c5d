//! A BufferActor that dies while batches it accepted wait for their group
//! commit: the inlet sends them again to the next actor, and each poll is
//! still stored once, under the seq it got first (tickets).
mod buffer_rig;

use std::time::Duration;

use buffer_rig::*;
use ingestor_actors::buffer::{BufferInlet, BufferMsg, Store};
use ingestor_actors::settings::PersistMode;
use ingestor_actors::EncodedBatch;
use tokio::sync::watch;

const ROUNDS: u64 = 5;
const PER_ROUND: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_killed_mid_commit_stores_each_poll_once_under_its_first_seq() {
    let dir = tempfile::tempdir().unwrap();
    // `always`: an accepted batch is answered only after its fsync, so a
    // kill finds accepted, unanswered batches in the inlet's window.
    let store = Store::open(dir.path(), settings(64, PersistMode::Always))
        .unwrap()
        .0
        .shared()
        .expect("disk thread");
    let (first, _) = spawn_buffer(store.clone()).await;
    let (target, follow) = watch::channel(Some(first.clone()));
    let inlet = BufferInlet::new(follow);

    let mut current = first;
    let mut n = 0;
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            n += 1;
            inlet.push(EncodedBatch::encode(&batch(n))).await;
        }
        // Mid-flow: the actor dies with whatever it accepted uncommitted
        // or unanswered; the inlet holds its batches for the next one.
        current.kill();
        target.send_replace(None);
        let (next, _) = spawn_buffer(store.clone()).await;
        target.send_replace(Some(next.clone()));
        current = next;
    }
    assert!(
        inlet.drained(Duration::from_secs(30)).await,
        "every batch answered by a buffer"
    );
    let stats = ractor::call!(current, BufferMsg::Stats).unwrap();
    current.stop(None);
    let closed = store.control().close(Duration::from_secs(30)).await;
    assert!(closed.is_clean(), "{closed}");
    drop(store);

    let mut store = Store::open(dir.path(), settings(64, PersistMode::Always))
        .unwrap()
        .0;
    let got = take_all(&mut store, 1000);
    let polls: Vec<u64> = got.iter().map(n_of).collect();
    let mut once = polls.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(
        once.len(),
        polls.len(),
        "a poll stored twice: {} records for {} polls",
        polls.len(),
        once.len()
    );
    assert_eq!(once, (1..=n).collect::<Vec<_>>(), "every poll is there");
    assert_eq!(polls, once, "in the order polled");
    assert_eq!(
        seqs(&got),
        (1..=n).collect::<Vec<_>>(),
        "one seq per poll, no gap"
    );
    assert_eq!(stats.next_seq, n + 1);
}

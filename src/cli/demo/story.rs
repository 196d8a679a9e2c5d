//! The scripted outage the demo plays with its own nats-server: normal
//! flow, the server stopped (the backlog spills to disk), the server back
//! (the backlog drains, oldest first), normal flow again.
//!
//! The story only narrates and starts/stops the demo's own child server; the
//! numbers come from the status line (`status`), which keeps printing
//! throughout. A user's own NATS server is never part of a story.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::nats_child::NatsChild;
use super::status::backlog;
use crate::service::TreeHealth;

/// How long each act lasts (the drain lasts as long as it takes).
const NORMAL_FLOW: Duration = Duration::from_secs(15);
const OUTAGE: Duration = Duration::from_secs(20);
/// The drain is watched this long at most before the story moves on.
const DRAIN_WITHIN: Duration = Duration::from_secs(120);

/// The child server, shared with the demo, which stops it on exit. Locked
/// only to take or put it back, never across an `.await`.
pub(super) type ChildSlot = Arc<Mutex<Option<NatsChild>>>;

fn take(slot: &ChildSlot) -> Option<NatsChild> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn put(slot: &ChildSlot, child: NatsChild) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
}

/// Plays the four acts once, then returns (the demo runs on until Ctrl-C).
pub(super) async fn play(health: TreeHealth, slot: ChildSlot) {
    println!(
        "== 1/4 normal flow: every poll is published and confirmed by the NATS server ({} s)",
        NORMAL_FLOW.as_secs()
    );
    tokio::time::sleep(NORMAL_FLOW).await;

    let Some(mut child) = take(&slot) else {
        return;
    };
    let pid = child.pid().unwrap_or(0);
    child.stop().await;
    put(&slot, child);
    let before = health.snapshot().await;
    println!(
        "== 2/4 outage: the NATS server (pid {pid}) is stopped. Polling goes on; every batch \
         is written to disk (persist = \"disconnect\") and waits there ({} s)",
        OUTAGE.as_secs()
    );
    tokio::time::sleep(OUTAGE).await;

    let Some(mut child) = take(&slot) else {
        return;
    };
    let resumed = child.resume().await;
    let pid = child.pid().unwrap_or(0);
    put(&slot, child);
    if let Err(e) = resumed {
        println!("== the NATS server did not come back ({e}); the backlog stays on disk");
        return;
    }
    let during = health.snapshot().await;
    let first_waiting = before.buffer.next_seq;
    println!(
        "== 3/4 the NATS server is back (pid {pid}): the backlog drains oldest first, from seq \
         {first_waiting} (polled as the outage began), before newer readings"
    );
    let started = Instant::now();
    let drained = wait_drained(&health).await;
    let after = health.snapshot().await;
    if drained {
        println!(
            "== 4/4 normal flow again: the backlog drained in {:.1} s; the {} batches polled during \
             the outage (seq {first_waiting}..{}) are in the stream, nothing lost. Ctrl-C stops the demo",
            started.elapsed().as_secs_f64(),
            during.buffer.next_seq.saturating_sub(first_waiting),
            during.buffer.next_seq.saturating_sub(1)
        );
    } else {
        println!(
            "== 4/4 still draining after {} s ({} batches waiting); the demo goes on. Ctrl-C stops it",
            DRAIN_WITHIN.as_secs(),
            backlog(&after)
        );
    }
}

/// Waits until NATS is connected and nothing waits on disk or in flight.
async fn wait_drained(health: &TreeHealth) -> bool {
    let deadline = Instant::now() + DRAIN_WITHIN;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = health.snapshot().await;
        if s.nats_connected && s.buffer.disk_batches == 0 {
            return true;
        }
    }
    false
}

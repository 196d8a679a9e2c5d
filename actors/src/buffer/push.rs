//! The push path: one batch (`Push`) or a chunk of them (`PushMany`, what
//! the inlet sends), answered once, and the group commit.
//!
//! A chunk costs one message, one job on the disk thread (memory pushes,
//! spills and seq reservations alike), and one reply: per batch that is what a
//! message of its own used to cost each time. Each batch still gets its
//! own seq and its own result, in the order sent; a chunk's reply waits
//! for the group commit when any of its batches does (`persist = "always"`,
//! or `"disconnect"` while NATS is down).
//!
//! The actor does not wait for a push: it queues a [`PushJob`] and takes
//! its next message, and the disk thread answers the caller itself. The
//! group commit ([`GroupCommit`]) lives on the disk thread too: it writes
//! what waits once the thread's queue is empty (or the group holds
//! `MAX_GROUP` batches), so the pushes that arrive during one fsync share
//! the next one. No timer, no round trip to the actor per deferral; the
//! answers survive a restart of the actor. When a commit (or a push into
//! memory) makes batches available to a Take the actor has parked, the
//! thread tells the actor ([`Front`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{ActorRef, RpcReplyPort};

use super::actor::{BufferMsg, Internal};
use super::error::PushError;
use super::store::{Committed, Store};
use super::SpoolError;
use crate::metric_names;
use crate::EncodedBatch;

/// A group commit writes at the latest once it holds this many batches,
/// even while pushes keep the disk thread's queue busy.
const MAX_GROUP: usize = 4096;

/// A batch's fate: its seq once accepted, or why it was not kept.
pub type PushResult = Result<u64, PushError>;

/// Where the answer to a push goes.
pub(super) enum Answer {
    /// `Push`: the one batch's result.
    One(RpcReplyPort<PushResult>),
    /// `PushMany`: every batch's result, in the order sent.
    Many(RpcReplyPort<Vec<PushResult>>),
}

impl Answer {
    fn send(self, mut results: Vec<PushResult>) {
        match self {
            Answer::One(port) => {
                if let Some(result) = results.pop() {
                    let _ = port.send(result);
                }
            }
            Answer::Many(port) => {
                let _ = port.send(results);
            }
        }
    }
}

/// A push that waits for its group commit.
struct Waiter {
    results: Vec<PushResult>,
    answer: Answer,
}

impl Waiter {
    /// Answers with what the commit did to each accepted batch. A batch
    /// the commit did not see was written by another path (a reconnect, a
    /// push in overflow) without error.
    fn settle(self, fates: &[Committed]) {
        let results = self
            .results
            .into_iter()
            .map(|r| {
                r.and_then(|seq| match fates.binary_search_by_key(&seq, |c| c.seq) {
                    Ok(i) => fates[i].result.map(|()| seq).map_err(PushError::from),
                    Err(_) => Ok(seq),
                })
            })
            .collect();
        self.answer.send(results);
    }
}

/// What a push did: a result per batch, and whether accepted batches now
/// wait for a commit.
struct Pushed {
    results: Vec<PushResult>,
    /// Accepted batches wait for a group commit.
    pending: bool,
}

impl Pushed {
    /// Answers now, unless an accepted batch waits for the commit: then
    /// the waiter to settle after it.
    fn answer(self, answer: Option<Answer>) -> Option<Waiter> {
        let answer = answer?;
        if self.pending && self.results.iter().any(Result::is_ok) {
            return Some(Waiter {
                results: self.results,
                answer,
            });
        }
        answer.send(self.results);
        None
    }
}

/// A batch to push.
pub(super) struct Item {
    /// Its inlet ticket when it has one: `(inlet, ticket)`, `store/tickets.rs`.
    pub(super) ticket: Option<(u64, u64)>,
    pub(super) batch: EncodedBatch,
    /// Its spool record, when the async front encoded it ahead
    /// (`SharedStore::push`).
    pub(super) record: Option<Vec<u8>>,
}

impl Item {
    pub(super) fn new(ticket: Option<(u64, u64)>, batch: EncodedBatch) -> Item {
        Item {
            ticket,
            batch,
            record: None,
        }
    }
}

/// Batches to push, in order, and where their answer goes: a job the
/// disk thread runs and answers without the actor waiting for it.
pub(super) struct PushJob {
    pub(super) items: Vec<Item>,
    pub(super) answer: Option<Answer>,
}

/// The BufferActor as its disk thread sees it: whom to tell that a parked
/// Take can be served.
pub(super) struct Front {
    pub(super) actor: ActorRef<BufferMsg>,
    /// Set on the disk thread by a Take that found nothing (the actor
    /// parks it), cleared there when batches become available and the
    /// actor is told: both on one thread, so no wake-up is missed.
    pub(super) take_waits: Arc<AtomicBool>,
}

/// The group commit and its waiters, on the disk thread.
#[derive(Default)]
pub(super) struct GroupCommit {
    waiters: Vec<Waiter>,
    front: Option<Front>,
}

impl GroupCommit {
    /// A (re)started BufferActor: the one to tell from now on.
    pub(super) fn attach(&mut self, front: Front) {
        self.front = Some(front);
    }

    /// Pushes the job's batches in order and answers now, or keeps the
    /// answer for the group commit.
    pub(super) fn push(&mut self, store: &mut Store, job: PushJob) {
        let results: Vec<PushResult> = job.items.into_iter().map(|b| push_one(store, b)).collect();
        let pending = store.has_pending();
        if let Some(waiter) = (Pushed { results, pending }).answer(job.answer) {
            self.waiters.push(waiter);
        }
        if !pending {
            self.takeable();
        }
    }

    /// After every job: commits once nothing else waits in the queue (or
    /// the group is full). Waiters whose batches another path wrote (a
    /// stall's move to disk, a failed spool's move to memory) are answered
    /// as accepted; after a close they get no answer (as a stopped actor's).
    pub(super) fn after_job(&mut self, store: &mut Store, queue_empty: bool) {
        if store.has_pending() {
            if queue_empty || store.pending_len() >= MAX_GROUP {
                self.commit(store);
            }
            return;
        }
        if self.waiters.is_empty() {
            return;
        }
        if store.is_closed() {
            self.waiters.clear();
            return;
        }
        for waiter in std::mem::take(&mut self.waiters) {
            waiter.settle(&[]);
        }
        self.takeable();
    }

    /// Writes what waits (one write, synced in `always`) and answers every
    /// waiter with its batches' fates.
    fn commit(&mut self, store: &mut Store) {
        match store.commit() {
            Ok(fates) => {
                for waiter in std::mem::take(&mut self.waiters) {
                    waiter.settle(&fates);
                }
                self.takeable();
            }
            Err(e) => {
                // The callers get no answer (as when an actor died with
                // them); the actor restarts, its successor commits again.
                tracing::error!(error = %e, "group commit failed");
                self.waiters.clear();
                if let Some(front) = &self.front {
                    let _ = front.actor.cast(Internal::CommitFailed(e).msg());
                }
            }
        }
    }

    /// Tells the actor, once, that its parked Take can be served.
    fn takeable(&self) {
        if let Some(front) = &self.front {
            if front.take_waits.swap(false, Ordering::AcqRel) {
                let _ = front.actor.cast(Internal::Takeable.msg());
            }
        }
    }
}

fn push_one(store: &mut Store, item: Item) -> PushResult {
    match item.ticket {
        Some((inlet, ticket)) => {
            store.push_ticketed_prepared(inlet, ticket, item.batch, item.record)
        }
        None => store
            .push_prepared(item.batch, item.record)
            .map_err(refused),
    }
}

/// A push the store refused: a closed buffer is reported to the caller
/// only; a storage failure (no synced seq reservation could be written) is
/// counted as a drop. Never a restart: the store retries by itself.
pub(super) fn refused(e: SpoolError) -> PushError {
    let e = PushError::from(e);
    if let PushError::NoSeq(cause) = &e {
        metrics::counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error")
            .increment(1);
        tracing::error!(error = %cause, "batch refused: the spool cannot reserve seqs (counted as storage_error)");
    }
    e
}

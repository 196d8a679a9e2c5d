//! The BufferActor's push path: one batch (`Push`) or a chunk of them
//! (`PushMany`, what the inlet sends), answered once.
//!
//! A chunk costs one message, one job on the disk thread (memory pushes,
//! spills and seq reservations alike), and one reply: per batch that is what a
//! message of its own used to cost each time. Each batch still gets its
//! own seq and its own result, in the order sent; a chunk's reply waits
//! for the group commit when any of its batches does (`persist = "always"`,
//! or `"disconnect"` while NATS is down).

use ractor::{ActorProcessingErr, RpcReplyPort};

use super::error::PushError;
use super::store::{Committed, SharedStore, Store};
use super::SpoolError;
use crate::metric_names;
use crate::EncodedBatch;

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
pub(super) struct Waiter {
    results: Vec<PushResult>,
    answer: Answer,
}

impl Waiter {
    /// Answers with what the commit did to each accepted batch. A batch
    /// the commit did not see was written by another path (a reconnect, a
    /// push in overflow) without error.
    pub(super) fn settle(self, fates: &[Committed]) {
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
pub(super) struct Pushed {
    results: Vec<PushResult>,
    /// Accepted batches wait for a group commit.
    pub(super) pending: bool,
}

impl Pushed {
    /// Answers now, unless an accepted batch waits for the commit: then
    /// the waiter to settle after it.
    pub(super) fn answer(self, answer: Option<Answer>) -> Option<Waiter> {
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

/// A batch to push, with its inlet ticket when it has one
/// (`(inlet, ticket)`, `store/tickets.rs`).
pub(super) type Item = (Option<(u64, u64)>, EncodedBatch);

/// Pushes `batches` in order, in one job on the disk thread.
pub(super) async fn push_all(
    store: &SharedStore,
    batches: Vec<Item>,
) -> Result<Pushed, ActorProcessingErr> {
    let (results, pending) = store
        .run(move |s| {
            let results: Vec<PushResult> = batches.into_iter().map(|b| push_one(s, b)).collect();
            (results, s.has_pending())
        })
        .await?;
    Ok(Pushed { results, pending })
}

fn push_one(store: &mut Store, (ticket, batch): Item) -> PushResult {
    match ticket {
        Some((inlet, ticket)) => store.push_ticketed(inlet, ticket, batch),
        None => store.push(batch).map_err(refused),
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

//! Tickets: one poll, one seq, also when a batch is sent twice.
//!
//! The inlet numbers every batch it takes from the pollers (a ticket, per
//! inlet, from 1, +1 per batch) and sends the number with it. When a
//! BufferActor dies, the inlet cannot know which of its unanswered batches
//! the dead actor had accepted, so it sends them all again to the next
//! one. The store outlives the actor and remembers, per inlet, the next
//! ticket it expects and the answers of the last [`REMEMBERED`] tickets: a
//! ticket it has seen is answered as it was the first time (its seq) and
//! not accepted again. Without tickets each such batch would be stored
//! twice, under two seqs.

use std::collections::{HashMap, VecDeque};

use super::Store;
use crate::buffer::error::PushError;
use crate::buffer::inlet::INLET_WINDOW;
use crate::buffer::push::PushResult;
use crate::EncodedBatch;

/// Answers remembered per inlet: the inlet resends at most its window.
const REMEMBERED: usize = 4 * INLET_WINDOW;

/// One inlet's tickets as the store has seen them.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Every ticket below this one was answered.
    next: u64,
    /// The answers of tickets `next - answers.len() .. next`.
    answers: VecDeque<PushResult>,
}

/// Per inlet (an id unique in the process), what its tickets got.
pub(super) type Tickets = HashMap<u64, Seen>;

impl Store {
    /// Pushes `batch` under ticket `ticket` of inlet `inlet`, unless that
    /// ticket was pushed before: then its first answer, and nothing else.
    pub fn push_ticketed(&mut self, inlet: u64, ticket: u64, batch: EncodedBatch) -> PushResult {
        self.push_ticketed_prepared(inlet, ticket, batch, None)
    }

    /// `push_ticketed` of a batch whose record may be encoded already.
    pub(in crate::buffer) fn push_ticketed_prepared(
        &mut self,
        inlet: u64,
        ticket: u64,
        batch: EncodedBatch,
        record: Option<Vec<u8>>,
    ) -> PushResult {
        let seen = self.tickets.entry(inlet).or_default();
        if ticket < seen.next {
            let back = (seen.next - ticket) as usize;
            let len = seen.answers.len();
            return match back <= len {
                true => seen.answers[len - back].clone(),
                false => Err(PushError::AlreadyAccepted),
            };
        }
        let result = self
            .push_prepared(batch, record)
            .map_err(super::super::push::refused);
        let seen = self.tickets.entry(inlet).or_default();
        seen.next = ticket + 1;
        if seen.answers.len() == REMEMBERED {
            seen.answers.pop_front();
        }
        seen.answers.push_back(result.clone());
        result
    }
}

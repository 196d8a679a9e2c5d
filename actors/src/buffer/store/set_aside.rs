//! Set aside, never stuck: a batch that can never be delivered leaves the
//! delivery path for good, is kept, counted and logged, and the rest flows.
//!
//! One operation, [`Store::set_aside`], for both reasons
//! (`ingestor_buffer_set_aside_total{reason}`):
//! - `too_big`: the Publisher found the batch over what NATS takes (the
//!   server's `max_payload`, the stream's `max_msg_size`) and said so
//!   (`BufferMsg::SetAside`); the Publisher never drops a batch itself.
//! - `unreadable`: the cursor's read of a spool record failed with an I/O
//!   error (not a checksum: that is `corrupt`) [`UNREADABLE_AFTER_TRIES`]
//!   times over at least [`UNREADABLE_AFTER`] (the tick retries a stuck
//!   Take every second).
//!
//! Where the batch is kept: a record on disk moves to `quarantine` (the
//! same record, never deleted, never published); a batch only in memory is
//! written there (synced). A record whose read fails cannot be moved: it
//! stays in place in `batches`, the cursor steps over it and remembers the
//! span, so no Take (after a Nack, too) hands it out; an ack passing it
//! does not delete it, and once `acked` is past it no read reaches it
//! again. After a crash before that ack it is tried again (and, still
//! unreadable, set aside and counted again). A batch whose quarantine
//! write fails stays in memory, set aside, and is written by a later tick
//! or the close (counted as dropped `storage_error` if that fails too).

use std::time::{Duration, Instant};

use metrics::counter;

use super::Store;
use crate::buffer::record;
use crate::buffer::spool::SpoolError;
use crate::metric_names;
use crate::EncodedBatch;

/// Failed reads at one cursor position before its record is set aside...
pub(super) const UNREADABLE_AFTER_TRIES: u32 = 3;
/// ...spread over at least this long (a passing failure is not set aside).
pub(super) const UNREADABLE_AFTER: Duration = Duration::from_secs(1);
/// Seqs of an unreadable span handled one by one (longer: counted as one span).
const MAX_SPAN_ONE_BY_ONE: u64 = 4096;

/// Why a batch was set aside (`ingestor_buffer_set_aside_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAsideReason {
    /// Its spool record kept failing to read with an I/O error.
    Unreadable,
    /// Bigger than NATS takes: `size` bytes over `limit` (the server's
    /// `max_payload` or the stream's `max_msg_size`).
    TooBig {
        /// The message's size as refused.
        size: usize,
        /// The limit it is over (0: not known, the server refused it).
        limit: usize,
    },
}

impl SetAsideReason {
    /// The `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            SetAsideReason::Unreadable => "unreadable",
            SetAsideReason::TooBig { .. } => "too_big",
        }
    }
}

/// What the store remembers about batches set aside.
#[derive(Debug, Default)]
pub(super) struct Aside {
    /// Reads failing at one cursor position: (position, tries, first failure).
    failing: Option<(u64, u32, Instant)>,
    /// Spans of unreadable records left in place above `acked`: stepped over.
    in_place: Vec<(u64, u64)>,
    /// Set aside, their quarantine write failed: kept here until it works.
    unsaved: Vec<EncodedBatch>,
}

impl Store {
    /// Takes `seq` out of delivery for good: kept (quarantine, or in place
    /// when its record cannot be read), never handed out again, counted and
    /// logged. A seq already confirmed is left alone.
    pub fn set_aside(&mut self, seq: u64, reason: SetAsideReason) {
        if seq <= self.delivery.acked {
            return;
        }
        let kept = match self.ring.remove(seq) {
            Some(batch) => match self.spool.quarantine_record(seq, &record::encode(&batch)) {
                Ok(()) => "quarantine",
                Err(e) => {
                    tracing::warn!(seq, error = %e, "writing a batch set aside to quarantine failed; kept in memory, retried every second");
                    self.aside.unsaved.push(batch);
                    "memory"
                }
            },
            None => match self.spool.quarantine_on_disk(seq) {
                Ok(true) => "quarantine",
                Ok(false) if reason == SetAsideReason::Unreadable => return,
                Ok(false) => {
                    tracing::debug!(seq, "set aside: batch no longer held");
                    return;
                }
                Err(_) => {
                    self.aside.in_place.push((seq, seq));
                    "in place"
                }
            },
        };
        self.delivery.in_flight_disk.retain(|(s, _)| *s != seq);
        counter!(metric_names::BUFFER_SET_ASIDE_TOTAL, "reason" => reason.label()).increment(1);
        self.gaps
            .note(seq, seq, super::gaps::GapReason::set_aside(reason));
        match reason {
            SetAsideReason::TooBig { size, limit } => tracing::error!(
                seq, size, limit, kept,
                "batch bigger than NATS takes (raise max_payload / the stream's max_msg_size, or poll fewer tags per group): set aside, not published"
            ),
            SetAsideReason::Unreadable => tracing::error!(
                seq, size = "unknown (unreadable)", kept,
                "spool record keeps failing to read (I/O error): set aside, not published; the rest flows"
            ),
        }
        self.publish_gauges();
    }

    /// A read at the cursor failed (not damage): after a few tries over a
    /// second the records up to the next readable one are set aside and
    /// the cursor steps over them. Returns whether it did (read again).
    pub(super) fn read_failed(&mut self, error: &SpoolError) -> bool {
        // A spool being reopened, or failing as a whole (its writes fail
        // too), is not a bad record: only retried.
        if !matches!(error, SpoolError::Storage(_)) || !self.health.is_ok() {
            return false;
        }
        let at = self.delivery.taken;
        let (tries, since) = match self.aside.failing {
            Some((pos, tries, since)) if pos == at => (tries + 1, since),
            _ => (1, Instant::now()),
        };
        self.aside.failing = Some((at, tries, since));
        tracing::warn!(error = %error, after = at, tries, "reading the spool failed; retried");
        if tries < UNREADABLE_AFTER_TRIES || since.elapsed() < UNREADABLE_AFTER {
            return false;
        }
        self.aside.failing = None;
        let first = at + 1;
        let last = self
            .spool
            .readable_after(first, self.disk_newest)
            .saturating_sub(1)
            .max(first);
        if last - first < MAX_SPAN_ONE_BY_ONE {
            for seq in first..=last {
                self.set_aside(seq, SetAsideReason::Unreadable);
            }
        } else {
            counter!(metric_names::BUFFER_SET_ASIDE_TOTAL, "reason" => "unreadable")
                .increment(last - first + 1);
            tracing::error!(
                first,
                last,
                "spool records keep failing to read (I/O error): seqs {first}..={last} set aside in place, not published"
            );
        }
        self.aside.in_place.push((first, last));
        self.delivery.taken = self.delivery.taken.max(last);
        true
    }

    /// A read at the cursor worked: no failure to count any more.
    pub(super) fn read_worked(&mut self) {
        self.aside.failing = None;
    }

    /// Steps the cursor over unreadable spans left in place (after a Nack
    /// set it back), and forgets spans `acked` has passed.
    pub(super) fn skip_set_aside(&mut self) {
        let acked = self.delivery.acked;
        self.aside.in_place.retain(|(_, last)| *last > acked);
        for (first, last) in &self.aside.in_place {
            if self.delivery.taken + 1 >= *first && self.delivery.taken < *last {
                self.delivery.taken = *last;
            }
        }
    }

    /// From the tick and the close: writes batches set aside but not yet
    /// kept on disk. At the close (`last`), what still fails is counted as
    /// dropped (`storage_error`).
    pub fn save_set_aside(&mut self, last: bool) {
        let unsaved = std::mem::take(&mut self.aside.unsaved);
        for batch in unsaved {
            match self
                .spool
                .quarantine_record(batch.seq, &record::encode(&batch))
            {
                Ok(()) => {}
                Err(e) if last => {
                    tracing::error!(seq = batch.seq, error = %e, "a batch set aside could not be written to quarantine at the stop: lost");
                    counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error")
                        .increment(1);
                }
                Err(_) => self.aside.unsaved.push(batch),
            }
        }
    }

    /// The oldest batch waiting (for the age gauge), also when the spool's
    /// oldest record cannot be read: then the last age known, or the time
    /// the reads began to fail, so the gauge keeps counting while the
    /// backlog is stuck. `None` only when nothing waits.
    pub fn oldest_waiting_micros(&mut self, last_known: Option<i64>) -> Option<i64> {
        match self.oldest_ts_micros() {
            Ok(ts) => ts,
            Err(_) => last_known.or_else(|| {
                let since = self.aside.failing.map(|(_, _, since)| since.elapsed());
                let ago = since.unwrap_or_default();
                Some(chrono::Utc::now().timestamp_micros() - ago.as_micros() as i64)
            }),
        }
    }
}

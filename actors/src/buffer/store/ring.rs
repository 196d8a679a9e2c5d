//! The memory tier: the ring, the batches waiting for their group commit,
//! and the drop policy.
//!
//! - The *ring* holds the newest batches, ascending seq, all newer than
//!   every record on disk. It gives up only its oldest batches (to disk:
//!   `spill`, or confirmed: `ack`), except a batch set aside and what the
//!   drop policy drops.
//! - *Pending* holds batches accepted in a write-through mode, waiting for
//!   their group commit; they are newer than the ring's (the store commits
//!   them before a batch goes to the ring).
//! - The *drop policy*: while the disk takes no writes, the ring keeps at
//!   most `memory_batches` batches not in flight and `when_disk_full` drops
//!   the rest (`drop_oldest`: the oldest not in flight; `drop_newest`: the
//!   newest).
//!
//! Its counters: `ingestor_batches_total` (a batch counts once accepted:
//! into the ring, or written from pending), `ingestor_buffer_spilled_total`,
//! and `ingestor_buffer_dropped_total{reason}` for the drop policy's drops.
//! The store decides when; the ring only keeps order and counts.

use std::collections::VecDeque;

use metrics::counter;

use super::gaps::GapReason;
use crate::buffer::record;
use crate::metric_names;
use crate::settings::{BufferSettings, WhenDiskFull};
use crate::EncodedBatch;

/// Batches in memory: the ring and those waiting for a commit.
pub(super) struct Ring {
    batches: VecDeque<EncodedBatch>,
    /// With its spool record when the async front encoded it ahead.
    pending: Vec<(EncodedBatch, Option<Vec<u8>>)>,
    /// `memory_batches` (at least 1).
    cap: usize,
    when_full: WhenDiskFull,
}

impl Ring {
    pub(super) fn new(settings: &BufferSettings) -> Ring {
        Ring {
            batches: VecDeque::with_capacity(settings.memory_batches.min(1 << 16)),
            pending: Vec::new(),
            cap: settings.memory_batches.max(1),
            when_full: settings.when_disk_full,
        }
    }

    /// Batches in the ring (not pending).
    pub(super) fn len(&self) -> usize {
        self.batches.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// A batch accepted into memory (counted as accepted).
    pub(super) fn accept(&mut self, batch: EncodedBatch) {
        counter!(metric_names::BATCHES_TOTAL).increment(1);
        self.batches.push_back(batch);
    }

    /// Up to `max` batches after `taken` (the cursor), oldest first.
    pub(super) fn after(&self, taken: u64, max: usize) -> impl Iterator<Item = &EncodedBatch> {
        let start = self.batches.partition_point(|b| b.seq <= taken);
        self.batches.range(start..).take(max)
    }

    /// The `n` oldest batches (to be written to disk).
    pub(super) fn oldest(&self, n: usize) -> impl Iterator<Item = &EncodedBatch> {
        self.batches.range(..n.min(self.batches.len()))
    }

    /// The `n` oldest batches are on disk now: they leave, counted as spilled.
    pub(super) fn spilled(&mut self, n: usize) {
        let n = n.min(self.batches.len());
        self.batches.drain(..n);
        counter!(metric_names::BUFFER_SPILLED_TOTAL).increment(n as u64);
    }

    /// How many of the oldest to spill when the ring is over its cap (a
    /// chunk of at least an eighth of it, so spills are few and large).
    pub(super) fn overflow(&self) -> Option<usize> {
        let len = self.batches.len();
        (len > self.cap).then(|| (self.cap / 8).clamp(1, 4096).max(len - self.cap))
    }

    /// NATS confirmed everything up to `seq`: those batches leave memory.
    pub(super) fn confirmed(&mut self, seq: u64) {
        while self.batches.front().is_some_and(|b| b.seq <= seq) {
            self.batches.pop_front();
        }
    }

    /// Takes `seq` out of the ring (set aside), if it is there.
    pub(super) fn remove(&mut self, seq: u64) -> Option<EncodedBatch> {
        let i = self.batches.binary_search_by_key(&seq, |b| b.seq).ok()?;
        self.batches.remove(i)
    }

    /// The oldest batch in memory (for the age gauge).
    pub(super) fn oldest_batch(&self) -> Option<&EncodedBatch> {
        self.batches
            .front()
            .or(self.pending.first().map(|(b, _)| b))
    }

    /// The drop policy, while the disk takes no writes: keeps the batches
    /// not in flight (above `taken`) at `memory_batches` by `when_disk_full`,
    /// counted by reason. Returns the seqs dropped and why.
    pub(super) fn enforce_cap(&mut self, taken: u64) -> (Vec<u64>, GapReason) {
        let waiting = self.batches.partition_point(|b| b.seq <= taken);
        let len = self.batches.len();
        let excess = (len - waiting).saturating_sub(self.cap);
        let (range, reason) = match self.when_full {
            WhenDiskFull::DropNewest => (len - excess..len, GapReason::DiskFullNewest),
            WhenDiskFull::DropOldest => (waiting..waiting + excess, GapReason::DiskFullOldest),
        };
        if excess == 0 {
            return (Vec::new(), reason);
        }
        let dropped: Vec<u64> = self.batches.drain(range).map(|b| b.seq).collect();
        counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => reason.as_str())
            .increment(dropped.len() as u64);
        (dropped, reason)
    }
}

/// Pending: accepted in a write-through mode, waiting for the group commit.
impl Ring {
    /// The pending batches' records, for their commit: each one encoded
    /// ahead leaves the ring, the others are encoded here.
    pub(super) fn pending_records(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.pending
            .iter_mut()
            .map(|(b, rec)| (b.seq, rec.take().unwrap_or_else(|| record::encode(b))))
            .collect()
    }

    pub(super) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A batch accepted for the next group commit (counted once written),
    /// with its record if it was encoded ahead.
    pub(super) fn add_pending(&mut self, batch: EncodedBatch, record: Option<Vec<u8>>) {
        self.pending.push((batch, record));
    }

    /// The pending batches are on disk: accepted, counted.
    pub(super) fn committed(&mut self) {
        counter!(metric_names::BATCHES_TOTAL).increment(self.pending.len() as u64);
        self.pending.clear();
    }

    /// The disk took no write: the pending batches (the newest) join the
    /// ring's end, accepted in memory from now on.
    pub(super) fn pending_to_memory(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        counter!(metric_names::BATCHES_TOTAL).increment(pending.len() as u64);
        self.batches.extend(pending.into_iter().map(|(b, _)| b));
    }
}

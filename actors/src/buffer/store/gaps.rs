//! Gap events: every seq the service makes missing is explained in the
//! stream itself (docs/reference.md §3).
//!
//! A gap is noted where it is made: batches dropped by `when_disk_full`
//! (`spill`), seqs skipped after a crash (at open), records set aside as
//! damaged (`cursor`), unreadable or too big (`set_aside`). Contiguous seqs
//! of one reason are merged. Once a second the tick turns what was noted
//! into events: each one is pushed like a batch (device `_gaps`, so it is
//! published on `<prefix>.<service.id>._gaps` with the same headers), gets
//! a seq of its own and goes through ring and spool in seq order with the
//! data, as durable as the batches around it. An event that is itself
//! dropped (the disk still full) is covered by the next one.

use crate::buffer::SetAsideReason;
use crate::EncodedBatch;

use super::Store;

/// Why seqs are missing, as the event's `reason` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapReason {
    DiskFullOldest,
    DiskFullNewest,
    Crash,
    Corrupt,
    Unreadable,
    TooBig,
}

impl GapReason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            GapReason::DiskFullOldest => "disk_full_oldest",
            GapReason::DiskFullNewest => "disk_full_newest",
            GapReason::Crash => "crash",
            GapReason::Corrupt => "corrupt",
            GapReason::Unreadable => "unreadable",
            GapReason::TooBig => "too_big",
        }
    }

    pub(super) fn set_aside(reason: SetAsideReason) -> GapReason {
        match reason {
            SetAsideReason::Unreadable => GapReason::Unreadable,
            SetAsideReason::TooBig { .. } => GapReason::TooBig,
        }
    }
}

/// Seqs `from..=to` missing for one reason; `count` of them (all, unless
/// the span was too long to list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    from: u64,
    to: u64,
    reason: GapReason,
    count: u64,
}

/// Gaps noted since the last tick.
#[derive(Debug, Default)]
pub(super) struct Gaps(Vec<Gap>);

impl Gaps {
    /// Seqs `from..=to` went missing for `reason`.
    pub(super) fn note(&mut self, from: u64, to: u64, reason: GapReason) {
        if from > to {
            return;
        }
        let count = to - from + 1;
        if let Some(last) = self.0.last_mut() {
            if last.reason == reason && last.to + 1 == from {
                last.to = to;
                last.count += count;
                return;
            }
        }
        self.0.push(Gap {
            from,
            to,
            reason,
            count,
        });
    }

    /// Each of `seqs` (ascending) went missing for `reason`.
    pub(super) fn note_each(&mut self, seqs: &[u64], reason: GapReason) {
        for &seq in seqs {
            self.note(seq, seq, reason);
        }
    }
}

impl Store {
    /// Turns the gaps noted since the last call into events, pushed like
    /// batches (the tick calls it; a write-through event waits for the
    /// next commit like any push). Returns how many were pushed.
    pub fn emit_gap_events(&mut self) -> usize {
        let gaps = std::mem::take(&mut self.gaps.0);
        let now = chrono::Utc::now();
        let mut pushed = 0;
        for gap in gaps {
            let event =
                EncodedBatch::gap_event(now, gap.from, gap.to, gap.reason.as_str(), gap.count);
            match self.push(event) {
                Ok(seq) => {
                    pushed += 1;
                    tracing::debug!(
                        seq,
                        from = gap.from,
                        to = gap.to,
                        reason = gap.reason.as_str(),
                        count = gap.count,
                        "gap event queued"
                    );
                }
                Err(e) => tracing::warn!(error = %e, from = gap.from, to = gap.to,
                    reason = gap.reason.as_str(), "a gap event could not be queued"),
            }
        }
        pushed
    }
}

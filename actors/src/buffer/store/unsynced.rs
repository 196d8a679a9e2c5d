//! Nothing leaves memory unaccounted for: what a failed sync held.
//!
//! Batches leave the ring (or `pending`) once a write holding them
//! succeeded, flushed to OS buffers (`persist` other than `always`); the
//! tick's fdatasync makes them durable. If that sync fails, what it held
//! may never reach the disk (after a failed fsync the kernel may drop the
//! dirty pages), and fjall is poisoned. So the records written since the
//! last good sync stay in memory ([`Unsynced`]) until a sync succeeds; after
//! a failed one, the reopen writes them again (every one still above the
//! acknowledged cursor: an acknowledged one is never brought back) and
//! syncs, before the cursor may hand out anything from disk. Bounded: past
//! [`MAX_UNSYNCED_BYTES`] the store syncs at once instead of holding more.

use super::Store;
use crate::buffer::error::SpoolError;

/// Record bytes held for a rewrite at most; beyond it the store syncs.
const MAX_UNSYNCED_BYTES: usize = 16 << 20;

/// The records written since the last good sync.
#[derive(Debug, Default)]
pub(super) struct Unsynced {
    records: Vec<(u64, Vec<u8>)>,
    bytes: usize,
    /// A sync failed: the records must be written again after the reopen.
    rewrite_due: bool,
}

impl Store {
    /// Keeps the records of a write that is not synced yet.
    pub(super) fn note_unsynced(&mut self, records: Vec<(u64, Vec<u8>)>) {
        self.unsynced.bytes += records.iter().map(|(_, r)| r.len()).sum::<usize>();
        self.unsynced.records.extend(records);
        if self.unsynced.bytes > MAX_UNSYNCED_BYTES {
            let _ = self.sync_if_dirty();
        }
    }

    /// A sync (or a synced write) succeeded: everything written is durable.
    pub(super) fn note_synced(&mut self) {
        if !self.unsynced.rewrite_due {
            self.unsynced.records.clear();
            self.unsynced.bytes = 0;
        }
    }

    /// A sync failed: what it held is written again after the reopen.
    pub(super) fn note_sync_failed(&mut self) {
        self.unsynced.rewrite_due = !self.unsynced.records.is_empty();
    }

    /// Whether records of a failed sync wait for their rewrite: the cursor
    /// hands out nothing from disk until then (it would step over them).
    pub(super) fn rewrite_due(&self) -> bool {
        self.unsynced.rewrite_due
    }

    /// After a reopen: writes the records of a failed sync again, synced.
    /// An error leaves them due (the next reopen tries again).
    pub(super) fn rewrite_unsynced(&mut self) -> Result<(), SpoolError> {
        if !self.unsynced.rewrite_due {
            return Ok(());
        }
        let acked = self.delivery.acked;
        self.unsynced.records.retain(|(seq, _)| *seq > acked);
        let missing = self.spool.rewrite(&self.unsynced.records)?;
        let records = self.unsynced.records.len();
        self.unsynced = Unsynced::default();
        self.dirty = false;
        tracing::warn!(
            records,
            missing,
            "after a failed sync the spool was reopened and the records that sync held were written again and synced ({missing} had not reached the disk)"
        );
        Ok(())
    }

    /// Records of a failed sync still not written again (for a stop that
    /// must count what it could not keep).
    pub(super) fn unsynced_lost(&self) -> usize {
        match self.unsynced.rewrite_due {
            true => self.unsynced.records.len(),
            false => 0,
        }
    }
}

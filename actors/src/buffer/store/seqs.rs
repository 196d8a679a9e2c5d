//! Seqs: assigned on acceptance, from a reservation synced ahead.
//!
//! A seq is never handed out beyond a synced reservation (one beyond it
//! could be handed out again after a crash). The next block is reserved
//! while half of the current one is left, so a failing reservation (a
//! full or failing disk) costs no reading for at least half a block: the
//! batch goes on with a seq already reserved, and the store turns full or
//! failed as for any other write; the reservation is tried again after
//! the tick (`Lifecycle::Open { reserve_failed }`).

use super::Store;
use crate::buffer::spool::SpoolError;

/// Seqs reserved (and synced) ahead of what is handed out.
const RESERVE_BLOCK: u64 = 65_536;

impl Store {
    /// Whether `seq` needs a reservation call first: less than half a
    /// block of headroom left, unless the last try failed and `seq` is
    /// still covered (then the tick's retry is waited for).
    fn reserve_due(&self, seq: u64) -> bool {
        let reserved = self.spool.reserved();
        seq.saturating_add(RESERVE_BLOCK / 2) > reserved
            && (seq > reserved || !self.lifecycle.reserve_failed())
    }

    /// Reserves the next block while half of the current one is still
    /// left, so a failing reservation (a full or failing disk) costs no
    /// reading for at least 32 768 pushes: the batch goes on with a seq
    /// already reserved, and the store turns full or failed as for any
    /// other write. Only a seq no reservation covers is refused: one beyond
    /// a synced reservation could be handed out again after a crash.
    pub(super) fn reserve_ahead(&mut self, seq: u64) -> Result<(), SpoolError> {
        if !self.reserve_due(seq) {
            return Ok(());
        }
        match self.spool.reserve(seq + RESERVE_BLOCK - 1) {
            Ok(()) => {
                self.lifecycle.set_reserve_failed(false);
                Ok(())
            }
            Err(e) => {
                self.enter_degraded(&e);
                if seq <= self.spool.reserved() {
                    self.lifecycle.set_reserve_failed(true);
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

//! Disk health: whether the spool takes writes, as one state machine.
//!
//! ```text
//!   Ok ──cap reached, ENOSPC──────────────▶ Full { reopen }
//!   Ok ──I/O error, failed sync or flush──▶ Failed { reopen: true }
//!   Full ──fjall poisoned (after ENOSPC)──▶ Full { reopen: true }
//!   Full ──any other failure──────────────▶ Failed { reopen: true }
//!   Failed ──any failure──────────────────▶ Failed (a full disk does not
//!                                            make a failed one look better)
//!   Full | Failed ──tick: reopened────────▶ the same, reopen: false
//!   Full | Failed ──tick: room again, no reopen due──▶ Ok
//! ```
//!
//! `reopen`: fjall may have poisoned the database (every failure except a
//! cap this process enforces, `SpoolError::Full`); it is closed and opened
//! again by the tick before anything is written to it (`spill`).
//! Not `Ok`: batches stay in memory, `when_disk_full` applies beyond
//! `memory_batches`.

use crate::buffer::{SpoolError, SpoolState};

/// Whether the spool takes writes, and what the tick must do to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum DiskHealth {
    /// Batches go to disk as the persist mode says.
    #[default]
    Ok,
    /// `disk_max`, `disk_min_free` or the filesystem itself reached.
    Full {
        /// The database must be reopened before the next write.
        reopen: bool,
    },
    /// The spool failed (I/O error, poisoned database).
    Failed {
        /// The database must be reopened before the next write.
        reopen: bool,
    },
}

impl DiskHealth {
    /// As `/health` and the stats show it.
    pub(super) fn state(self) -> SpoolState {
        match self {
            DiskHealth::Ok => SpoolState::Ok,
            DiskHealth::Full { .. } => SpoolState::Full,
            DiskHealth::Failed { .. } => SpoolState::Error,
        }
    }

    pub(super) fn is_ok(self) -> bool {
        self == DiskHealth::Ok
    }

    pub(super) fn needs_reopen(self) -> bool {
        matches!(
            self,
            DiskHealth::Full { reopen: true } | DiskHealth::Failed { reopen: true }
        )
    }

    /// The state after a write, sync, read or reserve failed with `e`;
    /// `None` when `e` says nothing about the disk (the buffer is closed).
    pub(super) fn after(self, e: &SpoolError) -> Option<DiskHealth> {
        if matches!(e, SpoolError::Closed | SpoolError::CloseFailed(_)) {
            return None;
        }
        let reopen = self.needs_reopen() || !matches!(e, SpoolError::Full(_));
        let full = e.is_full() || (e.is_poisoned() && matches!(self, DiskHealth::Full { .. }));
        Some(match self {
            DiskHealth::Failed { .. } => DiskHealth::Failed { reopen },
            _ if full => DiskHealth::Full { reopen },
            _ => DiskHealth::Failed { reopen },
        })
    }

    /// The database was reopened: only room is still to come back.
    pub(super) fn reopened(self) -> DiskHealth {
        match self {
            DiskHealth::Ok => DiskHealth::Ok,
            DiskHealth::Full { .. } => DiskHealth::Full { reopen: false },
            DiskHealth::Failed { .. } => DiskHealth::Failed { reopen: false },
        }
    }
}

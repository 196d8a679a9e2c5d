//! Whether the store takes pushes, as one state: open (with the state of
//! the seq reservation) or closed (with the verdict a repeated close says
//! again).
//!
//! ```text
//!   Open { reserve_failed: false } ──a reservation failed, seqs left──▶ Open { reserve_failed: true }
//!   Open { reserve_failed: true } ──tick, or a reservation worked─────▶ Open { reserve_failed: false }
//!   Open { .. } ──close───────────────────────────────────────────────▶ Closed { unsaved: None | Some(why) }
//! ```
//!
//! `reserve_failed`: the last reservation of seqs failed; while reserved
//! seqs are left it is not tried again before the tick (`reserve_ahead`).
//! `Closed`: pushes are refused, the spool is closed; `unsaved` is why the
//! close could not keep everything.

use crate::buffer::error::CloseError;

#[derive(Debug, Clone)]
pub(super) enum Lifecycle {
    /// Pushes are taken.
    Open {
        /// The last seq reservation failed (retried after the tick).
        reserve_failed: bool,
    },
    /// Closed: pushes are refused.
    Closed {
        /// Why the close could not keep everything (`None`: it did).
        unsaved: Option<CloseError>,
    },
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle::Open {
            reserve_failed: false,
        }
    }
}

impl Lifecycle {
    pub(super) fn is_closed(&self) -> bool {
        matches!(self, Lifecycle::Closed { .. })
    }

    pub(super) fn reserve_failed(&self) -> bool {
        matches!(
            self,
            Lifecycle::Open {
                reserve_failed: true
            }
        )
    }

    /// Notes whether the last reservation failed (ignored once closed).
    pub(super) fn set_reserve_failed(&mut self, failed: bool) {
        if let Lifecycle::Open { reserve_failed } = self {
            *reserve_failed = failed;
        }
    }
}

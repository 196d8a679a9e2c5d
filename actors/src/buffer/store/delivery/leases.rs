//! The store's side of leases (`buffer/lease.rs`): which session holds the
//! batches in flight, and the requeue when that changes.

use crate::buffer::store::Store;
use crate::buffer::LeaseId;
use crate::EncodedBatch;

/// The holder the store knows, and the newest lease it has seen.
#[derive(Debug, Default)]
pub(super) struct Leases {
    /// The lease whose session holds the in-flight batches; `None` after
    /// it ended.
    holder: Option<LeaseId>,
    /// The newest lease seen (0: none yet); older ones get nothing.
    newest: u64,
}

impl Store {
    /// `take` under `lease`: a newer lease than the known one requeues
    /// first and becomes the holder; an older or ended one gets `None`.
    pub fn take_leased(
        &mut self,
        lease: LeaseId,
        max: usize,
    ) -> Result<Option<Vec<EncodedBatch>>, crate::buffer::SpoolError> {
        if lease.get() > self.delivery.leases.newest {
            self.nack();
            self.delivery.leases = Leases {
                holder: Some(lease),
                newest: lease.get(),
            };
        }
        if lease.get() < self.delivery.leases.newest || self.delivery.leases.holder != Some(lease) {
            return Ok(None);
        }
        self.take(max).map(Some)
    }

    /// `ack` named by `lease`: any lease the store has seen (a confirmation
    /// is true whoever got it); a lease never seen is ignored.
    pub fn ack_leased(
        &mut self,
        lease: LeaseId,
        seq: u64,
    ) -> Result<(), crate::buffer::SpoolError> {
        if lease.get() > self.delivery.leases.newest {
            tracing::warn!(
                seq,
                "an ack under a lease that never took anything; ignored"
            );
            return Ok(());
        }
        self.ack(seq)
    }

    /// The holder is gone: what it held goes out again, first. A lease
    /// that ends before its first Take is remembered too, so a Take it
    /// (or any older lease) sends late gets nothing.
    pub fn end_lease(&mut self, lease: LeaseId) {
        // A newer lease than the holder's supersedes it, ended or not.
        if self.delivery.leases.holder == Some(lease) || lease.get() > self.delivery.leases.newest {
            self.nack();
            self.delivery.leases.holder = None;
        }
        self.delivery.leases.newest = self.delivery.leases.newest.max(lease.get());
    }
}

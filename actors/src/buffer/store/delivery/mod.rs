//! Delivery: what the publisher holds and what NATS confirmed.
//!
//! - [`Delivery`]: the cursors `taken` (the highest seq handed out) and
//!   `acked` (the highest confirmed), the in-flight records that live on
//!   disk (deleted by their ack), and the leases (who holds what is in
//!   flight). In flight = (acked, taken].
//! - `cursor`: Take (disk, then ring) and Ack (deletes what NATS confirmed).
//! - `leases`: Take and Ack under a session's lease; a newer lease or the
//!   holder's end requeues.

mod cursor;
mod leases;

use std::collections::VecDeque;

/// The publisher's side of the store.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    /// Highest seq handed to the publisher.
    pub(super) taken: u64,
    /// Highest seq the publisher confirmed.
    pub(super) acked: u64,
    /// In-flight batches that live on disk: (seq, record size).
    pub(super) in_flight_disk: VecDeque<(u64, u32)>,
    /// Which session's lease holds the batches in flight.
    leases: leases::Leases,
}

impl Delivery {
    /// Starts at `acked` (what the spool says was confirmed).
    pub(super) fn from_acked(acked: u64) -> Delivery {
        Delivery {
            taken: acked,
            acked,
            ..Delivery::default()
        }
    }

    /// Batches handed out and not yet confirmed.
    pub(super) fn in_flight(&self) -> u64 {
        self.taken - self.acked
    }

    /// Every in-flight batch goes out again, first.
    pub(super) fn requeue(&mut self) {
        self.taken = self.acked;
        self.in_flight_disk.clear();
    }

    /// `seq`, handed out from disk in a record of `size` bytes (0: not
    /// known), is deleted by its ack.
    pub(super) fn on_disk(&mut self, seq: u64, size: u32) {
        self.in_flight_disk.push_back((seq, size));
    }
}

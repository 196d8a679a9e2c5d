//! Leases: who may take batches, and who acknowledges them.
//!
//! A publishing session takes batches under a [`Lease`] of its own. The
//! buffer knows one holder at a time: a Take under a newer lease than the
//! one it knows requeues what the older one held (everything in flight
//! goes out again, first, in order) before it hands anything out; a Take
//! under an older or ended lease gets nothing; and when the holder drops
//! its `Lease` (the session ended, its task was aborted, its Publisher
//! died) the buffer requeues by itself. So no one outside the buffer sends
//! a Nack, and a Take a dead session sent late can never hold batches that
//! the next session's acks would sweep away.
//!
//! An Ack names its lease. Every Ack is a confirmation JetStream gave, so
//! it is applied whichever session got it (cumulative, and never beyond
//! what was handed out); one naming a lease the buffer never saw is
//! ignored. The Publisher sends the Ack it held back before it drops the
//! lease, so a confirmation is never requeued.

use std::sync::atomic::{AtomicU64, Ordering};

use ractor::ActorRef;

use super::actor::{BufferMsg, Internal};

/// A lease's number: unique in the process, later leases larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(u64);

impl LeaseId {
    /// A new number, larger than every one before it in this process.
    /// (Without a [`Lease`] nothing tells the buffer when it ends: for
    /// driving a `Store` directly, as the model test does.)
    pub fn next() -> LeaseId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        LeaseId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn get(self) -> u64 {
        self.0
    }
}

/// A session's right to take batches; dropping it hands them back.
#[derive(Debug)]
pub struct Lease {
    id: LeaseId,
    buffer: ActorRef<BufferMsg>,
}

impl Lease {
    /// A new lease on `buffer`, newer than every lease before it: its first
    /// Take requeues whatever an older lease still holds.
    pub fn new(buffer: ActorRef<BufferMsg>) -> Lease {
        Lease {
            id: LeaseId::next(),
            buffer,
        }
    }

    /// Its number, for `Take` and `Ack`.
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// Tells the buffer NATS confirmed every batch up to `seq` (`Ack`).
    /// Fails only when the buffer is gone.
    pub fn ack(&self, seq: u64) -> Result<(), ractor::MessagingErr<BufferMsg>> {
        self.buffer.cast(BufferMsg::Ack {
            lease: self.id,
            seq,
        })
    }
}

impl Drop for Lease {
    /// The buffer requeues what this lease holds (a gone buffer requeues
    /// at its restart: its store was closed or is taken by a newer lease).
    fn drop(&mut self) {
        let _ = self.buffer.cast(Internal::LeaseEnded(self.id).msg());
    }
}

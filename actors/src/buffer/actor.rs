//! BufferActor: typed messages around the ring and the spool.

use ractor::RpcReplyPort;

use crate::Batch;

/// What the buffer holds right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Batches in the memory ring.
    pub memory_batches: u64,
    /// Batches in the spool.
    pub disk_batches: u64,
    /// Live bytes of records in the spool.
    pub disk_bytes: u64,
    /// Batches taken by the publisher and not yet acknowledged.
    pub in_flight: u64,
    /// Seq of the oldest unpublished batch, if any.
    pub oldest_seq: Option<u64>,
    /// Next seq to be handed out.
    pub next_seq: u64,
}

/// Messages of the BufferActor.
#[derive(Debug)]
pub enum BufferMsg {
    /// A poller's batch (its `seq` is ignored and assigned here). The reply,
    /// when asked for, carries the seq once the batch is accepted (in
    /// `persist = "always"` once it is synced to disk).
    Push(Batch, Option<RpcReplyPort<Result<u64, String>>>),
    /// Up to `max` oldest batches not yet in flight, ascending `seq`.
    /// Answered as soon as at least one is available; if the caller has gone
    /// by then, the batches are not counted as in flight.
    Take {
        /// The most batches to hand out.
        max: usize,
        /// Where the batches go.
        reply: RpcReplyPort<Vec<Batch>>,
    },
    /// NATS confirmed every batch up to and including this seq: delete them.
    Ack(u64),
    /// Every in-flight batch goes out again, first, in order.
    Nack,
    /// NATS connection went up (`true`) or down (`false`).
    Connection(bool),
    /// Current counts.
    Stats(RpcReplyPort<BufferStats>),
    /// Move the ring and in-flight batches to disk and sync; further pushes
    /// are refused.
    Close(RpcReplyPort<Result<(), String>>),
}

/// The BufferActor (implementation follows).
pub struct BufferActor;

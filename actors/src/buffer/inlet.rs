//! `BufferInlet`: the bounded way from the pollers into the buffer.
//!
//! A poller hands its batch to `inlet.push(batch).await`: the batch goes
//! into a bounded queue (`HOLD` batches), and one pump task moves it to the
//! BufferActor of the moment, as `PushTicketed` of whatever waits in the queue
//! (one message and one reply per chunk, a result per batch), with at most
//! [`INLET_WINDOW`] batches outstanding, so a slow disk slows the queue down
//! instead of growing a mailbox without bound.
//!
//! Invariants:
//! - a batch leaves the pump only once the buffer answered for it (accepted,
//!   or dropped and counted by the buffer itself);
//! - while the buffer restarts (no actor, or its reply port dropped), the
//!   pump holds the unanswered batches and sends them again, in order, to
//!   the next BufferActor;
//! - one poll, one seq: the pump numbers every batch (a *ticket*, per
//!   inlet) and sends the number with it (`PushTicketed`); the store,
//!   which outlives the actor, answers a ticket it has seen with its first
//!   seq, so a batch the dead actor had accepted before dying is not
//!   accepted twice (`store/tickets.rs`);
//! - a poller waits at most `WAIT_FOR_ROOM` for room in a full queue; a
//!   batch that finds none is counted in
//!   `ingestor_buffer_dropped_total{reason="storage_error"}`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot, watch};

use super::{BufferMsg, PushResult};
use crate::metric_names;
use crate::EncodedBatch;

/// Batches held between the pollers and the buffer.
const HOLD: usize = 4096;
/// Batches outstanding at the buffer at once (so also the largest chunk).
pub const INLET_WINDOW: usize = 256;
/// How long a poller waits for room before its batch is counted as lost.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(1);

/// The BufferActor batches go to (`None` while it restarts).
pub type InletTarget = watch::Receiver<Option<ActorRef<BufferMsg>>>;

/// Cloneable handle the pollers push through.
#[derive(Debug, Clone)]
pub struct BufferInlet {
    tx: mpsc::Sender<EncodedBatch>,
    /// Batches pushed and not yet answered by a buffer.
    unanswered: Arc<AtomicUsize>,
    /// The sender of a fixed target (`From<ActorRef>`), kept alive here.
    _fixed: Option<Arc<watch::Sender<Option<ActorRef<BufferMsg>>>>>,
}

impl BufferInlet {
    /// Starts the pump (a tokio task that ends when every handle is dropped).
    pub fn new(target: InletTarget) -> BufferInlet {
        let (tx, rx) = mpsc::channel(HOLD);
        let unanswered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(pump(rx, target, unanswered.clone()));
        BufferInlet {
            tx,
            unanswered,
            _fixed: None,
        }
    }

    /// Hands a batch to the buffer; waits (bounded) while the queue is full.
    pub async fn push(&self, batch: EncodedBatch) {
        self.unanswered.fetch_add(1, Ordering::AcqRel);
        let lost = match self.tx.try_send(batch) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(batch)) => !matches!(
                tokio::time::timeout(WAIT_FOR_ROOM, self.tx.send(batch)).await,
                Ok(Ok(()))
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        };
        if lost {
            self.unanswered.fetch_sub(1, Ordering::AcqRel);
            counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error").increment(1);
            tracing::error!("the buffer has not taken batches for {WAIT_FOR_ROOM:?} and {HOLD} are held: batch dropped (counted as storage_error)");
        }
    }

    /// Batches pushed and not yet answered by a buffer.
    pub fn unanswered(&self) -> usize {
        self.unanswered.load(Ordering::Acquire)
    }

    /// Waits until every batch pushed so far was answered by a buffer, or
    /// `within` passed; says whether all were.
    pub async fn drained(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.unanswered.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// A pump to this one BufferActor (tests and benches that run a bare actor).
impl From<ActorRef<BufferMsg>> for BufferInlet {
    fn from(buffer: ActorRef<BufferMsg>) -> BufferInlet {
        let (tx, rx) = watch::channel(Some(buffer));
        BufferInlet {
            _fixed: Some(Arc::new(tx)),
            ..BufferInlet::new(rx)
        }
    }
}

type Reply = oneshot::Receiver<Vec<PushResult>>;
/// A batch and its ticket.
type Ticketed = (u64, EncodedBatch);

/// Inlet ids: unique in the process, so a store fed by several inlets
/// (tests) keeps their tickets apart.
static NEXT_INLET: AtomicU64 = AtomicU64::new(1);

async fn pump(
    mut rx: mpsc::Receiver<EncodedBatch>,
    mut target: InletTarget,
    unanswered: Arc<AtomicUsize>,
) {
    let inlet = NEXT_INLET.fetch_add(1, Ordering::Relaxed);
    let mut next_ticket: u64 = 1;
    let mut ticket = move |b: EncodedBatch| {
        next_ticket += 1;
        (next_ticket - 1, b)
    };
    // Unanswered batches to send again, oldest first.
    let mut again: VecDeque<Ticketed> = VecDeque::new();
    loop {
        let buffer = loop {
            if let Some(b) = target.borrow_and_update().clone() {
                break b;
            }
            if target.changed().await.is_err() {
                return;
            }
        };
        let mut outstanding: VecDeque<(Vec<Ticketed>, Reply)> = VecDeque::new();
        let mut in_window = 0;
        let mut gone = false;
        loop {
            // One chunk of what is there (waiting only when idle).
            if !gone && in_window < INLET_WINDOW {
                let room = INLET_WINDOW - in_window;
                let mut chunk: Vec<Ticketed> = again.drain(..room.min(again.len())).collect();
                if chunk.is_empty() && outstanding.is_empty() {
                    match rx.recv().await {
                        Some(b) => chunk.push(ticket(b)),
                        None => return,
                    }
                }
                while chunk.len() < room {
                    match rx.try_recv() {
                        Ok(b) => chunk.push(ticket(b)),
                        Err(_) => break,
                    }
                }
                if !chunk.is_empty() {
                    let (port, reply) = oneshot::channel();
                    let msg = BufferMsg::PushTicketed {
                        inlet,
                        batches: chunk.clone(),
                        reply: Some(RpcReplyPort::from(port)),
                    };
                    if buffer.cast(msg).is_err() {
                        again = chunk.into_iter().chain(again.drain(..)).collect();
                        gone = true;
                    } else {
                        in_window += chunk.len();
                        outstanding.push_back((chunk, reply));
                    }
                }
            }
            let Some((chunk, reply)) = outstanding.pop_front() else {
                break;
            };
            in_window -= chunk.len();
            match reply.await {
                // Each accepted, or dropped and counted by the buffer.
                Ok(_) => {
                    unanswered.fetch_sub(chunk.len(), Ordering::AcqRel);
                }
                // The actor died with it: this and every later one again.
                Err(_) => {
                    let later = std::mem::take(&mut outstanding);
                    let resend: VecDeque<Ticketed> = chunk
                        .into_iter()
                        .chain(later.into_iter().flat_map(|(c, _)| c))
                        .chain(again.drain(..))
                        .collect();
                    again = resend;
                    in_window = 0;
                    gone = true;
                }
            }
            if gone && outstanding.is_empty() {
                break;
            }
        }
        if gone {
            // Wait for the next BufferActor (the supervisor sends it).
            if target.changed().await.is_err() {
                return;
            }
        }
    }
}

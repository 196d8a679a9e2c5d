//! BufferActor: typed messages around the `Store` (ring + spool).
//!
//! The store lives on its disk thread (`store/disk_thread.rs`), not in the
//! actor: a panic here restarts the actor on the very same ring. Everything
//! but the close (the supervisor's `StoreControl`) goes through these
//! messages, each turned into a job for the disk thread; the actor
//! only awaits the answers (pushes not even those: the disk thread answers
//! them and runs the group commit, `push.rs`), so it never blocks an async
//! worker. Whether batches are being confirmed comes
//! from the Publisher's delivery watch (`BufferArgs::delivery`): the current
//! state at start, then each change, so a restarted actor needs nothing from
//! the Publisher.
//!
//! `BufferMsg`'s variants are its interface, except `Internal`: the tick
//! the actor sends itself and what its disk thread tells it, opaque
//! outside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::gauge;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use super::lease::LeaseId;
use super::push::{Answer, Front, Item, PushJob, PushResult};
use super::store::{BufferStats, SetAsideReason, SharedStore};
use super::SpoolError;
use crate::metric_names;
use crate::publisher::{DeliveryState, FollowingDelivery};
use crate::EncodedBatch;

/// Messages of the BufferActor.
#[derive(Debug)]
pub enum BufferMsg {
    /// A poller's batch (its `seq` is ignored and assigned here). The reply,
    /// when asked for, carries the seq once the batch is accepted (in
    /// `persist = "always"` once it is synced to disk), or why it was not
    /// kept.
    Push(EncodedBatch, Option<RpcReplyPort<PushResult>>),
    /// Batches in the order given, each as if pushed alone, for one
    /// message and one reply: a result per batch, in order, once every
    /// accepted one is accepted as `Push` says (`push.rs`). What the inlet
    /// sends.
    PushMany(Vec<EncodedBatch>, Option<RpcReplyPort<Vec<PushResult>>>),
    /// `PushMany` of an inlet's numbered batches (`BufferInlet`: what it
    /// sends): a batch whose ticket the store has seen (sent again after a
    /// restart of this actor) is answered with its first seq and not
    /// accepted twice (`store/tickets.rs`).
    PushTicketed {
        /// The inlet's id, unique in the process.
        inlet: u64,
        /// Each batch with its ticket, ascending.
        batches: Vec<(u64, EncodedBatch)>,
        /// A result per batch, in order.
        reply: Option<RpcReplyPort<Vec<PushResult>>>,
    },
    /// Up to `max` oldest batches not yet in flight, ascending `seq`, under
    /// `lease` (`lease.rs`): a newer lease first requeues what the older one
    /// held; an older or ended lease gets no answer (its reply is dropped).
    /// Answered as soon as at least one is available; if the caller has gone
    /// by then, the batches are not counted as in flight.
    Take {
        /// The taking session's lease.
        lease: LeaseId,
        /// The most batches to hand out.
        max: usize,
        /// Where the batches go.
        reply: RpcReplyPort<Vec<EncodedBatch>>,
    },
    /// NATS confirmed every batch up to and including `seq`: delete them.
    Ack {
        /// The lease the batches were taken under.
        lease: LeaseId,
        /// The highest seq confirmed.
        seq: u64,
    },
    /// This batch can never be published (too big for NATS): keep it
    /// (quarantine), never hand it out again, count it
    /// (`ingestor_buffer_set_aside_total{reason}`). Sent before any `Ack`
    /// of a higher seq, so the Ack does not take it with it.
    SetAside {
        /// The batch.
        seq: u64,
        /// Why.
        reason: SetAsideReason,
    },
    /// Current counts.
    Stats(RpcReplyPort<BufferStats>),
    /// The actor's messages to itself (tick, delivery changes from its
    /// watch follower, its disk thread's news); opaque outside, so no one
    /// else can send one.
    Internal(InternalMsg),
}

/// A message the BufferActor sends itself. ractor takes one message type
/// per actor, so these ride in [`BufferMsg::Internal`]; the private field
/// keeps them out of everyone else's hands (and out of their matches).
#[derive(Debug)]
pub struct InternalMsg(Internal);

#[derive(Debug)]
pub(super) enum Internal {
    /// From the disk thread: batches a parked Take can have (a group
    /// commit, or a push into memory).
    Takeable,
    /// From the disk thread: the group commit failed (restart).
    CommitFailed(SpoolError),
    /// Every second: sync a dirty spool, measure it, give a drained
    /// spool's space back, refresh the age gauge.
    Tick,
    /// Batches are being confirmed (`true`) or not (`false`).
    Deliverable(bool),
    /// A lease's holder dropped it: what it holds goes out again, first.
    LeaseEnded(LeaseId),
}

impl Internal {
    pub(super) fn msg(self) -> BufferMsg {
        BufferMsg::Internal(InternalMsg(self))
    }
}

/// The BufferActor.
pub struct BufferActor;

/// What a BufferActor starts from: the store the supervisor keeps.
pub struct BufferArgs {
    /// The ring and spool; survives restarts of the actor.
    pub store: SharedStore,
    /// The Publisher's delivery state (`persist = "disconnect"` writes
    /// through while batches are not being confirmed); read at start, then
    /// followed.
    pub delivery: watch::Receiver<DeliveryState>,
}

/// The actor's own state: who waits for what. Lost on a restart, which only
/// costs callers their reply (the batches stay in the store).
pub struct BufferState {
    store: SharedStore,
    parked: Option<(LeaseId, usize, RpcReplyPort<Vec<EncodedBatch>>)>,
    /// Set by the disk thread when a Take found nothing (`push::Front`).
    take_waits: Arc<AtomicBool>,
    ticker: tokio::task::JoinHandle<()>,
    /// The oldest waiting batch's time at the last tick (the age gauge
    /// keeps counting from it while the spool's oldest cannot be read).
    oldest: Option<i64>,
    /// Turns delivery changes into `Internal::Deliverable`; ends with the state.
    _following: FollowingDelivery,
}

impl Actor for BufferActor {
    type Msg = BufferMsg;
    type State = BufferState;
    type Arguments = BufferArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<BufferMsg>,
        args: BufferArgs,
    ) -> Result<BufferState, ActorProcessingErr> {
        let take_waits = Arc::new(AtomicBool::new(false));
        // From now on the disk thread tells this actor; a predecessor's
        // uncommitted batches are committed right after (`GroupCommit`).
        args.store
            .attach(Front {
                actor: myself.clone(),
                take_waits: take_waits.clone(),
            })
            .await?;
        let following =
            FollowingDelivery::start("buffer", args.delivery, myself.clone(), |confirming| {
                Internal::Deliverable(confirming).msg()
            });
        let cell = myself.get_cell();
        let ticks = async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // Failpoint: the ticker panics (it must not die quietly).
                fail::fail_point!("buffer::ticker");
                if myself.cast(Internal::Tick.msg()).is_err() {
                    break;
                }
            }
        };
        let ticker = crate::watched::spawn_stopping("buffer", "ticker", ticks, cell);
        Ok(BufferState {
            store: args.store,
            parked: None,
            take_waits,
            ticker,
            oldest: None,
            _following: following,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<BufferMsg>,
        state: &mut BufferState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<BufferMsg>,
        msg: BufferMsg,
        state: &mut BufferState,
    ) -> Result<(), ActorProcessingErr> {
        crate::fault::hit("buffer").await;
        match msg {
            BufferMsg::Push(batch, reply) => {
                push(state, vec![Item::new(None, batch)], reply.map(Answer::One)).await?
            }
            BufferMsg::PushMany(batches, reply) => {
                let items = batches.into_iter().map(|b| Item::new(None, b)).collect();
                push(state, items, reply.map(Answer::Many)).await?
            }
            BufferMsg::PushTicketed {
                inlet,
                batches,
                reply,
            } => {
                let items = batches
                    .into_iter()
                    .map(|(ticket, b)| Item::new(Some((inlet, ticket)), b))
                    .collect();
                push(state, items, reply.map(Answer::Many)).await?
            }
            BufferMsg::Take { lease, max, reply } => {
                // A newer Take replaces a parked one (its caller gave up).
                state.parked = Some((lease, max, reply));
                serve_parked(state).await?;
            }
            BufferMsg::Ack { lease, seq } => {
                state
                    .store
                    .run(move |s| s.ack_leased(lease, seq))
                    .await?
                    .map_err(Box::new)?;
            }
            BufferMsg::SetAside { seq, reason } => {
                state.store.run(move |s| s.set_aside(seq, reason)).await?;
            }
            BufferMsg::Internal(InternalMsg(Internal::LeaseEnded(lease))) => {
                state.store.run(move |s| s.end_lease(lease)).await?;
                serve_parked(state).await?;
            }
            BufferMsg::Internal(InternalMsg(Internal::Deliverable(confirming))) => {
                state
                    .store
                    .run(move |s| s.set_deliverable(confirming))
                    .await?
                    .map_err(Box::new)?;
                serve_parked(state).await?;
            }
            BufferMsg::Stats(reply) => {
                let mut stats = state.store.run(|s| s.stats()).await?;
                stats.oldest_ts_micros = state.oldest;
                let _ = reply.send(stats);
            }
            BufferMsg::Internal(InternalMsg(Internal::Takeable)) => serve_parked(state).await?,
            BufferMsg::Internal(InternalMsg(Internal::CommitFailed(e))) => return Err(Box::new(e)),
            BufferMsg::Internal(InternalMsg(Internal::Tick)) => tick(state).await?,
        }
        Ok(())
    }
}

/// Queues the pushes on the disk thread, which answers them (now, or after
/// its group commit) and says when a parked Take can be served.
async fn push(
    state: &mut BufferState,
    items: Vec<Item>,
    answer: Option<Answer>,
) -> Result<(), ActorProcessingErr> {
    state.store.push(PushJob { items, answer }).await?;
    Ok(())
}

/// Every second: syncs a dirty spool (batches and acks), measures it and
/// retries a full or failed one, gives a drained spool's space back,
/// queues the gap events noted since the last tick (`store/gaps.rs`),
/// refreshes the age gauge, and retries a Take stuck on a failing read.
async fn tick(state: &mut BufferState) -> Result<(), ActorProcessingErr> {
    let last = state.oldest;
    let oldest = state
        .store
        .run(move |s| {
            s.sync_if_dirty()?;
            s.refresh_and_retry();
            s.reclaim_if_due();
            s.save_set_aside(false);
            s.emit_gap_events();
            // An unreadable oldest record does not blank the age gauge.
            // Gap events written through wait for the group commit, which
            // the disk thread runs after this job like after any push.
            Ok::<_, SpoolError>(s.oldest_waiting_micros(last))
        })
        .await?
        .map_err(Box::new)?;
    state.oldest = oldest;
    let age = oldest.map_or(0.0, |ts| {
        let now = chrono::Utc::now().timestamp_micros();
        (now - ts).max(0) as f64 / 1e6
    });
    gauge!(metric_names::BUFFER_OLDEST_AGE).set(age);
    serve_parked(state).await
}

/// Answers the parked Take if there is something to hand out; otherwise it
/// stays parked until a push, commit, nack or reconnect calls this again.
async fn serve_parked(state: &mut BufferState) -> Result<(), ActorProcessingErr> {
    let Some((lease, max, reply)) = state.parked.take() else {
        return Ok(());
    };
    if reply.is_closed() {
        return Ok(());
    }
    let take_waits = state.take_waits.clone();
    let (before, batches) = state
        .store
        .run(move |s| {
            let before = s.taken();
            let taken = s.take_leased(lease, max);
            if matches!(&taken, Ok(Some(b)) if b.is_empty()) {
                // Parked: the next commit or push into memory says so.
                take_waits.store(true, Ordering::Release);
            }
            taken.map(|b| (before, b))
        })
        .await?
        .map_err(Box::new)?;
    let Some(batches) = batches else {
        // An older or ended lease: its session is gone; no answer.
        return Ok(());
    };
    if batches.is_empty() {
        state.parked = Some((lease, max, reply));
    } else if reply.send(batches).is_err() {
        state.store.run(move |s| s.untake(before)).await?;
    }
    Ok(())
}

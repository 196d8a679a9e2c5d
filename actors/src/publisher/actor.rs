//! The Publisher actor: its arguments, messages, state and handlers side
//! by side (the invariants are in the module doc, [`crate::publisher`]).
//!
//! # Messages
//! [`PublisherMsg`] has what others send (`Status`, from `/health` and
//! tests) and one opaque [`InternalMsg`] for what the Publisher's own tasks
//! and timers send it: a change of the connection (the follower task), a
//! session's end or panic (the session task), the end of a back-off (its
//! timer).
//! Only this module can make or match one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::buffer::{BufferMsg, Lease};
use crate::installation::Installation;
use crate::metric_names;
use crate::monitor::{ConnectionState, Following, LinkEvent};
use crate::settings::NatsSettings;
use crate::watched::{self, TaskPanicked};

use super::delivery::{DeliveryReport, Stall};
use super::session::Session;
use super::stream::Ours;
use super::window::Unsent;
use super::{DeliveryWatch, PublishError, RetryPolicy};

/// The Publisher actor.
pub struct Publisher;

/// What the Publisher needs.
pub struct PublisherArgs {
    /// `[nats]`.
    pub settings: NatsSettings,
    /// `[service] id`: part of subjects and msg ids.
    pub service_id: String,
    /// This `data_dir`'s installation id: the `Ingestor-Installation` header.
    pub installation: Installation,
    /// `[service] replaces`: the installation this one takes over from (a
    /// replaced PC), if any (see `conflict`).
    pub replaces: Option<Installation>,
    /// Where batches come from.
    pub buffer: ActorRef<BufferMsg>,
    /// Back-off after failures.
    pub retry: RetryPolicy,
    /// The ConnectionMonitor's state: the client to publish through.
    pub connection: watch::Receiver<ConnectionState>,
    /// Where the Publisher says whether batches are being confirmed (the
    /// buffer and `/health` follow it; see [`DeliveryWatch`]).
    pub delivery: DeliveryWatch,
}

/// What the Publisher reports, for `/health` and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStatus {
    /// A session is publishing right now.
    pub publishing: bool,
    /// The last failure, cleared once a batch is confirmed again.
    pub last_error: Option<PublishError>,
    /// Failures since start, by `reason` label.
    pub errors: BTreeMap<&'static str, u64>,
    /// Batches confirmed since start.
    pub published: u64,
    /// Of `published`, batches found already in the stream when a session
    /// started (their acks were lost with a connection) and not sent again.
    pub found_stored: u64,
}

/// Messages of the Publisher: what others may send it, and its own.
#[derive(Debug)]
pub enum PublisherMsg {
    /// The current status.
    Status(RpcReplyPort<PublisherStatus>),
    /// Sent by the Publisher's own tasks and timers; nothing outside this
    /// module can make or read one.
    Internal(InternalMsg),
}

/// A message a Publisher sends itself (opaque outside this module).
#[derive(Debug)]
pub struct InternalMsg(Internal);

/// What a Publisher's own tasks and timers tell it.
#[derive(Debug)]
enum Internal {
    /// The connection state changed (from the follower task).
    Link(LinkEvent),
    /// A session ended with this error (from the session task).
    SessionEnded {
        /// Which session.
        id: u64,
        /// Why.
        error: PublishError,
    },
    /// The session task panicked (a bug): the Publisher fails, and its
    /// supervisor restarts it (the new one's first Take requeues what the
    /// dead session held).
    SessionPanicked(TaskPanicked),
    /// The back-off after a failure is over (its timer).
    Resume {
        /// The failure it follows.
        id: u64,
    },
}

impl Internal {
    fn msg(self) -> PublisherMsg {
        PublisherMsg::Internal(InternalMsg(self))
    }
}

struct Running {
    id: u64,
    task: JoinHandle<()>,
    /// The session's lease on the buffer; dropped after the task ended.
    lease: Lease,
    /// The session's held-back Ack (`AckCoalescer`).
    unsent: Arc<Unsent>,
}

/// A session never outlives its Publisher: when the actor dies (a panic
/// drops its state without `post_stop`), the session is aborted. Then the
/// Ack it held back goes to the buffer, and only then its lease ends
/// (dropped with the fields): the buffer requeues what the session still
/// held, never what JetStream confirmed, and a Take the session sent late
/// gets nothing (`buffer::Lease`).
impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(seq) = self.unsent.take() {
            let _ = self.lease.ack(seq);
        }
    }
}

/// The Publisher's state.
pub struct PublisherState {
    settings: Arc<NatsSettings>,
    service_id: Arc<str>,
    installation: Installation,
    replaces: Option<Installation>,
    buffer: ActorRef<BufferMsg>,
    retry: RetryPolicy,
    client: Option<async_nats::Client>,
    session: Option<Running>,
    /// Set while a back-off is running: the id it will resume.
    waiting: Option<u64>,
    next_id: u64,
    /// When the running (or last) session started: back-off counts from it.
    session_started: Option<Instant>,
    failures_in_a_row: u32,
    confirmed: Arc<AtomicU64>,
    found_stored: Arc<AtomicU64>,
    /// The last confirmed batch (seq, stream sequence), for the read-back.
    /// A std `Mutex`: set and read in short critical sections, never held
    /// across an `.await`.
    last_confirmed: Arc<Mutex<Option<Ours>>>,
    /// Confirmed by JetStream, not yet acked to the buffer: sent by
    /// `stop_session` when it cuts a session short.
    unsent: Arc<Unsent>,
    confirmed_at_last_failure: u64,
    /// Whether this Publisher logged the stream's durability warning yet.
    durability_told: Arc<AtomicBool>,
    last_error: Option<PublishError>,
    errors: BTreeMap<&'static str, u64>,
    /// Whether batches are being confirmed; a stall once this state is gone.
    delivery: DeliveryReport,
    /// Tells this actor about connection changes; ends with the state.
    _following: Following,
}

impl Actor for Publisher {
    type Msg = PublisherMsg;
    type State = PublisherState;
    type Arguments = PublisherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PublisherMsg>,
        args: PublisherArgs,
    ) -> Result<PublisherState, ActorProcessingErr> {
        let following = Following::start("publisher", args.connection, myself, |e| {
            Some(Internal::Link(e).msg())
        });
        args.delivery.publisher_started(args.settings.ack_timeout);
        Ok(PublisherState {
            settings: Arc::new(args.settings),
            service_id: args.service_id.into(),
            installation: args.installation,
            replaces: args.replaces,
            buffer: args.buffer,
            retry: args.retry,
            client: None,
            session: None,
            waiting: None,
            next_id: 0,
            session_started: None,
            failures_in_a_row: 0,
            confirmed: Arc::new(AtomicU64::new(0)),
            found_stored: Arc::new(AtomicU64::new(0)),
            last_confirmed: Arc::new(Mutex::new(None)),
            unsent: Arc::new(Unsent::default()),
            confirmed_at_last_failure: 0,
            durability_told: Arc::new(AtomicBool::new(false)),
            last_error: None,
            errors: BTreeMap::new(),
            delivery: DeliveryReport(args.delivery),
            _following: following,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PublisherMsg>,
        msg: PublisherMsg,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        crate::fault::hit("publisher").await;
        match msg {
            PublisherMsg::Internal(InternalMsg(Internal::Link(LinkEvent::Connected(client)))) => {
                state.client = Some(client);
                // A fresh connection is worth trying at once, unless the
                // last failure was a rejection that a reconnect cannot fix.
                if !state
                    .last_error
                    .as_ref()
                    .is_some_and(PublishError::is_permanent)
                {
                    state.waiting = None;
                }
                if state.waiting.is_none() {
                    state.start_session(&myself);
                }
            }
            PublisherMsg::Internal(InternalMsg(Internal::Link(LinkEvent::Disconnected))) => {
                state.client = None;
                if state.stop_session().await {
                    state.failed(&myself, PublishError::Disconnected)?;
                }
            }
            PublisherMsg::Internal(InternalMsg(Internal::Link(LinkEvent::Rejected(text)))) => {
                if state.stop_session().await {
                    state.failed(&myself, PublishError::PermissionDenied(text))?;
                } else {
                    debug!(error = %text, "NATS permissions violation outside a session");
                }
            }
            PublisherMsg::Internal(InternalMsg(Internal::SessionEnded { id, error })) => {
                if state.session.as_ref().is_some_and(|s| s.id == id) {
                    // Its held-back Ack, then its lease's end: whatever it
                    // still held goes first all the same.
                    state.session = None;
                    state.failed(&myself, error)?;
                }
            }
            PublisherMsg::Internal(InternalMsg(Internal::SessionPanicked(panicked))) => {
                return Err(panicked.into());
            }
            PublisherMsg::Internal(InternalMsg(Internal::Resume { id })) => {
                if state.waiting == Some(id) {
                    state.waiting = None;
                    state.start_session(&myself);
                }
            }
            PublisherMsg::Status(reply) => {
                let _ = reply.send(state.status());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PublisherMsg>,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_session().await;
        Ok(())
    }
}

impl PublisherState {
    fn start_session(&mut self, myself: &ActorRef<PublisherMsg>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if self.session.is_some() {
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        self.session_started = Some(Instant::now());
        let lease = Lease::new(self.buffer.clone());
        let session = Session {
            client,
            settings: self.settings.clone(),
            service_id: self.service_id.clone(),
            installation: self.installation.clone(),
            replaces: self.replaces.clone(),
            buffer: self.buffer.clone(),
            lease: lease.id(),
            confirmed: self.confirmed.clone(),
            found_stored: self.found_stored.clone(),
            last_confirmed: self.last_confirmed.clone(),
            unsent: self.unsent.clone(),
            recovering_from: self.last_error.clone(),
            delivery: self.delivery.0.begin(),
            durability_told: self.durability_told.clone(),
            subjects: Default::default(),
        };
        let (me, on_panic) = (myself.clone(), myself.clone());
        let run = async move {
            let error = session.run().await;
            let _ = me.cast(Internal::SessionEnded { id, error }.msg());
        };
        let task = watched::spawn("publisher", "session", run, move |p| {
            let _ = on_panic.cast(Internal::SessionPanicked(p).msg());
        });
        self.session = Some(Running {
            id,
            task,
            lease,
            unsent: self.unsent.clone(),
        });
    }

    /// Ends a running session (if any) and puts its in-flight batches back:
    /// once its task is gone, the `Ack` it held back (confirmed by
    /// JetStream, not yet sent) and then the end of its lease (`Running`'s
    /// drop), so what was confirmed leaves the buffer and is never handed
    /// out again.
    async fn stop_session(&mut self) -> bool {
        match self.session.take() {
            Some(mut running) => {
                running.task.abort();
                let _ = (&mut running.task).await;
                drop(running);
                true
            }
            None => false,
        }
    }

    fn failed(
        &mut self,
        myself: &ActorRef<PublisherMsg>,
        error: PublishError,
    ) -> Result<(), ActorProcessingErr> {
        if error == PublishError::BufferGone {
            return Err(error.into());
        }
        // Every session's end comes here: nothing is confirmed until the
        // next session earns it.
        self.delivery.0.ended(Stall::Failed(error.reason()));
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        if confirmed > self.confirmed_at_last_failure {
            self.failures_in_a_row = 0;
            self.last_error = None;
        }
        self.confirmed_at_last_failure = confirmed;
        metrics::counter!(metric_names::PUBLISH_ERRORS_TOTAL, "reason" => error.reason())
            .increment(1);
        *self.errors.entry(error.reason()).or_default() += 1;
        let same_cause = self.last_error.as_ref().map(PublishError::reason) == Some(error.reason());
        if same_cause {
            debug!(%error, "publish failed again; batches stay buffered");
        } else if error.is_permanent() {
            error!(%error, reason = error.reason(), "NATS rejects our batches; they stay buffered and are retried slowly");
        } else {
            warn!(%error, reason = error.reason(), "publish interrupted; unconfirmed batches will be sent again");
        }
        let ran = self
            .session_started
            .take()
            .map_or(Duration::ZERO, |started| started.elapsed());
        let delay = self.retry.delay(&error, self.failures_in_a_row, ran);
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        self.last_error = Some(error);
        self.next_id += 1;
        let id = self.next_id;
        self.waiting = Some(id);
        myself.send_after(delay, move || Internal::Resume { id }.msg());
        Ok(())
    }

    fn status(&self) -> PublisherStatus {
        let published = self.confirmed.load(Ordering::Relaxed);
        let recovered = published > self.confirmed_at_last_failure;
        PublisherStatus {
            publishing: self.session.is_some(),
            last_error: if recovered {
                None
            } else {
                self.last_error.clone()
            },
            errors: self.errors.clone(),
            published,
            found_stored: self.found_stored.load(Ordering::Relaxed),
        }
    }
}

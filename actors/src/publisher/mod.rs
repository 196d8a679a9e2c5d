//! Publisher: takes the oldest batches from the buffer, publishes them to
//! NATS, and acks the buffer only for what the server confirmed.
//!
//! # Invariants
//! - A batch leaves the buffer only through `BufferMsg::Ack(seq)`, and the
//!   Publisher sends `Ack(seq)` only when the server confirmed every batch up
//!   to `seq` (JetStream: a PubAck, in publish order, so the confirmed part is
//!   always a prefix). In `core` mode "confirmed" means "flushed to the
//!   socket": best effort, as CONTRACT §2 says.
//! - Publishing happens in a *session*: a task that lives while the
//!   connection is up and nothing failed. When the connection drops or a
//!   publish fails, the session ends, the buffer gets `Nack` (everything in
//!   flight goes out again, first, in order) and a new session starts after a
//!   back-off. A resend of a batch the server did store is dropped by
//!   JetStream's de-duplication (`Nats-Msg-Id: <service.id>-<seq>`) as long
//!   as it comes within the stream's `duplicate_window`.
//! - The session stops handing batches to the client the moment the client
//!   reports the connection down, so a batch queued in the client cannot
//!   overtake an earlier one lost with the old connection. Two limits remain
//!   (nothing is lost or duplicated in either, but a few batches can land
//!   after newer ones): a publish handed over in the microseconds between
//!   the socket dying and the client noticing it is sent on the next
//!   connection; and a JetStream cluster that loses the stream leader can
//!   drop a few in-flight publishes while later ones land on the new leader.
//!   Strict order there would need the server to check order per publisher
//!   (`Nats-Expected-Last-Msg-Id` does, but only for one publisher per
//!   stream), or one publish in flight at a time (about 6 k/s here).
//! - Rejections that retrying cannot fix now (permission denied, no stream,
//!   payload over the server's limit) are logged once per cause, counted in
//!   `ingestor_publish_errors_total{reason}`, and retried slowly; the data
//!   stays buffered.
//!
//! Metrics: `ingestor_published_total`, `ingestor_publish_ack_seconds`,
//! `ingestor_publish_errors_total{reason}`.

mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::buffer::BufferMsg;
use crate::settings::NatsSettings;
use session::Session;

/// Why a publishing session ended.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PublishError {
    /// The connection dropped with batches unconfirmed. Heals on reconnect.
    #[error("connection to NATS lost with batches unconfirmed")]
    Disconnected,
    /// No PubAck (or no flush) within `ack_timeout`. Usually transient
    /// (server busy, leader election); retried with back-off.
    #[error("no acknowledgement for batch {seq} within ack_timeout")]
    AckTimeout {
        /// The first unconfirmed batch.
        seq: u64,
    },
    /// The server refused us a subject (its `-ERR 'Permissions Violation ...'`).
    /// Needs a server-side permission change; retried slowly.
    #[error("NATS denied permission: {0}; fix the user's permissions on the server")]
    PermissionDenied(String),
    /// No stream listens on the subject and `create_stream = false`.
    /// Needs the stream created; retried slowly.
    #[error("no JetStream stream takes subject {subject}: create stream {stream:?} or set create_stream = true")]
    NoStream {
        /// The configured stream.
        stream: String,
        /// The subject of the refused batch.
        subject: String,
    },
    /// Looking up or creating the stream failed. A timeout or "JetStream
    /// not ready" (a server just started) is retried with back-off; a refusal
    /// (bad name, limits, permissions) slowly.
    #[error("cannot set up stream {stream:?}: {reason}")]
    StreamSetup {
        /// The configured stream.
        stream: String,
        /// The server's or client's answer.
        reason: String,
        /// Retrying soon may help (timeout, JetStream not ready yet).
        transient: bool,
    },
    /// A batch is bigger than the server's `max_payload`. Needs a bigger
    /// server limit (or fewer tags per device); retried slowly, never dropped.
    #[error("batch {seq} is {size} bytes, over the server's max_payload: raise max_payload on the server")]
    PayloadTooBig {
        /// The refused batch.
        seq: u64,
        /// Its payload size.
        size: usize,
    },
    /// JetStream refused the message (limits, sealed stream, ...).
    #[error("JetStream rejected batch {seq}: {reason}")]
    Rejected {
        /// The refused batch.
        seq: u64,
        /// The server's answer.
        reason: String,
    },
    /// Any other client-side failure.
    #[error("NATS client error: {0}")]
    Client(String),
    /// The buffer actor is gone: the Publisher stops and its supervisor decides.
    #[error("the buffer actor is gone")]
    BufferGone,
}

impl PublishError {
    /// The `reason` label of `ingestor_publish_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::Disconnected => "disconnected",
            PublishError::AckTimeout { .. } => "timeout",
            PublishError::PermissionDenied(_) => "permission_denied",
            PublishError::NoStream { .. } => "no_stream",
            PublishError::StreamSetup { .. } => "stream_setup",
            PublishError::PayloadTooBig { .. } => "payload_too_big",
            PublishError::Rejected { .. } => "rejected",
            PublishError::Client(_) => "client",
            PublishError::BufferGone => "buffer_gone",
        }
    }

    /// Retrying soon cannot help: someone has to change something.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PublishError::PermissionDenied(_)
                | PublishError::NoStream { .. }
                | PublishError::StreamSetup {
                    transient: false,
                    ..
                }
                | PublishError::PayloadTooBig { .. }
                | PublishError::Rejected { .. }
        )
    }
}

/// How soon a new session starts after one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay after a transient failure; doubles per failure in a row.
    pub min: Duration,
    /// Longest delay after a transient failure.
    pub max: Duration,
    /// Delay after a permanent rejection.
    pub rejected: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
            rejected: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, error: &PublishError, failures_in_a_row: u32) -> Duration {
        if error.is_permanent() {
            return self.rejected;
        }
        let factor = 2u32.saturating_pow(failures_in_a_row.min(16));
        self.min.saturating_mul(factor).min(self.max)
    }
}

/// The Publisher actor.
pub struct Publisher;

/// What the Publisher needs.
pub struct PublisherArguments {
    /// `[nats]`.
    pub settings: NatsSettings,
    /// `[service] id`: part of subjects and msg ids.
    pub service_id: String,
    /// Where batches come from.
    pub buffer: ActorRef<BufferMsg>,
    /// Back-off after failures.
    pub retry: RetryPolicy,
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
}

/// Messages of the Publisher.
#[derive(Debug)]
pub enum PublisherMsg {
    /// From the monitor: connected; publish through this client.
    Connected(async_nats::Client),
    /// From the monitor: the connection is down.
    Disconnected,
    /// From the monitor: the server sent `-ERR` (a permissions violation).
    ServerRejected(String),
    /// Internal: a session ended with this error.
    SessionEnded {
        /// Which session.
        id: u64,
        /// Why.
        error: PublishError,
    },
    /// Internal: the back-off after a failure is over.
    Resume {
        /// The failure it follows.
        id: u64,
    },
    /// The current status.
    Status(RpcReplyPort<PublisherStatus>),
}

struct Running {
    id: u64,
    task: JoinHandle<()>,
}

/// A session never outlives its Publisher: when the actor dies (a panic
/// drops its state without `post_stop`), the session is aborted, so an
/// orphan cannot keep taking batches that a new session's acks would sweep
/// away.
impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Publisher's state.
pub struct PublisherState {
    settings: Arc<NatsSettings>,
    service_id: Arc<str>,
    buffer: ActorRef<BufferMsg>,
    retry: RetryPolicy,
    client: Option<async_nats::Client>,
    session: Option<Running>,
    /// Set while a back-off is running: the id it will resume.
    waiting: Option<u64>,
    next_id: u64,
    failures_in_a_row: u32,
    confirmed: Arc<AtomicU64>,
    confirmed_at_last_failure: u64,
    last_error: Option<PublishError>,
    errors: BTreeMap<&'static str, u64>,
}

impl Actor for Publisher {
    type Msg = PublisherMsg;
    type State = PublisherState;
    type Arguments = PublisherArguments;

    async fn pre_start(
        &self,
        _myself: ActorRef<PublisherMsg>,
        args: PublisherArguments,
    ) -> Result<PublisherState, ActorProcessingErr> {
        Ok(PublisherState {
            settings: Arc::new(args.settings),
            service_id: args.service_id.into(),
            buffer: args.buffer,
            retry: args.retry,
            client: None,
            session: None,
            waiting: None,
            next_id: 0,
            failures_in_a_row: 0,
            confirmed: Arc::new(AtomicU64::new(0)),
            confirmed_at_last_failure: 0,
            last_error: None,
            errors: BTreeMap::new(),
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
            PublisherMsg::Connected(client) => {
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
            PublisherMsg::Disconnected => {
                state.client = None;
                if state.stop_session().await {
                    state.failed(&myself, PublishError::Disconnected)?;
                }
            }
            PublisherMsg::ServerRejected(text) => {
                if state.stop_session().await {
                    state.failed(&myself, PublishError::PermissionDenied(text))?;
                } else {
                    debug!(error = %text, "NATS permissions violation outside a session");
                }
            }
            PublisherMsg::SessionEnded { id, error } => {
                if state.session.as_ref().is_some_and(|s| s.id == id) {
                    state.session = None;
                    let _ = state.buffer.cast(BufferMsg::Nack);
                    state.failed(&myself, error)?;
                }
            }
            PublisherMsg::Resume { id } => {
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
        let session = Session {
            client,
            settings: self.settings.clone(),
            service_id: self.service_id.clone(),
            buffer: self.buffer.clone(),
            confirmed: self.confirmed.clone(),
            recovering_from: self.last_error.clone(),
        };
        let me = myself.clone();
        let task = tokio::spawn(async move {
            let error = session.run().await;
            let _ = me.cast(PublisherMsg::SessionEnded { id, error });
        });
        self.session = Some(Running { id, task });
    }

    /// Ends a running session (if any) and puts its in-flight batches back.
    ///
    /// The Nack goes out only once the session task is gone: until then a
    /// parked `Take` could still hand it batches, which would stay in flight
    /// after the Nack and be swept away by a later `Ack` of a higher seq.
    async fn stop_session(&mut self) -> bool {
        match self.session.take() {
            Some(mut running) => {
                running.task.abort();
                let _ = (&mut running.task).await;
                let _ = self.buffer.cast(BufferMsg::Nack);
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
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        if confirmed > self.confirmed_at_last_failure {
            self.failures_in_a_row = 0;
            self.last_error = None;
        }
        self.confirmed_at_last_failure = confirmed;
        metrics::counter!("ingestor_publish_errors_total", "reason" => error.reason()).increment(1);
        *self.errors.entry(error.reason()).or_default() += 1;
        let same_cause = self.last_error.as_ref().map(PublishError::reason) == Some(error.reason());
        if same_cause {
            debug!(%error, "publish failed again; batches stay buffered");
        } else if error.is_permanent() {
            error!(%error, reason = error.reason(), "NATS rejects our batches; they stay buffered and are retried slowly");
        } else {
            warn!(%error, reason = error.reason(), "publish interrupted; unconfirmed batches will be sent again");
        }
        let delay = self.retry.delay(&error, self.failures_in_a_row);
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        self.last_error = Some(error);
        self.next_id += 1;
        let id = self.next_id;
        self.waiting = Some(id);
        myself.send_after(delay, move || PublisherMsg::Resume { id });
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_doubling_to_max_rejections_wait_the_slow_delay() {
        let retry = RetryPolicy {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
            rejected: Duration::from_secs(10),
        };
        let timeout = PublishError::AckTimeout { seq: 7 };
        assert_eq!(retry.delay(&timeout, 0), Duration::from_millis(100));
        assert_eq!(retry.delay(&timeout, 3), Duration::from_millis(800));
        assert_eq!(retry.delay(&timeout, 30), Duration::from_secs(5));
        let denied = PublishError::PermissionDenied("Publish to \"telemetry.a.b\"".into());
        assert_eq!(retry.delay(&denied, 0), Duration::from_secs(10));
        assert_eq!(denied.reason(), "permission_denied");
        assert!(!PublishError::Disconnected.is_permanent());
    }
}

//! One publishing session: from a connect (or a retry) to the first failure.
//!
//! JetStream: first the stream is opened and read back for batches it
//! already holds (see [`super::stream`]); then up to `max_in_flight`
//! publishes pipelined, PubAcks taken in publish order, the buffer acked up
//! to the last confirmed `seq` after every burst of acks. The first failed
//! ack ends the session: nothing more is sent on this connection. Core
//! (`core_mode`): publish a window, flush, ack.
//!
//! Delivery (`delivery`): the session reports `Confirming` on its first
//! confirmation (or when it opened the stream with the buffer empty), and
//! a stall as soon as the oldest publish in flight has waited the fence
//! unanswered; the Publisher reports the stall when the session ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::jetstream::context::{ContextBuilder, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::Stream;
use async_nats::{Client, HeaderMap, Subject};
use futures::future::BoxFuture;
use ractor::rpc::CallResult;
use ractor::ActorRef;
use tracing::info;

use super::conflict;
use super::delivery::SessionDelivery;
use super::election::new_leader_elected;
use super::limit::Limit;
use super::stream::{open_stream, Ours, Reader};
use super::window::{AckCoalescer, AckFailure, AckFuture, AckResult, InFlight, Unsent, FENCE};
use super::PublishError;
use crate::buffer::{BufferMsg, LeaseId, SetAsideReason};
use crate::installation::{self, Installation};
use crate::metric_names;
use crate::settings::{NatsMode, NatsSettings};
use crate::EncodedBatch;

pub(super) struct Session {
    pub(super) client: Client,
    pub(super) settings: Arc<NatsSettings>,
    pub(super) service_id: Arc<str>,
    /// The `Ingestor-Installation` header of every message.
    pub(super) installation: Installation,
    /// `[service] replaces`, for the conflict check.
    pub(super) replaces: Option<Installation>,
    pub(super) buffer: ActorRef<BufferMsg>,
    /// The lease this session takes and acks under (the Publisher holds it).
    pub(super) lease: LeaseId,
    /// Batches confirmed, over all sessions.
    pub(super) confirmed: Arc<AtomicU64>,
    /// Of those, found already stored when a session started.
    pub(super) found_stored: Arc<AtomicU64>,
    /// The last confirmed batch and its stream sequence (none yet in this
    /// process: `None`): where reading the stream back may start.
    pub(super) last_confirmed: Arc<Mutex<Option<Ours>>>,
    /// The confirmed seq not yet acked to the buffer (`AckCoalescer`).
    pub(super) unsent: Arc<Unsent>,
    /// The failure before this session, to say once that delivery works again.
    pub(super) recovering_from: Option<PublishError>,
    /// Where this session reports whether its batches are confirmed.
    pub(super) delivery: SessionDelivery,
    /// Set once the stream's durability was told (`nats::durability`).
    pub(super) durability_told: Arc<AtomicBool>,
    /// Each device's subject, made once.
    pub(super) subjects: HashMap<std::sync::Arc<str>, Subject>,
}

/// What became of one publish.
enum Sent {
    /// On its way: its PubAck to come.
    Ack(AckFuture),
    /// Over what NATS takes: not sent, to be set aside.
    TooBig(SetAsideReason),
}

/// A parked `Take` that has not answered yet.
pub(super) type Take = BoxFuture<'static, Result<Vec<EncodedBatch>, PublishError>>;

/// Sleeps until `at`; never returns without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

pub(super) fn take(buffer: ActorRef<BufferMsg>, lease: LeaseId, max: usize) -> Take {
    Box::pin(async move {
        match buffer
            .call(|reply| BufferMsg::Take { lease, max, reply }, None)
            .await
        {
            Ok(CallResult::Success(batches)) => Ok(batches),
            _ => Err(PublishError::BufferGone),
        }
    })
}

impl Session {
    /// Publishes until something fails; returns what failed.
    pub(super) async fn run(mut self) -> PublishError {
        match self.settings.mode {
            NatsMode::Jetstream => self.run_jetstream().await,
            NatsMode::Core => self.run_core().await,
        }
    }

    pub(super) fn subject(&mut self, batch: &EncodedBatch) -> Subject {
        if let Some(subject) = self.subjects.get(batch.device()) {
            return subject.clone();
        }
        let subject = Subject::from(format!(
            "{}.{}.{}",
            self.settings.subject_prefix,
            self.service_id,
            batch.device()
        ));
        self.subjects
            .insert(batch.device_arc().clone(), subject.clone());
        subject
    }

    pub(super) fn headers(&self, batch: &EncodedBatch) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", batch.msg_id(&self.service_id).as_str());
        headers.insert("Ingestor-Seq", itoa::Buffer::new().format(batch.seq));
        headers.insert(installation::HEADER, self.installation.as_str());
        headers
    }

    pub(super) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    pub(super) fn max_in_flight(&self) -> usize {
        self.settings.max_in_flight.max(1)
    }

    pub(super) fn confirmed_one(&mut self, sent: Option<Instant>) {
        match sent {
            Some(sent) => {
                metrics::histogram!(metric_names::PUBLISH_ACK).record(sent.elapsed().as_secs_f64())
            }
            None => {
                self.found_stored.fetch_add(1, Ordering::Relaxed);
            }
        }
        metrics::counter!(metric_names::PUBLISHED_TOTAL).increment(1);
        self.confirmed.fetch_add(1, Ordering::Relaxed);
        self.delivery.confirming();
        if let Some(before) = self.recovering_from.take() {
            info!(after = %before, "NATS confirms batches again");
        }
    }

    /// Remembers the last confirmed batch, where the next read-back may
    /// start (`stream`).
    fn note_confirmed(&self, seq: u64, stream_seq: u64) {
        let mut last = self
            .last_confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|l| l.seq < seq) {
            *last = Some(Ours { seq, stream_seq });
        }
    }

    async fn run_jetstream(&mut self) -> PublishError {
        let max = self.max_in_flight();
        let js = ContextBuilder::new()
            .timeout(self.settings.ack_timeout)
            .max_ack_inflight(max)
            .backpressure_on_inflight(true)
            .build(self.client.clone());
        let stream =
            match open_stream(&js, &self.settings, &self.service_id, &self.durability_told).await {
                Ok(stream) => stream,
                Err(e) => return e,
            };
        let reader = Reader {
            stream: &stream,
            filter: format!("{}.{}.>", self.settings.subject_prefix, self.service_id),
            service_id: &self.service_id,
            installation: &self.installation,
            patience: self.settings.ack_timeout,
        };
        // Before anything is taken or sent: is this id still ours to write?
        if let Err(e) = self.check_conflict(&reader).await {
            return e;
        }
        let limit = Limit::learn(&self.client, Some(&stream));
        if self.buffer_is_empty().await {
            // Caught up: the stream answers and nothing waits.
            self.delivery.confirming();
        }
        // The oldest batches first; before any is sent, what the stream
        // already holds of them (their acks were lost with a connection).
        let first = match take(self.buffer.clone(), self.lease, max).await {
            Ok(batches) => batches,
            Err(e) => return e,
        };
        let after = *self
            .last_confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut stored = match first.first() {
            Some(oldest) => match reader.already_stored(oldest.seq, after).await {
                Ok(stored) => stored,
                Err(e) => return e,
            },
            None => Default::default(),
        };
        // For the acks that say "duplicate" (`conflict::duplicate_is_ours`).
        let shared_stream = Arc::new(stream.clone());
        let mut pending = InFlight::default();
        let fence = FENCE.min(self.settings.ack_timeout);
        // Read-ahead: taken from the buffer, not yet published. Up to two
        // windows, a window per Take, keeps the round trips to the buffer
        // (and its disk reads) out of the publish path. They count as in
        // flight for the buffer; the lease's end puts them back like the rest.
        let mut ready: VecDeque<EncodedBatch> = first.into();
        let mut parked: Option<Take> = None;
        let mut acks = AckCoalescer::new(self.buffer.clone(), self.lease, max, self.unsent.clone());
        // The leader the publishes go to, and (once the oldest is past the
        // fence) the watch for another one (`election`).
        let leader = stream
            .cached_info()
            .cluster
            .as_ref()
            .and_then(|c| c.leader.clone());
        let mut watch: Option<BoxFuture<'static, ()>> = None;
        loop {
            // The fence: no new publish while the oldest has waited past
            // FENCE (see `window`).
            while pending.len() < max && !pending.fenced(fence) {
                let Some(batch) = ready.pop_front() else {
                    break;
                };
                if let Some(stream_seq) = stored.remove(&batch.seq) {
                    let ack = PublishAck {
                        sequence: stream_seq,
                        ..Default::default()
                    };
                    let seq = batch.seq;
                    pending.push(seq, Box::pin(async move { (seq, None, Ok(ack)) }));
                    continue;
                }
                let seq = batch.seq;
                match self.publish_js(&js, &shared_stream, batch, &limit).await {
                    Ok(Sent::Ack(ack)) => pending.push(seq, ack),
                    Ok(Sent::TooBig(reason)) => {
                        if let Err(e) = acks.set_aside(seq, reason) {
                            return e;
                        }
                    }
                    Err(e) => return acks.flush_then(e),
                }
            }
            if parked.is_none() && ready.len() < 2 * max {
                parked = Some(take(self.buffer.clone(), self.lease, max));
            }
            // While confirming: when the oldest publish will have waited
            // the fence unanswered (then delivery is stalled, `delivery`).
            let overdue = pending
                .oldest_sent()
                .filter(|_| self.delivery.is_confirming());
            match (&leader, pending.fenced(fence)) {
                (Some(leader), true) if watch.is_none() => {
                    watch = Some(Box::pin(new_leader_elected(
                        shared_stream.clone(),
                        leader.clone(),
                        self.settings.ack_timeout,
                    )));
                }
                (_, false) => watch = None,
                _ => {}
            }
            tokio::select! {
                biased;
                Some(first) = pending.next(), if !pending.is_empty() => {
                    if let Err(e) = self.confirm_burst(first, &mut pending, &mut acks, &limit) {
                        return acks.flush_then(e);
                    }
                    if acks.due(pending.is_empty()) {
                        if let Err(e) = acks.flush() {
                            return e;
                        }
                    }
                }
                () = sleep_until(overdue.map(|sent| sent + fence)), if overdue.is_some() => {
                    if let Some(sent) = overdue {
                        self.delivery.overdue(sent);
                    }
                }
                () = async {
                    match watch.as_mut() {
                        Some(watch) => watch.await,
                        None => std::future::pending().await,
                    }
                } => {
                    // The leader the oldest publish went to is gone: its
                    // PubAck cannot come. The next session reads back and
                    // resends at once instead of after ack_timeout.
                    let seq = pending.oldest_seq().unwrap_or_default();
                    info!(seq, "the stream has a new leader; publishing again from the oldest unconfirmed batch");
                    return acks.flush_then(PublishError::StreamUnavailable { seq });
                }
                taken = async {
                    match parked.as_mut() {
                        Some(take) => take.await,
                        None => std::future::pending().await,
                    }
                } => {
                    parked = None;
                    match taken {
                        Ok(batches) => {
                            crate::fault::hit("publisher.session").await;
                            ready.extend(batches);
                        }
                        Err(e) => return acks.flush_then(e),
                    }
                }
            }
        }
    }

    /// Whether the buffer holds no batch at all (a Stats round trip).
    async fn buffer_is_empty(&self) -> bool {
        match self.buffer.call(BufferMsg::Stats, None).await {
            Ok(CallResult::Success(s)) => s.memory_batches + s.pending + s.disk_batches == 0,
            _ => false,
        }
    }

    /// Takes every ack that is ready, in publish order, up to the first
    /// failure. A refusal as too big is no failure: that batch is set aside
    /// and the burst goes on.
    fn confirm_burst(
        &mut self,
        first: (u64, Option<Instant>, AckResult),
        pending: &mut InFlight,
        acks: &mut AckCoalescer,
        limit: &Limit,
    ) -> Result<(), PublishError> {
        let mut next = Some(first);
        while let Some((seq, sent, result)) = next.take() {
            match result {
                Ok(ack) => {
                    self.confirmed_one(sent);
                    self.note_confirmed(seq, ack.sequence);
                    acks.confirmed(seq);
                }
                Err(AckFailure::NotOurs(e)) => return Err(e),
                Err(AckFailure::Js(e)) => match limit.refused_ack(&e) {
                    Some(reason) => acks.set_aside(seq, reason)?,
                    None => return Err(self.ack_error(seq, e)),
                },
            }
            next = pending.next_ready();
        }
        Ok(())
    }

    fn ack_error(
        &self,
        seq: u64,
        error: async_nats::jetstream::context::PublishError,
    ) -> PublishError {
        match error.kind() {
            PublishErrorKind::TimedOut => PublishError::AckTimeout { seq },
            PublishErrorKind::BrokenPipe => PublishError::Disconnected,
            // The session looked the stream up before its first publish, so
            // "no responders" now means no leader, not no stream.
            PublishErrorKind::StreamNotFound => PublishError::StreamUnavailable { seq },
            _ => PublishError::Rejected {
                seq,
                reason: error.to_string(),
            },
        }
    }

    async fn publish_js(
        &mut self,
        js: &jetstream::Context,
        stream: &Arc<Stream>,
        batch: EncodedBatch,
        limit: &Limit,
    ) -> Result<Sent, PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        let seq = batch.seq;
        let payload = batch.payload();
        let size = payload.len();
        if let Some(reason) = limit.refuses(size) {
            return Ok(Sent::TooBig(reason));
        }
        let message = PublishMessage::build()
            .payload(payload)
            .headers(self.headers(&batch));
        let sent = Instant::now();
        let subject = self.subject(&batch);
        let check = (
            self.installation.clone(),
            self.service_id.clone(),
            stream.clone(),
        );
        match js.send_publish(subject, message).await {
            Ok(ack) => Ok(Sent::Ack(Box::pin(async move {
                let result = match ack.await {
                    Ok(ack) if ack.duplicate => {
                        let (installation, service_id, stream) = check;
                        conflict::duplicate_is_ours(&stream, &ack, &installation, &service_id, seq)
                            .await
                            .map(|()| ack)
                            .map_err(AckFailure::NotOurs)
                    }
                    Ok(ack) => Ok(ack),
                    Err(e) => Err(AckFailure::Js(e)),
                };
                (seq, Some(sent), result)
            }))),
            Err(e) => match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => {
                    Ok(Sent::TooBig(limit.over_max_payload(size)))
                }
                PublishErrorKind::TimedOut => Err(PublishError::AckTimeout { seq }),
                _ => Err(PublishError::Client(e.to_string())),
            },
        }
    }
}

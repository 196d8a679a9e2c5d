//! One publishing session: from a connect (or a retry) to the first failure.
//!
//! JetStream: up to `max_in_flight` publishes pipelined, PubAcks taken in
//! publish order, the buffer acked up to the last confirmed `seq` after every
//! burst of acks. Core: publish a window, flush, ack.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::context::{ContextBuilder, CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use ractor::rpc::CallResult;
use ractor::ActorRef;
use tracing::{info, warn};

use super::PublishError;
use crate::buffer::BufferMsg;
use crate::settings::{NatsMode, NatsSettings};
use crate::Batch;

/// The shortest de-duplication window a stream we create gets (NATS' default).
const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

type AckFuture = Pin<Box<dyn std::future::Future<Output = (u64, Instant, AckResult)> + Send>>;
type AckResult = Result<PublishAck, async_nats::jetstream::context::PublishError>;

pub(super) struct Session {
    pub(super) client: Client,
    pub(super) settings: Arc<NatsSettings>,
    pub(super) service_id: Arc<str>,
    pub(super) buffer: ActorRef<BufferMsg>,
    /// Batches confirmed, over all sessions.
    pub(super) confirmed: Arc<AtomicU64>,
    /// The failure before this session, to say once that delivery works again.
    pub(super) recovering_from: Option<PublishError>,
}

/// A parked `Take` that has not answered yet.
type Take = BoxFuture<'static, Result<Vec<Batch>, PublishError>>;

fn take(buffer: ActorRef<BufferMsg>, max: usize) -> Take {
    Box::pin(async move {
        match buffer
            .call(|reply| BufferMsg::Take { max, reply }, None)
            .await
        {
            Ok(CallResult::Success(batches)) => Ok(batches),
            _ => Err(PublishError::BufferGone),
        }
    })
}

/// The de-duplication window a stream needs: longer than any batch can be
/// unconfirmed while its publishes are retried.
pub(super) fn duplicate_window(settings: &NatsSettings) -> Duration {
    MIN_DUPLICATE_WINDOW.max(settings.ack_timeout.saturating_mul(20))
}

/// Confirmed seqs not yet acked to the buffer: one `Ack` per quarter window
/// (or when idle, or every 100 ms) instead of one per PubAck, so the buffer
/// deletes in bigger write batches.
struct AckCoalescer {
    buffer: ActorRef<BufferMsg>,
    last: Option<u64>,
    count: usize,
    every: usize,
    since: Instant,
}

impl AckCoalescer {
    fn new(buffer: ActorRef<BufferMsg>, window: usize) -> Self {
        AckCoalescer {
            buffer,
            last: None,
            count: 0,
            every: (window / 4).max(1),
            since: Instant::now(),
        }
    }

    fn confirmed(&mut self, seq: u64) {
        self.last = Some(seq);
        self.count += 1;
    }

    fn due(&self) -> bool {
        self.count >= self.every || self.since.elapsed() >= Duration::from_millis(100)
    }

    fn flush(&mut self) -> Result<(), PublishError> {
        self.since = Instant::now();
        self.count = 0;
        match self.last.take() {
            Some(seq) => self
                .buffer
                .cast(BufferMsg::Ack(seq))
                .map_err(|_| PublishError::BufferGone),
            None => Ok(()),
        }
    }

    /// Acks what was confirmed before `error`, then hands `error` on.
    fn flush_then(&mut self, error: PublishError) -> PublishError {
        match self.flush() {
            Ok(()) => error,
            Err(gone) => gone,
        }
    }
}

impl Session {
    /// Publishes until something fails; returns what failed.
    pub(super) async fn run(mut self) -> PublishError {
        match self.settings.mode {
            NatsMode::Jetstream => self.run_jetstream().await,
            NatsMode::Core => self.run_core().await,
        }
    }

    fn subject(&self, batch: &Batch) -> String {
        format!(
            "{}.{}.{}",
            self.settings.subject_prefix, self.service_id, batch.device
        )
    }

    fn headers(&self, batch: &Batch) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", batch.msg_id(&self.service_id).as_str());
        headers.insert("Ingestor-Seq", batch.seq.to_string().as_str());
        headers
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn max_in_flight(&self) -> usize {
        self.settings.max_in_flight.max(1)
    }

    fn confirmed_one(&mut self, sent: Instant) {
        metrics::histogram!("ingestor_publish_ack_seconds").record(sent.elapsed().as_secs_f64());
        metrics::counter!("ingestor_published_total").increment(1);
        self.confirmed.fetch_add(1, Ordering::Relaxed);
        if let Some(before) = self.recovering_from.take() {
            info!(after = %before, "NATS confirms batches again");
        }
    }

    async fn run_jetstream(&mut self) -> PublishError {
        let max = self.max_in_flight();
        let js = ContextBuilder::new()
            .timeout(self.settings.ack_timeout)
            .max_ack_inflight(max)
            .backpressure_on_inflight(true)
            .build(self.client.clone());
        if let Err(e) = self.ensure_stream(&js).await {
            return e;
        }
        let mut pending: FuturesOrdered<AckFuture> = FuturesOrdered::new();
        // Read-ahead: taken from the buffer, not yet published. Up to two
        // windows, a window per Take, keeps the round trips to the buffer
        // (and its disk reads) out of the publish path. They count as in
        // flight for the buffer; a Nack puts them back like the rest.
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut parked: Option<Take> = None;
        let mut acks = AckCoalescer::new(self.buffer.clone(), max);
        loop {
            while pending.len() < max {
                let Some(batch) = ready.pop_front() else {
                    break;
                };
                match self.publish_js(&js, batch).await {
                    Ok(ack) => pending.push_back(ack),
                    Err(e) => return acks.flush_then(e),
                }
            }
            if parked.is_none() && ready.len() < 2 * max {
                parked = Some(take(self.buffer.clone(), max));
            }
            tokio::select! {
                biased;
                Some(first) = pending.next(), if !pending.is_empty() => {
                    if let Err(e) = self.confirm_burst(first, &mut pending, &mut acks) {
                        return acks.flush_then(e);
                    }
                    if pending.is_empty() || acks.due() {
                        if let Err(e) = acks.flush() {
                            return e;
                        }
                    }
                }
                taken = async {
                    match parked.as_mut() {
                        Some(take) => take.await,
                        None => std::future::pending().await,
                    }
                } => {
                    parked = None;
                    match taken {
                        Ok(batches) => ready.extend(batches),
                        Err(e) => return acks.flush_then(e),
                    }
                }
            }
        }
    }

    /// Takes every ack that is ready, in publish order, up to the first failure.
    fn confirm_burst(
        &mut self,
        first: (u64, Instant, AckResult),
        pending: &mut FuturesOrdered<AckFuture>,
        acks: &mut AckCoalescer,
    ) -> Result<(), PublishError> {
        let mut next = Some(first);
        while let Some((seq, sent, result)) = next.take() {
            match result {
                Ok(_) => {
                    self.confirmed_one(sent);
                    acks.confirmed(seq);
                }
                Err(e) => return Err(self.ack_error(seq, e)),
            }
            next = pending.next().now_or_never().flatten();
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
            PublishErrorKind::StreamNotFound => PublishError::NoStream {
                stream: self.settings.stream.clone(),
                subject: format!("{}.{}.*", self.settings.subject_prefix, self.service_id),
            },
            _ => PublishError::Rejected {
                seq,
                reason: error.to_string(),
            },
        }
    }

    async fn publish_js(
        &self,
        js: &jetstream::Context,
        batch: Batch,
    ) -> Result<AckFuture, PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        let seq = batch.seq;
        let payload = Bytes::from(batch.to_json());
        let size = payload.len();
        let message = PublishMessage::build()
            .payload(payload)
            .headers(self.headers(&batch));
        let sent = Instant::now();
        match js.send_publish(self.subject(&batch), message).await {
            Ok(ack) => Ok(Box::pin(
                std::future::IntoFuture::into_future(ack).map(move |r| (seq, sent, r)),
            )),
            Err(e) => Err(match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => PublishError::PayloadTooBig { seq, size },
                PublishErrorKind::TimedOut => PublishError::AckTimeout { seq },
                _ => PublishError::Client(e.to_string()),
            }),
        }
    }

    /// With `create_stream`: the stream exists afterwards (subjects
    /// `<prefix>.>`, a de-dup window covering any retry).
    async fn ensure_stream(&self, js: &jetstream::Context) -> Result<(), PublishError> {
        if !self.settings.create_stream {
            return Ok(());
        }
        let window = duplicate_window(&self.settings);
        let config = stream::Config {
            name: self.settings.stream.clone(),
            subjects: vec![format!("{}.>", self.settings.subject_prefix)],
            duplicate_window: window,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let stream = js.get_or_create_stream(config).await.map_err(|e| {
            let transient = matches!(
                e.kind(),
                CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable
            );
            PublishError::StreamSetup {
                stream: self.settings.stream.clone(),
                reason: e.to_string(),
                transient,
            }
        })?;
        let existing = stream.cached_info().config.duplicate_window;
        if existing < window {
            warn!(
                stream = %self.settings.stream,
                duplicate_window = ?existing,
                wanted = ?window,
                "the stream's duplicate_window is short: a batch resent after it may be stored twice"
            );
        }
        Ok(())
    }

    async fn run_core(&mut self) -> PublishError {
        let max = self.max_in_flight();
        loop {
            let batches = match take(self.buffer.clone(), max).await {
                Ok(batches) => batches,
                Err(e) => return e,
            };
            let Some(last) = batches.last().map(|b| b.seq) else {
                continue;
            };
            let sent = Instant::now();
            let count = batches.len();
            for batch in batches {
                if let Err(e) = self.publish_core(batch).await {
                    return e;
                }
            }
            match tokio::time::timeout(self.settings.ack_timeout, self.client.flush()).await {
                Ok(Ok(())) if self.connected() => {}
                Ok(Ok(())) => return PublishError::Disconnected,
                Ok(Err(e)) => return PublishError::Client(e.to_string()),
                Err(_) => return PublishError::AckTimeout { seq: last },
            }
            for _ in 0..count {
                self.confirmed_one(sent);
            }
            if self.buffer.cast(BufferMsg::Ack(last)).is_err() {
                return PublishError::BufferGone;
            }
        }
    }

    async fn publish_core(&self, batch: Batch) -> Result<(), PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        let payload = Bytes::from(batch.to_json());
        let size = payload.len();
        self.client
            .publish_with_headers(self.subject(&batch), self.headers(&batch), payload)
            .await
            .map_err(|e| match e.kind() {
                async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                    PublishError::PayloadTooBig {
                        seq: batch.seq,
                        size,
                    }
                }
                _ => PublishError::Client(e.to_string()),
            })
    }
}

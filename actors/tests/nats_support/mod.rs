//! Shared pieces of the publisher scenario tests: a nats-server per test, a
//! buffer, the monitor + publisher wired to it, a feeder of batches, and a
//! reader that takes the stream back with an ordinary consumer.
#![allow(dead_code)]

pub mod nats_server;
pub mod proxy;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use ingestor_actors::backoff::Backoff;
use ingestor_actors::buffer::{BufferActor, BufferArgs, BufferMsg, BufferStats, PushError, Store};
use ingestor_actors::monitor::{ConnectionMonitor, MonitorArguments, MonitorMsg, MonitorStatus};
use ingestor_actors::publisher::{
    Publisher, PublisherArguments, PublisherMsg, PublisherStatus, RetryPolicy,
};
use ingestor_actors::settings::{BufferSettings, NatsSettings};
use ingestor_actors::{Batch, Value};
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use nats_server::{free_port, NatsServer};

pub const SERVICE: &str = "line1-ipc";

/// `[nats]` for one server or a cluster, short timeouts for tests.
pub fn nats_settings(servers: &[String], stream: &str) -> NatsSettings {
    NatsSettings {
        servers: servers.to_vec(),
        subject_prefix: "telemetry".into(),
        stream: stream.into(),
        max_in_flight: 64,
        ack_timeout: Duration::from_secs(2),
        ..NatsSettings::default()
    }
}

pub fn test_retry() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            min: Duration::from_millis(50),
            max: Duration::from_secs(1),
        },
        rejected: Duration::from_millis(500),
    }
}

/// Polls `cond` every 50 ms until it holds or `within` passes.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ConnectionMonitor and a Publisher on `buffer`.
pub async fn start_nats_side(
    buffer: &ActorRef<BufferMsg>,
    settings: NatsSettings,
) -> (ActorRef<MonitorMsg>, ActorRef<PublisherMsg>) {
    let (publisher, _) = Actor::spawn(
        None,
        Publisher,
        PublisherArguments {
            settings: settings.clone(),
            service_id: SERVICE.into(),
            buffer: buffer.clone(),
            retry: test_retry(),
        },
    )
    .await
    .unwrap();
    let (monitor, _) = Actor::spawn(
        None,
        ConnectionMonitor,
        MonitorArguments {
            settings,
            client_name: SERVICE.into(),
            publisher: publisher.clone(),
            buffer: buffer.clone(),
            ping_interval: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    (monitor, publisher)
}

/// Buffer + ConnectionMonitor + Publisher, as the service wires them.
pub struct Pipeline {
    pub buffer: ActorRef<BufferMsg>,
    pub monitor: ActorRef<MonitorMsg>,
    pub publisher: ActorRef<PublisherMsg>,
    /// The spool's directory (a real fjall spool).
    pub data_dir: tempfile::TempDir,
}

impl Pipeline {
    /// With the default `[buffer]` settings on a fresh spool.
    pub async fn start(settings: NatsSettings) -> Self {
        Self::start_with_buffer(settings, BufferSettings::default()).await
    }

    pub async fn start_with_buffer(settings: NatsSettings, buffer: BufferSettings) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let store = Store::open(data_dir.path(), buffer).unwrap().0;
        let (buffer, _) = Actor::spawn(
            None,
            BufferActor,
            BufferArgs {
                store: store.shared(),
            },
        )
        .await
        .unwrap();
        let (monitor, publisher) = start_nats_side(&buffer, settings).await;
        Pipeline {
            buffer,
            monitor,
            publisher,
            data_dir,
        }
    }

    /// New monitor and publisher (new settings), same buffer: what a restart
    /// of the service with a fixed config does.
    pub async fn restart_nats_side(&mut self, settings: NatsSettings) {
        self.stop_nats_side().await;
        let (monitor, publisher) = start_nats_side(&self.buffer, settings).await;
        self.monitor = monitor;
        self.publisher = publisher;
    }

    /// Stops monitor and publisher, keeps the buffer.
    pub async fn stop_nats_side(&self) {
        self.monitor.stop_and_wait(None, None).await.unwrap();
        self.publisher.stop_and_wait(None, None).await.unwrap();
    }

    pub async fn stats(&self) -> BufferStats {
        ractor::call!(self.buffer, BufferMsg::Stats).unwrap()
    }

    pub async fn monitor_status(&self) -> MonitorStatus {
        ractor::call!(self.monitor, MonitorMsg::Status).unwrap()
    }

    pub async fn publisher_status(&self) -> PublisherStatus {
        ractor::call!(self.publisher, PublisherMsg::Status).unwrap()
    }

    /// Batches waiting or unconfirmed.
    pub async fn backlog(&self) -> u64 {
        let s = self.stats().await;
        s.memory_batches + s.pending + s.disk_batches
    }

    pub async fn push(&self, n: u64) {
        for i in 0..n {
            push_one(&self.buffer, i).await;
        }
    }

    pub async fn wait_drained(&self, within: Duration) {
        wait_until(within, "buffer drained", || async {
            self.backlog().await == 0
        })
        .await;
    }
}

/// A batch like a poller makes: 20 values, one device of four.
pub fn sample_batch(i: u64) -> Batch {
    let mut b = Batch::new(format!("press-{:02}", i % 4), chrono::Utc::now());
    for t in 0..20 {
        b.values
            .push((format!("tag_{t}"), Value::Float(i as f64 + t as f64 / 10.0)));
    }
    b
}

pub async fn push_one(buffer: &ActorRef<BufferMsg>, i: u64) -> u64 {
    let seq: Result<u64, PushError> = ractor::call!(buffer, |reply| BufferMsg::Push(
        sample_batch(i).into(),
        Some(reply)
    ))
    .unwrap();
    seq.unwrap()
}

/// Pushes a batch every `every` until stopped; counts what it pushed.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    pub pushed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Feeder {
    pub fn start(buffer: ActorRef<BufferMsg>, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let pushed = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), pushed.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            while !s.load(Ordering::SeqCst) {
                tick.tick().await;
                let i = p.load(Ordering::SeqCst);
                push_one(&buffer, i).await;
                p.store(i + 1, Ordering::SeqCst);
            }
        });
        Feeder { stop, pushed, task }
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::SeqCst)
    }

    /// Stops and returns how many batches were pushed.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.pushed.load(Ordering::SeqCst)
    }
}

/// Connects a plain reader client (same auth/TLS options as the settings).
pub async fn reader(settings: &NatsSettings) -> async_nats::Client {
    ingestor_actors::monitor::connect_options(settings, Duration::from_secs(5))
        .await
        .unwrap()
        .connect(settings.servers.clone())
        .await
        .unwrap()
}

/// Messages in the stream (0 when it does not exist yet).
pub async fn stream_count(client: &async_nats::Client, stream: &str) -> u64 {
    let js = jetstream::new(client.clone());
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Every message of the stream in stream order, read with an ordinary pull
/// consumer: the `Ingestor-Seq` header of each, checked against the payload.
pub async fn read_seqs(client: &async_nats::Client, stream: &str) -> Vec<u64> {
    let js = jetstream::new(client.clone());
    let mut s = js.get_stream(stream).await.unwrap();
    let total = s.info().await.unwrap().state.messages;
    let config = consumer::pull::Config {
        ack_policy: consumer::AckPolicy::None,
        deliver_policy: consumer::DeliverPolicy::All,
        num_replicas: 1,
        ..Default::default()
    };
    // Right after a failover the cluster may need a moment to place a consumer.
    let mut attempts = 0;
    let consumer: consumer::PullConsumer = loop {
        match s.create_consumer(config.clone()).await {
            Ok(c) => break c,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("create consumer: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot create a consumer on {stream}: {e}"),
        }
    };
    let mut messages = consumer.messages().await.unwrap();
    let mut seqs = Vec::with_capacity(total as usize);
    while (seqs.len() as u64) < total {
        let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("stream read stalled")
            .unwrap()
            .unwrap();
        let headers = m.headers.as_ref().expect("headers");
        let seq: u64 = headers
            .get("Ingestor-Seq")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let msg_id = headers.get("Nats-Msg-Id").unwrap().as_str().to_string();
        assert_eq!(msg_id, format!("{SERVICE}-{seq}"));
        let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            payload["seq"].as_u64(),
            Some(seq),
            "payload seq matches header"
        );
        let device = payload["device"].as_str().unwrap();
        assert_eq!(m.subject.as_str(), format!("telemetry.{SERVICE}.{device}"));
        seqs.push(seq);
    }
    seqs
}

/// `1..=n`, for comparing with what the stream holds.
pub fn all_seqs(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// Asserts the stream holds every seq 1..=n exactly once; with `ordered`,
/// also ascending. Prints a short description of any difference.
pub fn assert_exactly_once(seqs: &[u64], n: u64, ordered: bool) {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    let dups: Vec<u64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(dups.is_empty(), "duplicated seqs in the stream: {dups:?}");
    let missing: Vec<u64> = (1..=n)
        .filter(|s| sorted.binary_search(s).is_err())
        .take(20)
        .collect();
    assert!(
        missing.is_empty(),
        "seqs missing from the stream (first 20): {missing:?}"
    );
    assert_eq!(sorted.len() as u64, n, "stream holds extra seqs");
    let inversions = seqs.windows(2).filter(|w| w[0] > w[1]).count();
    if inversions > 0 {
        eprintln!("note: {inversions} places where the stream's seq order steps back");
    }
    if ordered {
        let out_of_order: Vec<(u64, u64)> = seqs
            .windows(2)
            .filter(|w| w[0] > w[1])
            .map(|w| (w[0], w[1]))
            .take(20)
            .collect();
        assert!(
            out_of_order.is_empty(),
            "seqs out of order in the stream: {out_of_order:?}"
        );
    }
}

/// What a consumer of the stream is promised (docs/reference.md §3): every seq
/// 1..=n exactly once, strictly ascending in stream order.
pub fn assert_each_once_ascending(seqs: &[u64], n: u64) {
    assert_exactly_once(seqs, n, true);
}

/// A small xorshift for random delays; seeded from the clock, the seed printed.
pub struct Rng(u64);

impl Rng {
    pub fn from_clock() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("rng seed {seed}");
        Rng(seed)
    }

    /// Uniform in `lo..hi` (milliseconds, say).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo).max(1)
    }
}

/// A stream made by the test, as a site would: subjects `telemetry.>`,
/// the given duplicate window and message size limit (-1: none).
pub async fn create_stream(
    settings: &NatsSettings,
    name: &str,
    duplicate_window: Duration,
    max_message_size: i32,
) {
    let client = reader(settings).await;
    jetstream::new(client)
        .create_stream(jetstream::stream::Config {
            name: name.into(),
            subjects: vec!["telemetry.>".into()],
            duplicate_window,
            max_message_size,
            ..Default::default()
        })
        .await
        .unwrap();
}

//! Shared pieces of the publisher scenario tests: a nats-server per test, a
//! buffer, the monitor + publisher wired to it, a feeder of batches, and a
//! reader that takes the stream back with an ordinary consumer.
#![allow(dead_code)]

pub mod nats_server;
pub mod proxy;
pub mod stream;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::backoff::Backoff;
use ingestor_actors::buffer::{BufferActor, BufferArgs, BufferMsg, BufferStats, PushError, Store};
use ingestor_actors::installation::Installation;
use ingestor_actors::monitor::{
    ConnectionMonitor, ConnectionMonitorArgs, ConnectionMonitorMsg, ConnectionMonitorStatus,
    ConnectionWatch,
};
use ingestor_actors::publisher::{
    DeliveryWatch, Publisher, PublisherArgs, PublisherMsg, PublisherStatus, RetryPolicy,
};
use ingestor_actors::settings::{BufferSettings, NatsSettings};
use ingestor_actors::{Batch, Value};
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use nats_server::{cluster, free_port, users, NatsServer};
#[allow(unused_imports)]
pub use stream::*;

pub const SERVICE: &str = "line1-ipc";

/// The installation id of every pipeline of the rig (one `data_dir` that
/// restarts keep): what its messages carry in `Ingestor-Installation`.
pub const INSTALLATION: &str = "0123456789abcdef0123456789abcdef";

pub fn rig_installation() -> Installation {
    Installation::parse(INSTALLATION).unwrap()
}

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

/// A ConnectionMonitor and a Publisher on `buffer`, the monitor writing
/// `connection`, the Publisher `delivery`.
pub async fn start_nats_side(
    buffer: &ActorRef<BufferMsg>,
    connection: &ConnectionWatch,
    delivery: &DeliveryWatch,
    settings: NatsSettings,
) -> (ActorRef<ConnectionMonitorMsg>, ActorRef<PublisherMsg>) {
    start_nats_side_with(buffer, connection, delivery, settings, test_retry()).await
}

/// `start_nats_side` with the Publisher retrying by `retry`.
pub async fn start_nats_side_with(
    buffer: &ActorRef<BufferMsg>,
    connection: &ConnectionWatch,
    delivery: &DeliveryWatch,
    settings: NatsSettings,
    retry: RetryPolicy,
) -> (ActorRef<ConnectionMonitorMsg>, ActorRef<PublisherMsg>) {
    let (publisher, _) = Actor::spawn(
        None,
        Publisher,
        PublisherArgs {
            settings: settings.clone(),
            service_id: SERVICE.into(),
            installation: rig_installation(),
            replaces: None,
            buffer: buffer.clone(),
            retry,
            connection: connection.subscribe(),
            delivery: delivery.clone(),
        },
    )
    .await
    .unwrap();
    let (monitor, _) = Actor::spawn(
        None,
        ConnectionMonitor,
        ConnectionMonitorArgs {
            settings,
            client_name: SERVICE.into(),
            connection: connection.clone(),
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
    pub monitor: ActorRef<ConnectionMonitorMsg>,
    pub publisher: ActorRef<PublisherMsg>,
    /// The connection state, as the supervisor keeps it across restarts.
    pub connection: ConnectionWatch,
    /// The delivery state, as the service keeps it across restarts.
    pub delivery: DeliveryWatch,
    /// The spool's directory (a real fjall spool).
    pub data_dir: tempfile::TempDir,
}

impl Pipeline {
    /// With the default `[buffer]` settings on a fresh spool.
    pub async fn start(settings: NatsSettings) -> Self {
        Self::start_with_buffer(settings, BufferSettings::default()).await
    }

    pub async fn start_with_buffer(settings: NatsSettings, buffer: BufferSettings) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), settings, buffer).await
    }

    /// On the spool in `data_dir` (a restart on what an earlier run left).
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        settings: NatsSettings,
        buffer: BufferSettings,
    ) -> Self {
        let store = Store::open(data_dir.path(), buffer).unwrap().0;
        let connection = ConnectionWatch::new();
        let delivery = DeliveryWatch::new(settings.ack_timeout);
        let (buffer, _) = Actor::spawn(
            None,
            BufferActor,
            BufferArgs {
                store: store.shared().expect("disk thread"),
                delivery: delivery.subscribe(),
            },
        )
        .await
        .unwrap();
        let (monitor, publisher) = start_nats_side(&buffer, &connection, &delivery, settings).await;
        Pipeline {
            buffer,
            monitor,
            publisher,
            connection,
            delivery,
            data_dir,
        }
    }

    /// New monitor and publisher (new settings), same buffer: what a restart
    /// of the service with a fixed config does.
    pub async fn restart_nats_side(&mut self, settings: NatsSettings) {
        self.restart_nats_side_with(settings, test_retry()).await;
    }

    /// `restart_nats_side` with the Publisher retrying by `retry` (the
    /// product's `RetryPolicy::default()` where a test measures timing).
    pub async fn restart_nats_side_with(&mut self, settings: NatsSettings, retry: RetryPolicy) {
        self.stop_nats_side().await;
        let (monitor, publisher) = start_nats_side_with(
            &self.buffer,
            &self.connection,
            &self.delivery,
            settings,
            retry,
        )
        .await;
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

    pub async fn monitor_status(&self) -> ConnectionMonitorStatus {
        ractor::call!(self.monitor, ConnectionMonitorMsg::Status).unwrap()
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
    ingestor_actors::nats::connect_options(settings, Duration::from_secs(5))
        .await
        .unwrap()
        .connect(settings.servers.clone())
        .await
        .unwrap()
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

//! Drain benchmark: 500 k batches (20 values each) prefilled on disk, drained
//! through BufferActor + ConnectionMonitor + Publisher into a fresh
//! nats-server; then, in the same run, a bare async-nats JetStream publisher
//! sends the same payloads with the same in-flight window to another fresh
//! server. Prints `drain_ratio_vs_bare_jetstream: R` and both rates, and
//! `fence_cost_ns_per_publish` (the publisher's fence: a clock read per
//! publish and an age check of the oldest in flight).
//!
//! `cargo bench --bench drain` (env `DRAIN_BATCHES` overrides the count;
//! without `--bench`, as under `cargo test --all-targets`, 1 000 batches).

#[allow(dead_code)]
#[path = "../tests/publisher_rig/nats_server.rs"]
mod nats_server;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::ContextBuilder, message::PublishMessage};
use async_nats::HeaderMap;
use bytesize::ByteSize;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use ingestor_actors::buffer::{BufferActor, BufferArgs, BufferMsg, BufferStats, Lease, Store};
use ingestor_actors::installation::Installation;
use ingestor_actors::monitor::{
    ConnectionMonitor, ConnectionMonitorArgs, ConnectionWatch, DEFAULT_PING_INTERVAL,
};
use ingestor_actors::publisher::{DeliveryWatch, Publisher, PublisherArgs, RetryPolicy};
use ingestor_actors::settings::{BufferSettings, NatsSettings, PersistMode, WhenDiskFull};
use ingestor_actors::{Batch, EncodedBatch, Value};
use nats_server::NatsServer;
use ractor::Actor;

const SERVICE: &str = "bench-ipc";

fn sample_batch(i: u64) -> Batch {
    let mut b = Batch::new(format!("press-{:02}", i % 8), chrono::Utc::now());
    for t in 0..20 {
        b.values.push((
            format!("tag_{t:02}"),
            Value::Float(i as f64 * 0.25 + t as f64),
        ));
    }
    b
}

fn buffer_settings() -> BufferSettings {
    BufferSettings {
        memory_batches: 10_000,
        persist: PersistMode::Overflow,
        disk_max: ByteSize::gib(8),
        disk_min_free: ByteSize::b(0),
        when_disk_full: WhenDiskFull::DropOldest,
    }
}

fn nats_settings(url: String, prefix: &str) -> NatsSettings {
    NatsSettings {
        servers: vec![url],
        subject_prefix: prefix.into(),
        stream: prefix.to_uppercase(),
        ..NatsSettings::default()
    }
}

/// Fills a spool with `n` batches and closes it cleanly (all on disk).
fn prefill(dir: &std::path::Path, n: u64) {
    let mut store = Store::open(dir, buffer_settings()).expect("open spool").0;
    for i in 0..n {
        store.push(sample_batch(i)).expect("push");
    }
    store.close().expect("close spool");
}

async fn drain_through_publisher(dir: &std::path::Path, n: u64) -> f64 {
    let server = NatsServer::start();
    let settings = nats_settings(server.url(), "drain");
    let store = Store::open(dir, buffer_settings()).expect("reopen spool").0;
    let before = store.stats();
    assert!(before.disk_batches >= n, "prefill is on disk: {before:?}");
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
    .expect("buffer");
    let started = Instant::now();
    let (publisher, _) = Actor::spawn(
        None,
        Publisher,
        PublisherArgs {
            settings: settings.clone(),
            service_id: SERVICE.into(),
            installation: Installation::generate(),
            replaces: None,
            buffer: buffer.clone(),
            retry: RetryPolicy::default(),
            connection: connection.subscribe(),
            delivery,
        },
    )
    .await
    .expect("publisher");
    let (monitor, _) = Actor::spawn(
        None,
        ConnectionMonitor,
        ConnectionMonitorArgs {
            settings,
            client_name: SERVICE.into(),
            connection,
            ping_interval: DEFAULT_PING_INTERVAL,
        },
    )
    .await
    .expect("monitor");
    loop {
        let s: BufferStats = ractor::call!(buffer, BufferMsg::Stats).expect("stats");
        if s.memory_batches + s.pending + s.disk_batches == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    monitor.stop_and_wait(None, None).await.ok();
    publisher.stop_and_wait(None, None).await.ok();
    buffer.stop_and_wait(None, None).await.ok();
    n as f64 / elapsed
}

/// The buffer alone: Take a window, Ack it, until empty (no NATS). Shows
/// how much of the drain time is the spool's reads and deletes.
async fn drain_buffer_only(dir: &std::path::Path, n: u64, window: usize) -> f64 {
    let store = Store::open(dir, buffer_settings()).expect("reopen spool").0;
    let (buffer, _) = Actor::spawn(
        None,
        BufferActor,
        BufferArgs {
            store: store.shared().expect("disk thread"),
            delivery: DeliveryWatch::never_delivering(),
        },
    )
    .await
    .expect("buffer");
    let started = Instant::now();
    let mut left = n;
    let lease = Lease::new(buffer.clone());
    while left > 0 {
        let batches: Vec<EncodedBatch> = ractor::call!(buffer, |reply| BufferMsg::Take {
            lease: lease.id(),
            max: window,
            reply
        })
        .expect("take");
        let mut payload_bytes = 0;
        for b in &batches {
            payload_bytes += b.payload().len();
        }
        std::hint::black_box(payload_bytes);
        let last = batches.last().map(|b| b.seq).expect("non-empty take");
        lease.ack(last).expect("ack");
        left = left.saturating_sub(batches.len() as u64);
    }
    let _: BufferStats = ractor::call!(buffer, BufferMsg::Stats).expect("stats");
    let rate = n as f64 / started.elapsed().as_secs_f64();
    buffer.stop_and_wait(None, None).await.ok();
    rate
}

async fn bare_jetstream(n: u64, max_in_flight: usize, pre_encoded: bool) -> f64 {
    let server = NatsServer::start();
    let settings = nats_settings(server.url(), "bare");
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = ContextBuilder::new()
        .timeout(settings.ack_timeout)
        .max_ack_inflight(max_in_flight)
        .backpressure_on_inflight(true)
        .build(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: settings.stream.clone(),
        subjects: vec!["bare.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("stream");
    // The same batches the Publisher sends, in memory: a bare publisher
    // serializes each as it goes, as any application would (with
    // `pre_encoded`, everything is serialized before the clock starts).
    let batches: Vec<Batch> = (0..n)
        .map(|i| {
            let mut b = sample_batch(i);
            b.seq = i + 1;
            b
        })
        .collect();
    let encode = |b: &Batch| {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", b.msg_id(SERVICE).as_str());
        h.insert("Ingestor-Seq", b.seq.to_string().as_str());
        h.insert("Ingestor-Installation", "0123456789abcdef0123456789abcdef");
        (
            format!("bare.{SERVICE}.{}", b.device),
            h,
            bytes::Bytes::from(b.to_json()),
        )
    };
    let encoded: Vec<(String, HeaderMap, bytes::Bytes)> = if pre_encoded {
        batches.iter().map(encode).collect()
    } else {
        Vec::new()
    };
    let mut encoded = encoded.into_iter();
    let started = Instant::now();
    let mut pending: FuturesOrdered<
        <jetstream::context::PublishAckFuture as std::future::IntoFuture>::IntoFuture,
    > = FuturesOrdered::new();
    for batch in &batches {
        let (subject, headers, payload) = match encoded.next() {
            Some(ready) => ready,
            None => encode(batch),
        };
        if pending.len() >= max_in_flight {
            pending.next().await.expect("ack").expect("acked");
        }
        let msg = PublishMessage::build().payload(payload).headers(headers);
        let ack = js.send_publish(subject, msg).await.expect("publish");
        pending.push_back(std::future::IntoFuture::into_future(ack));
    }
    while let Some(ack) = pending.next().await {
        ack.expect("acked");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// What the publisher's fence adds per publish: the clock read when a
/// publish joins the window and the check of the oldest one's age.
fn fence_ns_per_publish() -> f64 {
    let n = 1_000_000u32;
    let fence = Duration::from_secs(1);
    let mut sent = std::collections::VecDeque::with_capacity(256);
    let started = Instant::now();
    let mut fenced = 0u32;
    for _ in 0..n {
        if sent.len() == 256 {
            sent.pop_front();
        }
        sent.push_back(Instant::now());
        fenced += u32::from(sent.front().is_some_and(|t: &Instant| t.elapsed() >= fence));
    }
    std::hint::black_box(fenced);
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it: then a small smoke run only.
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("DRAIN_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 500_000 } else { 1_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let window = NatsSettings::default().max_in_flight;
    // Two rounds, alternating, best of each: this machine is shared, and a
    // burst of someone else's work should not decide the ratio.
    let mut publisher_rate: f64 = 0.0;
    let mut bare_rate: f64 = 0.0;
    for round in 1..=2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        prefill(dir.path(), n);
        println!(
            "round {round}: prefill {n} batches on disk in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let p = runtime.block_on(drain_through_publisher(dir.path(), n));
        let b = runtime.block_on(bare_jetstream(n, window, false));
        println!("round {round}: publisher {p:.0}/s, bare {b:.0}/s");
        publisher_rate = publisher_rate.max(p);
        bare_rate = bare_rate.max(b);
    }
    let pre_encoded_rate = runtime.block_on(bare_jetstream(n, window, true));
    let dir = tempfile::tempdir().expect("tempdir");
    prefill(dir.path(), n);
    let buffer_rate = runtime.block_on(drain_buffer_only(dir.path(), n, window));
    println!("drain_publisher_batches_per_s: {publisher_rate:.0}");
    println!("bare_jetstream_batches_per_s: {bare_rate:.0}");
    println!("bare_jetstream_pre_encoded_batches_per_s: {pre_encoded_rate:.0}");
    println!("buffer_only_take_encode_ack_batches_per_s: {buffer_rate:.0}");
    let fence_ns = fence_ns_per_publish();
    println!(
        "fence_cost_ns_per_publish: {fence_ns:.0} ({:.2} % of a drained batch's time)",
        fence_ns * publisher_rate / 1e7
    );
    println!(
        "drain_ratio_vs_bare_jetstream: {:.3}",
        publisher_rate / bare_rate
    );
}

//! catchup: how long after an outage until the historian has fresh data.
//!
//! Ours: a spool prefilled with a backlog (default 300 000 batches of 20
//! values: ten minutes at 500 batches/s) with the library's `Store`, then the
//! real `ingestor run` on it with NATS down and live devices on `ingestor
//! simulate` (default 100 devices × 20 f32 tags every 100 ms: 1 000
//! batches/s, one Modbus read each). Once every device is up, a fresh
//! nats-server starts on the configured port; the clock runs from the moment
//! it listens until `/health`'s `backlog` is below one second of live data.
//!
//! Bare, in the same run, against another fresh server: one async-nats
//! JetStream publisher with the same window (`max_in_flight`), the same
//! subjects and headers (`Nats-Msg-Id`, `Ingestor-Seq`, `Ingestor-Installation`) and payloads of the
//! same shape: the backlog ours had when NATS returned, available at once,
//! plus live batches arriving at the same rate; its clock runs from its
//! server listening until fewer than one second of live data are
//! unacknowledged. Both clocks include connecting and creating the stream.
//!
//! Prints `catchup_s: S` (ours) and `catchup_ratio_vs_bare: R` (bare ÷ ours;
//! goal ≥ 0.85), with the rates behind them.
//!
//! `cargo bench --workspace --bench catchup`; without `--bench` (as under
//! `cargo test --all-targets`) a smoke run: 5 000 batches, 200 live/s.
//! Env: `CATCHUP_BATCHES`, `CATCHUP_DEVICES`, `CATCHUP_INTERVAL_MS`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::ContextBuilder, message::PublishMessage};
use async_nats::HeaderMap;
use bytesize::ByteSize;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use ingestor_actors::buffer::Store;
use ingestor_actors::settings::{BufferSettings, NatsSettings};
use ingestor_actors::{Batch, Value};
use support::{NatsServer, SERVICE};

const TAGS: usize = 20;
const PREFIX: &str = "telemetry";

struct Plan {
    backlog: u64,
    devices: usize,
    interval: Duration,
}

impl Plan {
    /// Live batches per second.
    fn live_rate(&self) -> f64 {
        self.devices as f64 / self.interval.as_secs_f64()
    }
}

fn device_id(i: usize) -> String {
    format!("dev-{i:03}")
}

/// A batch shaped like a live one (same device ids, tag names, value kind).
fn sample_batch(plan: &Plan, i: u64, ts: chrono::DateTime<chrono::Utc>) -> Batch {
    let mut b = Batch::new(device_id(i as usize % plan.devices), ts);
    for t in 0..TAGS {
        let v = (i % 10_000) as f32 * 0.37 + t as f32 * 1.5;
        b.values.push((format!("v{t:02}"), Value::Float(v as f64)));
    }
    b
}

fn config(plan: &Plan, data: &Path, sim: &str, nats: &str, metrics: &str) -> String {
    let mut text = format!(
        "[service]\nid = \"{SERVICE}\"\ndata_dir = \"{}\"\n\n[nats]\nservers = [\"{nats}\"]\n\
         subject_prefix = \"{PREFIX}\"\n\n[buffer]\ndisk_max = \"8GiB\"\n\n[metrics]\nlisten = \"{metrics}\"\n",
        data.display()
    );
    for d in 0..plan.devices {
        text.push_str(&format!(
            "\n[[devices]]\nid = \"{}\"\naddress = \"{sim}\"\nunit = {}\npoll_interval = \"{}ms\"\ntimeout = \"500ms\"\n",
            device_id(d),
            d % 247 + 1,
            plan.interval.as_millis()
        ));
        for t in 0..TAGS {
            text.push_str(&format!(
                "[[devices.tags]]\nname = \"v{t:02}\"\nregister = \"holding\"\naddress = {}\ntype = \"f32\"\n",
                t * 2
            ));
        }
    }
    text
}

/// The backlog on disk: ten minutes' worth at 500 batches/s by default,
/// timestamped as if it had piled up over that time; closed cleanly.
fn prefill(plan: &Plan, data: &Path) {
    let settings = BufferSettings {
        disk_max: ByteSize::gib(8),
        ..BufferSettings::default()
    };
    let mut store = Store::open(data, settings).expect("open spool").0;
    let start = chrono::Utc::now() - chrono::Duration::milliseconds(plan.backlog as i64 * 2);
    for i in 0..plan.backlog {
        let ts = start + chrono::Duration::milliseconds(i as i64 * 2);
        store.push(sample_batch(plan, i, ts)).expect("push");
    }
    store.close().expect("close spool");
}

struct Ours {
    seconds: f64,
    backlog_at_return: u64,
    reconnect_s: f64,
    published: f64,
    live_rate: f64,
}

fn run_ours(plan: &Plan) -> Ours {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let t = Instant::now();
    prefill(plan, &data);
    println!(
        "prefill: {} batches on disk in {:.1} s",
        plan.backlog,
        t.elapsed().as_secs_f64()
    );
    let sim = format!("127.0.0.1:{}", support::free_port());
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let mut nats = NatsServer::prepare("catchup", support::free_port(), "");
    let path = dir.path().join("ingestor.toml");
    std::fs::write(&path, config(plan, &data, &sim, &nats.url(), &metrics)).expect("config");
    let mut simulator = support::simulator(&path, &sim);
    let mut service = support::ingestor(&path, &metrics, &dir.path().join("service.log"));
    // NATS is down: live batches pile up behind the backlog.
    support::wait_until(Duration::from_secs(120), "every device up", || {
        let h = support::health(&metrics);
        h["devices_up"]
            .as_u64()
            .is_some_and(|n| n as usize == plan.devices)
            && h["backlog"].as_u64().is_some_and(|b| b > plan.backlog)
    });
    let batches_before = support::metric(&metrics, "ingestor_batches_total");
    let backlog_at_return = support::health(&metrics)["backlog"]
        .as_u64()
        .expect("backlog");
    let live_threshold = plan.live_rate() as u64;
    nats.launch();
    let started = Instant::now();
    let mut reconnect_s = None;
    loop {
        let h = support::health(&metrics);
        if reconnect_s.is_none() && h["nats"] == "connected" {
            reconnect_s = Some(started.elapsed().as_secs_f64());
        }
        if h["backlog"].as_u64().is_some_and(|b| b < live_threshold) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "no catch-up within an hour: {h}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let published = support::metric(&metrics, "ingestor_published_total");
    let live = support::metric(&metrics, "ingestor_batches_total") - batches_before;
    service.term(Duration::from_secs(60));
    simulator.term(Duration::from_secs(5));
    Ours {
        seconds,
        backlog_at_return,
        reconnect_s: reconnect_s.unwrap_or(seconds),
        published,
        live_rate: live / seconds,
    }
}

/// The bare publisher: `backlog` batches ready at once plus live ones at
/// `plan.live_rate()`; seconds until fewer than one second of live data
/// are unacknowledged.
async fn run_bare(plan: &Plan, backlog: u64, window: usize) -> (f64, u64) {
    let server = NatsServer::start();
    let started = Instant::now();
    let settings = NatsSettings::default();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = ContextBuilder::new()
        .timeout(settings.ack_timeout)
        .max_ack_inflight(window)
        .backpressure_on_inflight(true)
        .build(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: settings.stream.clone(),
        subjects: vec![format!("{PREFIX}.>")],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("stream");
    let rate = plan.live_rate();
    let threshold = rate as u64;
    let backlog_start = chrono::Utc::now() - chrono::Duration::milliseconds(backlog as i64 * 2);
    let mut pending: FuturesOrdered<
        <jetstream::context::PublishAckFuture as std::future::IntoFuture>::IntoFuture,
    > = FuturesOrdered::new();
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        let available = backlog + (rate * started.elapsed().as_secs_f64()) as u64;
        if available - acked < threshold {
            break;
        }
        if sent < available && pending.len() < window {
            // Serialized as it goes, as the publisher does and any
            // application would.
            let ts = if sent < backlog {
                backlog_start + chrono::Duration::milliseconds(sent as i64 * 2)
            } else {
                chrono::Utc::now()
            };
            let mut b = sample_batch(plan, sent, ts);
            b.seq = sent + 1;
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", b.msg_id(SERVICE).as_str());
            h.insert("Ingestor-Seq", b.seq.to_string().as_str());
            h.insert("Ingestor-Installation", "0123456789abcdef0123456789abcdef");
            let subject = format!("{PREFIX}.{SERVICE}.{}", b.device);
            let msg = PublishMessage::build()
                .payload(bytes::Bytes::from(b.to_json()))
                .headers(h);
            let ack = js.send_publish(subject, msg).await.expect("publish");
            pending.push_back(std::future::IntoFuture::into_future(ack));
            sent += 1;
        } else if let Some(ack) = pending.next().await {
            ack.expect("acked");
            acked += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    (started.elapsed().as_secs_f64(), acked)
}

fn main() {
    let full = support::full_run();
    let plan = Plan {
        backlog: support::env_or("CATCHUP_BATCHES", if full { 300_000 } else { 5_000 }),
        devices: support::env_or("CATCHUP_DEVICES", if full { 100 } else { 20 }),
        interval: Duration::from_millis(support::env_or("CATCHUP_INTERVAL_MS", 100)),
    };
    assert!(
        plan.devices > 0 && !plan.interval.is_zero(),
        "no live devices"
    );
    println!(
        "catchup: backlog {} batches, live {} devices every {:?} ({:.0}/s); load average {}",
        plan.backlog,
        plan.devices,
        plan.interval,
        plan.live_rate(),
        support::load_average()
    );
    let ours = run_ours(&plan);
    let window = NatsSettings::default().max_in_flight;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (bare_s, bare_acked) = runtime.block_on(run_bare(&plan, ours.backlog_at_return, window));
    println!("catchup_backlog_at_return: {}", ours.backlog_at_return);
    println!("catchup_reconnect_s: {:.2}", ours.reconnect_s);
    println!("catchup_live_batches_per_s: {:.0}", ours.live_rate);
    println!(
        "catchup_published_per_s: {:.0} (bare {:.0})",
        ours.published / ours.seconds,
        bare_acked as f64 / bare_s
    );
    println!("catchup_bare_s: {bare_s:.2}");
    println!("catchup_s: {:.2}", ours.seconds);
    println!("catchup_ratio_vs_bare: {:.3}", bare_s / ours.seconds);
}

//! The bare side of the footprint bench (`FOOTPRINT_ROLE=bare`): the least
//! a program must do to make the same Modbus reads and JetStream publishes
//! as the ingestor on the same schedule, and nothing else (no buffer, no
//! metrics, no supervision).
//!
//! Invariants: one TCP connection to the simulator, requests never overlap
//! on it; each device polls once a second, devices spread over the second;
//! every poll is one JSON payload published with `Nats-Msg-Id`,
//! `Ingestor-Seq` and `Ingestor-Installation`, at most `max_in_flight` unacknowledged. Prints
//! "requests R publishes P" (running totals) four times a second on stdout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::ContextBuilder, message::PublishMessage};
use async_nats::HeaderMap;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use tokio::sync::{mpsc, Mutex};
use tokio_modbus::client::{tcp, Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;

use super::{device_id, PREFIX, TAGS};
use crate::support::SERVICE;

/// One read of the plan: function code, start, count.
#[derive(Clone, Copy)]
struct Read {
    fc: u8,
    start: u16,
    count: u16,
}

/// What one read returned.
enum Data {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

enum Val {
    F(f64),
    U(u64),
    I(i64),
    B(bool),
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::F(v) => s.serialize_f64(*v),
            Val::U(v) => s.serialize_u64(*v),
            Val::I(v) => s.serialize_i64(*v),
            Val::B(v) => s.serialize_bool(*v),
        }
    }
}

struct Values(Vec<(&'static str, Val)>);

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    seq: u64,
    device: &'a str,
    ts: String,
    values: Values,
}

fn parse_plan(text: &str) -> Vec<Read> {
    text.split(';')
        .map(|r| {
            let n: Vec<u16> = r.split(':').map(|x| x.parse().expect("plan")).collect();
            Read {
                fc: n[0] as u8,
                start: n[1],
                count: n[2],
            }
        })
        .collect()
}

fn fc_of(register: &str) -> u8 {
    match register {
        "coil" => 1,
        "discrete" => 2,
        "holding" => 3,
        _ => 4,
    }
}

/// The 20 values from the plan's answers (word-swapped 32-bit values).
fn decode(plan: &[Read], data: &[Data]) -> Values {
    let mut out = Vec::with_capacity(TAGS.len());
    for (name, register, address, ty) in TAGS {
        let span = if ty == "f32" || ty == "u32" { 2 } else { 1 };
        let Some((read, d)) = plan.iter().zip(data).find(|(r, _)| {
            r.fc == fc_of(register) && r.start <= address && address + span <= r.start + r.count
        }) else {
            continue;
        };
        let at = usize::from(address - read.start);
        let v = match (d, ty) {
            (Data::Bits(b), _) => Val::B(b[at]),
            (Data::Words(w), "f32") => {
                Val::F(f32::from_bits((u32::from(w[at + 1]) << 16) | u32::from(w[at])) as f64)
            }
            (Data::Words(w), "u32") => {
                Val::U(u64::from((u32::from(w[at + 1]) << 16) | u32::from(w[at])))
            }
            (Data::Words(w), _) => Val::I(i64::from(w[at] as i16)),
        };
        out.push((name, v));
    }
    Values(out)
}

async fn read(ctx: &mut Context, r: Read) -> Option<Data> {
    let timeout = Duration::from_millis(500);
    match r.fc {
        1 => tokio::time::timeout(timeout, ctx.read_coils(r.start, r.count))
            .await
            .ok()?
            .ok()?
            .ok()
            .map(Data::Bits),
        2 => tokio::time::timeout(timeout, ctx.read_discrete_inputs(r.start, r.count))
            .await
            .ok()?
            .ok()?
            .ok()
            .map(Data::Bits),
        3 => tokio::time::timeout(timeout, ctx.read_holding_registers(r.start, r.count))
            .await
            .ok()?
            .ok()?
            .ok()
            .map(Data::Words),
        _ => tokio::time::timeout(timeout, ctx.read_input_registers(r.start, r.count))
            .await
            .ok()?
            .ok()?
            .ok()
            .map(Data::Words),
    }
}

type Outgoing = (String, u64, Vec<u8>);

async fn poll_device(
    d: usize,
    devices: usize,
    plan: Arc<Vec<Read>>,
    link: Arc<Mutex<Context>>,
    out: mpsc::Sender<Outgoing>,
    seq: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
) {
    let id = device_id(d);
    let offset = Duration::from_secs(1) * d as u32 / devices as u32;
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + offset, Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let ts = chrono::Utc::now();
        let mut data = Vec::with_capacity(plan.len());
        {
            let mut ctx = link.lock().await;
            ctx.set_slave(Slave(d as u8 + 1));
            for r in plan.iter() {
                requests.fetch_add(1, Ordering::Relaxed);
                match read(&mut ctx, *r).await {
                    Some(answer) => data.push(answer),
                    None => break,
                }
            }
        }
        if data.len() != plan.len() {
            continue;
        }
        let seq = seq.fetch_add(1, Ordering::Relaxed);
        let payload = Payload {
            seq,
            device: &id,
            ts: ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            values: decode(&plan, &data),
        };
        let body = serde_json::to_vec(&payload).expect("json");
        let subject = format!("{PREFIX}.{SERVICE}.{id}");
        if out.send((subject, seq, body)).await.is_err() {
            return;
        }
    }
}

async fn publish(
    js: jetstream::Context,
    mut rx: mpsc::Receiver<Outgoing>,
    window: usize,
    published: Arc<AtomicU64>,
) {
    let mut acks = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(ack) = acks.next(), if !acks.is_empty() => {
                let ack: Result<_, _> = ack;
                if ack.is_ok() {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }
            msg = rx.recv(), if acks.len() < window => {
                let Some((subject, seq, body)) = msg else { return };
                let mut h = HeaderMap::new();
                h.insert("Nats-Msg-Id", format!("{SERVICE}-{seq}").as_str());
                h.insert("Ingestor-Seq", seq.to_string().as_str());
                h.insert("Ingestor-Installation", "0123456789abcdef0123456789abcdef");
                let msg = PublishMessage::build().payload(body.into()).headers(h);
                if let Ok(ack) = js.send_publish(subject, msg).await {
                    acks.push(std::future::IntoFuture::into_future(ack));
                }
            }
        }
    }
}

pub fn main() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let sim = env("FOOTPRINT_SIM");
    let nats = env("FOOTPRINT_NATS");
    let devices: usize = env("FOOTPRINT_DEVICES").parse().expect("devices");
    let plan = Arc::new(parse_plan(&env("FOOTPRINT_PLAN")));
    // The same runtime as `ingestor run`: multi-threaded, default workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let window = ingestor_actors::settings::NatsSettings::default().max_in_flight;
        let client = async_nats::connect(nats).await.expect("connect nats");
        let js = ContextBuilder::new().max_ack_inflight(window).build(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: "TELEMETRY".into(),
            subjects: vec![format!("{PREFIX}.>")],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("stream");
        let stream = tokio::net::TcpStream::connect(&sim)
            .await
            .expect("connect simulator");
        let _ = stream.set_nodelay(true);
        let link = Arc::new(Mutex::new(tcp::attach(stream)));
        let (tx, rx) = mpsc::channel(1024);
        let (seq, requests, published) = (
            Arc::new(AtomicU64::new(1)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        for d in 0..devices {
            tokio::spawn(poll_device(
                d,
                devices,
                plan.clone(),
                link.clone(),
                tx.clone(),
                seq.clone(),
                requests.clone(),
            ));
        }
        tokio::spawn(publish(js, rx, window, published.clone()));
        let mut report = tokio::time::interval(Duration::from_millis(250));
        loop {
            report.tick().await;
            println!(
                "requests {} publishes {}",
                requests.load(Ordering::Relaxed),
                published.load(Ordering::Relaxed)
            );
        }
    });
}

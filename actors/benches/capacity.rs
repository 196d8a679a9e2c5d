//! Outage capacity: how many batches fit in a GiB of spool, the plant
//! manager's question ("how long an outage can this PC ride out?").
//!
//! `cargo bench -p ingestor-actors --bench capacity` writes an outage
//! backlog of `CAPACITY_BATCHES` (default 1 000 000) batches into a fresh
//! spool, for two device mixes:
//! - `demo`: the devices of `config/demo.toml`, polled round-robin, one
//!   batch per device per second with every tag (values as `ingestor
//!   simulate` serves them: slowly moving numbers, flags, strings);
//! - `f32x20`: one device of 20 `f32` tags, slowly moving values.
//!
//! and prints per mix:
//! - `spool_bytes_per_batch_<mix>`: allocated bytes of every spool file
//!   (tables, journal, metadata) divided by the batches, after the backlog
//!   was written, the store closed, reopened (as after a restart during
//!   the outage) and left alone until its size stopped changing ("settled");
//! - the batch's own NATS payload size beside it, for the ratio;
//! - `outage_hours_per_gib_100x20_1hz` (from the `f32x20` mix): hours of
//!   100 devices polled once a second that fit in 1 GiB.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it writes 2 000
//! batches, to keep the bench compiling and running.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ingestor_actors::buffer::space::allocated_bytes;
use ingestor_actors::buffer::Store;
use ingestor_actors::poller::encode::EngineeringValue;
use ingestor_actors::settings::{
    BufferSettings, DeviceSettings, PersistMode, Settings, TagType, WhenDiskFull,
};
use ingestor_actors::simulator::simulated_value;
use ingestor_actors::{Batch, EncodedBatch, Value};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// fjall turns its journal over once past 64 MB, at the next memtable
/// flush (8 MiB of `batches` later at most).
const JOURNAL_TURNOVER: f64 = 64e6 + 8.0 * MIB;

fn settings() -> BufferSettings {
    BufferSettings {
        // Everything goes to disk, as in an outage.
        memory_batches: 1,
        persist: PersistMode::Overflow,
        disk_max: bytesize::ByteSize::gib(100),
        disk_min_free: bytesize::ByteSize::b(0),
        when_disk_full: WhenDiskFull::DropOldest,
    }
}

/// The poller's value of `tag` as the simulator serves it at `t`.
fn value(tag: &ingestor_actors::settings::TagSettings, t: u64) -> Value {
    let scaled = tag.scale.is_some() || tag.offset.is_some();
    match simulated_value(tag, t) {
        EngineeringValue::Bool(b) => Value::Bool(b),
        EngineeringValue::Text(s) => Value::Str(s),
        EngineeringValue::Number(x) => match tag.kind {
            TagType::F32 | TagType::F64 => Value::Float(x),
            _ if scaled => Value::Float(x),
            TagType::I16 | TagType::I32 | TagType::I64 => Value::Int(x.round() as i64),
            _ => Value::UInt(x.round() as u64),
        },
    }
}

/// Batch `n` of a plant of `devices` polled round-robin once a second.
fn batch(devices: &[DeviceSettings], n: u64, t0: i64) -> Batch {
    let d = &devices[(n % devices.len() as u64) as usize];
    let t = (t0 as u64) + n / devices.len() as u64;
    let ts = chrono::DateTime::from_timestamp(t as i64, 123_456_000).unwrap_or_default();
    let mut b = Batch::new(&d.id, ts);
    b.values = d
        .tags
        .iter()
        .map(|tag| (tag.name.clone(), value(tag, t)))
        .collect();
    b
}

fn demo_devices() -> Vec<DeviceSettings> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml");
    let text = std::fs::read_to_string(&path).expect("config/demo.toml");
    let settings: Settings = toml::from_str(&text).expect("config/demo.toml parses");
    settings.devices
}

fn f32_device() -> Vec<DeviceSettings> {
    let mut text = String::from("id = \"meter-0001\"\naddress = \"127.0.0.1:502\"\n");
    for i in 0..20 {
        text.push_str(&format!(
            "[[tags]]\nname = \"value_{i:02}\"\nregister = \"input\"\naddress = {}\ntype = \"f32\"\n",
            i * 2
        ));
    }
    vec![toml::from_str(&text).expect("f32 device")]
}

/// Allocated bytes of the spool once it stopped changing for 2 s (at most 60 s).
fn settled(dir: &Path) -> u64 {
    let spool = dir.join("spool");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = allocated_bytes(&spool).unwrap_or(0);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(200));
        let now = allocated_bytes(&spool).unwrap_or(0);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// Allocated bytes of the spool's journal files.
fn journal_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join("spool")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jnl"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// What one mix measured.
struct Run {
    /// Settled spool bytes per batch.
    bytes: f64,
    /// Of which the journal's (bytes, not per batch).
    journal: u64,
    /// The largest journal seen while the backlog was written.
    journal_peak: u64,
    /// Payload bytes per batch.
    payload: f64,
}

impl Run {
    /// Spool bytes per batch without the journal.
    fn tables(&self, n: u64) -> f64 {
        self.bytes - self.journal as f64 / n as f64
    }
}

/// Writes `n` batches of `devices`.
fn run(devices: &[DeviceSettings], n: u64) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let t0 = 1_796_000_000;
    let mut payload = 0u64;
    let mut journal_peak = 0;
    {
        let (mut store, _) = Store::open(dir.path(), settings()).expect("open");
        for i in 0..n {
            let encoded = EncodedBatch::encode(&batch(devices, i, t0));
            payload += encoded.payload().len() as u64;
            store.push(encoded).expect("push");
            if i % 10_000 == 0 {
                journal_peak = journal_peak.max(journal_bytes(dir.path()));
            }
        }
        store.close().expect("close");
    }
    let (mut store, _) = Store::open(dir.path(), settings()).expect("reopen");
    assert_eq!(
        store.stats().disk_batches,
        n,
        "the reopened spool holds every batch"
    );
    let bytes = settled(dir.path());
    let journal = journal_bytes(dir.path());
    store.close().expect("close");
    Run {
        bytes: bytes as f64 / n as f64,
        journal,
        journal_peak,
        payload: payload as f64 / n as f64,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("CAPACITY_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 });
    let mut f32 = None;
    for (mix, devices) in [("demo", demo_devices()), ("f32x20", f32_device())] {
        let started = Instant::now();
        let r = run(&devices, n);
        println!("spool_bytes_per_batch_{mix}: {:.1}", r.bytes);
        println!(
            "  {mix}: {n} batches of {} device(s), payload {:.1} bytes per batch, spool/payload {:.3}, written and settled in {:.1} s; journal {:.1} MiB of it (peak {:.1} MiB while writing), tables and metadata {:.1} bytes per batch",
            devices.len(),
            r.payload,
            r.bytes / r.payload,
            started.elapsed().as_secs_f64(),
            r.journal as f64 / MIB,
            r.journal_peak as f64 / MIB,
            r.tables(n)
        );
        if mix == "f32x20" {
            f32 = Some(r);
        }
    }
    let Some(f32) = f32 else { return };
    println!("spool_bytes_per_batch: {:.1}", f32.bytes);
    // The journal is a fixed cost, not one per batch: fjall keeps the
    // writes since its last turn-over (at 64 MB, already in the tables
    // when it does) and the batches' memtable. A GiB holds that allowance
    // and then the tables' batches.
    let allowance = (f32.journal_peak as f64).max(JOURNAL_TURNOVER);
    let hours = (GIB - allowance) / f32.tables(n) / 100.0 / 3600.0;
    println!("outage_hours_per_gib_100x20_1hz: {hours:.1}");
    println!(
        "  (1 GiB less a journal allowance of {:.1} MiB, at {:.1} bytes per batch in the tables)",
        allowance / MIB,
        f32.tables(n)
    );
}

//! Buffer benchmark: our buffer against bare fjall in the same run.
//!
//! `cargo bench -p ingestor-actors --bench buffer` prints:
//! - `spool_write_ratio_vs_fjall: R`: 1 M batches of 20 values pushed through
//!   the BufferActor with `persist = "always"` (1 000 outstanding, as from
//!   1 000 devices, in `PushMany` chunks of `INLET_WINDOW` as the inlet
//!   sends them, the last one waiting for its synced reply; group commit;
//!   one `Push` per batch is printed beside it), against bare fjall inserting the same
//!   serialized bytes in write batches of 1 000 with the same fdatasync.
//! - `drain_read_ratio_vs_fjall: R`: Take(1 000) + Ack through the actor of a
//!   1 M backlog on disk, against a bare fjall range read + delete of the same
//!   keys from a remembered cursor.
//! - `backlog_rss_mib: M`: RSS of a fresh process holding 4 M batches on disk
//!   and a full 10 k ring (and the same at 1 M, for the growth).
//! - `spool_reclaim_ratio: R`: allocated bytes of the spool 60 s after a 1 M
//!   backlog drained through the actor, divided by its peak (`reclaim`).
//!
//! `BENCH_BATCHES` (default 1 000 000) and `BENCH_RSS_BATCHES` (4 000 000)
//! shrink it for a quick look; `BENCH_ONLY=drain` runs the drain lines alone,
//! `BENCH_ONLY=write` the write ratio, `BENCH_ONLY=codec` the codec line.

use std::path::Path;
use std::time::Instant;

use ingestor_actors::buffer::{
    record, BufferActor, BufferArgs, BufferMsg, Lease, Store, INLET_WINDOW,
};
use ingestor_actors::publisher::DeliveryWatch;
use ingestor_actors::settings::{BufferSettings, PersistMode, WhenDiskFull};
use ingestor_actors::{Batch, EncodedBatch, Value};
use ractor::{rpc::CallResult, Actor, ActorRef};

#[path = "buffer/bare.rs"]
mod bare;
#[path = "buffer/codec.rs"]
mod codec;
#[path = "buffer/reclaim.rs"]
mod reclaim;
#[path = "buffer/write.rs"]
mod write;

const GROUP: usize = 1_000;

/// What bare fjall writes: `GROUP` encoded records, used round.
fn records() -> Vec<Vec<u8>> {
    (1..=GROUP as u64)
        .map(|i| record::encode(&batch(i)))
        .collect()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A batch as a poller makes it, before it encodes it.
fn poll_batch(n: u64) -> Batch {
    let mut b = Batch::new(format!("device-{:03}", n % 1000), chrono::Utc::now());
    for t in 0..20 {
        b.values.push((
            format!("tag_{t:02}"),
            Value::Float(n as f64 + f64::from(t) * 0.25),
        ));
    }
    b
}

/// A batch as a poller hands it to the buffer (encoded for NATS).
fn batch(n: u64) -> EncodedBatch {
    EncodedBatch::encode(&poll_batch(n))
}

fn settings(memory: usize, persist: PersistMode) -> BufferSettings {
    BufferSettings {
        memory_batches: memory,
        persist,
        disk_max: bytesize::ByteSize::gib(100),
        disk_min_free: bytesize::ByteSize::b(0),
        when_disk_full: WhenDiskFull::DropOldest,
    }
}

async fn spawn(dir: &Path, s: BufferSettings) -> ActorRef<BufferMsg> {
    let store = Store::open(dir, s)
        .expect("open")
        .0
        .shared()
        .expect("disk thread");
    Actor::spawn(
        None,
        BufferActor,
        BufferArgs {
            store,
            delivery: DeliveryWatch::never_delivering(),
        },
    )
    .await
    .expect("spawn")
    .0
}

/// Prefills `n` batches on disk (ring of 1 so everything spills).
fn prefill(dir: &Path, n: usize) {
    let (mut store, _) = Store::open(dir, settings(GROUP, PersistMode::Overflow)).expect("open");
    for i in 1..=n as u64 {
        store.push(batch(i)).expect("push");
    }
    store.close().expect("close");
}

/// Batches/s draining through the actor; also the rates of the first and
/// last tenth, to show the drain does not decay as deletes pile up.
async fn ours_drain(dir: &Path, n: usize) -> (f64, f64, f64) {
    let buffer = spawn(dir, settings(GROUP, PersistMode::Overflow)).await;
    let start = Instant::now();
    let tenth = (n / 10).max(1);
    let (mut done, mut first, mut last_start) = (0usize, 0.0, None);
    let lease = Lease::new(buffer.clone());
    while done < n {
        let got = match buffer
            .call(
                |p| BufferMsg::Take {
                    lease: lease.id(),
                    max: GROUP,
                    reply: p,
                },
                None,
            )
            .await
        {
            Ok(CallResult::Success(b)) => b,
            other => panic!("take failed: {other:?}"),
        };
        done += got.len();
        if let Some(b) = got.last() {
            lease.ack(b.seq).expect("ack");
        }
        if first == 0.0 && done >= tenth {
            first = done as f64 / start.elapsed().as_secs_f64();
        }
        if last_start.is_none() && done >= n - tenth {
            last_start = Some((Instant::now(), done));
        }
    }
    let stats = ractor::call!(buffer, BufferMsg::Stats).expect("stats");
    assert_eq!(stats.disk_batches, 0, "drain left batches behind");
    let total = n as f64 / start.elapsed().as_secs_f64();
    let (t, d) = last_start.unwrap_or((start, 0));
    let last = (n - d) as f64 / t.elapsed().as_secs_f64().max(1e-9);
    buffer.stop(None);
    (total, first, last)
}

/// Batches/s draining the store directly (no actor), for the breakdown.
fn store_drain(dir: &Path, n: usize) -> f64 {
    let (mut store, _) = Store::open(dir, settings(GROUP, PersistMode::Overflow)).expect("open");
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let got = store.take(GROUP).expect("take");
        done += got.len();
        store.ack(got.last().expect("batches").seq).expect("ack");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Drain rates (batches/s) of `rounds` successive backlogs of `n` in one
/// spool: each round drains above the tombstones of all earlier rounds.
fn drain_rounds(dir: &Path, n: usize, rounds: usize) -> Vec<f64> {
    let (mut store, _) = Store::open(dir, settings(GROUP, PersistMode::Overflow)).expect("open");
    let mut rates = Vec::new();
    for _ in 0..rounds {
        for i in 0..n as u64 {
            store.push(batch(i)).expect("push");
        }
        store.set_deliverable(false).expect("to disk");
        store.set_deliverable(true).expect("back");
        let start = Instant::now();
        let mut done = 0;
        while done < n {
            let got = store.take(GROUP).expect("take");
            done += got.len();
            store.ack(got.last().expect("batches").seq).expect("ack");
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Child mode: open a spool holding a backlog, fill a 10 k ring, print RSS.
/// (The backlog is written by another child: a fresh process measures the
/// steady state of a service holding it, not the allocator's leftovers.)
fn rss_child(dir: &Path) {
    let (mut store, _) = Store::open(dir, settings(10_000, PersistMode::Overflow)).expect("open");
    for i in 0..10_000u64 {
        store.push(batch(i)).expect("push");
    }
    let _ = store.take(GROUP).expect("take");
    // Steady state: background flushes and compactions after the open done.
    std::thread::sleep(std::time::Duration::from_secs(3));
    println!("rss_mib {:.1}", rss_mib());
}

fn rss_in_child(n: usize) -> f64 {
    let dir = tempfile::tempdir_in(".").expect("tmp");
    let run = |mode: &str| {
        std::process::Command::new(std::env::current_exe().expect("exe"))
            .env(mode, format!("{}:{}", n, dir.path().display()))
            .output()
            .expect("child")
    };
    run("BENCH_RSS_FILL");
    let out = run("BENCH_RSS_CHILD");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("rss_mib ")?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(".")
        .expect("tmp")
}

/// The drain through the actor, bare fjall's and the store's alone, one
/// after the other.
struct Drain {
    /// Ours: all, first 10 %, last 10 %.
    ours: (f64, f64, f64),
    bare: (f64, f64, f64),
    store: f64,
}

impl Drain {
    fn measure(rt: &tokio::runtime::Runtime, n: usize) -> Drain {
        let (a, b) = (tmp("ours-drain"), tmp("bare-drain"));
        prefill(a.path(), n);
        let ours = rt.block_on(ours_drain(a.path(), n));
        let bare = bare::bare_drain(b.path(), n, &record::encode(&batch(1)));
        drop((a, b));
        let c = tmp("store-drain");
        prefill(c.path(), n);
        let store = store_drain(c.path(), n);
        Drain { ours, bare, store }
    }

    fn print_ratio(&self) {
        println!(
            "drain_read_ratio_vs_fjall: {:.3}",
            self.ours.0 / self.bare.0
        );
    }

    fn print_rates(&self) {
        let ((ours, first, last), (bare, bare_first, bare_last)) = (self.ours, self.bare);
        println!("drain batches/s: ours {ours:.0}, bare fjall {bare:.0}; ours first 10% {first:.0}, last 10% {last:.0}; bare first 10% {bare_first:.0}, last 10% {bare_last:.0}");
        println!(
            "drain batches/s through the store alone (no actor): {:.0}",
            self.store
        );
    }
}

fn main() {
    if let Ok(arg) = std::env::var("BENCH_RSS_FILL") {
        if let Some((n, dir)) = arg.split_once(':') {
            prefill(Path::new(dir), n.parse().unwrap_or(0));
        }
        return;
    }
    if let Ok(arg) = std::env::var("BENCH_RSS_CHILD") {
        if let Some((_, dir)) = arg.split_once(':') {
            rss_child(Path::new(dir));
        }
        return;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke
    // run that proves it works, not a measurement.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("BENCH_BATCHES", if smoke { 5_000 } else { 1_000_000 });
    let rss_n = env_usize("BENCH_RSS_BATCHES", if smoke { 20_000 } else { 4_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "codec") {
        // The record codec alone (the last line of the full run).
        codec::Codec::measure(n.min(100_000)).print();
        return;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "write") {
        // The write ratio alone, ours and bare fjall one after the other.
        let (ours, bare) = write::ours_and_bare(&rt, n);
        let streamed = write::streamed(&rt, n);
        println!("spool_write_ratio_vs_fjall: {:.3}", ours / bare);
        println!("write batches/s: ours {ours:.0}, bare fjall {bare:.0}; streaming ({GROUP} single pushes outstanding, each waiting for its sync) {streamed:.0}");
        return;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "drain") {
        // A quick look at the drain alone (same lines as the full run).
        let drain = Drain::measure(&rt, n);
        drain.print_ratio();
        drain.print_rates();
        return;
    }

    let (ours_w, bare_w) = write::ours_and_bare(&rt, n);
    let a = tmp("ours-push");
    let pushes = rt.block_on(write::ours_write(
        a.path(),
        n,
        settings(n + 1, PersistMode::Overflow),
        write::Pushes::Chunks,
    ));
    drop(a);
    let a = tmp("ours-single");
    let single = rt.block_on(write::ours_write(
        a.path(),
        n,
        settings(10_000, PersistMode::Always),
        write::Pushes::Single,
    ));
    drop(a);
    let streamed = write::streamed(&rt, n);

    let drain = Drain::measure(&rt, n);
    let c = tmp("drain-rounds");
    let rounds = drain_rounds(c.path(), n, 3);
    drop(c);

    let c = tmp("reclaim");
    let wait = std::time::Duration::from_secs(if smoke { 3 } else { 60 });
    let reclaimed = rt.block_on(reclaim::run(c.path(), n, wait));
    drop(c);

    let rss_small = rss_in_child(rss_n / 4);
    let rss_big = rss_in_child(rss_n);

    let codec = codec::Codec::measure(n.min(100_000));
    println!("spool_write_ratio_vs_fjall: {:.3}", ours_w / bare_w);
    drain.print_ratio();
    println!("backlog_rss_mib: {rss_big:.1}");
    println!("spool_reclaim_ratio: {:.4}", reclaimed.ratio());
    println!("write batches/s: ours {ours_w:.0}, bare fjall {bare_w:.0} ({n} batches, persist=always, fdatasync per {GROUP}, pushed in chunks of {INLET_WINDOW} as the inlet sends); one Push message per batch {single:.0}; pushes into the ring alone (no disk) {pushes:.0}; streaming ({GROUP} single pushes outstanding, each waiting for its sync) {streamed:.0}");
    drain.print_rates();
    let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "drain batches/s of {n}-batch backlogs one after another in one spool (tombstones of earlier rounds below): {}",
        rounds.join(", ")
    );
    codec.print();
    println!("{}", reclaimed.detail(n));
    println!(
        "backlog_rss_mib at {}: {rss_small:.1}; at {rss_n}: {rss_big:.1} (+{:.1} %)",
        rss_n / 4,
        (rss_big / rss_small - 1.0) * 100.0
    );
}

//! poll_scale: devices × 20 tags at 1 Hz against simulated slaves, in
//! three cases:
//! - `1000`: 1 000 devices behind 5 listeners of 200 unit ids each, as on
//!   gateways (lines without a suffix);
//! - `5000x1000`: 5 000 devices on 1 000 connections, 5 unit ids each
//!   (lines suffixed `_5000x1000`);
//! - `5000x5000`: 5 000 devices on 5 000 connections, one each, as a line
//!   of small meters (lines suffixed `_5000x5000`).
//!
//! Each case runs in a process of its own (this same binary, started with
//! `POLL_SCALE_ROLE=case`), so its CPU and RSS are its own; the slaves run in
//! a child of that (`POLL_SCALE_ROLE=simulator`), one listener per
//! connection, so the CPU and memory measured are the pollers' alone.
//! Devices behind one listener share its connection, as on a real gateway.
//! Both raise their open-file limit to the hard limit (5 000 sockets).
//!
//! Run: `cargo bench -p ingestor-actors --bench poll_scale`
//! (`POLL_SCALE_CASES=1000,5000x1000` picks cases, default all;
//! `POLL_SCALE_SECS`, default 60, sets the measured duration of each; run by
//! `cargo test` it makes a smoke run of 1 second per case;
//! `POLL_SCALE_WORKERS` the runtime's worker threads, default one per core;
//! `POLL_SCALE_BASELINE=1` replaces the pollers by bare tokio timers on the
//! same schedule, to see what lag the machine itself causes).
//! Prints, per case:
//! - `on_time_ratio`: polls that started within 5 ms of their slot ÷ slots due
//!   (a skipped slot counts as late);
//! - `poll_lag_p99_ms`: 99th percentile of `ingestor_poll_lag_seconds`;
//! - `cpu_core_fraction`: the case process's CPU time ÷ wall time;
//! - `rss_mib`: the case process's peak resident memory (VmHWM), MiB; it
//!   includes the test recorder's histograms (every sample is kept);
//! - `requests_per_cycle_vs_min` (`1000` only): requests sent per poll ÷
//!   the fewest the caps allow for the tag layout (computed here by
//!   exhaustive search, not by the planner).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::buffer::{BufferInlet, BufferMsg};
use ingestor_actors::poller::spread_start;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Links};
use ingestor_actors::settings::{DeviceSettings, RegisterKind};
use ingestor_actors::simulator::Simulator;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

const MAX_REGISTERS: u16 = 16;

/// One bench case: `listeners` connections of `units` devices each.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    /// Appended to every line the case prints.
    suffix: &'static str,
    listeners: usize,
    units: usize,
}

const CASES: [Case; 3] = [
    Case {
        name: "1000",
        suffix: "",
        listeners: 5,
        units: 200,
    },
    Case {
        name: "5000x1000",
        suffix: "_5000x1000",
        listeners: 1000,
        units: 5,
    },
    Case {
        name: "5000x5000",
        suffix: "_5000x5000",
        listeners: 5000,
        units: 1,
    },
];

/// The case this process runs (`POLL_SCALE_CASE`).
fn this_case() -> Case {
    let name = std::env::var("POLL_SCALE_CASE").unwrap_or_default();
    match CASES.iter().find(|c| c.name == name) {
        Some(c) => *c,
        None => panic!("POLL_SCALE_CASE={name:?}: not one of 1000, 5000x1000, 5000x5000"),
    }
}

/// Raises the soft open-file limit to the hard one (a socket per connection).
fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("poll_scale: cannot raise RLIMIT_NOFILE: {e}");
    }
}

/// This process's peak resident memory, MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// 20 tags: 12 f32 CDAB + 4 u32 in holding (0..24 and 30..38: 3 reads of
/// at most 16 registers), 2 i16 inputs, 2 coils: 5 reads per poll at best.
fn device(id: &str, address: &str, unit: usize) -> DeviceSettings {
    let mut toml = format!(
        "id = \"{id}\"\naddress = \"{address}\"\nunit = {unit}\npoll_interval = \"1s\"\ntimeout = \"500ms\"\n\
         max_registers_per_request = {MAX_REGISTERS}\nmax_gap = 10\n"
    );
    let mut tag = |name: String, register: &str, address: u16, ty: &str| {
        toml.push_str(&format!(
            "[[tags]]\nname = \"{name}\"\nregister = \"{register}\"\naddress = {address}\ntype = \"{ty}\"\norder = \"CDAB\"\n"
        ));
    };
    for i in 0..12 {
        tag(format!("power_{i}"), "holding", i * 2, "f32");
    }
    for i in 0..4 {
        tag(format!("energy_{i}"), "holding", 30 + i * 2, "u32");
    }
    tag("temp_a".into(), "input", 0, "i16");
    tag("temp_b".into(), "input", 1, "i16");
    tag("breaker".into(), "coil", 0, "bool");
    tag("alarm".into(), "coil", 5, "bool");
    match toml::from_str(&toml) {
        Ok(d) => d,
        Err(e) => panic!("bench device: {e}"),
    }
}

fn devices(addresses: &[String], units: usize) -> Vec<DeviceSettings> {
    let mut out = Vec::new();
    for (l, address) in addresses.iter().enumerate() {
        for unit in 1..=units {
            out.push(device(&format!("dev{l}-{unit:03}"), address, unit));
        }
    }
    out
}

/// The fewest reads that can serve a device, by exhaustive dynamic
/// programming (not the planner's greedy scan): per register kind, tags
/// sorted by address; one read serves a run of tags when it spans at most
/// the cap and no hole inside it is wider than `max_gap`.
fn min_requests(device: &DeviceSettings) -> u64 {
    let mut by_kind: BTreeMap<RegisterKind, Vec<(u32, u32)>> = BTreeMap::new();
    for t in &device.tags {
        let start = u32::from(t.address);
        by_kind
            .entry(t.register)
            .or_default()
            .push((start, start + u32::from(t.span())));
    }
    let mut total = 0;
    for (kind, mut tags) in by_kind {
        tags.sort_unstable();
        let cap = if kind.is_bits() {
            2000
        } else {
            u32::from(MAX_REGISTERS)
        };
        let one_read = |i: usize, j: usize| {
            let run = &tags[i..j];
            let end = run.iter().map(|t| t.1).max().unwrap_or(0);
            let holes_ok = run
                .windows(2)
                .all(|w| w[1].0 <= w[0].1 + u32::from(device.max_gap));
            end - run[0].0 <= cap && holes_ok
        };
        // best[j]: fewest reads for the first j tags
        let mut best = vec![u64::MAX; tags.len() + 1];
        best[0] = 0;
        for j in 1..=tags.len() {
            for i in 0..j {
                if best[i] != u64::MAX && one_read(i, j) {
                    best[j] = best[j].min(best[i] + 1);
                }
            }
        }
        total += best[tags.len()];
    }
    total
}

fn run_simulator(case: Case) {
    raise_nofile();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    rt.block_on(async {
        let sim = Arc::new(Simulator::new(&devices(&["-".to_string()], case.units)));
        for _ in 0..case.listeners {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            println!("{}", l.local_addr().expect("addr"));
            tokio::spawn(Arc::clone(&sim).serve_tcp(l));
        }
        // Stop when the parent closes our stdin (or dies).
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    });
}

struct CountingBuffer;

impl Actor for CountingBuffer {
    type Msg = BufferMsg;
    type State = Arc<(AtomicU64, AtomicU64)>;
    type Arguments = Arc<(AtomicU64, AtomicU64)>;

    async fn pre_start(
        &self,
        _: ActorRef<BufferMsg>,
        counts: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(counts)
    }

    async fn handle(
        &self,
        _: ActorRef<BufferMsg>,
        msg: BufferMsg,
        counts: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The inlet sends chunks and waits for an answer per chunk.
        if let BufferMsg::PushTicketed { batches, reply, .. } = msg {
            if let Some(port) = reply {
                let _ = port.send(batches.iter().map(|(t, _)| Ok(*t)).collect());
            }
            for (_, batch) in batches {
                counts.0.fetch_add(1, Ordering::Relaxed);
                // The payload's `errors` map (the only object-valued key).
                if batch.body().windows(10).any(|w| w == b"\"errors\":{") {
                    counts.1.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// This process's user + system CPU time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, s)| s).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

fn main() {
    match std::env::var("POLL_SCALE_ROLE").as_deref() {
        Ok("simulator") => return run_simulator(this_case()),
        Ok("case") => return run_case(this_case()),
        _ => {}
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (scripts/test.sh)
    // runs this binary without it: then a smoke run of 1 second per case.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("POLL_SCALE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 60 } else { 1 });
    let wanted = std::env::var("POLL_SCALE_CASES").unwrap_or_default();
    let exe = std::env::current_exe().expect("own path");
    for case in CASES {
        if !wanted.is_empty() && !wanted.split(',').any(|w| w.trim() == case.name) {
            continue;
        }
        let status = Command::new(&exe)
            .env("POLL_SCALE_ROLE", "case")
            .env("POLL_SCALE_CASE", case.name)
            .env("POLL_SCALE_SECS", secs.to_string())
            .status()
            .expect("case process");
        assert!(status.success(), "case {}: {status}", case.name);
    }
}

/// One case, in a process of its own (`POLL_SCALE_ROLE=case`).
fn run_case(case: Case) {
    raise_nofile();
    let baseline = std::env::var("POLL_SCALE_BASELINE").is_ok();
    let secs: u64 = std::env::var("POLL_SCALE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env("POLL_SCALE_ROLE", "simulator")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("simulator child");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let addresses: Vec<String> = (0..case.listeners)
        .map(|_| lines.next().expect("address").expect("address"))
        .collect();

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("recorder");

    let devices = devices(&addresses, case.units);
    let min_per_cycle: u64 = min_requests(&devices[0]);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("POLL_SCALE_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build().expect("runtime");
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let (expected_slots, wall, cpu, rss) = rt.block_on(async {
        let (buffer, _) = Actor::spawn(None, CountingBuffer, Arc::clone(&counts))
            .await
            .expect("buffer");
        // One inlet for every poller, as the service wires it.
        let inlet: BufferInlet = buffer.clone().into();
        let mut links = Links::new();
        let mut pollers = Vec::new();
        let mut firsts = Vec::new();
        let mut timers = Vec::new();
        let (cpu0, t0) = (cpu_time(), Instant::now());
        for d in &devices {
            let first_poll = spread_start(&d.id, d.poll_interval) + Duration::from_secs(1);
            firsts.push(first_poll);
            if baseline {
                // Bare timers, no Modbus: what the runtime alone manages here.
                let lag =
                    metrics::histogram!("ingestor_poll_lag_seconds", "device" => d.id.clone());
                let interval = d.poll_interval;
                timers.push(tokio::spawn(async move {
                    let mut at = first_poll;
                    loop {
                        tokio::time::sleep_until(at).await;
                        lag.record(Instant::now().saturating_duration_since(at).as_secs_f64());
                        metrics::counter!("ingestor_polls_total", "result" => "ok").increment(1);
                        at += interval;
                    }
                }));
                continue;
            }
            let args = DevicePollerArgs {
                status: Default::default(),
                writes: None,
                link: links.link_for(d).expect("link"),
                device: d.clone().into(),
                buffer: inlet.clone(),
                backoff_min: Duration::from_millis(100),
                backoff_max: Duration::from_secs(30),
                first_poll,
            };
            pollers.push(
                Actor::spawn(None, DevicePoller, args)
                    .await
                    .expect("poller")
                    .0,
            );
        }
        tokio::time::sleep(Duration::from_secs(secs + 1)).await;
        let stop = Instant::now();
        let cpu = cpu_time().saturating_sub(cpu0);
        let rss = peak_rss_mib();
        for p in &pollers {
            p.stop(None);
        }
        for t in &timers {
            t.abort();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Slots due before the stop (with 50 ms to start): every one should have run.
        let expected: u64 = firsts
            .iter()
            .map(|&f| {
                let window = (stop - Duration::from_millis(50)).saturating_duration_since(f);
                if stop > f {
                    window.as_secs() + 1
                } else {
                    0
                }
            })
            .sum();
        (expected, stop - t0, cpu, rss)
    });

    let (mut lags, mut requests, mut polls) = (Vec::new(), 0u64, 0u64);
    let mut results: BTreeMap<String, u64> = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match (key.key().name(), value) {
            ("ingestor_poll_lag_seconds", DebugValue::Histogram(v)) => {
                lags.extend(v.into_iter().map(|x| x.into_inner()))
            }
            ("ingestor_modbus_requests_total", DebugValue::Counter(n)) => requests += n,
            ("ingestor_polls_total", DebugValue::Counter(n)) => {
                polls += n;
                let result = key
                    .key()
                    .labels()
                    .find(|l| l.key() == "result")
                    .map(|l| l.value().to_string());
                *results.entry(result.unwrap_or_default()).or_default() += n;
            }
            _ => {}
        }
    }
    lags.sort_by(f64::total_cmp);
    let on_time = lags.iter().filter(|&&l| l <= 0.005).count() as f64;
    let on_time_ratio = on_time / (expected_slots.max(lags.len() as u64).max(1)) as f64;
    let p99 = lags
        .get((lags.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN);
    let per_cycle = requests as f64 / polls.max(1) as f64;

    let p50 = lags.get(lags.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "poll_scale {}: {} devices on {} connections, {secs} s, {polls} polls {results:?}, {} batches ({} with errors), {requests} requests, min {min_per_cycle}/cycle, {} slots due, lag p50 {:.3} ms",
        case.name,
        devices.len(),
        case.listeners,
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
        expected_slots,
        p50 * 1000.0
    );
    let sfx = case.suffix;
    println!("on_time_ratio{sfx}: {on_time_ratio:.4}");
    println!("poll_lag_p99_ms{sfx}: {:.3}", p99 * 1000.0);
    println!(
        "cpu_core_fraction{sfx}: {:.3}",
        cpu.as_secs_f64() / wall.as_secs_f64()
    );
    println!("rss_mib{sfx}: {rss:.1}");
    if sfx.is_empty() {
        println!(
            "requests_per_cycle_vs_min: {:.3}",
            per_cycle / min_per_cycle as f64
        );
    }
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}

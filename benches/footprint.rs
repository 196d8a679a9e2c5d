//! footprint: what the healthy path costs in CPU.
//!
//! 100 simulated devices × 20 tags polled at 1 Hz from one `ingestor
//! simulate` (one address, one unit id per device, so one shared
//! connection), NATS up, measured for 60 s after a warm-up.
//!
//! What exactly is compared: the CPU seconds (utime + stime of all threads,
//! `/proc/<pid>/stat`) over the same measured window of two child processes,
//! each with its own fresh nats-server, the same simulator serving both (one
//! after the other):
//! - ours: the real `ingestor run` (pollers, buffer, publisher, monitor,
//!   metrics) with `persist = "overflow"`;
//! - bare: this binary re-executed with `FOOTPRINT_ROLE=bare`: one
//!   tokio-modbus TCP connection shared by all devices (as the ingestor
//!   shares one per address), each device on a 1 s interval spread over the
//!   second, making exactly the requests `ingestor check` prints for the
//!   device (function, start, count) with the same 500 ms timeout, decoding
//!   the 20 values, serializing the same JSON payload and publishing it with
//!   async-nats JetStream to `<prefix>.<service>.<device>` with
//!   `Nats-Msg-Id`, `Ingestor-Seq` and `Ingestor-Installation` headers, acknowledgements awaited with
//!   the same window (`max_in_flight`).
//!
//! The simulator and the nats-servers are separate processes, not counted.
//! Prints `healthy_cpu_ratio_vs_bare: R` (ours ÷ bare; goal ≤ 1.5) and
//! `healthy_cpu_us_per_request: U` (ours, per Modbus request), with the
//! request and publish rates of both sides so that a side that fell behind
//! shows.
//!
//! `cargo bench --workspace --bench footprint`; without `--bench` (as under
//! `cargo test --all-targets`) a 10 s smoke run.
//! Env: `FOOTPRINT_SECS`, `FOOTPRINT_DEVICES`.

#[path = "bare/footprint.rs"]
mod bare;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{NatsServer, SERVICE};

/// The 20 tags of every device: (name, register, address, type).
/// 12 f32 + 4 u32 holding (word-swapped), 2 i16 inputs, 2 coils.
pub const TAGS: [(&str, &str, u16, &str); 20] = [
    ("power_0", "holding", 0, "f32"),
    ("power_1", "holding", 2, "f32"),
    ("power_2", "holding", 4, "f32"),
    ("power_3", "holding", 6, "f32"),
    ("power_4", "holding", 8, "f32"),
    ("power_5", "holding", 10, "f32"),
    ("power_6", "holding", 12, "f32"),
    ("power_7", "holding", 14, "f32"),
    ("power_8", "holding", 16, "f32"),
    ("power_9", "holding", 18, "f32"),
    ("power_10", "holding", 20, "f32"),
    ("power_11", "holding", 22, "f32"),
    ("energy_0", "holding", 30, "u32"),
    ("energy_1", "holding", 32, "u32"),
    ("energy_2", "holding", 34, "u32"),
    ("energy_3", "holding", 36, "u32"),
    ("temp_a", "input", 0, "i16"),
    ("temp_b", "input", 1, "i16"),
    ("breaker", "coil", 0, "bool"),
    ("alarm", "coil", 5, "bool"),
];

pub const PREFIX: &str = "telemetry";

pub fn device_id(i: usize) -> String {
    format!("dev-{i:03}")
}

fn config(devices: usize, data: &Path, sim: &str, nats: &str, metrics: &str) -> String {
    let mut text = format!(
        "[service]\nid = \"{SERVICE}\"\ndata_dir = \"{}\"\n\n[nats]\nservers = [\"{nats}\"]\n\
         subject_prefix = \"{PREFIX}\"\n\n[metrics]\nlisten = \"{metrics}\"\n",
        data.display()
    );
    for d in 0..devices {
        text.push_str(&format!(
            "\n[[devices]]\nid = \"{}\"\naddress = \"{sim}\"\nunit = {}\npoll_interval = \"1s\"\n\
             timeout = \"500ms\"\nmax_registers_per_request = 16\nmax_gap = 10\n",
            device_id(d),
            d + 1
        ));
        for (name, register, address, ty) in TAGS {
            text.push_str(&format!(
                "[[devices.tags]]\nname = \"{name}\"\nregister = \"{register}\"\naddress = {address}\n\
                 type = \"{ty}\"\norder = \"CDAB\"\n"
            ));
        }
    }
    text
}

/// The first device's requests per poll as `ingestor check` prints them:
/// "fc:start:count" joined by ';' (every device has the same layout).
fn request_plan(check_output: &str) -> String {
    let mut devices_seen = 0;
    let mut reads = Vec::new();
    for line in check_output
        .lines()
        .skip_while(|l| !l.starts_with("poll plan"))
    {
        if line.starts_with("  dev-") {
            devices_seen += 1;
        }
        let t = line.trim_start();
        if devices_seen != 1 || !t.starts_with("fc") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let after = |key: &str| {
            let i = words.iter().position(|w| *w == key).expect("plan line");
            words[i + 1]
        };
        reads.push(format!(
            "{}:{}:{}",
            &words[0][2..],
            after("start"),
            after("count")
        ));
    }
    assert!(!reads.is_empty(), "no plan in:\n{check_output}");
    reads.join(";")
}

/// CPU seconds of `pid` over `secs`, with the request and publish counts
/// `counts` reports at both ends.
fn measure(pid: u32, secs: u64, counts: impl Fn() -> (f64, f64)) -> (f64, f64, f64) {
    let cpu0 = support::cpu_seconds(pid);
    let (r0, p0) = counts();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu1 = support::cpu_seconds(pid);
    let (r1, p1) = counts();
    (cpu1 - cpu0, r1 - r0, p1 - p0)
}

fn main() {
    if std::env::var("FOOTPRINT_ROLE").as_deref() == Ok("bare") {
        bare::main();
        return;
    }
    let full = support::full_run();
    let secs: u64 = support::env_or("FOOTPRINT_SECS", if full { 60 } else { 10 });
    let devices: usize = support::env_or("FOOTPRINT_DEVICES", 100);
    assert!((1..=247).contains(&devices), "1..=247 devices");
    let warm = Duration::from_secs(3);
    println!(
        "footprint: {devices} devices × {} tags at 1 Hz, {secs} s per side; load average {}",
        TAGS.len(),
        support::load_average()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = format!("127.0.0.1:{}", support::free_port());
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let nats = NatsServer::start();
    let path = dir.path().join("ingestor.toml");
    let data = dir.path().join("data");
    std::fs::write(&path, config(devices, &data, &sim, &nats.url(), &metrics)).expect("config");
    let plan = request_plan(&support::check(&path));
    println!("request plan per device poll (fc:start:count): {plan}");
    let _simulator = support::simulator(&path, &sim);

    // Ours.
    let mut service = support::ingestor(&path, &metrics, &dir.path().join("service.log"));
    support::wait_until(
        Duration::from_secs(60),
        "every device up and published",
        || {
            let h = support::health(&metrics);
            h["devices_up"].as_u64() == Some(devices as u64)
                && support::metric(&metrics, "ingestor_published_total") >= devices as f64
        },
    );
    std::thread::sleep(warm);
    let (ours_cpu, ours_req, ours_pub) = measure(service.pid(), secs, || {
        (
            support::metric(&metrics, "ingestor_modbus_requests_total"),
            support::metric(&metrics, "ingestor_published_total"),
        )
    });
    service.term(Duration::from_secs(30));
    drop(nats);

    // Bare.
    let nats = NatsServer::start();
    let mut child = support::Proc::new(
        Command::new(std::env::current_exe().expect("own path"))
            .env("FOOTPRINT_ROLE", "bare")
            .env("FOOTPRINT_SIM", &sim)
            .env("FOOTPRINT_NATS", nats.url())
            .env("FOOTPRINT_DEVICES", devices.to_string())
            .env("FOOTPRINT_PLAN", &plan)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the bare side"),
    );
    let counts = Arc::new(Mutex::new((0.0, 0.0)));
    let stdout = child.child_mut().stdout.take().expect("piped");
    let sink = counts.clone();
    std::thread::spawn(move || {
        // "requests R publishes P", four times a second.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [_, r, _, p] = w[..] {
                if let (Ok(r), Ok(p)) = (r.parse(), p.parse()) {
                    *sink.lock().expect("counts") = (r, p);
                }
            }
        }
    });
    let now = || *counts.lock().expect("counts");
    support::wait_until(Duration::from_secs(60), "bare side published", || {
        now().1 >= devices as f64
    });
    std::thread::sleep(warm);
    let (bare_cpu, bare_req, bare_pub) = measure(child.pid(), secs, now);
    child.term(Duration::from_secs(5));

    let per_s = |n: f64| n / secs as f64;
    println!(
        "healthy_requests_per_s: {:.0} (bare {:.0})",
        per_s(ours_req),
        per_s(bare_req)
    );
    println!(
        "healthy_publishes_per_s: {:.0} (bare {:.0})",
        per_s(ours_pub),
        per_s(bare_pub)
    );
    println!(
        "healthy_cpu_core_fraction: {:.4} (bare {:.4})",
        per_s(ours_cpu),
        per_s(bare_cpu)
    );
    println!(
        "healthy_cpu_us_per_request: {:.1}",
        ours_cpu * 1e6 / ours_req.max(1.0)
    );
    println!(
        "healthy_cpu_ratio_vs_bare: {:.3}",
        ours_cpu / bare_cpu.max(1e-9)
    );
}

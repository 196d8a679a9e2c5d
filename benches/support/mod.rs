//! Shared pieces of the black-box benches (`catchup`, `footprint`): the real
//! `ingestor` binary as a child process, `ingestor simulate` as the plant, a
//! nats-server the bench starts itself, `/health` and `/metrics` over plain
//! HTTP, and a child's CPU time from `/proc/<pid>/stat`.
//!
//! Invariants: every process started here is killed by its own pid when its
//! handle drops (never by name); nothing here asserts on timing — callers
//! poll for a condition with a generous deadline.
#![allow(dead_code)]

#[path = "../../actors/tests/publisher_rig/nats_server.rs"]
pub mod nats_server;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use nats_server::{free_port, NatsServer};

pub const SERVICE: &str = "bench-ipc";

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs a bench
/// binary without it: then the bench makes a short smoke run.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `name` from the environment, else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls `cond` until true, or panics naming `what`.
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (SIGKILL, by pid) when dropped.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    pub fn new(child: Child) -> Proc {
        Proc { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM, then waits up to `within` (SIGKILL after that).
    pub fn term(&mut self, within: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ingestor simulate -c config --listen listen`, waited for until it accepts.
pub fn simulator(config: &Path, listen: &str) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["simulate", "-c"])
        .arg(config)
        .args(["--listen", listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ingestor simulate");
    let proc = Proc::new(child);
    wait_until(Duration::from_secs(20), "simulator listening", || {
        TcpStream::connect(listen).is_ok()
    });
    proc
}

/// `ingestor run -c config` (warnings only in its log), waited for until
/// `/health` answers on `metrics`.
pub fn ingestor(config: &Path, metrics: &str, log: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["run", "-c"])
        .arg(config)
        .env("INGESTOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start ingestor run");
    let proc = Proc::new(child);
    wait_until(Duration::from_secs(120), "ingestor serving /health", || {
        http_get(metrics, "/health").is_some()
    });
    proc
}

/// `ingestor check -c config`: its stdout (the poll plan), or a panic with
/// its stderr when the config is not valid.
pub fn check(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["check", "-c"])
        .arg(config)
        .output()
        .expect("run ingestor check");
    assert!(
        out.status.success(),
        "bench config invalid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET `path` from `addr` (HTTP/1.0, so no chunking): the body on 200.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")).then(|| body.to_string())
}

/// `/health` as JSON (Null when it does not answer).
pub fn health(addr: &str) -> serde_json::Value {
    http_get(addr, "/health")
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

/// Sum of the `/metrics` samples whose line starts with `prefix`.
pub fn metric(addr: &str, prefix: &str) -> f64 {
    let text = http_get(addr, "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// CPU seconds (user + system, all threads) a process has used so far,
/// from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name is in parentheses and may hold spaces: fields count
    // from after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `uptime`'s load averages, for the record: the machine may be shared.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

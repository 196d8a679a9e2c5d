//! Black-box support: the real `ingestor` binary, a real nats-server the test
//! starts itself, and `ingestor simulate` as the plant.
#![allow(dead_code, unreachable_pub)]

#[path = "../../actors/tests/publisher_rig/mod.rs"]
mod publisher_rig;

mod crash;
mod power;
mod records;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses its own part of the rig
pub use crash::*;
#[allow(unused_imports)]
pub use power::*;
#[allow(unused_imports)]
pub use publisher_rig::{
    cluster, create_r3_stream, free_port, proxy::Proxy, users, NatsServer, SERVICE,
};
#[allow(unused_imports)]
pub use records::*;

pub const STREAM: &str = "TELEMETRY";

/// A test plant: a config, a simulator serving it, a data dir.
pub struct Plant {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub metrics: String,
    simulator: Child,
}

impl Plant {
    /// Two devices polled every 100 ms from `ingestor simulate`;
    /// `buffer` is extra `[buffer]`/`[supervision]` TOML.
    pub fn new(nats_url: &str, extra: &str) -> Plant {
        Plant::with_nats(&[nats_url], "ack_timeout = \"2s\"", extra)
    }

    /// As `new`, publishing to `servers` with `nats` as the rest of
    /// `[nats]` (credentials, `ack_timeout`).
    pub fn with_nats(servers: &[&str], nats: &str, extra: &str) -> Plant {
        let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
        let servers = servers.join(", ");
        let dir = tempfile::tempdir().unwrap();
        let sim = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("ingestor.toml");
        let text = format!(
            r#"[service]
id = "{SERVICE}"
data_dir = "{data}"

[nats]
servers = [{servers}]
{nats}

[metrics]
listen = "{metrics}"

{extra}

[[devices]]
id = "press-01"
address = "{sim}"
unit = 1
poll_interval = "100ms"
timeout = "300ms"

[[devices.tags]]
name = "oil_temp"
register = "holding"
address = 0
type = "f32"
order = "CDAB"

[[devices.tags]]
name = "running"
register = "coil"
address = 0
type = "bool"

[[devices]]
id = "meter-07"
address = "{sim}"
unit = 2
poll_interval = "100ms"
timeout = "300ms"

[[devices.tags]]
name = "energy"
register = "input"
address = 10
type = "u32"
"#,
            data = dir.path().join("data").display(),
        );
        std::fs::write(&config, text).unwrap();
        let simulator = Command::new(env!("CARGO_BIN_EXE_ingestor"))
            .args(["simulate", "-c"])
            .arg(&config)
            .args(["--listen", &sim])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(10), "simulator listening", || {
            TcpStream::connect(&sim).is_ok()
        });
        Plant {
            dir,
            config,
            metrics,
            simulator,
        }
    }

    /// Starts `ingestor run` on this plant's config.
    pub fn start(&self) -> Service {
        self.start_with_env(&[])
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Service {
        let service = Service::spawn(&self.config, &self.metrics, self.dir.path(), env);
        service.wait_serving();
        service
    }

    /// Starts `ingestor run` allowed at most `limit` open files (`ulimit
    /// -n`, as a unit's `LimitNOFILE` does); same pid (`exec`).
    pub fn start_with_open_files(&self, limit: u32) -> Service {
        let mut sh = Command::new("sh");
        sh.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_ingestor"));
        let service = Service::spawn_with(sh, &self.config, &self.metrics, self.dir.path(), &[]);
        service.wait_serving();
        service
    }
}

/// A new log file name under `dir` for each start (two starts in one test
/// must not write over each other's log).
fn next_log(dir: &Path) -> PathBuf {
    static STARTS: AtomicU64 = AtomicU64::new(0);
    let n = STARTS.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("service-{}-{n}.log", std::process::id()))
}

impl Drop for Plant {
    fn drop(&mut self) {
        let _ = self.simulator.kill();
        let _ = self.simulator.wait();
    }
}

/// A running `ingestor run`.
pub struct Service {
    child: Option<Child>,
    metrics: String,
    pub log: PathBuf,
}

impl Service {
    /// Starts `ingestor run -c config` (serving metrics on `metrics`), its
    /// log in a new file under `log_dir`; does not wait for it.
    pub fn spawn(config: &Path, metrics: &str, log_dir: &Path, env: &[(&str, &str)]) -> Service {
        let ingestor = Command::new(env!("CARGO_BIN_EXE_ingestor"));
        Service::spawn_with(ingestor, config, metrics, log_dir, env)
    }

    /// As `spawn`, with `command` (the binary, or a shell that execs it)
    /// given `run -c config`.
    pub fn spawn_with(
        mut command: Command,
        config: &Path,
        metrics: &str,
        log_dir: &Path,
        env: &[(&str, &str)],
    ) -> Service {
        let log = next_log(log_dir);
        let child = command
            .args(["run", "-c"])
            .arg(config)
            .envs(env.iter().copied())
            .env("INGESTOR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service {
            child: Some(child),
            metrics: metrics.to_string(),
            log,
        }
    }

    /// Waits until `/health` answers (40 s on a loaded machine); says what
    /// the log said when it does not.
    pub fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.get("/health").is_none() {
            if Instant::now() >= deadline {
                let log = self.log_text();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "timed out waiting for: service serving /health; the log's end:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// GET `path` from the metrics listener (HTTP/1.0, so no chunking).
    pub fn get(&self, path: &str) -> Option<String> {
        self.request("GET", path)
    }

    fn request(&self, method: &str, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(&self.metrics).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_string())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
    }

    /// Sum of a metric's samples whose line starts with `prefix`
    /// (`ingestor_actor_restarts_total{actor="buffer"}`).
    pub fn metric(&self, prefix: &str) -> f64 {
        let text = self.get("/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn health(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/health").unwrap_or_default()).unwrap_or_default()
    }

    /// `POST path`: the body on 200, `None` otherwise.
    pub fn post(&self, path: &str) -> Option<String> {
        self.request("POST", path)
    }

    /// Arms a fault (test builds: feature `fault-injection`).
    pub fn fault(&self, actor: &str, kind: &str) {
        let ok = self.request("POST", &format!("/fault/{actor}/{kind}"));
        assert!(
            ok.is_some(),
            "arming {kind} for {actor} failed (built without fault-injection?)"
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM, and the exit status within `within`.
    pub fn term(&mut self, within: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait(within)
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "service did not exit within {within:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit while sending `/health` requests (which reach every
    /// actor, so an armed fault fires).
    pub fn wait_poking_health(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return status;
            }
            let _ = self.get("/health");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait(Duration::from_secs(1))
    }

    /// SIGKILL: nothing runs after it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until NATS confirmed everything accepted so far and nothing is left.
    pub fn wait_backlog_empty(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let h = self.health();
            if h["nats"] == "connected" && h["backlog"] == 0 {
                return;
            }
            if Instant::now() >= deadline {
                let log = self.log_text();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "timed out waiting for: backlog empty with NATS connected; /health {h}; \
                     published {}; the log's end:\n{}",
                    self.metric("ingestor_published_total"),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `cond` until true, or panics naming `what`.
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every message of the stream, in stream order (see `publisher_rig::read_seqs`:
/// headers, payload and subject are checked against each other).
pub fn read_stream(url: &str) -> Vec<u64> {
    read_stream_as(url, async_nats::ConnectOptions::new())
}

/// `read_stream` with a client made from `options` (a user, a token).
pub fn read_stream_as(url: &str, options: async_nats::ConnectOptions) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = options.connect(url).await.unwrap();
        publisher_rig::read_seqs(&client, STREAM).await
    })
}

/// Every seq exactly once, ascending, no gap, from 1.
pub fn assert_complete_in_order(seqs: &[u64]) {
    assert!(!seqs.is_empty(), "stream is empty");
    let dups = seqs.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "duplicates in the stream");
    let disorder: Vec<_> = seqs.windows(2).filter(|w| w[0] > w[1]).take(5).collect();
    assert!(disorder.is_empty(), "out of order: {disorder:?}");
    let gaps: Vec<_> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .take(5)
        .collect();
    assert!(gaps.is_empty(), "gaps: {gaps:?}");
    assert_eq!(seqs[0], 1, "stream does not start at seq 1");
}

/// `ingestor spool stats`: (batches on disk, oldest seq, newest seq).
pub fn spool_stats(config: &Path) -> (u64, Option<u64>, Option<u64>) {
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["spool", "stats", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spool stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let count = field("batches").and_then(|v| v.parse().ok()).unwrap_or(0);
    let seq =
        |v: Option<String>| v.and_then(|v| v.strip_prefix("seq ")?.split(' ').next()?.parse().ok());
    (count, seq(field("oldest")), seq(field("newest")))
}

/// After a clean stop: the stream holds 1..=K in order, exactly once, and the
/// spool holds the rest, K+1.. contiguous (and perhaps the last few the
/// stream has: their acks were cut by the stop). Nothing lost, nothing
/// doubled.
pub fn assert_stream_plus_spool_complete(url: &str, config: &Path) -> Vec<u64> {
    let seqs = read_stream(url);
    assert_complete_in_order(&seqs);
    let last = *seqs.last().unwrap_or(&0);
    let (count, oldest, newest) = spool_stats(config);
    if let (true, Some(oldest), Some(newest)) = (count > 0, oldest, newest) {
        // The spool's oldest may be in the stream already: published when
        // the stop came, stored, its PubAck cut by the stop. The next start
        // finds those in the stream and does not send them again.
        assert!(
            oldest <= last + 1,
            "spool does not continue the stream: a gap after {last} up to {oldest}"
        );
        assert!(
            seqs.binary_search(&oldest).is_ok() || oldest == last + 1,
            "the spool's oldest {oldest} is neither in the stream nor next"
        );
        assert_eq!(newest - oldest + 1, count, "spool has gaps or extra");
    }
    seqs
}

//! `ingestor demo`, the real binary in a folder of its own (its
//! `config/demo.toml` moved to free ports): with `nats-server` on PATH it
//! plays the outage with a server of its own and loses nothing; without one
//! it keeps everything on disk and says how to get one; a user's own server
//! is used and left alone. Every run ends on Ctrl-C (SIGINT) with exit 0 and
//! final lines that say what was kept on disk.
mod service_rig;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use service_rig::*;

/// A folder to run the demo in: `config/demo.toml` with free ports, the
/// service id the stream reader expects, NATS at `nats_url`.
fn demo_dir(nats_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
            .expect("config/demo.toml");
    let text = demo
        .replace("127.0.0.1:5020", &format!("127.0.0.1:{}", free_port()))
        .replace("127.0.0.1:9898", &format!("127.0.0.1:{}", free_port()))
        .replace("nats://127.0.0.1:4222", nats_url)
        .replace("id = \"demo\"", &format!("id = \"{SERVICE}\""));
    std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
    std::fs::write(dir.path().join("config/demo.toml"), text).expect("write demo.toml");
    dir
}

struct Demo {
    child: Child,
    out: PathBuf,
}

impl Demo {
    fn start(dir: &Path, path_env: Option<&str>) -> Demo {
        let out = dir.join("demo.out");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingestor"));
        cmd.arg("demo")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(dir.join("demo.err")).expect("err file"));
        if let Some(path) = path_env {
            cmd.env("PATH", path);
        }
        Demo {
            child: cmd.spawn().expect("start ingestor demo"),
            out,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn wait_for(&self, within: Duration, what: &str, cond: impl Fn(&str) -> bool) {
        let mut last = String::new();
        wait_until(within, what, || {
            last = self.output();
            cond(&last)
        });
    }

    /// Ctrl-C, then the exit code and everything printed.
    fn interrupt(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let mut code = None;
        wait_until(
            Duration::from_secs(30),
            "demo exits after Ctrl-C",
            || match self.child.try_wait() {
                Ok(Some(status)) => {
                    code = status.code();
                    true
                }
                _ => false,
            },
        );
        (code, self.output())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The numbers of the line starting with `prefix`, in order.
fn numbers(text: &str, prefix: &str) -> Vec<u64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The pids the demo printed for its own nats-server (`pid N`).
fn child_pids(text: &str) -> Vec<u32> {
    text.split("pid ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn running(pid: u32) -> bool {
    // A zombie is gone for our purposes; /proc/<pid>/stat says "Z".
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

/// `ingestor spool stats` on the demo's data (`./data`, relative to `dir`).
fn batches_on_disk(dir: &Path) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["spool", "stats", "-c", "config/demo.toml"])
        .current_dir(dir)
        .output()
        .expect("ingestor spool stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    numbers(&text, "batches")[0]
}

#[test]
fn demo_with_nats_server_on_path_plays_the_outage_and_every_seq_arrives_once_in_order() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let dir = demo_dir(&nowhere);
    let demo = Demo::start(dir.path(), None);
    demo.wait_for(Duration::from_secs(180), "the story's fourth act", |o| {
        o.contains("== 4/4")
    });
    let (code, out) = demo.interrupt();
    assert_eq!(code, Some(0), "{out}");
    for act in ["== 1/4", "== 2/4", "== 3/4", "== 4/4 normal flow again"] {
        assert!(out.contains(act), "{act} missing:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("NATS DOWN") && !l.contains(" 0 disk")),
        "no status line shows the backlog on disk during the outage:\n{out}"
    );
    let pids = child_pids(&out);
    assert!(pids.len() >= 2, "the demo's server pids: {pids:?}\n{out}");
    for pid in pids {
        assert!(!running(pid), "the demo's nats-server {pid} outlived it");
    }
    let polled = numbers(&out, "final: polled")[0];
    assert!(out.contains("kept on disk for next time"), "{out}");

    // The demo's stream, read from its store by a server this test starts.
    let port = free_port();
    let mut server = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path().join("data/nats-server"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    wait_until(
        Duration::from_secs(15),
        "nats-server on the demo's store",
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let seqs = read_stream(&format!("nats://127.0.0.1:{port}"));
    let _ = server.kill();
    let _ = server.wait();
    assert_complete_in_order(&seqs);
    let on_disk = batches_on_disk(dir.path());
    // A batch confirmed just as the stop began may be in both.
    assert!(
        seqs.len() as u64 + on_disk >= polled && *seqs.last().unwrap_or(&0) <= polled,
        "stream ({}) + kept on disk ({on_disk}) must hold every batch polled ({polled})",
        seqs.len()
    );
}

#[test]
fn demo_without_nats_server_keeps_everything_on_disk_and_says_how_to_get_one() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let dir = demo_dir(&nowhere);
    let empty_path = dir.path().join("bin");
    std::fs::create_dir_all(&empty_path).expect("bin dir");
    let demo = Demo::start(dir.path(), Some(&empty_path.display().to_string()));
    demo.wait_for(Duration::from_secs(60), "batches on disk", |o| {
        o.lines()
            .any(|l| l.starts_with("polled") && l.contains("DOWN") && !l.contains(" 0 disk"))
    });
    let (code, out) = demo.interrupt();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("apt install nats-server"), "{out}");
    assert!(!out.contains("== 1/4"), "no story without a server:\n{out}");
    let polled = numbers(&out, "final: polled")[0];
    let kept = numbers(&out, "kept on disk for next time")[0];
    assert!(polled > 0, "{out}");
    assert_eq!(
        kept, polled,
        "nothing published, so everything is kept:\n{out}"
    );
    assert_eq!(batches_on_disk(dir.path()), kept);
}

#[test]
fn demo_with_the_users_own_nats_server_publishes_there_and_leaves_it_running() {
    let nats = NatsServer::start();
    let dir = demo_dir(&nats.url());
    let demo = Demo::start(dir.path(), None);
    demo.wait_for(Duration::from_secs(60), "data published", |o| {
        o.lines()
            .any(|l| l.starts_with("polled") && l.contains("connected"))
    });
    let (code, out) = demo.interrupt();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("leaves that server alone"), "{out}");
    assert!(
        !out.contains("== 1/4"),
        "no outage with the user's server:\n{out}"
    );
    assert!(child_pids(&out).is_empty(), "{out}");
    // The user's server still runs and has the demo's data.
    let seqs = read_stream(&nats.url());
    assert!(!seqs.is_empty());
    // And the README's audit of the demo's stream finds it complete.
    let audit = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["audit", "-c"])
        .arg(dir.path().join("config/demo.toml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(0), "{report}");
    assert!(report.contains(&format!("1..={}", seqs.len())), "{report}");
}

//! The demo's own nats-server: a child process on a free loopback port, with
//! JetStream and its store under the demo's data dir.
//!
//! Invariants: the demo only ever stops or kills the process it started, by
//! its pid (never by name); the child runs in a process group of its own, so
//! the terminal's Ctrl-C reaches the demo (which stops it in order) and not
//! the server directly; and a dropped handle kills the child (tokio's
//! `kill_on_drop`), so no server outlives the demo by accident.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The executable looked for on `PATH`.
pub(super) const NATS_SERVER: &str = "nats-server";
/// How long a started server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(15);
/// How long a stopped server may take to exit before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Why the demo's server could not be started.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChildError {
    /// No free port, or the store directory could not be made.
    #[error("cannot prepare a nats-server: {0}")]
    Prepare(#[source] std::io::Error),
    /// `nats-server` did not start (not executable, bad arguments).
    #[error("cannot start {NATS_SERVER}: {0}")]
    Spawn(#[source] std::io::Error),
    /// It started but never accepted a connection; its log says why.
    #[error("{NATS_SERVER} did not accept connections within {READY_WITHIN:?}; see {0}")]
    NotReady(String),
}

/// `nats-server` on `PATH`, if there is one.
pub(super) fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(NATS_SERVER))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether something accepts TCP connections on `addr` within a second.
pub(super) async fn answers(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// A running (or stopped) nats-server of the demo's own.
pub(super) struct NatsChild {
    program: PathBuf,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsChild {
    /// Starts `program` with JetStream on a free loopback port, its store in
    /// `<data_dir>/nats-server`, its log in `<data_dir>/nats-server.log`.
    pub(super) async fn start(program: PathBuf, data_dir: &Path) -> Result<Self, ChildError> {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(ChildError::Prepare)?
            .port();
        let store = data_dir.join("nats-server");
        std::fs::create_dir_all(&store).map_err(ChildError::Prepare)?;
        let mut server = NatsChild {
            program,
            port,
            store,
            log: data_dir.join("nats-server.log"),
            child: None,
        };
        server.resume().await?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub(super) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The child's pid while it runs.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Where the store lives.
    pub(super) fn store(&self) -> &Path {
        &self.store
    }

    /// Starts the server again on the same port and store.
    pub(super) async fn resume(&mut self) -> Result<(), ChildError> {
        let child = Command::new(&self.program)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .arg("-l")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(ChildError::Spawn)?;
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while !answers(addr).await {
            if Instant::now() > deadline {
                return Err(ChildError::NotReady(self.log.display().to_string()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops the server: SIGTERM to its pid, SIGKILL if it has not exited
    /// within a few seconds. Does nothing when it is not running.
    pub(super) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // The pid is our own child's; `kill` is the portable way to send
            // it SIGTERM without an FFI call.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_WITHIN, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

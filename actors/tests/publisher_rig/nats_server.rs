//! A nats-server the test starts itself on a free loopback port, with its
//! own store in a temp dir; killed (SIGKILL), restarted on the same port and
//! store, or reloaded (SIGHUP) with a new config.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A free TCP port on 127.0.0.1 (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub name: String,
    dir: TempDir,
    extra: String,
}

impl NatsServer {
    /// A JetStream server with nothing else configured.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A JetStream server with `extra` appended to its config file
    /// (authorization, tls, cluster blocks).
    pub fn start_with(extra: &str) -> Self {
        let server = Self::prepare("n1", free_port(), extra);
        let mut server = server;
        server.launch();
        server
    }

    /// Like `start_with`, on a given port, not started yet.
    pub fn prepare(name: &str, port: u16, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = NatsServer {
            child: None,
            port,
            name: name.into(),
            dir,
            extra: extra.into(),
        };
        server.write_config();
        server
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.conf")
    }

    fn write_config(&self) {
        let conf = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store:?} }}\n{extra}\n",
            name = self.name,
            port = self.port,
            store = self.dir.path().join("store"),
            extra = self.extra,
        );
        std::fs::write(self.config_path(), conf).unwrap();
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it accepts connections.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL: no goodbye to clients, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen process dies on SIGKILL too; CONT first keeps it simple.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Same port, same store, same config.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// SIGSTOP: the process freezes with its sockets open, like a server
    /// behind a dead network path: TCP stays up, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Replaces the extra config and tells the running server to reload it.
    pub fn reload(&mut self, extra: &str) {
        self.extra = extra.into();
        self.write_config();
        self.signal("-HUP");
    }
}

/// Three JetStream servers forming one cluster (routes on loopback),
/// named `n1`..`n3`, all started; a cluster needs a few seconds more to
/// elect its meta leader (see `create_r3_stream`).
pub fn cluster() -> Vec<NatsServer> {
    // Six distinct ports: two picks of a free port may return the same one.
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 6 {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let (client_ports, route_ports) = (ports[..3].to_vec(), ports[3..].to_vec());
    let mut nodes: Vec<NatsServer> = (0..3)
        .map(|i| {
            let routes: Vec<String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| format!("\"nats-route://127.0.0.1:{}\"", route_ports[j]))
                .collect();
            let extra = format!(
                "cluster {{ name: ingest-test, listen: \"127.0.0.1:{}\", routes: [{}] }}",
                route_ports[i],
                routes.join(", ")
            );
            NatsServer::prepare(&format!("n{}", i + 1), client_ports[i], &extra)
        })
        .collect();
    for node in &mut nodes {
        node.launch();
    }
    nodes
}

/// An `authorization` block with two users, both with password `pw`:
/// `ingest`, who may publish only on `ingest_publish` (a list of quoted
/// subjects) and subscribe to `_INBOX.>`, and `reader`, who may do anything.
pub fn users(ingest_publish: &str) -> String {
    format!(
        r#"authorization {{
  users = [
    {{ user: ingest, password: "pw", permissions: {{
        publish: {{ allow: [{ingest_publish}] }},
        subscribe: {{ allow: ["_INBOX.>"] }} }} }},
    {{ user: reader, password: "pw" }}
  ]
}}"#
    )
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

//! Shared pieces of the TLS tests: a test PKI (`certs`), and pymodbus
//! servers (TLS and plain TCP) started as a child process and stopped by pid.
#![allow(dead_code, unreachable_pub)]

pub mod certs;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server of a [`Pymodbus`] process.
pub enum PeerServer<'a> {
    /// Plain Modbus TCP.
    Plain { port: u16 },
    /// Modbus/TCP Security with this certificate; demanding a client
    /// certificate signed by `client_ca` when given.
    Tls {
        port: u16,
        cert: &'a certs::CertFiles,
        client_ca: Option<&'a Path>,
    },
}

/// pymodbus 3.11 serving `words` on unit 1 over every server given;
/// killed (by its pid) when dropped. Its stderr goes to a file (a pipe
/// nobody reads would fill up with its handshake failure logs).
pub struct Pymodbus {
    child: Child,
    _log: tempfile::NamedTempFile,
}

impl Pymodbus {
    /// Starts the servers and waits until each port accepts connections.
    /// `holding`/`input`: (0-based address, word).
    pub fn start(holding: &[(u16, u16)], input: &[(u16, u16)], servers: &[PeerServer]) -> Self {
        let table = |words: &[(u16, u16)]| {
            words
                .iter()
                .map(|(a, w)| (a.to_string(), serde_json::json!(w)))
                .collect::<serde_json::Map<_, _>>()
        };
        let mut ports = Vec::new();
        let servers: Vec<serde_json::Value> = servers
            .iter()
            .map(|s| match s {
                PeerServer::Plain { port } => {
                    ports.push(*port);
                    serde_json::json!({ "port": port })
                }
                PeerServer::Tls {
                    port,
                    cert,
                    client_ca,
                } => {
                    ports.push(*port);
                    serde_json::json!({
                        "port": port,
                        "cert": cert.cert,
                        "key": cert.key,
                        "client_ca": client_ca,
                    })
                }
            })
            .collect();
        let spec = serde_json::json!({
            "words": { "holding": table(holding), "input": table(input) },
            "servers": servers,
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_rig/pymodbus_server.py");
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("python3")
            .arg(script)
            .arg(spec.to_string())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("python3 (scripts/test.sh installs pymodbus 3.11 for it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = child.try_wait().unwrap() {
                    let err = std::fs::read_to_string(log.path()).unwrap_or_default();
                    panic!("pymodbus exited ({status}); is pymodbus 3.11 installed (scripts/test.sh)?\n{err}");
                }
                assert!(
                    Instant::now() < deadline,
                    "pymodbus did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Pymodbus { child, _log: log }
    }
}

impl Drop for Pymodbus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

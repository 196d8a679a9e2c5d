//! Shared pieces of the `ingestor simulate` tests: the binary, a frozen
//! simulator clock, a free port, and a simulator process started on it and
//! stopped by pid.
#![allow(dead_code, unreachable_pub)]

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ingestor");
/// The simulator's clock, frozen: p = (T + address) mod 100 = address mod 100.
pub const T: &str = "1800000000";

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ingestor simulate -c CONFIG --listen 127.0.0.1:PORT EXTRA…`, killed on drop.
pub struct Simulator(Child);

impl Simulator {
    /// Starts it and waits until it listens (it must not exit meanwhile).
    pub fn start(config: &Path, port: u16, extra: &[&OsStr]) -> Self {
        let child = Command::new(BIN)
            .args(["simulate", "-c"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("INGESTOR_SIMULATE_TIME", T)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut sim = Simulator(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(sim.0.try_wait().unwrap().is_none(), "simulate exited");
            assert!(Instant::now() < deadline, "simulator did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// SIGTERM, then the exit status (0 expected).
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "simulator ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

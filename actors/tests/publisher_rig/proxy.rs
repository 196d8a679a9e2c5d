//! An in-process TCP proxy between the ingestor and nats-server that passes
//! bytes through and, on command, resets every connection (RST, as a broken
//! link or a NAT box timing out does), refuses new ones, stops reading from
//! the clients (a congested link), or drops what the server sends
//! (publishes get stored, their acks never arrive), or passes the clients'
//! bytes at a set rate only (a slow uplink).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Shared {
    resets: watch::Sender<u64>,
    refuse: AtomicBool,
    mute_replies: AtomicBool,
    stall: AtomicBool,
    accepted: AtomicU64,
    /// Client-to-server bytes per second, 0: unlimited.
    uplink: AtomicU64,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (a `nats://host:port` URL).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("nats://")
            .parse()
            .expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            resets: watch::channel(0).0,
            refuse: AtomicBool::new(false),
            mute_replies: AtomicBool::new(false),
            stall: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            uplink: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Linger 0: every close of these sockets is a reset.
                let _ = client.set_zero_linger();
                if s.refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                s.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(pipe(client, upstream, s.clone()));
            }
        });
        Proxy { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Resets every open connection now.
    pub fn reset(&self) {
        self.shared.resets.send_modify(|n| *n += 1);
    }

    /// While on, new connections are reset at once.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// While on, what the server sends is dropped (acks, pongs, replies).
    pub fn mute_replies(&self, on: bool) {
        self.shared.mute_replies.store(on, Ordering::SeqCst);
    }

    /// While on, nothing is read from the clients (a congested link): their
    /// socket buffers fill and publishes queue up inside the client.
    pub fn stall(&self, on: bool) {
        self.shared.stall.store(on, Ordering::SeqCst);
    }

    /// Passes what the clients send at `bytes_per_s` at most (0: no limit),
    /// a slow uplink: publishes are confirmed, just slowly.
    pub fn limit_uplink(&self, bytes_per_s: u64) {
        self.shared.uplink.store(bytes_per_s, Ordering::SeqCst);
    }

    /// Connections passed through so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset();
    }
}

async fn pipe(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut resets = shared.resets.subscribe();
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_zero_linger();
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while shared.stall.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let rate = shared.uplink.load(Ordering::SeqCst);
            // A limited link passes at most 1/50 s worth per read.
            let most = match rate {
                0 => buf.len(),
                r => (r as usize / 50).clamp(1, buf.len()),
            };
            match client_rx.read(&mut buf[..most]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if server_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if rate > 0 {
                        let secs = n as f64 / rate as f64;
                        tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if shared.mute_replies.load(Ordering::SeqCst) {
                        continue;
                    }
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = resets.changed() => {}
    }
    // Dropping both halves with linger 0 resets both sockets.
}

//! Making one connection: the monitor's connection policy on top of the
//! client options of `[nats]` (`crate::nats`), and the *sink* that makes a
//! client die with its connection instead of reconnecting.
//!
//! # Why a client never reconnects on its own
//! Commands queued inside an async-nats client when its socket dies are
//! written to the *next* connection of that client, before anything issued
//! later. A publish queued there would land ahead of the resend of an
//! earlier batch lost with the socket: the stream's order would step back.
//! So every connection gets a fresh client, and a client whose connection
//! dies must end, queue and all. async-nats 0.51 has no "never reconnect"
//! switch: `max_reconnects(0)` means unlimited, and a client parked in its
//! reconnect loop (a long reconnect delay) keeps its task and queue even
//! when every handle is dropped. What it does have: `max_reconnects(n)`
//! ends the client after `n` failed attempts, and `set_server_pool`
//! replaces the addresses it reconnects to. Once connected, a client's pool
//! becomes the [`Sink`]: a local listener that closes every connection at
//! once. The client's reconnect attempts fail in microseconds, it reaches
//! `max_reconnects`, its task returns and its queue is dropped unsent.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::nats::NatsSetupError;

/// The longest pause between two connect attempts: a server that is back
/// is in use again within about this long (plus the connect itself), and a
/// long outage costs at most two refused TCP connects a second.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The pause before connect attempt number `failures + 1` after the
/// connection was lost: at once, then 50 ms doubling to
/// [`RECONNECT_MAX_DELAY`].
pub fn reconnect_delay(failures: u32) -> Duration {
    RECONNECT_BACKOFF.after(failures)
}

/// 50 ms doubling to [`RECONNECT_MAX_DELAY`].
const RECONNECT_BACKOFF: Backoff = Backoff {
    min: Duration::from_millis(50),
    max: RECONNECT_MAX_DELAY,
};

/// A local TCP listener that accepts and closes every connection: the only
/// address a connected client may "reconnect" to.
pub(super) struct Sink {
    addr: ServerAddr,
    task: JoinHandle<()>,
}

impl Sink {
    pub(super) async fn start() -> Result<Sink, NatsSetupError> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| NatsSetupError::Client(format!("cannot open the local sink: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| NatsSetupError::Client(format!("cannot open the local sink: {e}")))?
            .port();
        let addr = format!("nats://127.0.0.1:{port}")
            .parse::<ServerAddr>()
            .map_err(|e| NatsSetupError::Client(e.to_string()))?;
        let task = tokio::spawn(async move {
            // Accepting and dropping closes the socket before the client
            // reads an INFO: its connect attempt fails at once.
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        Ok(Sink { addr, task })
    }

    pub(super) fn addr(&self) -> ServerAddr {
        self.addr.clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The options of one connection of the monitor: one attempt over the
/// configured servers, no waiting between them, and at most as many
/// reconnect attempts as there are servers — all of which go to the sink.
pub(super) fn one_connection(options: ConnectOptions, servers: usize) -> ConnectOptions {
    options
        .max_reconnects(Some(servers.max(1)))
        .reconnect_delay_callback(|_| Duration::ZERO)
        .ignore_discovered_servers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_is_immediate_then_doubles_to_half_a_second() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::from_millis(50));
        assert_eq!(reconnect_delay(5), RECONNECT_MAX_DELAY);
        assert_eq!(reconnect_delay(u32::MAX), RECONNECT_MAX_DELAY);
    }
}

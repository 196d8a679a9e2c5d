//! The connections of the `/metrics` + `/health` server, bounded in number
//! and in time, so that idle or slow clients cannot use up the process's
//! file descriptors (the spool, Modbus and NATS would then fail with
//! EMFILE) or hold a connection for good.
//!
//! - at most [`MAX_CONNECTIONS`] at once (a tokio semaphore: hyper has no
//!   such limit, tower's limits are per request); a connection past it is
//!   accepted and closed at once, so it never waits in the listen queue in
//!   front of a scraper, and the refusal is logged (rarely);
//! - a request's head must arrive within [`HEADER_READ_TIMEOUT`] (hyper's
//!   `header_read_timeout`; it also closes a keep-alive connection idle for
//!   that long);
//! - a request is answered within [`REQUEST_TIMEOUT`] (tower's `Timeout`,
//!   in `http.rs`), else 503;
//! - a connection lives at most [`CONNECTION_MAX`]: then it finishes the
//!   request in hand (up to [`GRACE`]) and is closed; a scraper simply
//!   connects again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Longest wait for a request's head (also: keep-alive idle time).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time to produce an answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection.
pub(crate) const CONNECTION_MAX: Duration = Duration::from_secs(60);
/// Time a connection gets to finish once asked to close.
const GRACE: Duration = Duration::from_secs(1);
/// The pause after a failed accept (EMFILE: give the others a moment).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown`, then asks open connections
/// to finish (dropping this future closes them all).
pub(crate) async fn serve_bounded(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut refused = 0u64;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "/metrics and /health: cannot accept a connection");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max = MAX_CONNECTIONS,
                    "/metrics and /health: too many open connections; new ones are closed at once"
                );
            }
            drop(stream);
            continue;
        };
        conns.spawn(connection(stream, app.clone(), permit, stopping.clone()));
    }
    let _ = stop.send(true);
    while conns.join_next().await.is_some() {}
}

/// One connection, from accept to close.
async fn connection(
    stream: TcpStream,
    app: Router,
    _permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let life = tokio::time::sleep(CONNECTION_MAX);
    tokio::pin!(life);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = &mut life => {}
        _ = stopping.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(GRACE, conn).await;
}

//! Links: one Modbus connection per address (or serial port), shared by
//! every device behind it, one request at a time.
//!
//! A [`Link`] is a handle to a task that owns the connection and serves
//! requests in arrival order, so devices on one gateway or serial line never
//! interleave on it. The task connects on the first request, and again after
//! any timeout or transport error: a reply that arrives after its request
//! timed out lands on a closed socket and can never be taken for the next
//! request's answer (RTU has no transaction id to tell them apart).
//!
//! `pause_after_connect` is kept after every connect, and
//! `pause_between_requests` between the end of one request and the start of
//! the next on the link (each request brings its device's pauses).
//!
//! A TLS link (Modbus/TCP Security) verifies the device's certificate at
//! every connect; a failed handshake, or a TLS alert the device sends later
//! (a TLS 1.3 server refusing a client without a certificate does so after
//! the handshake), is a [`LinkError::Tls`] with the reason in words, and the
//! connection is dropped like after any transport error. A client key file
//! readable by group or others is warned about once per link.
//!
//! Where a link connects, and which devices share one: `link/target.rs`;
//! what a request is and how it goes on the wire: `link/request.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;

use crate::settings::DeviceSettings;
use crate::tls::{closed_after_handshake, failure_reason};

mod request;
mod restart;
mod target;

use request::{perform, Op};
pub use request::{ReadRequest, RegisterData, WriteRequest};
use target::Target;

/// Why a request got no data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The device answered with a Modbus exception. Not retried (except 0x06
    /// "busy", see `busy_retries`); 0x02 usually means a wrong `address`.
    #[error("exception 0x{code:02x} {name}", code = .0, name = exception_name(*.0))]
    Exception(u8),
    /// No answer within `timeout`; the connection was dropped. Retried
    /// (`retries`); a device that keeps timing out is backed off.
    #[error("no answer within {t}", t = humantime_serde::re::humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The connection (or serial port) could not be opened. Retried later.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Address or serial port.
        target: String,
        /// What the OS said.
        reason: String,
    },
    /// The connection broke mid-request; it is reopened on the next request.
    #[error("connection lost: {0}")]
    Transport(String),
    /// Modbus/TCP Security failed: the handshake (the device's certificate
    /// is not trusted, expired or for another name; the device demanded or
    /// refused a client certificate) or a TLS alert later, or a TLS file
    /// could not be used. Retried later with back-off; it only goes away
    /// when the certificates or the settings change.
    #[error("TLS to {target} failed: {reason}")]
    Tls {
        /// The address.
        target: String,
        /// What went wrong and what to look at.
        reason: String,
    },
    /// The answer did not match the request (garbage, wrong id or
    /// function); the connection is reopened.
    #[error("garbled answer: {0}")]
    Protocol(String),
    /// The device has neither `address` nor `serial` (a config error).
    #[error("device has neither address nor serial")]
    NoTarget,
    /// The link's task is gone (the runtime is shutting down).
    #[error("link closed")]
    Closed,
}

impl LinkError {
    /// Transport trouble that `retries` may cure (not exceptions).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            LinkError::Timeout(_)
                | LinkError::Connect { .. }
                | LinkError::Transport(_)
                | LinkError::Tls { .. }
                | LinkError::Protocol(_)
        )
    }
}

/// The standard name of a Modbus exception code, lower case.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// A device's timing rules, carried by each of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestTiming {
    /// Longest wait for a connect and for an answer.
    pub timeout: Duration,
    /// Quiet time after a connect.
    pub pause_after_connect: Duration,
    /// Quiet time since the link's previous request.
    pub pause_between_requests: Duration,
}

impl RequestTiming {
    /// The timing rules of a `[[devices]]` entry.
    pub fn of(device: &DeviceSettings) -> Self {
        RequestTiming {
            timeout: device.timeout,
            pause_after_connect: device.pause_after_connect,
            pause_between_requests: device.pause_between_requests,
        }
    }
}

struct Job {
    op: Op,
    timing: RequestTiming,
    reply: oneshot::Sender<Result<RegisterData, LinkError>>,
}

/// A handle to one shared connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Link {
    jobs: mpsc::Sender<Job>,
    name: Arc<str>,
}

impl Link {
    /// Opens a link of its own for `device` (no sharing). Needs a tokio runtime.
    pub fn open(device: &DeviceSettings) -> Result<Link, LinkError> {
        Target::of(device).map(Link::spawn)
    }

    fn spawn(target: Target) -> Link {
        let (jobs, rx) = mpsc::channel(1024);
        let name: Arc<str> = Arc::from(target.name());
        tokio::spawn(restart::serve_restarting(target, rx));
        Link { jobs, name }
    }

    /// The address or serial port.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one read and waits for its answer (after the requests queued
    /// before it on this link).
    pub async fn read(
        &self,
        request: ReadRequest,
        timing: RequestTiming,
    ) -> Result<RegisterData, LinkError> {
        self.submit(Op::Read(request), timing).await
    }

    /// Sends one write and waits for the device's confirmation (after the
    /// requests queued before it on this link). Never retried here: a
    /// write that timed out may have been done.
    pub async fn write(
        &self,
        request: WriteRequest,
        timing: RequestTiming,
    ) -> Result<(), LinkError> {
        self.submit(Op::Write(request), timing).await.map(|_| ())
    }

    async fn submit(&self, op: Op, timing: RequestTiming) -> Result<RegisterData, LinkError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, timing, reply })
            .await
            .map_err(|_| LinkError::Closed)?;
        answer.await.unwrap_or(Err(LinkError::Closed))
    }
}

/// Hands out one [`Link`] per address (and framing) or serial port.
#[derive(Debug, Default)]
pub struct Links {
    links: HashMap<String, Link>,
}

impl Links {
    /// No links yet.
    pub fn new() -> Self {
        Links::default()
    }

    /// The link `device` uses, shared with every device at the same address
    /// or serial port. Needs a tokio runtime (the first call spawns the task).
    pub fn link_for(&mut self, device: &DeviceSettings) -> Result<Link, LinkError> {
        let target = Target::of(device)?;
        Ok(self
            .links
            .entry(target.key())
            .or_insert_with(|| Link::spawn(target))
            .clone())
    }

    /// Forgets the links that no device in `devices` uses any more (a config
    /// reload removed or moved them). A forgotten link closes when the last
    /// poller holding it stops; the links still in use are kept, so devices
    /// behind one gateway keep sharing its connection across a reload.
    pub fn retain_used<'a>(&mut self, devices: impl IntoIterator<Item = &'a DeviceSettings>) {
        let used: HashSet<String> = devices
            .into_iter()
            .filter_map(|d| Target::of(d).ok())
            .map(|t| t.key())
            .collect();
        self.links.retain(|key, _| used.contains(key));
    }
}

/// The link's task: one request at a time until every handle is dropped
/// (through panics: `restart`).
async fn serve(target: &Target, jobs: &mut mpsc::Receiver<Job>) {
    if let Some(tls) = target.tls().cloned() {
        if let Ok(Some(warning)) = tokio::task::spawn_blocking(move || tls.key_mode_warning()).await
        {
            tracing::warn!(target = target.name(), "{warning}");
        }
    }
    let mut conn: Option<Connection> = None;
    let mut last_end: Option<Instant> = None;
    while let Some(job) = jobs.recv().await {
        if job.reply.is_closed() {
            continue;
        }
        crate::fault::hit("poller.link").await;
        let result = exchange(target, &mut conn, &mut last_end, &job).await;
        last_end = Some(Instant::now());
        let _ = job.reply.send(result);
    }
}

/// A broken connection as a [`LinkError`]: on a TLS link, an alert from
/// the device, or the device closing a fresh session before its first
/// answer (a TLS 1.3 server that refuses the client's certificate, or
/// wants one, decides after the handshake), is a [`LinkError::Tls`].
fn transport_error(target: &Target, e: &std::io::Error, first: bool) -> LinkError {
    let Some(tls) = target.tls() else {
        return LinkError::Transport(e.to_string());
    };
    let reason = match failure_reason(e, tls) {
        Some(reason) => reason,
        // A close, or a reset when the device's close raced our request.
        None if first
            && matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            closed_after_handshake(tls)
        }
        None => return LinkError::Transport(e.to_string()),
    };
    let error = LinkError::Tls {
        target: target.name().into(),
        reason,
    };
    tracing::warn!(target = target.name(), %error, "TLS session ended by the device");
    error
}

/// An open connection, and whether it has answered a request yet.
struct Connection {
    ctx: Context,
    answered: bool,
}

async fn exchange(
    target: &Target,
    conn: &mut Option<Connection>,
    last_end: &mut Option<Instant>,
    job: &Job,
) -> Result<RegisterData, LinkError> {
    let t = job.timing;
    if let (Some(end), false) = (*last_end, t.pause_between_requests.is_zero()) {
        tokio::time::sleep_until(end + t.pause_between_requests).await;
    }
    let connection = match conn {
        Some(connection) => connection,
        None => {
            let ctx = match target.connect(t.timeout).await {
                Ok(ctx) => ctx,
                Err(error) => {
                    if let LinkError::Tls { .. } = error {
                        tracing::warn!(target = target.name(), %error, "TLS connection refused");
                    }
                    return Err(error);
                }
            };
            tracing::debug!(target = target.name(), "modbus connection opened");
            if !t.pause_after_connect.is_zero() {
                tokio::time::sleep(t.pause_after_connect).await;
            }
            conn.insert(Connection {
                ctx,
                answered: false,
            })
        }
    };
    let first = !connection.answered;
    let ctx = &mut connection.ctx;
    let unit = match &job.op {
        Op::Read(r) => r.unit,
        Op::Write(w) => w.unit(),
    };
    ctx.set_slave(Slave(unit));
    let answer = timeout(t.timeout, perform(ctx, &job.op)).await;
    let error = match answer {
        Ok(Ok(Ok(data))) => {
            connection.answered = true;
            return Ok(data);
        }
        Ok(Ok(Err(exception))) => {
            connection.answered = true;
            return Err(LinkError::Exception(u8::from(exception)));
        }
        Err(_) => LinkError::Timeout(t.timeout),
        Ok(Err(tokio_modbus::Error::Transport(e))) => transport_error(target, &e, first),
        Ok(Err(tokio_modbus::Error::Protocol(e))) => LinkError::Protocol(e.to_string()),
    };
    // Whatever is still on the wire belongs to this failed request: drop the
    // connection so that it can never be read as the next request's answer.
    tracing::debug!(target = target.name(), unit, %error, "dropping modbus connection");
    *conn = None;
    Err(error)
}

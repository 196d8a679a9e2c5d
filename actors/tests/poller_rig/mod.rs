//! Shared pieces of the poller scenario tests: config snippets, a register
//! server with scripted trouble, and a stand-in buffer that collects batches.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingestor_actors::buffer::BufferMsg;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, DevicePollerMsg, Links};
use ingestor_actors::settings::{DeviceSettings, RegisterKind};
use ingestor_actors::Batch;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// A `[[devices]]` entry from TOML (the keys of docs/reference.md §2).
pub fn device(toml_text: &str) -> DeviceSettings {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test device: {e}\n{toml_text}"))
}

/// A listener on a free loopback port and its address.
pub async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// One request the server saw (a read, or a write: function 6 or 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRead {
    pub unit: u8,
    pub function: u8,
    pub start: u16,
    pub count: u16,
}

/// A register server: fixed words per (kind, address) (default: `1000 +
/// address`), with scripted trouble.
#[derive(Default)]
pub struct ScriptedServer {
    pub words: HashMap<(RegisterKind, u16), u16>,
    /// Any read covering one of these answers exception 0x02.
    pub bad: Vec<(RegisterKind, u16)>,
    /// While set, every read answers this exception.
    pub fail_all: Mutex<Option<ExceptionCode>>,
    /// The first N reads answer exception 0x06 (busy).
    pub busy_first: AtomicUsize,
    /// The first N reads are answered only after this delay.
    pub slow_first: AtomicUsize,
    pub slow_delay: Duration,
    pub seen: Mutex<Vec<SeenRead>>,
    /// When each read arrived.
    pub arrivals: Mutex<Vec<std::time::Instant>>,
    /// When each connection was accepted.
    pub accepted: Mutex<Vec<std::time::Instant>>,
    pub connections: AtomicUsize,
    /// When set, a register's word is `signal(address, n)` for the `n`-th
    /// read this server answers (from 0): a signal that moves in known steps
    /// per poll, whatever the timing.
    pub signal: Option<fn(u16, usize) -> u16>,
    /// Holding registers written (functions 6 and 16, seen with them):
    /// they read as written from then on.
    pub written: Mutex<HashMap<u16, u16>>,
    /// Confirms writes but keeps nothing (a device that overrides a setpoint).
    pub ignore_writes: bool,
}

impl ScriptedServer {
    pub fn word(&self, kind: RegisterKind, a: u16) -> u16 {
        self.words
            .get(&(kind, a))
            .copied()
            .unwrap_or(1000u16.wrapping_add(a))
    }

    pub fn seen(&self) -> Vec<SeenRead> {
        self.seen.lock().unwrap().clone()
    }

    fn answer(&self, req: &SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        let (kind, function, start, count) = match &req.request {
            Request::WriteSingleRegister(a, w) => return Ok(self.write(req.slave, 6, *a, &[*w])),
            Request::WriteMultipleRegisters(a, w) => return Ok(self.write(req.slave, 16, *a, w)),
            Request::ReadHoldingRegisters(s, c) => (RegisterKind::Holding, 3, *s, *c),
            Request::ReadInputRegisters(s, c) => (RegisterKind::Input, 4, *s, *c),
            Request::ReadCoils(s, c) => (RegisterKind::Coil, 1, *s, *c),
            Request::ReadDiscreteInputs(s, c) => (RegisterKind::Discrete, 2, *s, *c),
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(SeenRead {
                unit: req.slave,
                function,
                start,
                count,
            });
            seen.len() - 1
        };
        self.arrivals
            .lock()
            .unwrap()
            .push(std::time::Instant::now());
        let take = |n: &AtomicUsize| {
            n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                .is_ok()
        };
        if let Some(code) = *self.fail_all.lock().unwrap() {
            return Err(code);
        }
        if take(&self.busy_first) {
            return Err(ExceptionCode::ServerDeviceBusy);
        }
        let range = u32::from(start)..u32::from(start) + u32::from(count);
        if self
            .bad
            .iter()
            .any(|&(k, a)| k == kind && range.contains(&u32::from(a)))
        {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let words: Vec<u16> = range
            .map(|a| match (self.signal, self.written_word(kind, a as u16)) {
                (_, Some(w)) => w,
                (Some(signal), None) => signal(a as u16, n),
                (None, None) => self.word(kind, a as u16),
            })
            .collect();
        Ok(match kind {
            RegisterKind::Holding => Response::ReadHoldingRegisters(words),
            RegisterKind::Input => Response::ReadInputRegisters(words),
            RegisterKind::Coil => Response::ReadCoils(words.iter().map(|&w| w != 0).collect()),
            RegisterKind::Discrete => {
                Response::ReadDiscreteInputs(words.iter().map(|&w| w != 0).collect())
            }
        })
    }

    fn written_word(&self, kind: RegisterKind, a: u16) -> Option<u16> {
        (kind == RegisterKind::Holding)
            .then(|| self.written.lock().unwrap().get(&a).copied())
            .flatten()
    }

    fn write(&self, unit: u8, function: u8, start: u16, words: &[u16]) -> Response {
        self.seen.lock().unwrap().push(SeenRead {
            unit,
            function,
            start,
            count: words.len() as u16,
        });
        let mut written = self.written.lock().unwrap();
        for (i, w) in words.iter().enumerate().filter(|_| !self.ignore_writes) {
            written.insert(start + i as u16, *w);
        }
        match function {
            6 => Response::WriteSingleRegister(start, words[0]),
            _ => Response::WriteMultipleRegisters(start, words.len() as u16),
        }
    }

    fn is_slow(&self) -> bool {
        self.slow_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
    }

    /// Serves Modbus TCP (`rtu = false`) or RTU over TCP on `listener`;
    /// aborting the task closes the listener and every connection.
    pub fn spawn(
        self: &Arc<Self>,
        listener: TcpListener,
        rtu: bool,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if rtu {
                use tokio_modbus::server::rtu_over_tcp::{accept_tcp_connection, Server};
                let on_connected = |stream, addr| {
                    me.connections.fetch_add(1, Ordering::SeqCst);
                    me.accepted.lock().unwrap().push(std::time::Instant::now());
                    let m = Arc::clone(&me);
                    async move {
                        accept_tcp_connection(stream, addr, move |_| {
                            Ok(Some(Scripted(Arc::clone(&m))))
                        })
                    }
                };
                let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
            } else {
                use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
                let on_connected = |stream, addr| {
                    me.connections.fetch_add(1, Ordering::SeqCst);
                    me.accepted.lock().unwrap().push(std::time::Instant::now());
                    let m = Arc::clone(&me);
                    async move {
                        accept_tcp_connection(stream, addr, move |_| {
                            Ok(Some(Scripted(Arc::clone(&m))))
                        })
                    }
                };
                let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
            }
        })
    }
}

struct Scripted(Arc<ScriptedServer>);

impl Service for Scripted {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let server = Arc::clone(&self.0);
        Box::pin(async move {
            if server.is_slow() {
                tokio::time::sleep(server.slow_delay).await;
            }
            server.answer(&req)
        })
    }
}

/// Stands in for the BufferActor: forwards every pushed batch to a channel.
pub struct CollectingBuffer;

impl Actor for CollectingBuffer {
    type Msg = BufferMsg;
    type State = mpsc::UnboundedSender<Batch>;
    type Arguments = mpsc::UnboundedSender<Batch>;

    async fn pre_start(
        &self,
        _: ActorRef<BufferMsg>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<BufferMsg>,
        msg: BufferMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The inlet sends chunks and waits for an answer per chunk.
        if let BufferMsg::PushTicketed { batches, reply, .. } = msg {
            if let Some(port) = reply {
                let _ = port.send(batches.iter().map(|(_, b)| Ok(b.seq)).collect());
            }
            // Write audit records (`_writes`) are not a device's batch.
            for (_, batch) in batches.into_iter().filter(|(_, b)| !b.is_service_event()) {
                let _ = tx.send(batch.decode().expect("the poller's payload reads back"));
            }
        }
        Ok(())
    }
}

/// A DevicePoller per device, all first polling at `t0` and pushing into
/// `buffer`, with back-off from 100 ms to `backoff_max`; devices at one
/// address share a link as in the service (keep the `Links` alive).
pub async fn spawn_pollers(
    devices: &[&DeviceSettings],
    buffer: &ActorRef<BufferMsg>,
    t0: tokio::time::Instant,
    backoff_max: Duration,
) -> (Links, Vec<ActorRef<DevicePollerMsg>>) {
    let mut links = Links::new();
    let mut pollers = Vec::new();
    for dev in devices {
        let args = DevicePollerArgs {
            status: Default::default(),
            writes: None,
            link: links.link_for(dev).unwrap(),
            device: (*dev).clone().into(),
            buffer: buffer.clone().into(),
            first_poll: t0,
            backoff_min: Duration::from_millis(100),
            backoff_max,
        };
        pollers.push(Actor::spawn(None, DevicePoller, args).await.unwrap().0);
    }
    (links, pollers)
}

/// A running CollectingBuffer and the receiving end of its batches.
pub async fn collecting_buffer() -> (ActorRef<BufferMsg>, mpsc::UnboundedReceiver<Batch>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (actor, _) = Actor::spawn(None, CollectingBuffer, tx).await.unwrap();
    (actor, rx)
}

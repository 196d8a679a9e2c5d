//! The ConnectionMonitor actor: its arguments, messages, state and
//! handlers side by side (the invariants are in the module doc,
//! [`crate::monitor`]).
//!
//! # Messages
//! [`ConnectionMonitorMsg`] has what others send (`Status`, from `/health`
//! and tests) and one opaque [`InternalMsg`] for what the monitor's own
//! tasks and callbacks send it: a client's event (from the event callback of
//! the client of one generation), time for a connect attempt (its own
//! timer), a finished attempt (the attempt task). Only this module can make
//! or match one.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Event, ServerAddr};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::connect::{one_connection, reconnect_delay, Sink};
use super::connection::{Announcer, ConnectionWatch, MONITOR_GONE};
use super::failure::{Cause, ConnectFailure, FailureLog};
use crate::metric_names;
use crate::nats::{connect_options, server_addrs};
use crate::settings::NatsSettings;
use crate::watched::{self, TaskPanicked};

/// How often the client pings the server by default; two missed pongs drop
/// the connection.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(2);

/// The ConnectionMonitor actor.
pub struct ConnectionMonitor;

/// What the ConnectionMonitor needs.
pub struct ConnectionMonitorArgs {
    /// `[nats]`.
    pub settings: NatsSettings,
    /// Shown to the server as the connection name (the service id).
    pub client_name: String,
    /// Where the connection state goes (the same channel for every
    /// incarnation, so a restarted monitor carries on where this one left off).
    pub connection: ConnectionWatch,
    /// Ping period; a dead path is noticed after about three of these.
    pub ping_interval: Duration,
}

/// What the monitor knows, for `/health` and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionMonitorStatus {
    /// Connected right now.
    pub connected: bool,
    /// The last connection problem, cleared when connected.
    pub last_error: Option<String>,
    /// Reconnects since start.
    pub reconnects: u64,
    /// Connect attempts since start, successful or not.
    pub connect_attempts: u64,
}

/// Messages of the ConnectionMonitor: what others may send it, and its own.
#[derive(Debug)]
pub enum ConnectionMonitorMsg {
    /// The current status.
    Status(RpcReplyPort<ConnectionMonitorStatus>),
    /// Sent by the monitor's own tasks and client callbacks; nothing outside
    /// this module can make or read one.
    Internal(InternalMsg),
}

/// A message a ConnectionMonitor sends itself (opaque outside this module).
#[derive(Debug)]
pub struct InternalMsg(Internal);

/// What a ConnectionMonitor's own tasks, timers and client callbacks tell it.
#[derive(Debug)]
enum Internal {
    /// A client event (sent by the event callback of the client of `generation`).
    Event {
        /// The connection the event is about.
        generation: u64,
        /// What happened.
        event: Event,
    },
    /// Time for a connect attempt (ignored unless `generation` is current).
    Connect {
        /// The connection to make.
        generation: u64,
    },
    /// A connect attempt finished (sent by the attempt task).
    Connected {
        /// The connection it made.
        generation: u64,
        /// The client, or why there is none.
        result: Result<Client, ConnectFailure>,
    },
    /// The attempt task panicked (a bug): the monitor fails and its
    /// supervisor restarts it (else no attempt would ever start again).
    AttemptPanicked(TaskPanicked),
}

impl Internal {
    fn msg(self) -> ConnectionMonitorMsg {
        ConnectionMonitorMsg::Internal(InternalMsg(self))
    }
}

/// The ConnectionMonitor's state. The `pub(super)` fields are the ones
/// `events.rs` reports through (the announcer, the last problem).
pub struct ConnectionMonitorState {
    settings: Arc<NatsSettings>,
    servers: Vec<ServerAddr>,
    client_name: String,
    ping_interval: Duration,
    sink: Sink,
    /// The client of the current connection, while it is up.
    client: Option<Client>,
    /// Counts connect attempts; events and answers of older ones are ignored.
    generation: u64,
    attempt: Option<JoinHandle<()>>,
    /// The current attempt's client lost its connection before it was handed over.
    lost_while_connecting: bool,
    failures: u32,
    /// Up while `client` is; down when this state is dropped.
    pub(super) announcer: Announcer,
    ever_connected: bool,
    reconnects: u64,
    connect_attempts: u64,
    pub(super) last_error: Option<String>,
    /// What the last connect failure logged, so a repeat is not.
    pub(super) failure_log: FailureLog,
}

impl Actor for ConnectionMonitor {
    type Msg = ConnectionMonitorMsg;
    type State = ConnectionMonitorState;
    type Arguments = ConnectionMonitorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnectionMonitorMsg>,
        args: ConnectionMonitorArgs,
    ) -> Result<ConnectionMonitorState, ActorProcessingErr> {
        // Settings problems (`nats::check`) and unreadable creds fail the start.
        connect_options(&args.settings, args.ping_interval).await?;
        let servers = server_addrs(&args.settings)?;
        metrics::gauge!(metric_names::NATS_CONNECTED).set(0.0);
        info!(servers = %crate::credentials::redacted_servers(&args.settings), "connecting to NATS in the background");
        let _ = myself.cast(Internal::Connect { generation: 0 }.msg());
        Ok(ConnectionMonitorState {
            settings: Arc::new(args.settings),
            servers,
            client_name: args.client_name,
            ping_interval: args.ping_interval,
            sink: Sink::start().await?,
            client: None,
            generation: 0,
            attempt: None,
            lost_while_connecting: false,
            failures: 0,
            announcer: Announcer(args.connection),
            ever_connected: false,
            reconnects: 0,
            connect_attempts: 0,
            last_error: None,
            failure_log: FailureLog::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnectionMonitorMsg>,
        msg: ConnectionMonitorMsg,
        state: &mut ConnectionMonitorState,
    ) -> Result<(), ActorProcessingErr> {
        crate::fault::hit("monitor").await;
        match msg {
            ConnectionMonitorMsg::Internal(InternalMsg(Internal::Event { generation, event })) => {
                if generation != state.generation {
                    return Ok(());
                }
                if state.client.is_some() {
                    state.on_event(&myself, event);
                } else if matches!(event, Event::Disconnected | Event::Closed) {
                    // Lost before the attempt task handed the client over.
                    state.lost_while_connecting = true;
                }
            }
            ConnectionMonitorMsg::Internal(InternalMsg(Internal::Connect { generation })) => {
                if generation == state.generation && state.client.is_none() {
                    state.start_attempt(&myself);
                }
            }
            ConnectionMonitorMsg::Internal(InternalMsg(Internal::Connected {
                generation,
                result,
            })) => {
                if generation != state.generation {
                    return Ok(());
                }
                state.attempt = None;
                let lost = std::mem::take(&mut state.lost_while_connecting);
                let result = result.and_then(|client| {
                    match !lost && client.connection_state() == State::Connected {
                        true => Ok(client),
                        false => Err(ConnectFailure::from_message(
                            Some(Cause::Unreachable),
                            "connection lost right after connecting".to_string(),
                        )),
                    }
                });
                match result {
                    Ok(client) => state.on_connected(client),
                    Err(failure) => {
                        state.connection_problem(failure);
                        state.failures = state.failures.saturating_add(1);
                        let delay = reconnect_delay(state.failures);
                        myself.send_after(delay, move || Internal::Connect { generation }.msg());
                    }
                }
            }
            ConnectionMonitorMsg::Internal(InternalMsg(Internal::AttemptPanicked(panicked))) => {
                return Err(panicked.into());
            }
            ConnectionMonitorMsg::Status(reply) => {
                let _ = reply.send(ConnectionMonitorStatus {
                    connected: state.client.is_some(),
                    last_error: state.last_error.clone(),
                    reconnects: state.reconnects,
                    connect_attempts: state.connect_attempts,
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConnectionMonitorMsg>,
        state: &mut ConnectionMonitorState,
    ) -> Result<(), ActorProcessingErr> {
        metrics::gauge!(metric_names::NATS_CONNECTED).set(0.0);
        // Nobody may use the client from here on: it is drained below.
        state.announcer.0.down(Some(MONITOR_GONE.into()));
        if let Some(attempt) = state.attempt.take() {
            attempt.abort();
        }
        if let Some(client) = state.client.take() {
            // Sends what is queued and closes; a dead server must not hold up the stop.
            let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        }
        Ok(())
    }
}

impl ConnectionMonitorState {
    /// Connects a fresh client in a task; the answer comes as `Connected`.
    fn start_attempt(&mut self, myself: &ActorRef<ConnectionMonitorMsg>) {
        if self.attempt.is_some() {
            return;
        }
        self.connect_attempts += 1;
        // A generation per attempt: events of an earlier, failed attempt's
        // client cannot be taken for this one's.
        self.generation += 1;
        self.lost_while_connecting = false;
        let generation = self.generation;
        let settings = self.settings.clone();
        let servers = self.servers.clone();
        let name = self.client_name.clone();
        let ping = self.ping_interval;
        let sink = self.sink.addr();
        let (me, on_panic) = (myself.clone(), myself.clone());
        let run = async move {
            crate::fault::hit("monitor.connect").await;
            let events = me.clone();
            let result = async {
                let options = connect_options(&settings, ping)
                    .await
                    .map_err(|e| ConnectFailure::from_message(Some(Cause::Setup), e.to_string()))?;
                let client = one_connection(options, servers.len())
                    .name(name)
                    .event_callback(move |event| {
                        // The actor may be gone while the client lives on; nothing to tell then.
                        let _ = events.cast(Internal::Event { generation, event }.msg());
                        async {}
                    })
                    .connect(servers)
                    .await
                    .map_err(|e| ConnectFailure::of(&e))?;
                // From now on this client can only "reconnect" to the sink:
                // it ends with its connection (see `connect`).
                client
                    .set_server_pool(vec![sink])
                    .await
                    .map_err(|e| ConnectFailure::from_message(None, e.to_string()))?;
                Ok(client)
            }
            .await;
            let _ = me.cast(Internal::Connected { generation, result }.msg());
        };
        self.attempt = Some(watched::spawn("monitor", "connect", run, move |p| {
            let _ = on_panic.cast(Internal::AttemptPanicked(p).msg());
        }));
    }

    fn on_connected(&mut self, client: Client) {
        let server = client.server_info();
        if self.ever_connected {
            self.reconnects += 1;
            metrics::counter!(metric_names::NATS_RECONNECTS_TOTAL).increment(1);
            info!(server = %server.server_name, port = server.port, "reconnected to NATS");
        } else {
            info!(server = %server.server_name, port = server.port, "connected to NATS");
        }
        self.ever_connected = true;
        self.failures = 0;
        self.last_error = None;
        self.failure_log.clear();
        metrics::gauge!(metric_names::NATS_CONNECTED).set(1.0);
        self.announcer.0.up(client.clone());
        self.client = Some(client);
    }

    /// The current connection is gone: its client is retired (it ends by
    /// itself against the sink) and a fresh one is connected at once.
    pub(super) fn on_disconnected(&mut self, myself: &ActorRef<ConnectionMonitorMsg>) {
        if self.client.take().is_none() {
            return;
        }
        warn!("lost the NATS connection; batches stay buffered, reconnecting");
        metrics::gauge!(metric_names::NATS_CONNECTED).set(0.0);
        self.announcer.0.down(Some("connection lost".into()));
        self.failures = 0;
        let generation = self.generation;
        let _ = myself.cast(Internal::Connect { generation }.msg());
    }
}

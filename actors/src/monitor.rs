//! ConnectionMonitor: owns the async-nats client and tells the others
//! whether NATS can be reached.
//!
//! The client connects in the background (`retry_on_initial_connect`), so the
//! service starts and buffers when NATS is down at boot, and it reconnects
//! forever. Every client event becomes a typed message: the Publisher gets
//! [`PublisherMsg::Connected`] (with the client) and
//! [`PublisherMsg::Disconnected`], the BufferActor gets
//! [`BufferMsg::Connection`] (it needs it for `persist = "disconnect"`).
//!
//! A TCP path that dies without a FIN (cable pulled, VPN gone) is noticed by
//! pings: the client sends one every [`MonitorArguments::ping_interval`] and
//! gives up after two unanswered, so within about three intervals instead of
//! the library's default of minutes.
//!
//! Metrics: `ingestor_nats_connected` (gauge), `ingestor_nats_reconnects_total`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ClientError, ConnectOptions, Event, ServerAddr, ServerError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::buffer::BufferMsg;
use crate::publisher::PublisherMsg;
use crate::settings::NatsSettings;

/// How often the client pings the server by default; two missed pongs drop
/// the connection.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(2);

/// Why the NATS client could not be set up. None of these heal by retrying:
/// they need a config change.
#[derive(Debug, Error)]
pub enum MonitorError {
    /// A `[nats] servers` entry is not a NATS URL.
    #[error("[nats] servers: {url:?} is not a NATS server address ({reason})")]
    InvalidServer {
        /// The configured entry, user info redacted.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// `[nats] servers` is empty.
    #[error("[nats] servers is empty: name at least one server")]
    NoServers,
    /// `creds_file` could not be read or parsed.
    #[error("[nats] creds_file {path}: {source}")]
    CredsFile {
        /// The configured path.
        path: String,
        /// The I/O or parse error.
        source: std::io::Error,
    },
    /// `nkey_seed_file` could not be read.
    #[error("[nats] nkey_seed_file {path}: {source}")]
    NkeySeedFile {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Only one of `user` and `password`, or only one of `cert_file` and `key_file`.
    #[error("[nats] {0}")]
    Incomplete(&'static str),
    /// The client refused the options (it does not connect yet, so this is a setup error).
    #[error("cannot set up the NATS client: {0}")]
    Client(String),
}

/// The ConnectionMonitor actor.
pub struct ConnectionMonitor;

/// What the ConnectionMonitor needs.
pub struct MonitorArguments {
    /// `[nats]`.
    pub settings: NatsSettings,
    /// Shown to the server as the connection name (the service id).
    pub client_name: String,
    /// Gets the client when connected, and every state change.
    pub publisher: ActorRef<PublisherMsg>,
    /// Gets `Connection(bool)`.
    pub buffer: ActorRef<BufferMsg>,
    /// Ping period; a dead path is noticed after about three of these.
    pub ping_interval: Duration,
}

/// What the monitor knows, for `/health` and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorStatus {
    /// Connected right now.
    pub connected: bool,
    /// The last connection problem, cleared when connected.
    pub last_error: Option<String>,
    /// Reconnects since start.
    pub reconnects: u64,
}

/// Messages of the ConnectionMonitor.
#[derive(Debug)]
pub enum MonitorMsg {
    /// A client event (sent by the client's event callback).
    Event(Event),
    /// The current status.
    Status(RpcReplyPort<MonitorStatus>),
    /// A restarted Publisher: send events there from now on; it is told the
    /// current state at once (with the client when connected).
    AttachPublisher(ActorRef<PublisherMsg>),
    /// A restarted BufferActor: send `Connection` there from now on; it is
    /// told the current state at once.
    AttachBuffer(ActorRef<BufferMsg>),
}

/// The ConnectionMonitor's state.
pub struct MonitorState {
    client: async_nats::Client,
    publisher: ActorRef<PublisherMsg>,
    buffer: ActorRef<BufferMsg>,
    connected: bool,
    ever_connected: bool,
    reconnects: u64,
    last_error: Option<String>,
    tls_configured: bool,
    stopped: Arc<AtomicBool>,
}

impl Actor for ConnectionMonitor {
    type Msg = MonitorMsg;
    type State = MonitorState;
    type Arguments = MonitorArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<MonitorMsg>,
        args: MonitorArguments,
    ) -> Result<MonitorState, ActorProcessingErr> {
        let servers = server_addrs(&args.settings)?;
        let s = &args.settings;
        let tls_configured = s.tls_required || s.ca_file.is_some() || s.cert_file.is_some();
        let events = myself.clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let stopped_flag = stopped.clone();
        let options = connect_options(&args.settings, args.ping_interval)
            .await?
            .name(&args.client_name)
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, &stopped_flag))
            .event_callback(move |event| {
                // The actor may be gone while the client lives on; nothing to tell then.
                let _ = events.cast(MonitorMsg::Event(event));
                async {}
            });
        metrics::gauge!("ingestor_nats_connected").set(0.0);
        let client = options
            .connect(servers)
            .await
            .map_err(|e| MonitorError::Client(e.to_string()))?;
        info!(servers = %crate::credentials::redacted_servers(&args.settings), "connecting to NATS in the background");
        Ok(MonitorState {
            client,
            publisher: args.publisher,
            buffer: args.buffer,
            connected: false,
            ever_connected: false,
            reconnects: 0,
            last_error: None,
            tls_configured,
            stopped,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<MonitorMsg>,
        msg: MonitorMsg,
        state: &mut MonitorState,
    ) -> Result<(), ActorProcessingErr> {
        crate::fault::hit("monitor").await;
        match msg {
            MonitorMsg::Event(event) => state.on_event(event),
            MonitorMsg::AttachPublisher(publisher) => {
                state.publisher = publisher;
                let msg = match state.connected {
                    true => PublisherMsg::Connected(state.client.clone()),
                    false => PublisherMsg::Disconnected,
                };
                let _ = state.publisher.cast(msg);
            }
            MonitorMsg::AttachBuffer(buffer) => {
                state.buffer = buffer;
                let _ = state.buffer.cast(BufferMsg::Connection(state.connected));
            }
            MonitorMsg::Status(reply) => {
                let _ = reply.send(MonitorStatus {
                    connected: state.connected,
                    last_error: state.last_error.clone(),
                    reconnects: state.reconnects,
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MonitorMsg>,
        state: &mut MonitorState,
    ) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("ingestor_nats_connected").set(0.0);
        // A client still trying to connect cannot be told to stop (it reads
        // no commands while connecting): from now on it waits instead of
        // knocking, so a stopped monitor leaves no retry loop behind.
        state.stopped.store(true, Ordering::Relaxed);
        if state.connected {
            // Sends what is queued and closes; a dead server must not hold up the stop.
            let _ = tokio::time::timeout(Duration::from_secs(2), state.client.drain()).await;
        }
        Ok(())
    }
}

impl MonitorState {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.on_connected(),
            Event::Disconnected => self.on_disconnected(),
            Event::ServerError(ServerError::AuthorizationViolation) => {
                self.connection_problem("authorization violation".into())
            }
            Event::ServerError(ServerError::Other(text)) => {
                if text.to_ascii_lowercase().contains("permissions violation") {
                    let _ = self.publisher.cast(PublisherMsg::ServerRejected(text));
                } else {
                    warn!(error = %text, "NATS server reported an error");
                }
            }
            Event::ServerError(ServerError::SlowConsumer(sid)) => {
                debug!(sid, "NATS slow consumer")
            }
            Event::ClientError(ClientError::Other(text)) => self.connection_problem(text),
            Event::ClientError(other) => self.connection_problem(other.to_string()),
            Event::LameDuckMode => info!("NATS server is shutting down (lame duck mode)"),
            Event::SlowConsumer(sid) => debug!(sid, "NATS slow consumer"),
            Event::Draining => debug!("NATS client draining"),
            Event::Closed => {
                if self.connected {
                    self.on_disconnected();
                }
                info!("NATS client closed");
            }
        }
    }

    fn on_connected(&mut self) {
        let server = self.client.server_info();
        if self.ever_connected {
            self.reconnects += 1;
            metrics::counter!("ingestor_nats_reconnects_total").increment(1);
            info!(server = %server.server_name, port = server.port, "reconnected to NATS");
        } else {
            info!(server = %server.server_name, port = server.port, "connected to NATS");
        }
        self.connected = true;
        self.ever_connected = true;
        self.last_error = None;
        metrics::gauge!("ingestor_nats_connected").set(1.0);
        let _ = self.buffer.cast(BufferMsg::Connection(true));
        let _ = self
            .publisher
            .cast(PublisherMsg::Connected(self.client.clone()));
    }

    fn on_disconnected(&mut self) {
        if self.connected {
            warn!("lost the NATS connection; batches stay buffered, reconnecting");
        }
        self.connected = false;
        metrics::gauge!("ingestor_nats_connected").set(0.0);
        let _ = self.buffer.cast(BufferMsg::Connection(false));
        let _ = self.publisher.cast(PublisherMsg::Disconnected);
    }

    /// A failed connect attempt: logged once per distinct cause, not per retry.
    fn connection_problem(&mut self, text: String) {
        if self.last_error.as_deref() == Some(text.as_str()) {
            debug!(error = %text, "NATS connect attempt failed again");
            return;
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("authorization") || lower.contains("authentication") {
            error!(
                error = %text,
                "NATS refused our credentials: check [nats] token / user + password / \
                 creds_file / nkey_seed_file; batches stay buffered, retrying"
            );
        } else if lower.contains("tls") {
            error!(
                error = %text,
                "TLS to NATS failed: check [nats] ca_file / cert_file / key_file / \
                 tls_required against the server; batches stay buffered, retrying"
            );
        } else if self.tls_configured {
            warn!(
                error = %text,
                "cannot reach NATS (server down, unreachable, or the TLS handshake failed: \
                 check [nats] ca_file / cert_file / key_file); batches stay buffered, retrying"
            );
        } else {
            warn!(error = %text, "cannot reach NATS; batches stay buffered, retrying");
        }
        self.last_error = Some(text);
    }
}

/// The library's back-off (immediately, then 2^n ms up to 4 s), or a year
/// once the monitor has stopped.
fn reconnect_delay(attempts: usize, stopped: &AtomicBool) -> Duration {
    if stopped.load(Ordering::Relaxed) {
        return Duration::from_secs(365 * 24 * 3600);
    }
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
    match attempts {
        0 | 1 => Duration::ZERO,
        _ => Duration::from_millis(2u64.saturating_pow(exponent)).min(Duration::from_secs(4)),
    }
}

fn server_addrs(settings: &NatsSettings) -> Result<Vec<ServerAddr>, MonitorError> {
    if settings.servers.is_empty() {
        return Err(MonitorError::NoServers);
    }
    settings
        .servers
        .iter()
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|e| MonitorError::InvalidServer {
                    url: crate::credentials::redact_url(url),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// The client options of `[nats]`: auth, TLS, unlimited reconnects, short pings.
pub async fn connect_options(
    settings: &NatsSettings,
    ping_interval: Duration,
) -> Result<ConnectOptions, MonitorError> {
    let mut options = match &settings.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| MonitorError::CredsFile {
                path: path.display().to_string(),
                source,
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(path) = &settings.nkey_seed_file {
        let seed =
            tokio::fs::read_to_string(path)
                .await
                .map_err(|source| MonitorError::NkeySeedFile {
                    path: path.display().to_string(),
                    source,
                })?;
        options = options.nkey(seed.trim().to_string());
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    match (&settings.user, &settings.password) {
        (Some(user), Some(password)) => {
            options = options.user_and_password(user.clone(), password.clone())
        }
        (None, None) => {}
        _ => return Err(MonitorError::Incomplete("user and password go together")),
    }
    if let Some(ca) = &settings.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            options = options.add_client_certificate(cert.clone(), key.clone())
        }
        (None, None) => {}
        _ => {
            return Err(MonitorError::Incomplete(
                "cert_file and key_file go together",
            ))
        }
    }
    Ok(options
        .require_tls(settings.tls_required)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .ping_interval(ping_interval)
        .connection_timeout(Duration::from_secs(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_backs_off_to_4s_then_waits_for_good_once_stopped() {
        let stopped = AtomicBool::new(false);
        assert_eq!(reconnect_delay(1, &stopped), Duration::ZERO);
        assert_eq!(reconnect_delay(3, &stopped), Duration::from_millis(4));
        assert_eq!(reconnect_delay(40, &stopped), Duration::from_secs(4));
        stopped.store(true, Ordering::Relaxed);
        assert!(reconnect_delay(1, &stopped) > Duration::from_secs(3600));
    }

    #[test]
    fn half_configured_auth_and_bad_urls_are_config_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut s = NatsSettings {
            user: Some("u".into()),
            ..NatsSettings::default()
        };
        let err = rt
            .block_on(connect_options(&s, DEFAULT_PING_INTERVAL))
            .unwrap_err();
        assert!(err.to_string().contains("user and password"));
        s.user = None;
        s.cert_file = Some("c.pem".into());
        let err = rt
            .block_on(connect_options(&s, DEFAULT_PING_INTERVAL))
            .unwrap_err();
        assert!(err.to_string().contains("cert_file and key_file"));
        s.cert_file = None;
        s.servers = vec!["nats://bad host:4222".into()];
        assert!(matches!(
            server_addrs(&s),
            Err(MonitorError::InvalidServer { .. })
        ));
        s.servers.clear();
        assert!(matches!(server_addrs(&s), Err(MonitorError::NoServers)));
    }
}

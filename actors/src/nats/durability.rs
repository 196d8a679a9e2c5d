//! The other side's durability: an acknowledged batch is deleted from the
//! buffer, but a single nats-server acknowledges before its file store is
//! synced (every 2 minutes by default), so a power failure of the NATS host
//! can lose acknowledged batches. The service says so once per Publisher
//! (at start and after a `[nats]` reload) when the stream has one replica;
//! `ingestor check` says the same when it can reach the server, and shows
//! which installation last published on `[service] id` ([`probe`]).

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::message::StreamMessage;

use crate::settings::{NatsMode, NatsSettings};

/// The warning for a stream with `replicas` replicas; `None` from three on
/// (a quorum has the batch before it acknowledges).
pub fn single_replica_warning(stream: &str, replicas: usize) -> Option<String> {
    let replicas = replicas.max(1);
    (replicas < 3).then(|| {
        format!(
            "stream {stream:?} has {replicas} replica{}: the server acknowledges a batch (and the \
             ingestor deletes it) before it is on the server's disk (nats-server syncs its file \
             store every 2 minutes by default), so a power failure of the NATS host can lose \
             acknowledged batches. For that guarantee use num_replicas = 3 on a cluster, or set \
             `sync_interval: always` in the server's jetstream block (nats-server >= 2.10)",
            if replicas == 1 { "" } else { "s" }
        )
    })
}

/// What `check` learns from the server, within `within` (never longer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The stream exists.
    Stream {
        /// The warning, if it has fewer than three replicas.
        warning: Option<String>,
        /// Its last message on `<prefix>.<service.id>.>`, if any.
        last_on_id: Option<LastOnId>,
        /// The biggest message it and the server take (`max_msg_size`,
        /// `max_payload`, headers included).
        limit: usize,
    },
    /// Reached, but there is no such stream yet (`create_stream` makes one
    /// with one replica).
    NoStream {
        /// The server's `max_payload`.
        limit: usize,
    },
    /// Core mode: nothing to ask.
    Core,
    /// Not reachable (or refused us) within `within`: not checked.
    Unreachable(String),
}

/// The stream's last message on a service id: who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastOnId {
    /// Its `Ingestor-Installation` (none from builds before it).
    pub installation: Option<String>,
    /// Its `Ingestor-Seq`.
    pub seq: Option<u64>,
    /// How long ago it was stored (by the server's clock against ours).
    pub age: Duration,
}

/// Connects with the `[nats]` options and reads the stream's replicas and
/// its last message on `<prefix>.<service_id>.>`.
pub async fn probe(settings: &NatsSettings, service_id: &str, within: Duration) -> Probe {
    if settings.mode == NatsMode::Core {
        return Probe::Core;
    }
    match tokio::time::timeout(within, ask(settings, service_id)).await {
        Ok(probe) => probe,
        Err(_) => Probe::Unreachable(format!("no answer within {within:?}")),
    }
}

async fn ask(settings: &NatsSettings, service_id: &str) -> Probe {
    let options = match super::connect_options(settings, Duration::from_secs(60)).await {
        Ok(options) => options,
        Err(e) => return Probe::Unreachable(e.to_string()),
    };
    let servers = match super::server_addrs(settings) {
        Ok(servers) => servers,
        Err(e) => return Probe::Unreachable(e.to_string()),
    };
    let client = match options.connect(servers).await {
        Ok(client) => client,
        Err(e) => return Probe::Unreachable(e.to_string()),
    };
    let max_payload = client.server_info().max_payload;
    let js = jetstream::new(client);
    match js.get_stream(&settings.stream).await {
        Ok(stream) => {
            let config = &stream.cached_info().config;
            let limit = match usize::try_from(config.max_message_size) {
                Ok(m) if m > 0 => m.min(max_payload),
                _ => max_payload,
            };
            let filter = format!("{}.{service_id}.>", settings.subject_prefix);
            let last_on_id = match super::last::last_on_subjects(&stream, &filter).await {
                Ok(last) => last.as_ref().map(last_on_id),
                Err(e) => return Probe::Unreachable(e),
            };
            Probe::Stream {
                warning: single_replica_warning(
                    &settings.stream,
                    stream.cached_info().config.num_replicas,
                ),
                last_on_id,
                limit,
            }
        }
        Err(e) if e.to_string().to_ascii_lowercase().contains("not found") => {
            Probe::NoStream { limit: max_payload }
        }
        Err(e) => Probe::Unreachable(e.to_string()),
    }
}

fn last_on_id(message: &StreamMessage) -> LastOnId {
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or_default();
    let age =
        u64::try_from(now.saturating_sub(message.time.unix_timestamp_nanos())).unwrap_or_default();
    LastOnId {
        installation: header(crate::installation::HEADER),
        seq: header("Ingestor-Seq").and_then(|v| v.parse().ok()),
        age: Duration::from_nanos(age),
    }
}

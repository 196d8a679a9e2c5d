//! The other side's durability: an acknowledged batch is deleted from the
//! buffer, but a single nats-server acknowledges before its file store is
//! synced (every 2 minutes by default), so a power failure of the NATS host
//! can lose acknowledged batches. The service says so once per Publisher
//! (at start and after a `[nats]` reload) when the stream has one replica;
//! `ingestor check` says the same when it can reach the server.

use std::time::Duration;

use async_nats::jetstream;

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
    /// The stream exists; the warning, if it has fewer than three replicas.
    Stream(Option<String>),
    /// Reached, but there is no such stream yet (`create_stream` makes one
    /// with one replica).
    NoStream,
    /// Core mode: nothing to ask.
    Core,
    /// Not reachable (or refused us) within `within`: not checked.
    Unreachable(String),
}

/// Connects with the `[nats]` options and reads the stream's replicas.
pub async fn probe(settings: &NatsSettings, within: Duration) -> Probe {
    if settings.mode == NatsMode::Core {
        return Probe::Core;
    }
    match tokio::time::timeout(within, ask(settings)).await {
        Ok(probe) => probe,
        Err(_) => Probe::Unreachable(format!("no answer within {within:?}")),
    }
}

async fn ask(settings: &NatsSettings) -> Probe {
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
    let js = jetstream::new(client);
    match js.get_stream(&settings.stream).await {
        Ok(stream) => Probe::Stream(single_replica_warning(
            &settings.stream,
            stream.cached_info().config.num_replicas,
        )),
        Err(e) if e.to_string().to_ascii_lowercase().contains("not found") => Probe::NoStream,
        Err(e) => Probe::Unreachable(e.to_string()),
    }
}

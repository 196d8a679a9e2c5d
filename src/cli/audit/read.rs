//! Reading the stream for `audit`: one ordered consumer on
//! `<subject_prefix>.>` (ephemeral, in memory, no acks: nothing is left on
//! the server once the client goes), from the start or from `--since`, up
//! to what the stream held when the read began. Progress on stderr, only
//! when it is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use ingestor_actors::settings::NatsSettings;

use super::report::{Gap, Kind, Stored};

/// How long one message may take before the read counts as stalled.
const STALL: Duration = Duration::from_secs(20);
/// How long connecting may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// What was read: the messages of the service (those with an
/// `Ingestor-Seq`) and how many others were stepped over.
pub(super) struct Read {
    pub(super) stored: Vec<Stored>,
    pub(super) others: u64,
}

/// Reads every message on `<prefix>.>` from `since` (or the start).
pub(super) async fn read(
    nats: &NatsSettings,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Read> {
    let options = ingestor_actors::nats::connect_options(nats, Duration::from_secs(30)).await?;
    let servers = ingestor_actors::nats::server_addrs(nats)?;
    let client = tokio::time::timeout(CONNECT_WITHIN, options.connect(servers))
        .await
        .map_err(|_| anyhow!("no NATS server answered within {CONNECT_WITHIN:?}"))?
        .context("connecting to NATS")?;
    let js = jetstream::new(client);
    let stream = js
        .get_stream(&nats.stream)
        .await
        .with_context(|| format!("stream {:?}", nats.stream))?;
    let deliver_policy = match since {
        Some(t) => serde_json::from_value(serde_json::json!({
            "deliver_policy": "by_start_time",
            "opt_start_time": t.to_rfc3339(),
        }))?,
        None => consumer::DeliverPolicy::All,
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{}.>", nats.subject_prefix),
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("creating an ordered consumer")?;
    let total = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.context("reading the stream")?;
    let mut progress = Progress::new(total);
    let mut read = Read {
        stored: Vec::with_capacity(total as usize),
        others: 0,
    };
    let mut seen = 0;
    while seen < total {
        let message = tokio::time::timeout(STALL, messages.next())
            .await
            .map_err(|_| {
                anyhow!("the stream sent nothing for {STALL:?} after {seen} of {total} messages")
            })?
            .ok_or_else(|| anyhow!("the stream ended after {seen} of {total} messages"))?
            .map_err(|e| anyhow!("reading the stream: {e}"))?;
        seen += 1;
        let info = message
            .info()
            .map_err(|e| anyhow!("a message without its info: {e}"))?;
        let (stream_seq, pending) = (info.stream_sequence, info.pending);
        match stored(&message, stream_seq, &nats.subject_prefix) {
            Some(s) => read.stored.push(s),
            None => read.others += 1,
        }
        progress.tick(seen);
        if pending == 0 {
            break;
        }
    }
    progress.done();
    Ok(read)
}

/// One message as the audit sees it; `None` when it is not the service's
/// (no `Ingestor-Seq` header, or a subject outside `<prefix>.<id>.<token>`).
fn stored(message: &jetstream::Message, stream_seq: u64, prefix: &str) -> Option<Stored> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let seq = header("Ingestor-Seq")?.parse().ok()?;
    let rest = message
        .subject
        .as_str()
        .strip_prefix(prefix)?
        .strip_prefix('.')?;
    let (service_id, last) = rest.split_once('.')?;
    let payload: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
    let kind = if last == "_gaps" {
        match serde_json::from_value::<Gap>(payload["gap"].clone()) {
            Ok(gap) => Kind::Gap(gap),
            Err(_) => Kind::Own,
        }
    } else if last.starts_with('_') {
        Kind::Own
    } else {
        Kind::Batch {
            device: payload["device"].as_str().unwrap_or(last).to_string(),
            ts: payload["ts"].as_str().unwrap_or_default().to_string(),
        }
    };
    Some(Stored {
        stream_seq,
        service_id: service_id.to_string(),
        installation: header(ingestor_actors::installation::HEADER),
        seq,
        kind,
    })
}

/// `read N/M messages` on stderr, when it is a terminal.
struct Progress {
    total: u64,
    on: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            on: std::io::stderr().is_terminal() && total > 0,
        }
    }

    fn tick(&mut self, seen: u64) {
        if self.on && (seen.is_multiple_of(1000) || seen == self.total) {
            let percent = seen * 100 / self.total.max(1);
            eprint!("\raudit: read {seen}/{} messages ({percent}%)", self.total);
            let _ = std::io::stderr().flush();
        }
    }

    fn done(&self) {
        if self.on {
            eprintln!();
        }
    }
}

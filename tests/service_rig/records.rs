//! The stream as a consumer reads it, message by message with its headers,
//! and the plant's identity (`[service] id`, the installation id in its
//! `data_dir`): for the tests where several installations share a stream.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use super::{Plant, STREAM};

/// One message of the stream.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where the stream holds it.
    pub stream_seq: u64,
    pub subject: String,
    /// `Ingestor-Seq`.
    pub seq: u64,
    /// `Ingestor-Installation`.
    pub installation: Option<String>,
    /// `Nats-Msg-Id`.
    pub msg_id: String,
    pub payload: serde_json::Value,
}

/// Every message of the stream, in stream order, read with a pull consumer
/// that acks nothing (removed with the client).
pub fn read_records(url: &str) -> Vec<Record> {
    read_records_as(url, async_nats::ConnectOptions::new())
}

/// `read_records` with a client made from `options` (a user, a token).
pub fn read_records_as(url: &str, options: async_nats::ConnectOptions) -> Vec<Record> {
    block_on(async {
        let client = options.connect(url).await.unwrap();
        let js = jetstream::new(client);
        let mut stream = js.get_stream(STREAM).await.unwrap();
        let total = stream.info().await.unwrap().state.messages;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::All,
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::with_capacity(total as usize);
        while (out.len() as u64) < total {
            let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
                .await
                .expect("stream read stalled")
                .unwrap()
                .unwrap();
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_string())
            };
            out.push(Record {
                stream_seq: m.info().unwrap().stream_sequence,
                subject: m.subject.to_string(),
                seq: header("Ingestor-Seq").unwrap().parse().unwrap(),
                installation: header("Ingestor-Installation"),
                msg_id: header("Nats-Msg-Id").unwrap(),
                payload: serde_json::from_slice(&m.payload).unwrap(),
            });
        }
        out
    })
}

/// The seqs of `installation`'s messages, in stream order.
pub fn seqs_of(records: &[Record], installation: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r.installation.as_deref() == Some(installation))
        .map(|r| r.seq)
        .collect()
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Plant {
    /// `ingestor audit -c <config> <args>`: exit code, and stdout then stderr.
    pub fn audit(&self, args: &[&str]) -> (i32, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingestor"))
            .arg("audit")
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The installation id in this plant's `data_dir` (created by its first start).
    pub fn installation(&self) -> String {
        let path = self.data_dir().join("installation");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Rewrites the config's `[service] id` (the plant starts with `SERVICE`).
    pub fn set_service_id(&self, id: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("id = ") && text.find(l) < text.find("[nats]"))
            .unwrap()
            .to_string();
        let text = text.replacen(&line, &format!("id = \"{id}\""), 1);
        std::fs::write(&self.config, text).unwrap();
    }

    /// Adds `line` to `[service]` (e.g. `replaces = "…"`).
    pub fn add_service_key(&self, line: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text.replacen("[service]\n", &format!("[service]\n{line}\n"), 1);
        std::fs::write(&self.config, text).unwrap();
    }
}

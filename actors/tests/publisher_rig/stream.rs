//! What the stream holds, read back with ordinary clients, and the checks
//! of the consumer's promise (docs/reference.md §3).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use ingestor_actors::settings::NatsSettings;

use super::{reader, SERVICE};

/// Creates stream `name` on `telemetry.>` with three replicas, retrying
/// while a fresh cluster elects its meta leader.
pub async fn create_r3_stream(client: &async_nats::Client, name: &str) -> jetstream::Context {
    let js = jetstream::new(client.clone());
    let config = jetstream::stream::Config {
        name: name.into(),
        subjects: vec!["telemetry.>".into()],
        num_replicas: 3,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    for _ in 0..60 {
        if js.create_stream(config.clone()).await.is_ok() {
            return js;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("R3 stream {name} not created within 30 s");
}

/// Messages in the stream (0 when it does not exist yet).
pub async fn stream_count(client: &async_nats::Client, stream: &str) -> u64 {
    let js = jetstream::new(client.clone());
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Every message of the stream in stream order, read with an ordinary pull
/// consumer: the `Ingestor-Seq` header of each, checked against the payload.
/// Gap events (`._gaps`) included: every seq is a batch or an event.
pub async fn read_seqs(client: &async_nats::Client, stream: &str) -> Vec<u64> {
    read_messages(client, stream)
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect()
}

/// `read_seqs` without the service's own messages (gap events), as a
/// consumer of batches reads the stream.
pub async fn read_batch_seqs(client: &async_nats::Client, stream: &str) -> Vec<u64> {
    read_messages(client, stream)
        .await
        .into_iter()
        .filter(|(_, device)| !device.starts_with('_'))
        .map(|(seq, _)| seq)
        .collect()
}

/// Every message: its seq and device (checked as `read_seqs` says).
async fn read_messages(client: &async_nats::Client, stream: &str) -> Vec<(u64, String)> {
    let js = jetstream::new(client.clone());
    let mut s = js.get_stream(stream).await.unwrap();
    let total = s.info().await.unwrap().state.messages;
    let config = consumer::pull::Config {
        ack_policy: consumer::AckPolicy::None,
        deliver_policy: consumer::DeliverPolicy::All,
        num_replicas: 1,
        ..Default::default()
    };
    // Right after a failover the cluster may need a moment to place a consumer.
    let mut attempts = 0;
    let consumer: consumer::PullConsumer = loop {
        match s.create_consumer(config.clone()).await {
            Ok(c) => break c,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("create consumer: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot create a consumer on {stream}: {e}"),
        }
    };
    let mut messages = consumer.messages().await.unwrap();
    let mut seqs = Vec::with_capacity(total as usize);
    let mut installations: Option<String> = None;
    let mut read = 0u64;
    while read < total {
        read += 1;
        let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("stream read stalled")
            .unwrap()
            .unwrap();
        let headers = m.headers.as_ref().expect("headers");
        let seq: u64 = headers
            .get("Ingestor-Seq")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let msg_id = headers.get("Nats-Msg-Id").unwrap().as_str().to_string();
        // Every message carries the installation, one and the same.
        let installation = headers
            .get("Ingestor-Installation")
            .expect("Ingestor-Installation header")
            .as_str()
            .to_string();
        let first = installations.get_or_insert_with(|| installation.clone());
        assert_eq!(*first, installation, "one installation per stream");
        assert_eq!(msg_id, format!("{SERVICE}-{seq}"));
        let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            payload["seq"].as_u64(),
            Some(seq),
            "payload seq matches header"
        );
        let device = payload["device"].as_str().unwrap();
        assert_eq!(m.subject.as_str(), format!("telemetry.{SERVICE}.{device}"));
        seqs.push((seq, device.to_owned()));
    }
    seqs
}

/// `1..=n`, for comparing with what the stream holds.
pub fn all_seqs(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// Asserts the stream holds every seq 1..=n exactly once; with `ordered`,
/// also ascending. Prints a short description of any difference.
pub fn assert_exactly_once(seqs: &[u64], n: u64, ordered: bool) {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    let dups: Vec<u64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(dups.is_empty(), "duplicated seqs in the stream: {dups:?}");
    let missing: Vec<u64> = (1..=n)
        .filter(|s| sorted.binary_search(s).is_err())
        .take(20)
        .collect();
    assert!(
        missing.is_empty(),
        "seqs missing from the stream (first 20): {missing:?}"
    );
    assert_eq!(sorted.len() as u64, n, "stream holds extra seqs");
    let inversions = seqs.windows(2).filter(|w| w[0] > w[1]).count();
    if inversions > 0 {
        eprintln!("note: {inversions} places where the stream's seq order steps back");
    }
    if ordered {
        let out_of_order: Vec<(u64, u64)> = seqs
            .windows(2)
            .filter(|w| w[0] > w[1])
            .map(|w| (w[0], w[1]))
            .take(20)
            .collect();
        assert!(
            out_of_order.is_empty(),
            "seqs out of order in the stream: {out_of_order:?}"
        );
    }
}

/// What a consumer of the stream is promised (docs/reference.md §3): every seq
/// 1..=n exactly once, strictly ascending in stream order.
pub fn assert_each_once_ascending(seqs: &[u64], n: u64) {
    assert_exactly_once(seqs, n, true);
}

/// A stream made by the test, as a site would: subjects `telemetry.>`,
/// the given duplicate window and message size limit (-1: none).
pub async fn create_stream(
    settings: &NatsSettings,
    name: &str,
    duplicate_window: Duration,
    max_message_size: i32,
) {
    let client = reader(settings).await;
    jetstream::new(client)
        .create_stream(jetstream::stream::Config {
            name: name.into(),
            subjects: vec!["telemetry.>".into()],
            duplicate_window,
            max_message_size,
            ..Default::default()
        })
        .await
        .unwrap();
}

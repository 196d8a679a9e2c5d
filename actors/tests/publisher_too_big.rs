//! A batch bigger than NATS takes (the stream's `max_msg_size`, the
//! server's `max_payload`) never blocks the others: it is set aside (kept
//! in the spool's quarantine, not published, counted), and every other
//! batch is delivered once, in order.

mod publisher_rig;

use std::sync::OnceLock;
use std::time::Duration;

use ingestor_actors::buffer::{BufferMsg, PushError, Spool};
use ingestor_actors::{Batch, Value};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use publisher_rig::*;
use tokio::sync::Mutex;

/// The process's recorder (the actors record on tokio's workers), and a
/// lock that runs these tests one at a time so their counts do not mix.
async fn metrics() -> (&'static Snapshotter, tokio::sync::MutexGuard<'static, ()>) {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
    let snapshotter = SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        snapshotter
    });
    (snapshotter, ONE_AT_A_TIME.lock().await)
}

fn set_aside_too_big(snapshotter: &Snapshotter) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(k, ..)| {
            k.key().name() == "ingestor_buffer_set_aside_total"
                && k.key()
                    .labels()
                    .any(|l| l.key() == "reason" && l.value() == "too_big")
        })
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

/// Pushes `n` batches of four devices; those in `big` carry a 10 kB string.
async fn push_with_big_ones(pipeline: &Pipeline, n: u64, big: &[u64]) {
    for i in 1..=n {
        let mut batch = Batch::new(format!("press-{:02}", i % 4), chrono::Utc::now());
        batch.values.push(("count".into(), Value::UInt(i)));
        if big.contains(&i) {
            batch
                .values
                .push(("recipe".into(), Value::Str("x".repeat(10_000))));
        }
        let seq: Result<u64, PushError> = ractor::call!(pipeline.buffer, |reply| BufferMsg::Push(
            batch.into(),
            Some(reply)
        ))
        .unwrap();
        assert_eq!(seq.unwrap(), i);
    }
}

/// Stops the pipeline; the records its quarantine holds.
async fn quarantined_after_stop(pipeline: Pipeline) -> usize {
    pipeline.stop_nats_side().await;
    pipeline.buffer.stop_and_wait(None, None).await.unwrap();
    let (spool, _) = Spool::open(pipeline.data_dir.path()).unwrap();
    spool.quarantined().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_the_streams_max_msg_size_are_set_aside_and_the_rest_flow_in_order() {
    let (snapshotter, _one) = metrics().await;
    let before = set_aside_too_big(snapshotter);
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "BIG");
    create_stream(&direct, "BIG", Duration::from_secs(120), 4096).await;
    let pipeline = Pipeline::start(nats_settings(&[server.url()], "BIG")).await;
    let big = [7u64, 11, 25];
    push_with_big_ones(&pipeline, 40, &big).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&reader(&direct).await, "BIG").await;
    let want: Vec<u64> = (1..=40).filter(|s| !big.contains(s)).collect();
    assert_eq!(seqs, want, "every other batch once, in order");
    assert_eq!(set_aside_too_big(snapshotter) - before, 3, "each counted");
    assert_eq!(
        quarantined_after_stop(pipeline).await,
        3,
        "kept on disk, in quarantine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_the_servers_max_payload_are_set_aside_and_the_rest_flow_in_order() {
    let (snapshotter, _one) = metrics().await;
    let before = set_aside_too_big(snapshotter);
    let server = NatsServer::start_with("max_payload: 4096");
    let settings = nats_settings(&[server.url()], "SMALL");
    let pipeline = Pipeline::start(settings.clone()).await;
    let big = [1u64, 5, 10, 15, 20];
    push_with_big_ones(&pipeline, 20, &big).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&reader(&settings).await, "SMALL").await;
    let want: Vec<u64> = (1..=20).filter(|s| !big.contains(s)).collect();
    assert_eq!(seqs, want, "every other batch once, in order");
    assert_eq!(set_aside_too_big(snapshotter) - before, 5, "each counted");
    assert_eq!(quarantined_after_stop(pipeline).await, 5, "kept on disk");
}

/// A batch whose payload is `size` bytes as published (seq `seq`).
fn batch_of_payload_size(seq: u64, size: usize) -> Batch {
    let make = |pad: usize| {
        let mut batch = Batch::new("press-01", chrono::Utc::now());
        batch
            .values
            .push(("recipe".into(), Value::Str("x".repeat(pad))));
        batch
    };
    let mut encoded = ingestor_actors::EncodedBatch::encode(&make(0));
    encoded.seq = seq;
    let bare = encoded.payload().len();
    make(size - bare)
}

/// Under the limit by its payload, over it with its headers: the server
/// refuses it (JetStream's "message size exceeds maximum"), and that
/// refusal sets it aside just the same; the batches pipelined behind it
/// are stored and confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_limit_only_with_its_headers_is_set_aside_on_the_refusal() {
    let (snapshotter, _one) = metrics().await;
    let before = set_aside_too_big(snapshotter);
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "EDGE");
    create_stream(&direct, "EDGE", Duration::from_secs(120), 4096).await;
    let pipeline = Pipeline::start(nats_settings(&[server.url()], "EDGE")).await;
    for i in 1..=20u64 {
        let batch = if i == 9 {
            batch_of_payload_size(i, 4090)
        } else {
            let mut b = Batch::new(format!("press-{:02}", i % 4), chrono::Utc::now());
            b.values.push(("count".into(), Value::UInt(i)));
            b
        };
        let seq: Result<u64, PushError> = ractor::call!(pipeline.buffer, |reply| BufferMsg::Push(
            batch.into(),
            Some(reply)
        ))
        .unwrap();
        assert_eq!(seq.unwrap(), i);
    }
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&reader(&direct).await, "EDGE").await;
    let want: Vec<u64> = (1..=20).filter(|s| *s != 9).collect();
    assert_eq!(seqs, want, "every other batch once, in order");
    assert_eq!(set_aside_too_big(snapshotter) - before, 1, "counted");
    assert_eq!(quarantined_after_stop(pipeline).await, 1, "kept on disk");
}

//! A server that refuses our batches (permission denied, no stream, payload
//! too big): counted, nothing acked, nothing dropped, everything delivered
//! once the cause is fixed.

mod publisher_rig;

use std::time::Duration;

use async_nats::jetstream;
use ingestor_actors::buffer::{BufferMsg, PushError};
use ingestor_actors::{Batch, Value};
use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_is_counted_nothing_acked_then_delivered_after_reload() {
    let mut server = NatsServer::start_with(&users(r#""$JS.API.>", "_INBOX.>""#));
    let mut settings = nats_settings(&[server.url()], "PERM");
    settings.user = Some("ingest".into());
    settings.password = Some("pw".into());
    let mut reader_settings = settings.clone();
    reader_settings.user = Some("reader".into());
    let pipeline = Pipeline::start(settings).await;
    pipeline.push(120).await;

    wait_until(
        Duration::from_secs(20),
        "permission denials counted",
        || async {
            let status = pipeline.publisher_status().await;
            status.errors.get("permission_denied").copied().unwrap_or(0) >= 2
        },
    )
    .await;
    let status = pipeline.publisher_status().await;
    assert_eq!(status.published, 0, "nothing confirmed");
    assert!(status.last_error.is_some());
    assert_eq!(
        pipeline.backlog().await,
        120,
        "nothing acked, nothing dropped"
    );
    let reader_client = reader(&reader_settings).await;
    assert_eq!(stream_count(&reader_client, "PERM").await, 0);

    server.reload(&users(r#""$JS.API.>", "_INBOX.>", "telemetry.>""#));
    pipeline.push(30).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&reader_client, "PERM").await;
    assert_exactly_once(&seqs, 150, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stream_with_create_stream_off_is_counted_then_delivered_once_created() {
    let server = NatsServer::start();
    let mut settings = nats_settings(&[server.url()], "LATE");
    settings.create_stream = false;
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(80).await;

    wait_until(
        Duration::from_secs(20),
        "missing stream counted",
        || async {
            let status = pipeline.publisher_status().await;
            status.errors.get("no_stream").copied().unwrap_or(0) >= 2
        },
    )
    .await;
    assert_eq!(pipeline.publisher_status().await.published, 0);
    assert_eq!(
        pipeline.backlog().await,
        80,
        "nothing acked, nothing dropped"
    );

    // The site creates the stream.
    let client = reader(&settings).await;
    jetstream::new(client.clone())
        .create_stream(jetstream::stream::Config {
            name: "LATE".into(),
            subjects: vec!["telemetry.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&client, "LATE").await;
    assert_exactly_once(&seqs, 80, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_server_max_payload_is_counted_and_stays_buffered() {
    let server = NatsServer::start_with("max_payload: 256");
    let settings = nats_settings(&[server.url()], "SMALL");
    let pipeline = Pipeline::start(settings).await;
    pipeline.push(10).await;

    wait_until(
        Duration::from_secs(20),
        "oversized batch counted",
        || async {
            let status = pipeline.publisher_status().await;
            status.errors.get("payload_too_big").copied().unwrap_or(0) >= 2
        },
    )
    .await;
    let status = pipeline.publisher_status().await;
    assert_eq!(status.published, 0);
    assert!(matches!(
        status.last_error,
        Some(ingestor_actors::publisher::PublishError::PayloadTooBig { seq: 1, .. })
    ));
    assert_eq!(pipeline.backlog().await, 10, "never dropped");
}

/// The trap of a high-water mark: batch 11 is refused (over the stream's
/// message size) while 12..=40 of the same device, pipelined behind it, are
/// stored. The stream then holds seqs above 11 for that device; 11 must
/// still be sent again until the site fixes the limit, never skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batch_while_later_ones_were_stored_is_resent_never_skipped() {
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "TRAP");
    create_stream(&direct, "TRAP", Duration::from_secs(120), 4096).await;
    let proxy = publisher_rig::proxy::Proxy::start(&server.url()).await;
    proxy.refuse(true);
    let pipeline = Pipeline::start(nats_settings(&[proxy.url()], "TRAP")).await;
    for i in 1..=40u64 {
        let mut batch = Batch::new("press-01", chrono::Utc::now());
        batch.values.push(("count".into(), Value::UInt(i)));
        if i == 11 {
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
    proxy.refuse(false);

    let client = reader(&direct).await;
    wait_until(
        Duration::from_secs(30),
        "12..=40 stored around the refused 11",
        || async { stream_count(&client, "TRAP").await == 39 },
    )
    .await;
    // The session that met the refusal may not have ended yet: 0 so far.
    let rejected = |status: ingestor_actors::publisher::PublisherStatus| {
        status.errors.get("rejected").copied().unwrap_or(0)
    };
    let refused = rejected(pipeline.publisher_status().await);
    wait_until(
        Duration::from_secs(30),
        "11 refused again, in sessions that found 12..=40 stored",
        || async { rejected(pipeline.publisher_status().await) >= refused + 3 },
    )
    .await;
    assert_eq!(
        pipeline.backlog().await,
        30,
        "11..=40 still buffered: the ack stops at 10"
    );
    assert_eq!(
        stream_count(&client, "TRAP").await,
        39,
        "nothing sent twice meanwhile"
    );

    // The site raises the limit: 11 goes in, once.
    let js = jetstream::new(client.clone());
    let mut config = js
        .get_stream("TRAP")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.max_message_size = -1;
    js.update_stream(config).await.unwrap();
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&client, "TRAP").await;
    // The server refused 11 while it stored 12..=40: the order cannot be
    // mended afterwards, but nothing is lost and nothing stored twice.
    assert_exactly_once(&seqs, 40, false);
    assert_eq!(seqs.last(), Some(&11));
    let status = pipeline.publisher_status().await;
    assert_eq!(
        status.found_stored, 29,
        "12..=40 were found stored, not sent again"
    );
}

//! A server that refuses our batches (permission denied, no stream):
//! counted, nothing acked, nothing dropped, everything delivered once the
//! cause is fixed. (A batch too big for NATS is set aside instead:
//! `publisher_too_big.rs`.)

mod publisher_rig;

use std::time::Duration;

use async_nats::jetstream;
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

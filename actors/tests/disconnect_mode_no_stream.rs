//! `persist = "disconnect"` with a server that answers but cannot store:
//! the stream is missing and `create_stream = false`. The link is up the
//! whole time, yet nothing is confirmed, so every batch is written through
//! to disk (a crash would keep them); once the stream exists they are
//! delivered, once each, in order.

mod publisher_rig;

use std::time::Duration;

use async_nats::jetstream;
use ingestor_actors::settings::{BufferSettings, PersistMode};
use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stream_keeps_every_batch_on_disk_until_it_is_created() {
    let server = NatsServer::start();
    let mut settings = nats_settings(&[server.url()], "LATER");
    settings.create_stream = false;
    let buffer = BufferSettings {
        persist: PersistMode::Disconnect,
        ..BufferSettings::default()
    };
    let pipeline = Pipeline::start_with_buffer(settings.clone(), buffer).await;
    wait_until(Duration::from_secs(20), "NATS connected", || async {
        pipeline.monitor_status().await.connected
    })
    .await;
    pipeline.push(60).await;
    wait_until(
        Duration::from_secs(20),
        "the missing stream is reported",
        || async {
            let status = pipeline.publisher_status().await;
            status.errors.get("no_stream").copied().unwrap_or(0) >= 1
        },
    )
    .await;
    let stats = pipeline.stats().await;
    assert!(
        pipeline.monitor_status().await.connected,
        "the link stays up"
    );
    assert_eq!(
        (stats.memory_batches, stats.pending, stats.disk_batches),
        (0, 0, 60),
        "nothing is confirmed: every batch is on disk, none only in memory"
    );

    let client = reader(&settings).await;
    jetstream::new(client.clone())
        .create_stream(jetstream::stream::Config {
            name: "LATER".into(),
            subjects: vec!["telemetry.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    pipeline.wait_drained(Duration::from_secs(30)).await;
    assert_exactly_once(&read_seqs(&client, "LATER").await, 60, true);
}

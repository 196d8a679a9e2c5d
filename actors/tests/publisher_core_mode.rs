//! `mode = "core"`: plain publish + flush, delivers while the server is up.

mod publisher_rig;

use std::time::Duration;

use async_nats::jetstream;
use ingestor_actors::settings::NatsMode;
use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_mode_delivers_every_batch_while_the_server_stays_up() {
    let server = NatsServer::start();
    let mut settings = nats_settings(&[server.url()], "CORE");
    settings.mode = NatsMode::Core;
    // A stream the site made, only so that the test can read back what arrived.
    let client = reader(&settings).await;
    jetstream::new(client.clone())
        .create_stream(jetstream::stream::Config {
            name: "CORE".into(),
            subjects: vec!["telemetry.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let pipeline = Pipeline::start(settings).await;
    pipeline.push(1000).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    wait_until(Duration::from_secs(10), "stream holds 1000", || async {
        stream_count(&client, "CORE").await >= 1000
    })
    .await;
    let seqs = read_seqs(&client, "CORE").await;
    assert_exactly_once(&seqs, 1000, true);
    assert_eq!(pipeline.publisher_status().await.published, 1000);
}

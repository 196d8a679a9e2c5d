//! The supervisor restarts the Publisher: reading the running monitor's
//! connection state, the new one resumes where the old one stopped,
//! nothing doubled.

mod publisher_rig;

use std::time::Duration;

use ingestor_actors::publisher::{Publisher, PublisherArgs};
use publisher_rig::*;
use ractor::Actor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_restarted_mid_flow_and_reattached_resumes_without_loss() {
    let server = NatsServer::start();
    let settings = nats_settings(&[server.url()], "RESTART");
    let mut pipeline = Pipeline::start(settings.clone()).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(2));
    let client = reader(&settings).await;
    wait_until(
        Duration::from_secs(30),
        "first 200 batches stored",
        || async { stream_count(&client, "RESTART").await >= 200 },
    )
    .await;

    // The old publisher goes away mid-flow (its in-flight batches go back).
    pipeline.publisher.stop_and_wait(None, None).await.unwrap();
    let (publisher, _) = Actor::spawn(
        None,
        Publisher,
        PublisherArgs {
            settings: settings.clone(),
            service_id: SERVICE.into(),
            installation: rig_installation(),
            replaces: None,
            buffer: pipeline.buffer.clone(),
            retry: test_retry(),
            connection: pipeline.connection.subscribe(),
            delivery: pipeline.delivery.clone(),
        },
    )
    .await
    .unwrap();
    pipeline.publisher = publisher;

    wait_until(
        Duration::from_secs(30),
        "the new publisher delivers",
        || async { pipeline.publisher_status().await.published > 0 },
    )
    .await;
    let total = feeder.stop().await;
    pipeline.wait_drained(Duration::from_secs(60)).await;
    let seqs = read_seqs(&client, "RESTART").await;
    assert_exactly_once(&seqs, total, true);
}

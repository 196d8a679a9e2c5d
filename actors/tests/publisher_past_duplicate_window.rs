//! Outages longer than the stream's duplicate window, with batches stored
//! but unacknowledged when the link broke: JetStream's de-duplication has
//! forgotten them, the ingestor must not send them again.

mod publisher_rig;

use std::time::Duration;

use ingestor_actors::settings::NatsSettings;
use publisher_rig::proxy::Proxy;
use publisher_rig::*;

/// Pushes `n` batches while the acks are muted, until the stream holds at
/// least `stored` of them: stored, never acknowledged.
async fn store_without_acks(
    pipeline: &Pipeline,
    proxy: &Proxy,
    direct: &NatsSettings,
    n: u64,
    stored: u64,
) {
    proxy.mute_replies(true);
    pipeline.push(n).await;
    let client = reader(direct).await;
    wait_until(
        Duration::from_secs(30),
        "batches stored without acks",
        || async { stream_count(&client, &direct.stream).await >= stored },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_longer_than_a_1s_duplicate_window_with_batches_in_flight_no_duplicates() {
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "SHORTDUP");
    create_stream(&direct, "SHORTDUP", Duration::from_secs(1), -1).await;
    let proxy = Proxy::start(&server.url()).await;
    let settings = nats_settings(&[proxy.url()], "SHORTDUP");
    let pipeline = Pipeline::start(settings.clone()).await;
    // A session that is publishing when the trouble starts.
    pipeline.push(50).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    store_without_acks(&pipeline, &proxy, &direct, 500, 50 + 64).await;
    assert_eq!(
        pipeline.publisher_status().await.published,
        50,
        "no ack got through"
    );
    // The link breaks and stays down well past the duplicate window.
    proxy.refuse(true);
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.mute_replies(false);
    proxy.refuse(false);
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let client = reader(&direct).await;
    let seqs = read_seqs(&client, "SHORTDUP").await;
    assert_each_once_ascending(&seqs, 550);
    let status = pipeline.publisher_status().await;
    assert!(
        status.found_stored >= 64,
        "the batches stored before the break were found, not resent: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_publisher_without_any_ack_finds_what_the_stream_holds() {
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "COLD");
    create_stream(&direct, "COLD", Duration::from_secs(1), -1).await;
    // Some history of this installation already in the stream, acked.
    let proxy = Proxy::start(&server.url()).await;
    let settings = nats_settings(&[proxy.url()], "COLD");
    let mut pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(300).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    store_without_acks(&pipeline, &proxy, &direct, 500, 300 + 64).await;
    // A new publisher (a service restart, a config reload) knows no PubAck:
    // it searches the stream for the oldest buffered seq.
    pipeline.stop_nats_side().await;
    proxy.reset();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.mute_replies(false);
    let (monitor, publisher) = start_nats_side(
        &pipeline.buffer,
        &pipeline.connection,
        &pipeline.delivery,
        settings,
    )
    .await;
    pipeline.monitor = monitor;
    pipeline.publisher = publisher;
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let client = reader(&direct).await;
    let seqs = read_seqs(&client, "COLD").await;
    assert_each_once_ascending(&seqs, 800);
    let status = pipeline.publisher_status().await;
    assert!(status.found_stored >= 64, "found, not resent: {status:?}");
}

//! NATS goes away and comes back: nothing lost, nothing doubled, in order.

mod publisher_rig;

use std::time::Duration;

use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_for_10s_then_restarted_stream_holds_every_seq_once_in_order() {
    let mut server = NatsServer::start();
    let settings = nats_settings(&[server.url()], "OUTAGE");
    let pipeline = Pipeline::start(settings.clone()).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(2));

    let reader_client = reader(&settings).await;
    wait_until(
        Duration::from_secs(30),
        "first 300 batches stored",
        || async { stream_count(&reader_client, "OUTAGE").await >= 300 },
    )
    .await;
    drop(reader_client);

    // The outage: SIGKILL while batches flow, 10 s without a server.
    server.kill();
    let pushed_at_kill = feeder.pushed();
    wait_until(
        Duration::from_secs(10),
        "monitor sees the connection gone",
        || async { !pipeline.monitor_status().await.connected },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        pipeline.backlog().await > 0,
        "batches pushed during the outage are buffered"
    );
    server.launch();

    wait_until(Duration::from_secs(30), "reconnected", || async {
        pipeline.monitor_status().await.connected
    })
    .await;
    let pushed_before_stop = feeder.pushed();
    assert!(
        pushed_before_stop > pushed_at_kill,
        "the feeder kept pushing during the outage"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = feeder.stop().await;
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let client = reader(&settings).await;
    let seqs = read_seqs(&client, "OUTAGE").await;
    assert_each_once_ascending(&seqs, total);
    assert!(pipeline.monitor_status().await.reconnects >= 1);
    // Resent batches that had got in count once more as confirmed, never fewer.
    assert!(pipeline.publisher_status().await.published >= total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_absent_at_boot_batches_wait_then_all_arrive_when_it_appears() {
    let port = free_port();
    let mut server = NatsServer::prepare("n1", port, "");
    let settings = nats_settings(&[server.url()], "BOOT");
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(500).await;

    wait_until(
        Duration::from_secs(10),
        "the monitor reports why it cannot connect",
        || async { pipeline.monitor_status().await.last_error.is_some() },
    )
    .await;
    assert!(!pipeline.monitor_status().await.connected);
    assert_eq!(pipeline.backlog().await, 500, "everything stays buffered");

    server.launch();
    pipeline.push(100).await;
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let client = reader(&settings).await;
    let seqs = read_seqs(&client, "BOOT").await;
    assert_exactly_once(&seqs, 600, true);
    assert_eq!(pipeline.publisher_status().await.published, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_is_seen_as_down_by_pings_and_nothing_is_lost() {
    let server = NatsServer::start();
    let settings = nats_settings(&[server.url()], "FROZEN");
    let pipeline = Pipeline::start(settings.clone()).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(5));
    let reader_client = reader(&settings).await;
    wait_until(
        Duration::from_secs(30),
        "first 100 batches stored",
        || async { stream_count(&reader_client, "FROZEN").await >= 100 },
    )
    .await;
    drop(reader_client);

    // TCP stays up, nothing answers: only pings can tell. The library's
    // default (a ping a minute, two missed) would take minutes; the monitor's
    // short interval sees it within seconds.
    server.freeze();
    wait_until(
        Duration::from_secs(15),
        "monitor sees the frozen server as down",
        || async { !pipeline.monitor_status().await.connected },
    )
    .await;
    server.thaw();
    wait_until(Duration::from_secs(30), "reconnected", || async {
        pipeline.monitor_status().await.connected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = feeder.stop().await;
    pipeline.wait_drained(Duration::from_secs(60)).await;

    let client = reader(&settings).await;
    let seqs = read_seqs(&client, "FROZEN").await;
    // Publishes that sat in the frozen server's socket are stored when it
    // wakes up, before anything of the new connection: still in order.
    assert_each_once_ascending(&seqs, total);
}

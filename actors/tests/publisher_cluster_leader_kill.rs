//! A 3-node cluster (routes on loopback) with an R3 stream: the stream
//! leader is killed mid-flow; nothing is lost, nothing is duplicated, and
//! the stream holds every seq strictly ascending.

mod publisher_rig;

use std::time::Duration;

use async_nats::jetstream;
use ingestor_actors::settings::NatsSettings;
use publisher_rig::*;

/// The site's R3 stream on the cluster of `settings`.
async fn r3_stream(settings: &NatsSettings) -> jetstream::Context {
    create_r3_stream(&reader(settings).await, "CLUSTER").await
}

async fn stream_leader(js: &jetstream::Context) -> String {
    js.get_stream("CLUSTER")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("stream has a leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_leader_killed_mid_flow_nothing_lost_nothing_duplicated() {
    let mut nodes = cluster();
    let urls: Vec<String> = nodes.iter().map(NatsServer::url).collect();
    let mut settings = nats_settings(&urls, "CLUSTER");
    settings.create_stream = false;
    let js = r3_stream(&settings).await;
    let admin = js.client();

    let pipeline = Pipeline::start(settings.clone()).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(2));
    wait_until(
        Duration::from_secs(30),
        "first 300 batches stored",
        || async { stream_count(&admin, "CLUSTER").await >= 300 },
    )
    .await;

    let leader = stream_leader(&js).await;
    let victim = nodes.iter().position(|n| n.name == leader).unwrap();
    nodes[victim].kill();
    let survivors: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n.url())
        .collect();

    // Keep the flow going through the election, then stop it and drain.
    let pushed_at_kill = feeder.pushed();
    wait_until(
        Duration::from_secs(60),
        "flow continues after the failover",
        || async { feeder.pushed() > pushed_at_kill + 1500 },
    )
    .await;
    let total = feeder.stop().await;
    pipeline.wait_drained(Duration::from_secs(90)).await;

    let mut read_settings = settings.clone();
    read_settings.servers = survivors;
    let client = reader(&read_settings).await;
    wait_until(
        Duration::from_secs(30),
        "a new leader serves the stream",
        || async { stream_count(&client, "CLUSTER").await >= total },
    )
    .await;
    let seqs = read_seqs(&client, "CLUSTER").await;
    eprintln!("{total} batches; {:?}", pipeline.publisher_status().await);
    assert_each_once_ascending(&seqs, total);
}

/// A slow flow (a batch every 200 ms) through a follower while the leader
/// dies, with an ack_timeout longer than an election: without the fence,
/// batches sent after the new leader took over would be stored before the
/// ones lost with the old leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_leader_killed_during_a_slow_flow_order_holds() {
    let mut nodes = cluster();
    let urls: Vec<String> = nodes.iter().map(NatsServer::url).collect();
    let mut admin_settings = nats_settings(&urls, "CLUSTER");
    admin_settings.create_stream = false;
    let js = r3_stream(&admin_settings).await;
    let leader = stream_leader(&js).await;
    let victim = nodes.iter().position(|n| n.name == leader).unwrap();
    let follower = (victim + 1) % 3;
    let mut settings = nats_settings(&[nodes[follower].url()], "CLUSTER");
    settings.create_stream = false;
    settings.ack_timeout = Duration::from_secs(20);

    let pipeline = Pipeline::start(settings.clone()).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(200));
    wait_until(Duration::from_secs(30), "flowing", || async {
        pipeline.publisher_status().await.published >= 10
    })
    .await;
    nodes[victim].kill();
    let published_at_kill = pipeline.publisher_status().await.published;
    wait_until(
        Duration::from_secs(90),
        "flow continues after the failover",
        || async { pipeline.publisher_status().await.published > published_at_kill + 30 },
    )
    .await;
    let total = feeder.stop().await;
    pipeline.wait_drained(Duration::from_secs(90)).await;

    let client = reader(&settings).await;
    let seqs = read_seqs(&client, "CLUSTER").await;
    eprintln!("{total} batches; {:?}", pipeline.publisher_status().await);
    assert_each_once_ascending(&seqs, total);
}

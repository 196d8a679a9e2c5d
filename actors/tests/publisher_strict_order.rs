//! The link breaks while the server stays up: every connection reset in the
//! middle of a drain, with the publish window full, many times over. The
//! stream holds every seq once, strictly ascending.

mod publisher_rig;

use std::time::Duration;

use publisher_rig::proxy::Proxy;
use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_reset_mid_drain_many_times_each_seq_once_strictly_ascending() {
    let server = NatsServer::start();
    let proxy = Proxy::start(&server.url()).await;
    let mut settings = nats_settings(&[proxy.url()], "RESETS");
    settings.max_in_flight = 1024;
    let pipeline = Pipeline::start(settings.clone()).await;
    // A backlog to drain, and new batches arriving while it drains.
    pipeline.push(20_000).await;
    let feeder = Feeder::start(pipeline.buffer.clone(), Duration::from_millis(2));

    let mut rng = Rng::from_clock();
    let mut cuts_mid_flow = 0;
    for _ in 0..15 {
        let published = pipeline.publisher_status().await.published;
        wait_until(
            Duration::from_secs(30),
            "publishing flows again",
            || async { pipeline.publisher_status().await.published > published + 100 },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(rng.between(0, 150))).await;
        if pipeline.backlog().await > 0 {
            cuts_mid_flow += 1;
        }
        // Every other cut after a congested moment: publishes pile up in the
        // client, as they do when a link degrades before it breaks.
        let stalled = rng.between(0, 2) == 1;
        if stalled {
            proxy.stall(true);
            tokio::time::sleep(Duration::from_millis(rng.between(20, 200))).await;
        }
        proxy.reset();
        proxy.stall(false);
    }
    let total = feeder.stop().await + 20_000;
    pipeline.wait_drained(Duration::from_secs(90)).await;

    let client = reader(&nats_settings(&[server.url()], "RESETS")).await;
    let seqs = read_seqs(&client, "RESETS").await;
    assert_each_once_ascending(&seqs, total);
    assert!(
        cuts_mid_flow >= 8,
        "the cuts hit a flowing drain ({cuts_mid_flow})"
    );
    let status = pipeline.monitor_status().await;
    assert!(
        status.reconnects >= 10,
        "reconnected after the cuts: {status:?}"
    );
    eprintln!(
        "{total} batches, {cuts_mid_flow} cuts mid-flow, {} found already stored",
        pipeline.publisher_status().await.found_stored
    );
}

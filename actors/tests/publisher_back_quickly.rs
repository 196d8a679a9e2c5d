//! A server that comes back after a long outage is in use again at once:
//! no back-off grown to seconds, and no storm of attempts meanwhile.

mod publisher_rig;

use std::time::{Duration, Instant};

use ingestor_actors::monitor::RECONNECT_MAX_DELAY;
use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_back_after_long_outage_first_publish_follows_at_once_without_a_storm() {
    let mut server = NatsServer::start();
    let settings = nats_settings(&[server.url()], "BACK");
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(10).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    server.kill();
    wait_until(Duration::from_secs(10), "disconnected", || async {
        !pipeline.monitor_status().await.connected
    })
    .await;
    let attempts_at_loss = pipeline.monitor_status().await.connect_attempts;
    let outage = Duration::from_secs(8);
    tokio::time::sleep(outage).await;
    pipeline.push(1).await;
    let attempts = pipeline.monitor_status().await.connect_attempts - attempts_at_loss;
    // At most one attempt per RECONNECT_MAX_DELAY once backed off, plus the
    // first few quick ones; a loaded machine makes fewer, never more.
    let most = 6 + outage.as_millis() / RECONNECT_MAX_DELAY.as_millis();
    assert!(
        u128::from(attempts) <= most,
        "{attempts} connect attempts in {outage:?}: a storm"
    );
    assert!(attempts >= 2, "kept trying during the outage ({attempts})");
    assert_eq!(pipeline.publisher_status().await.published, 10);

    server.launch();
    let listening = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the waiting batch published",
        || async { pipeline.publisher_status().await.published == 11 },
    )
    .await;
    let back_after = listening.elapsed();
    // The order of events: nothing published while the server was down, the
    // batch published once it listened, on a new connection.
    assert_eq!(pipeline.monitor_status().await.reconnects, 1);
    eprintln!(
        "first publish {} ms after the server listened again ({attempts} attempts in the {}s outage)",
        back_after.as_millis(),
        outage.as_secs()
    );
}

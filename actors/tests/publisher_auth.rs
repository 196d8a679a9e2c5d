//! NATS with authentication: the right credentials deliver; wrong ones give
//! a clear error and keep everything buffered until the right ones come.

mod publisher_rig;

use std::time::Duration;

use publisher_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_delivers_every_batch() {
    let server = NatsServer::start_with("authorization { token: \"s3cret-token\" }");
    let mut settings = nats_settings(&[server.url()], "AUTH_TOKEN");
    settings.token = Some("s3cret-token".into());
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(200).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&reader(&settings).await, "AUTH_TOKEN").await;
    assert_exactly_once(&seqs, 200, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_auth_delivers_every_batch() {
    let server = NatsServer::start_with("authorization { user: ingest, password: \"pa55-word\" }");
    let mut settings = nats_settings(&[server.url()], "AUTH_USER");
    settings.user = Some("ingest".into());
    settings.password = Some("pa55-word".into());
    let pipeline = Pipeline::start(settings.clone()).await;
    pipeline.push(200).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&reader(&settings).await, "AUTH_USER").await;
    assert_exactly_once(&seqs, 200, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_reports_authorization_and_keeps_batches_until_fixed() {
    let server = NatsServer::start_with("authorization { user: ingest, password: \"pa55-word\" }");
    let mut wrong = nats_settings(&[server.url()], "AUTH_FIX");
    wrong.user = Some("ingest".into());
    wrong.password = Some("guessed".into());
    let mut pipeline = Pipeline::start(wrong).await;
    pipeline.push(150).await;

    wait_until(
        Duration::from_secs(15),
        "an authorization error is reported",
        || async {
            let status = pipeline.monitor_status().await;
            status
                .last_error
                .is_some_and(|e| e.to_ascii_lowercase().contains("authorization"))
        },
    )
    .await;
    assert!(!pipeline.monitor_status().await.connected);
    assert_eq!(pipeline.backlog().await, 150, "nothing left the buffer");
    assert_eq!(pipeline.publisher_status().await.published, 0);

    // The operator fixes the password; the service starts its NATS side again.
    let mut right = nats_settings(&[server.url()], "AUTH_FIX");
    right.user = Some("ingest".into());
    right.password = Some("pa55-word".into());
    pipeline.restart_nats_side(right.clone()).await;
    pipeline.push(50).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    let seqs = read_seqs(&reader(&right).await, "AUTH_FIX").await;
    assert_exactly_once(&seqs, 200, true);
}

//! What JetStream confirmed is never sent again, however the confirmation
//! went missing on its way to the buffer: an ack held back when the
//! session was cut, or an ack the spool did not keep. Both with a break
//! longer than the stream's duplicate window, where the server's
//! de-duplication no longer helps.
//!
//! Failpoints are global to the process: each test holds a
//! `fail::FailScenario`, which runs them one at a time.
#![cfg(feature = "failpoints")]
mod publisher_rig;

use std::time::Duration;

use ingestor_actors::settings::{BufferSettings, PersistMode};
use publisher_rig::proxy::Proxy;
use publisher_rig::*;

/// The break: the link refused for longer than the 1 s duplicate window.
async fn break_past_the_duplicate_window(pipeline: &Pipeline, proxy: &Proxy) {
    proxy.refuse(true);
    proxy.reset();
    wait_until(Duration::from_secs(10), "the link is down", || async {
        !pipeline.monitor_status().await.connected
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// The race of the ack coalescer, forced: every batch is confirmed by
/// JetStream, the session holds the acks back (as it does for up to 100 ms
/// or a quarter window) and is cut by the disconnect right then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_held_back_when_the_session_is_cut_reach_the_buffer_nothing_resent() {
    let scenario = fail::FailScenario::setup();
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "CUT");
    create_stream(&direct, "CUT", Duration::from_secs(1), -1).await;
    let proxy = Proxy::start(&server.url()).await;
    let pipeline = Pipeline::start(nats_settings(&[proxy.url()], "CUT")).await;
    fail::cfg("publisher::hold_acks", "return").unwrap();
    pipeline.push(100).await;
    wait_until(Duration::from_secs(30), "all 100 confirmed", || async {
        pipeline.publisher_status().await.published == 100
    })
    .await;
    assert_eq!(pipeline.backlog().await, 100, "the acks are held back");

    break_past_the_duplicate_window(&pipeline, &proxy).await;
    fail::remove("publisher::hold_acks");
    wait_until(
        Duration::from_secs(10),
        "the buffer let go of what JetStream confirmed, while the link is still down",
        || async { pipeline.backlog().await == 0 },
    )
    .await;
    proxy.refuse(false);
    pipeline.push(20).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&reader(&direct).await, "CUT").await;
    assert_each_once_ascending(&seqs, 120);
    scenario.teardown();
}

/// Acks the spool did not keep (its deletes fail, as acks not yet synced
/// are gone after a power cut): the buffer hands those batches out again
/// after the break, and the read-back must find them in the stream
/// although this process had seen them confirmed already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_the_spool_did_not_keep_are_found_in_the_stream_not_resent() {
    let scenario = fail::FailScenario::setup();
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "LOSTACKS");
    create_stream(&direct, "LOSTACKS", Duration::from_secs(1), -1).await;
    let proxy = Proxy::start(&server.url()).await;
    let buffer = BufferSettings {
        persist: PersistMode::Always,
        ..BufferSettings::default()
    };
    // Every batch on disk before the first is published.
    proxy.refuse(true);
    let pipeline =
        Pipeline::start_with_buffer(nats_settings(&[proxy.url()], "LOSTACKS"), buffer).await;
    pipeline.push(150).await;
    fail::cfg("spool::delete", "return(io)").unwrap();
    proxy.refuse(false);
    wait_until(Duration::from_secs(30), "all 150 confirmed", || async {
        pipeline.publisher_status().await.published == 150
    })
    .await;
    assert_eq!(
        pipeline.stats().await.disk_batches,
        150,
        "no ack reached the disk"
    );

    break_past_the_duplicate_window(&pipeline, &proxy).await;
    fail::remove("spool::delete");
    proxy.refuse(false);
    pipeline.wait_drained(Duration::from_secs(30)).await;

    let seqs = read_seqs(&reader(&direct).await, "LOSTACKS").await;
    assert_each_once_ascending(&seqs, 150);
    let status = pipeline.publisher_status().await;
    assert!(
        status.found_stored >= 150,
        "found in the stream, not sent again: {status:?}"
    );
    scenario.teardown();
}

/// The same after a restart of the whole process (a crash: the store is
/// never closed), with the acks of the first run not on disk: the new run
/// hands out everything again, and its first read-back, knowing no PubAck,
/// finds all of it in the stream, to the stream's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_acks_that_never_reached_disk_sends_nothing_again() {
    let scenario = fail::FailScenario::setup();
    let server = NatsServer::start();
    let direct = nats_settings(&[server.url()], "RESTART");
    create_stream(&direct, "RESTART", Duration::from_secs(1), -1).await;
    let buffer = BufferSettings {
        persist: PersistMode::Always,
        ..BufferSettings::default()
    };
    let proxy = Proxy::start(&server.url()).await;
    let settings = nats_settings(&[proxy.url()], "RESTART");
    // Every batch on disk before the first is published.
    proxy.refuse(true);
    let first = Pipeline::start_with_buffer(settings.clone(), buffer.clone()).await;
    first.push(150).await;
    fail::cfg("spool::delete", "return(io)").unwrap();
    proxy.refuse(false);
    wait_until(Duration::from_secs(30), "all 150 confirmed", || async {
        first.publisher_status().await.published == 150
    })
    .await;
    // The crash: everything stops, the store is dropped, never closed.
    first.stop_nats_side().await;
    first.buffer.stop_and_wait(None, None).await.unwrap();
    let data_dir = first.data_dir;
    fail::remove("spool::delete");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let second = Pipeline::start_in(data_dir, settings, buffer).await;
    second.push(10).await;
    second.wait_drained(Duration::from_secs(30)).await;
    // The batches (the crash's gap event may be there too, or not yet).
    let seqs = read_batch_seqs(&reader(&direct).await, "RESTART").await;
    assert_eq!(&seqs[..150], &all_seqs(150)[..], "the first run's, once");
    assert_eq!(seqs.len(), 160, "nothing sent twice: {seqs:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ascending (the new run's seqs continue past the crash)"
    );
    assert_eq!(second.publisher_status().await.found_stored, 150);
    scenario.teardown();
}

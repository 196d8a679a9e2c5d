//! An outage with `deadband` on a slowly changing value: the spool grows by
//! the fraction of polls that had something to send (measured, about one in
//! ten here), not by one batch per poll; after NATS returns the stream holds
//! every sent value once, in seq order, ascending as the signal rose.

mod poller_rig;
mod publisher_rig;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use bytesize::ByteSize;
use futures::StreamExt;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Links};
use ingestor_actors::settings::{BufferSettings, PersistMode, WhenDiskFull};
use poller_rig::{device, listener, ScriptedServer};
use publisher_rig::*;
use ractor::Actor;

/// Rises by 1 every 5 polls: with `deadband = 2` one poll in ten sends.
fn slow_rise(_address: u16, n: usize) -> u16 {
    1000 + (n / 5) as u16
}

/// `(seq, level)` of every message in the stream.
async fn read_levels(client: &async_nats::Client, stream: &str) -> Vec<(u64, u64)> {
    let js = jetstream::new(client.clone());
    let mut s = js.get_stream(stream).await.unwrap();
    let total = s.info().await.unwrap().state.messages;
    let config = consumer::pull::Config {
        ack_policy: consumer::AckPolicy::None,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let consumer: consumer::PullConsumer = s.create_consumer(config).await.unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("stream read stalled")
            .unwrap()
            .unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let level = payload["values"]["level"].as_u64().expect("level sent");
        out.push((payload["seq"].as_u64().unwrap(), level));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_with_deadband_spools_only_the_sent_fraction_and_loses_none() {
    let mut nats = NatsServer::start();
    let settings = nats_settings(&[nats.url()], "BANDED");
    let buffer_settings = BufferSettings {
        memory_batches: 10_000,
        persist: PersistMode::Disconnect,
        disk_max: ByteSize::gib(1),
        when_disk_full: WhenDiskFull::DropOldest,
        disk_min_free: ByteSize::b(0),
    };
    let pipeline = Pipeline::start_with_buffer(settings.clone(), buffer_settings).await;

    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        signal: Some(slow_rise),
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"tank\"\naddress = \"{addr}\"\npoll_interval = \"50ms\"\n\
         [[tags]]\nname = \"level\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\ndeadband = 2.0\nmax_silence = \"1h\"\n"
    ));
    let args = DevicePollerArgs {
        status: Default::default(),
        writes: None,
        link: Links::new().link_for(&dev).unwrap(),
        device: dev.clone().into(),
        buffer: pipeline.buffer.clone().into(),
        first_poll: tokio::time::Instant::now(),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
    };
    let poller = Actor::spawn(None, DevicePoller, args).await.unwrap().0;

    let client = reader(&settings).await;
    wait_until(Duration::from_secs(30), "first batches stored", || async {
        stream_count(&client, "BANDED").await >= 2
    })
    .await;
    drop(client);

    nats.kill();
    wait_until(
        Duration::from_secs(10),
        "monitor sees NATS gone",
        || async { !pipeline.monitor_status().await.connected },
    )
    .await;
    let (polls0, spool0) = (server.seen().len(), pipeline.backlog().await);
    wait_until(
        Duration::from_secs(60),
        "200 polls in the outage",
        || async { server.seen().len() >= polls0 + 200 },
    )
    .await;
    let (polls1, spool1) = (server.seen().len(), pipeline.backlog().await);
    let (polls, grew) = ((polls1 - polls0) as u64, spool1 - spool0);
    eprintln!(
        "outage: {polls} polls, spool grew by {grew} batches ({:.1} %)",
        grew as f64 * 100.0 / polls as f64
    );
    // One poll in ten changes the value by the deadband; ±2 for the
    // measurement's edges (a poll in flight, the first step's phase).
    assert!(
        grew + 2 >= polls / 10 && grew <= polls / 10 + 2,
        "{polls} polls in the outage spooled {grew} batches, expected about {}",
        polls / 10
    );

    nats.launch();
    wait_until(Duration::from_secs(30), "reconnected", || async {
        pipeline.monitor_status().await.connected
    })
    .await;
    poller.stop_and_wait(None, None).await.unwrap();
    pipeline.wait_drained(Duration::from_secs(60)).await;
    let total = pipeline.stats().await.next_seq - 1;

    let client = reader(&settings).await;
    let seqs = read_seqs(&client, "BANDED").await;
    assert_each_once_ascending(&seqs, total);
    let mut levels = read_levels(&client, "BANDED").await;
    levels.sort_unstable();
    let values: Vec<u64> = levels.iter().map(|&(_, l)| l).collect();
    let expected: Vec<u64> = (0..values.len() as u64).map(|i| 1000 + 2 * i).collect();
    assert_eq!(values, expected, "every sent value once, ascending by seq");
}

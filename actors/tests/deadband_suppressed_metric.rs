//! `ingestor_values_suppressed_total{device}` counts every value a poll read
//! and held back; the poll metrics go on counting every poll; a poll with
//! nothing to send makes no batch.

mod poller_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Links};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use poller_rig::{collecting_buffer, device, listener, ScriptedServer};
use ractor::Actor;

fn counter(snapshot: &[(String, u64)], name: &str, label: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(k, _)| k.starts_with(name) && k.contains(label))
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_values_are_counted_as_suppressed_and_polls_still_count() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer::default()); // constant words
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"still\"\naddress = \"{addr}\"\npoll_interval = \"50ms\"\n\
         [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\ndeadband = 1.0\n\
         [[tags]]\nname = \"b\"\nregister = \"holding\"\naddress = 1\ntype = \"u16\"\ndeadband = 1.0\n"
    ));
    let (buffer, mut batches) = collecting_buffer().await;
    let args = DevicePollerArgs {
        status: Default::default(),
        writes: None,
        link: Links::new().link_for(&dev).unwrap(),
        device: dev.into(),
        buffer: buffer.into(),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        first_poll: tokio::time::Instant::now(),
    };
    let (poller, _) = Actor::spawn(None, DevicePoller, args).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.seen().len() < 20 {
        assert!(tokio::time::Instant::now() < deadline, "20 polls in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poller.stop_and_wait(None, None).await.unwrap();

    let mut sent = Vec::new();
    while let Ok(b) = batches.try_recv() {
        sent.push(b);
    }
    assert_eq!(
        sent.len(),
        1,
        "only the first poll had something to send: {sent:?}"
    );
    assert_eq!(sent[0].values.len(), 2);

    let snapshot: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(v) => {
                let labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                Some((format!("{}{{{}}}", key.key().name(), labels.join(",")), v))
            }
            _ => None,
        })
        .collect();
    let polls = counter(&snapshot, "ingestor_polls_total", "result=ok");
    let suppressed = counter(
        &snapshot,
        "ingestor_values_suppressed_total",
        "device=still",
    );
    assert!(polls >= 19, "{snapshot:?}");
    // Every finished poll after the first held back both values.
    assert_eq!(suppressed, 2 * (polls - 1), "{snapshot:?}");
}

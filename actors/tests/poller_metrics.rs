//! The DevicePoller's metrics (docs/reference.md §4) carry what happened: polls by
//! result, requests by function, exceptions by code, device up, lag and
//! duration.

mod poller_rig;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Links};
use ingestor_actors::settings::RegisterKind::Holding;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use poller_rig::{collecting_buffer, device, listener, ScriptedServer};
use ractor::Actor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_metrics_count_polls_requests_exceptions_and_lag() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        bad: vec![(Holding, 5)],
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m1\"\naddress = \"{addr}\"\npoll_interval = \"300ms\"\n\
         [[tags]]\nname = \"good\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\
         [[tags]]\nname = \"bad\"\nregister = \"holding\"\naddress = 5\ntype = \"u16\"\n"
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
    for _ in 0..3 {
        let batch = tokio::time::timeout(Duration::from_secs(20), batches.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(batch.errors.len(), 1);
    }
    // The next poll is 300 ms away: stop before it starts, so counts are whole polls.
    poller.stop_and_wait(None, None).await.unwrap();

    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut gauges: HashMap<String, f64> = HashMap::new();
    let mut histograms: HashMap<String, usize> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Gauge(g) => {
                gauges.insert(name, g.into_inner());
            }
            DebugValue::Histogram(v) => {
                histograms.insert(name, v.len());
            }
        }
    }
    let partial = counters["ingestor_polls_total{device=m1,result=partial}"];
    assert!(partial >= 3, "{counters:?}");
    assert_eq!(
        counters
            .get("ingestor_polls_total{device=m1,result=ok}")
            .copied()
            .unwrap_or(0),
        0
    );
    // The first poll: one merged read, then two alone; later polls: two alone.
    let requests =
        counters["ingestor_modbus_requests_total{device=m1,function=read_holding_registers}"];
    assert_eq!(requests, 3 + 2 * (partial - 1), "{counters:?}");
    // The merged read and every read of the bad tag alone answered 0x02.
    assert_eq!(
        counters["ingestor_modbus_exceptions_total{code=0x02,device=m1}"],
        1 + partial,
        "{counters:?}"
    );
    assert_eq!(gauges["ingestor_device_up{device=m1}"], 1.0);
    assert!(histograms["ingestor_poll_lag_seconds{device=m1}"] >= 3);
    assert!(histograms["ingestor_poll_duration_seconds{device=m1}"] >= 3);
}

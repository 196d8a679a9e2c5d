//! Report by exception on a real poll loop: a signal that moves in known
//! steps per poll sends exactly the values that left the deadband; an
//! unchanged value comes as a heartbeat every `max_silence`; a poll with
//! nothing due makes no batch; the first poll after a restart, and the
//! next after a config reload, sends everything.

mod poller_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::buffer::BufferMsg;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, DevicePollerMsg, Links};
use ingestor_actors::settings::DeviceSettings;
use ingestor_actors::{Batch, Value};
use poller_rig::{collecting_buffer, device, listener, ScriptedServer};
use ractor::{Actor, ActorRef};
use tokio::sync::mpsc::UnboundedReceiver;

/// `level` (input 0) climbs 1 every 3 polls from 100 to 110, then stays;
/// `setpoint` (input 1) is 500 throughout.
fn signal(address: u16, n: usize) -> u16 {
    match address {
        0 => 100 + (n.min(30) / 3) as u16,
        _ => 500,
    }
}

fn config(addr: &str) -> DeviceSettings {
    device(&format!(
        "id = \"tank\"\naddress = \"{addr}\"\npoll_interval = \"100ms\"\n\
         [[tags]]\nname = \"level\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\ndeadband = 2.0\nmax_silence = \"1h\"\n\
         [[tags]]\nname = \"setpoint\"\nregister = \"input\"\naddress = 1\ntype = \"u16\"\ndeadband = 0.5\nmax_silence = \"1s\"\n"
    ))
}

async fn start(dev: &DeviceSettings, buffer: &ActorRef<BufferMsg>) -> ActorRef<DevicePollerMsg> {
    let args = DevicePollerArgs {
        status: Default::default(),
        writes: None,
        link: Links::new().link_for(dev).unwrap(),
        device: dev.clone().into(),
        buffer: buffer.clone().into(),
        first_poll: tokio::time::Instant::now(),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
    };
    Actor::spawn(None, DevicePoller, args).await.unwrap().0
}

async fn next(batches: &mut UnboundedReceiver<Batch>) -> Batch {
    tokio::time::timeout(Duration::from_secs(30), batches.recv())
        .await
        .expect("a batch in time")
        .unwrap()
}

fn value(b: &Batch, tag: &str) -> Option<u64> {
    b.values
        .iter()
        .find(|(n, _)| n == tag)
        .map(|(_, v)| match v {
            Value::UInt(u) => *u,
            other => panic!("{tag} is {other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadband_sends_exact_steps_heartbeat_at_max_silence_everything_after_restart_and_reload() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        signal: Some(signal),
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = config(&addr);
    let (buffer, mut batches) = collecting_buffer().await;
    let poller = start(&dev, &buffer).await;

    // The first poll sends both; then `level` only when it moved ≥ 2 from
    // the last value sent; `setpoint` only as a heartbeat.
    let first = next(&mut batches).await;
    assert_eq!(
        (value(&first, "level"), value(&first, "setpoint")),
        (Some(100), Some(500))
    );
    let mut levels = vec![100];
    let mut heartbeats = Vec::new();
    let mut sent = 1;
    while levels.len() < 6 || heartbeats.len() < 3 {
        let b = next(&mut batches).await;
        sent += 1;
        assert!(b.errors.is_empty(), "{b:?}");
        assert!(!b.values.is_empty(), "an empty batch was sent: {b:?}");
        levels.extend(value(&b, "level"));
        if value(&b, "setpoint").is_some() {
            heartbeats.push(b.ts_micros);
        }
    }
    assert_eq!(
        levels,
        vec![100, 102, 104, 106, 108, 110],
        "exactly the steps out of the deadband"
    );
    let mut last = first.ts_micros;
    for ts in &heartbeats {
        let gap_ms = (ts - last) / 1000;
        // Due every 10th slot; the start of a poll may be late, never early.
        assert!(
            (500..=5_000).contains(&gap_ms),
            "heartbeat after {gap_ms} ms, max_silence 1s"
        );
        last = *ts;
    }
    // Polls with nothing due made no batch: ~30 polls for ~9 batches.
    let polls = server.seen().len();
    assert!(sent * 2 < polls, "{sent} batches from {polls} polls");

    // A config reload: the next poll sends everything again (`level` is
    // constant at 110 with a 1 h heartbeat: only the reset sends it).
    poller.cast(DevicePollerMsg::Reloaded).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .expect("everything sent after the reload")
            .unwrap();
        if value(&b, "level").is_some() {
            assert_eq!(
                (value(&b, "level"), value(&b, "setpoint")),
                (Some(110), Some(500))
            );
            break;
        }
    }

    // A restart: a fresh poller's first batch has every value.
    poller.stop(None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    while batches.try_recv().is_ok() {}
    let poller = start(&dev, &buffer).await;
    let b = next(&mut batches).await;
    assert_eq!(
        (value(&b, "level"), value(&b, "setpoint")),
        (Some(110), Some(500))
    );
    poller.stop(None);
}

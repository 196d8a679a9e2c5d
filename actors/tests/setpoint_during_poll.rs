//! A write that arrives while its device is being polled waits for the
//! poll to end (issue 21): on the wire, every read of that poll comes
//! before the write and its read back. The link alone would not do it: it
//! serves requests in arrival order, so a write sent while the poll's
//! first (slow) read is out would go before the poll's second read.

mod poller_rig;
mod publisher_rig;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ingestor_actors::monitor::{ConnectionMonitor, ConnectionMonitorArgs, ConnectionWatch};
use ingestor_actors::poller::setpoint::WriteContext;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Link};
use ingestor_actors::settings::WriteSettings;
use poller_rig::{collecting_buffer, device, listener, ScriptedServer};
use publisher_rig::{nats_settings, NatsServer};
use ractor::Actor;
use serde_json::{json, Value as Json};

async fn request(client: &async_nats::Client, body: &str) -> Option<Json> {
    let asked = client.request("setpoint.line1-ipc.press", Bytes::from(body.to_owned()));
    match tokio::time::timeout(Duration::from_secs(5), asked).await {
        Ok(Ok(m)) => Some(serde_json::from_slice(&m.payload).unwrap()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_during_a_poll_waits_for_the_poll_to_end() {
    let nats = NatsServer::start();
    let connection = ConnectionWatch::new();
    let monitor = ConnectionMonitorArgs {
        settings: nats_settings(&[nats.url()], "TELEMETRY"),
        client_name: "setpoint test".into(),
        connection: connection.clone(),
        ping_interval: Duration::from_secs(2),
    };
    let (_monitor, _) = Actor::spawn(None, ConnectionMonitor, monitor)
        .await
        .unwrap();

    // The poll's first read is answered after 1 s; its second comes after it.
    let server = Arc::new(ScriptedServer {
        slow_first: 1.into(),
        slow_delay: Duration::from_secs(1),
        ..ScriptedServer::default()
    });
    let (l, address) = listener().await;
    server.spawn(l, false);
    let d = device(&format!(
        "id = \"press\"\naddress = \"{address}\"\npoll_interval = \"1h\"\ntimeout = \"3s\"\nmax_gap = 0\n\
         [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\
         [[tags]]\nname = \"sp\"\nregister = \"holding\"\naddress = 100\ntype = \"u16\"\n\
         writable = true\nmin = 0.0\nmax = 1000.0\n"
    ));
    let (buffer, _batches) = collecting_buffer().await;
    let writes = WriteContext {
        settings: WriteSettings {
            enabled: true,
            timeout: Duration::from_secs(10),
            ..WriteSettings::default()
        },
        service_id: "line1-ipc".into(),
        connection: connection.subscribe(),
    };
    let args = DevicePollerArgs {
        link: Link::open(&d).unwrap(),
        device: d.into(),
        buffer: buffer.into(),
        first_poll: tokio::time::Instant::now() + Duration::from_secs(3),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        status: Default::default(),
        writes: Some(writes),
    };
    let (_poller, _) = Actor::spawn(None, DevicePoller, args).await.unwrap();

    let client = async_nats::connect(nats.url()).await.unwrap();
    // Subscribed once a refusal (which sends nothing to the device) is answered.
    let mut answered = None;
    for _ in 0..100 {
        answered = request(&client, r#"{"tag":"a","value":1}"#).await;
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answered.expect("no write subject")["code"],
        json!("not_writable")
    );
    assert!(server.seen().is_empty(), "a refusal reached the device");

    // The poll connects (holding its device's turn from before that) and
    // sends its first read, answered only after a second: now the write.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poll did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = request(&client, r#"{"tag":"sp","value":7}"#)
        .await
        .expect("a reply");
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert_eq!(reply["value"], json!(7));

    let seen: Vec<(u8, u16)> = server
        .seen()
        .iter()
        .map(|r| (r.function, r.start))
        .collect();
    assert_eq!(
        seen,
        [(3, 0), (3, 100), (6, 100), (3, 100)],
        "the poll's reads, then the write and its read back"
    );
}

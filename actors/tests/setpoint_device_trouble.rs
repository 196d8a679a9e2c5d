//! Setpoints when the device does not do what was asked (issue 21): a
//! write confirmed but not held is a `mismatch` whose reply says what the
//! device holds; a device that does not answer in time is a `timeout`; one
//! that cannot be reached is `unreachable`. Each is recorded with its code.

mod poller_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::setpoint::{DeviceTurn, WritePath};
use ingestor_actors::poller::Link;
use ingestor_actors::settings::WriteSettings;
use poller_rig::{device, listener, ScriptedServer};
use serde_json::{json, Value as Json};

fn path(address: &str, timeout: &str) -> WritePath {
    let d = device(&format!(
        "id = \"press\"\naddress = \"{address}\"\ntimeout = \"{timeout}\"\nretries = 0\n\
         [[tags]]\nname = \"sp\"\nregister = \"holding\"\naddress = 100\ntype = \"u16\"\n\
         writable = true\nmin = 0.0\nmax = 5000.0\n"
    ));
    let link = Link::open(&d).unwrap();
    let settings = WriteSettings {
        enabled: true,
        ..WriteSettings::default()
    };
    WritePath::new(d, settings, link, DeviceTurn::default())
}

/// (reply, the audit record's `write`).
async fn write(path: &mut WritePath, value: u16) -> (Json, Json) {
    let body = json!({"tag": "sp", "value": value}).to_string();
    let (records, reply, _) = path.answer(body.as_bytes(), Some("_INBOX.t")).await;
    assert_eq!(records.len(), 1);
    let record: Json = serde_json::from_slice(&records[0].payload()).unwrap();
    (
        serde_json::from_slice(&reply).unwrap(),
        record["write"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_device_does_not_keep_is_a_mismatch_with_what_it_holds() {
    let server = Arc::new(ScriptedServer {
        ignore_writes: true,
        ..ScriptedServer::default()
    });
    let (l, address) = listener().await;
    server.spawn(l, false);
    let mut p = path(&address, "1s");
    let (reply, audit) = write(&mut p, 7).await;
    // The scripted device holds 1000 + address.
    assert_eq!(reply["code"], json!("mismatch"), "{reply}");
    assert_eq!(reply["value"], json!(1100), "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("holds 1100"),
        "{reply}"
    );
    assert_eq!(
        (audit["result"].clone(), audit["value"].clone()),
        (json!("mismatch"), json!(1100))
    );
    let functions: Vec<u8> = server.seen().iter().map(|r| r.function).collect();
    assert_eq!(functions, [6, 3], "the write, then its read back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_answers_too_late_is_a_timeout_and_one_not_there_is_unreachable() {
    let server = Arc::new(ScriptedServer {
        slow_first: 1.into(),
        slow_delay: Duration::from_secs(2),
        ..ScriptedServer::default()
    });
    let (l, address) = listener().await;
    server.spawn(l, false);
    let mut p = path(&address, "200ms");
    let (reply, audit) = write(&mut p, 7).await;
    assert_eq!(reply["code"], json!("timeout"), "{reply}");
    assert_eq!(audit["result"], json!("timeout"));

    let (l, nobody) = listener().await;
    drop(l);
    let mut p = path(&nobody, "200ms");
    let (reply, audit) = write(&mut p, 7).await;
    assert_eq!(reply["code"], json!("unreachable"), "{reply}");
    assert_eq!(audit["result"], json!("unreachable"));
}

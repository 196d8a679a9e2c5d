//! Setpoints on the wire (issue 21), against the simulator and against
//! pymodbus 3.11 (a Modbus server nobody here wrote): every type and word
//! order written reads back as written, by the write's own read back and
//! by a poll afterwards; each refusal gets its code and leaves the
//! register as it was; every request leaves its audit records.

mod poller_rig;
mod tls_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::setpoint::{DeviceTurn, RateLimit, WritePath};
use ingestor_actors::poller::{poll_groups, DeviceReader, Link};
use ingestor_actors::settings::{DeviceSettings, WriteSettings};
use ingestor_actors::simulator::Simulator;
use ingestor_actors::Value;
use poller_rig::{device, listener};
use serde_json::{json, Value as Json};
use tls_rig::{free_port, PeerServer, Pymodbus};

/// Each numeric type and a value to write to it (exact in the type).
fn types() -> [(&'static str, Json); 8] {
    [
        ("u16", json!(4242)),
        ("i16", json!(-1234)),
        ("u32", json!(305_419_896)),
        ("i32", json!(-305_419_896)),
        ("u64", json!(1_234_567_890_123u64)),
        ("i64", json!(-1_234_567_890_123i64)),
        ("f32", json!(-1.5)),
        ("f64", json!(12_345.678)),
    ]
}
const ORDERS: [&str; 4] = ["ABCD", "DCBA", "BADC", "CDAB"];

/// A writable tag of every type in every order from address 100 (four
/// registers apart), a scaled one, a coil, a bit, a string and an input
/// register, on the device at `address`.
fn writable_device(address: &str) -> DeviceSettings {
    let mut tags = String::new();
    let mut at = 100;
    for (kind, _) in types() {
        for order in ORDERS {
            tags.push_str(&format!(
                "[[tags]]\nname = \"{kind}_{order}\"\nregister = \"holding\"\naddress = {at}\ntype = \"{kind}\"\n\
                 order = \"{order}\"\nwritable = true\nmin = -1e13\nmax = 1e13\n"
            ));
            at += 4;
        }
    }
    tags.push_str(
        "[[tags]]\nname = \"temp_sp\"\nregister = \"holding\"\naddress = 20\ntype = \"i16\"\nscale = 0.1\noffset = -40.0\n\
         writable = true\nmin = -20.0\nmax = 80.0\n\
         [[tags]]\nname = \"run\"\nregister = \"coil\"\naddress = 3\ntype = \"bool\"\nwritable = true\n\
         [[tags]]\nname = \"flags_b4\"\nregister = \"holding\"\naddress = 30\ntype = \"bool\"\nbit = 4\nwritable = true\n\
         [[tags]]\nname = \"flags\"\nregister = \"holding\"\naddress = 30\ntype = \"u16\"\n\
         [[tags]]\nname = \"recipe\"\nregister = \"holding\"\naddress = 40\ntype = \"string\"\nlength = 4\norder = \"BADC\"\nwritable = true\n\
         [[tags]]\nname = \"limit\"\nregister = \"holding\"\naddress = 50\ntype = \"u16\"\n\
         [[tags]]\nname = \"voltage\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\n\
         [[tags]]\nname = \"far\"\nregister = \"holding\"\naddress = 5000\ntype = \"u16\"\nwritable = true\nmin = 0.0\nmax = 10.0\n",
    );
    device(&format!(
        "id = \"press\"\naddress = \"{address}\"\ntimeout = \"2s\"\nmax_gap = 0\n{tags}"
    ))
}

fn enabled() -> WriteSettings {
    WriteSettings {
        enabled: true,
        rate_per_tag: Duration::from_millis(1),
        ..WriteSettings::default()
    }
}

/// One device's write path as the service runs it.
struct Writer(WritePath);

impl Writer {
    fn new(device: DeviceSettings, settings: WriteSettings) -> Self {
        let link = Link::open(&device).unwrap();
        Writer(WritePath::new(
            device,
            settings,
            link,
            DeviceTurn::default(),
        ))
    }

    /// A request as NATS would carry it → (reply, audit records' `write`, result).
    async fn request(&mut self, body: Json) -> (Json, Vec<Json>, &'static str) {
        self.request_text(&body.to_string()).await
    }

    /// As [`Writer::request`], the body as written (key order kept).
    async fn request_text(&mut self, body: &str) -> (Json, Vec<Json>, &'static str) {
        let (records, reply, result) = self.0.answer(body.as_bytes(), Some("_INBOX.test")).await;
        let audit = records
            .iter()
            .map(|r| {
                assert_eq!(r.device(), "_writes");
                let payload: Json = serde_json::from_slice(&r.payload()).unwrap();
                payload["write"].clone()
            })
            .collect();
        (serde_json::from_slice(&reply).unwrap(), audit, result)
    }

    /// Every tag as a poll reads it now.
    async fn poll(&self) -> Vec<(String, Value)> {
        let mut values = Vec::new();
        for group in poll_groups(&self.0.device) {
            let outcome = DeviceReader::new(group, self.0.link.clone()).poll().await;
            values.extend(outcome.values);
        }
        values
    }

    async fn polled(&self, tag: &str) -> Value {
        self.poll()
            .await
            .into_iter()
            .find(|(n, _)| n == tag)
            .unwrap_or_else(|| panic!("{tag} not read"))
            .1
    }
}

fn as_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap()
}

/// Every type × order, the scaled tag, the coil, the bit and the string:
/// the reply and the audit carry the value read back, and a poll reads it.
async fn every_type_and_order_round_trips(w: &mut Writer) {
    for (kind, value) in &types() {
        for order in ORDERS {
            let tag = format!("{kind}_{order}");
            let (reply, audit, result) = w.request(json!({"tag": tag, "value": value})).await;
            assert_eq!(result, "ok", "{tag}: {reply}");
            assert_eq!(reply["ok"], json!(true), "{tag}: {reply}");
            assert_eq!(reply["value"].as_f64(), value.as_f64(), "{tag}: {reply}");
            assert_eq!(audit.len(), 1);
            assert_eq!(audit[0]["tag"], json!(tag));
            assert_eq!(audit[0]["requested"], *value);
            assert_eq!(audit[0]["result"], json!("ok"));
            assert_eq!(audit[0]["reply_to"], json!("_INBOX.test"));
            assert_eq!(
                as_json(&w.polled(&tag).await).as_f64(),
                value.as_f64(),
                "{tag} polled"
            );
        }
    }
    for (tag, value) in [
        ("temp_sp", json!(21.5)),
        ("run", json!(true)),
        ("flags_b4", json!(true)),
        ("recipe", json!("PX-200")),
        ("run", json!(false)),
    ] {
        let (reply, _, result) = w.request(json!({"tag": tag, "value": value})).await;
        assert_eq!(result, "ok", "{tag}: {reply}");
        assert_eq!(reply["value"], value, "{tag}: {reply}");
        assert_eq!(as_json(&w.polled(tag).await), value, "{tag} polled");
    }
}

/// Each refusal has its code, and the registers keep what they held.
async fn refusals_write_nothing(w: &mut Writer) {
    let before = w.poll().await;
    let cases = [
        (json!({"tag": "temp_sp", "value": 80.5}), "out_of_range"),
        (json!({"tag": "temp_sp", "value": 21.55}), "out_of_range"),
        (json!({"tag": "limit", "value": 7}), "not_writable"),
        (json!({"tag": "voltage", "value": 7}), "not_writable"),
        (json!({"tag": "nope", "value": 7}), "not_writable"),
        (json!({"tag": "temp_sp", "value": "hot"}), "bad_request"),
        (json!({"value": 3}), "bad_request"),
        (
            json!({"tag": "recipe", "value": "TOO-LONG-9"}),
            "out_of_range",
        ),
        // All checked before any is written: temp_sp is not written either.
        (
            json!({"values": {"temp_sp": 30.0, "limit": 1}}),
            "not_writable",
        ),
    ];
    for (body, code) in cases {
        let (reply, audit, result) = w.request(body.clone()).await;
        assert_eq!(result, code, "{body}: {reply}");
        assert_eq!(reply["ok"], json!(false));
        assert_eq!(reply["code"], json!(code), "{body}: {reply}");
        assert!(
            !audit.is_empty() && audit.iter().all(|a| a["result"] == json!(code)),
            "{audit:?}"
        );
    }
    // The device refuses: pymodbus has no register 5000, the simulator serves it.
    assert_eq!(w.poll().await, before, "a refused write changed something");
}

async fn disabled_and_rate(w: &mut Writer) {
    let before = w.polled("temp_sp").await;
    w.0.settings.enabled = false;
    let (reply, _, result) = w.request(json!({"tag": "temp_sp", "value": 30.0})).await;
    assert_eq!(
        (result, reply["code"].clone()),
        ("disabled", json!("disabled"))
    );
    assert_eq!(w.polled("temp_sp").await, before);
    w.0.settings.enabled = true;
    w.0.limiter = RateLimit::new(Duration::from_secs(3600));
    let (reply, _, result) = w.request(json!({"tag": "temp_sp", "value": 30.0})).await;
    assert_eq!(result, "ok", "{reply}");
    let (reply, _, result) = w.request(json!({"tag": "temp_sp", "value": 31.0})).await;
    assert_eq!(
        (result, reply["code"].clone()),
        ("rate", json!("rate")),
        "{reply}"
    );
    assert_eq!(
        w.polled("temp_sp").await,
        Value::Float(30.0),
        "the rate-limited write was done"
    );
    w.0.limiter = RateLimit::new(w.0.settings.rate_per_tag);
}

async fn several_tags_in_one_request(w: &mut Writer) {
    let (reply, audit, result) = w
        .request_text(r#"{"values": {"temp_sp": 25.0, "u16_ABCD": 7, "run": true}}"#)
        .await;
    assert_eq!(result, "ok", "{reply}");
    assert_eq!(
        reply["values"],
        json!({"temp_sp": 25.0, "u16_ABCD": 7, "run": true})
    );
    let tags: Vec<&Json> = audit.iter().map(|a| &a["tag"]).collect();
    assert_eq!(
        tags,
        [&json!("temp_sp"), &json!("u16_ABCD"), &json!("run")],
        "in the order asked"
    );
    for (tag, value) in [
        ("temp_sp", json!(25.0)),
        ("u16_ABCD", json!(7)),
        ("run", json!(true)),
    ] {
        assert_eq!(as_json(&w.polled(tag).await), value, "{tag} polled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_round_trip_and_refusals_write_nothing_on_the_simulator() {
    let (l, address) = listener().await;
    let d = writable_device(&address);
    let sim = Arc::new(Simulator::new(std::slice::from_ref(&d)).frozen_at(1_700_000_000));
    tokio::spawn(sim.serve_tcp(l));
    let mut w = Writer::new(d, enabled());
    every_type_and_order_round_trips(&mut w).await;
    refusals_write_nothing(&mut w).await;
    disabled_and_rate(&mut w).await;
    several_tags_in_one_request(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_round_trip_and_refusals_write_nothing_on_pymodbus() {
    let port = free_port();
    // flags = 0b0000_0000_1010_0101 and limit = 500: known neighbours.
    let _peer = Pymodbus::start(
        &[(30, 0x00A5), (50, 500)],
        &[(0, 230)],
        &[PeerServer::Plain { port }],
    );
    let mut w = Writer::new(writable_device(&format!("127.0.0.1:{port}")), enabled());
    every_type_and_order_round_trips(&mut w).await;
    // The bit was set by function 22 alone: the other bits of the register are as they were.
    assert_eq!(w.polled("flags").await, Value::UInt(0x00B5));
    refusals_write_nothing(&mut w).await;
    disabled_and_rate(&mut w).await;
    several_tags_in_one_request(&mut w).await;
    // A register pymodbus does not have: its exception, nothing written.
    let (reply, audit, result) = w.request(json!({"tag": "far", "value": 3})).await;
    assert_eq!(result, "modbus_exception", "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("0x02 illegal data address"),
        "{reply}"
    );
    assert_eq!(audit[0]["result"], json!("modbus_exception"));
    assert_eq!(w.polled("limit").await, Value::UInt(500));
}

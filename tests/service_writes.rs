//! Setpoints end to end (issue 21): `ingestor run` against a real
//! nats-server with users, `ingestor simulate` as the plant. A request on
//! `setpoint.<id>.<device>` from the user allowed to write is answered with
//! the value read back, later polls carry it, and every request, done or
//! refused, is a `_writes` record in the stream, in order with the data. A
//! user without publish permission on the write subject is refused by the
//! server and writes nothing; a device without writable tags has no write
//! subject at all.

mod service_rig;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use service_rig::*;

/// The service may publish its data and replies and subscribe to its write
/// subjects; `operator` may also send write requests; `viewer` only reads.
const USERS: &str = r#"authorization {
  users = [
    { user: ingestor, password: "pw", permissions: {
        publish: { allow: ["telemetry.>", "$JS.API.>", "_INBOX.>"] },
        subscribe: { allow: ["setpoint.line1-ipc.>", "_INBOX.>"] } } },
    { user: operator, password: "pw", permissions: {
        publish: { allow: ["setpoint.>", "$JS.API.>"] },
        subscribe: { allow: ["telemetry.>", "_INBOX.>"] } } },
    { user: viewer, password: "pw", permissions: {
        publish: { allow: ["$JS.API.>"] },
        subscribe: { allow: ["telemetry.>", "_INBOX.>"] } } }
  ]
}"#;

const SUBJECT: &str = "setpoint.line1-ipc.press-01";

/// The plant with `oil_temp` and `running` of press-01 writable.
fn writable_plant(nats: &NatsServer) -> Plant {
    let plant = Plant::with_nats(
        &[&nats.url()],
        "user = \"ingestor\"\npassword = \"pw\"\nack_timeout = \"2s\"",
        "[writes]\nenabled = true\nrate_per_tag = \"10ms\"\n",
    );
    let text = std::fs::read_to_string(&plant.config).unwrap();
    let text = text
        .replacen(
            "order = \"CDAB\"\n",
            "order = \"CDAB\"\nwritable = true\nmin = 0.0\nmax = 500.0\n",
            1,
        )
        .replacen(
            "name = \"running\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\n",
            "name = \"running\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\nwritable = true\n",
            1,
        );
    std::fs::write(&plant.config, text).unwrap();
    plant
}

async fn client(url: &str, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), "pw".into())
        .connect(url)
        .await
        .unwrap()
}

/// A request and its reply as JSON; `None` when no reply came.
async fn request(client: &async_nats::Client, subject: &str, body: &str) -> Option<Json> {
    let asked = client.request(subject.to_owned(), Bytes::from(body.to_owned()));
    match tokio::time::timeout(Duration::from_secs(5), asked).await {
        Ok(Ok(m)) => Some(serde_json::from_slice(&m.payload).unwrap()),
        _ => None,
    }
}

#[test]
fn nats_write_is_read_back_audited_in_order_and_refused_without_permission() {
    let nats = NatsServer::start_with(USERS);
    let plant = writable_plant(&nats);
    let service = plant.start();
    service.wait_serving();
    let url = nats.url();
    let replies = block_on(async {
        let operator = client(&url, "operator").await;
        // The service subscribes once connected: ask until someone answers.
        let mut first = None;
        for _ in 0..100 {
            first = request(&operator, SUBJECT, r#"{"tag":"oil_temp","value":123.5}"#).await;
            if first.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut replies = vec![first.expect("no reply to a write request")];
        for body in [
            r#"{"tag":"oil_temp","value":900}"#,
            r#"{"tag":"energy","value":1}"#,
            r#"{"values":{"running":true,"oil_temp":200.25}}"#,
            "not json",
        ] {
            tokio::time::sleep(Duration::from_millis(20)).await;
            replies.push(request(&operator, SUBJECT, body).await.expect(body));
        }
        // meter-07 has no writable tag: no subject, nobody answers.
        let none = request(
            &operator,
            "setpoint.line1-ipc.meter-07",
            r#"{"tag":"energy","value":1}"#,
        )
        .await;
        assert_eq!(none, None, "a device without writable tags answered");
        // The viewer may not publish there: the server refuses, the service never sees it.
        let viewer = client(&url, "viewer").await;
        let refused = request(&viewer, SUBJECT, r#"{"tag":"oil_temp","value":1.0}"#).await;
        assert_eq!(refused, None, "the viewer's request got an answer");
        replies
    });
    assert_eq!(replies[0]["ok"], json!(true), "{:?}", replies[0]);
    assert_eq!(replies[0]["tag"], json!("oil_temp"));
    assert_eq!(replies[0]["value"], json!(123.5));
    assert!(replies[0]["ts"].as_str().is_some());
    let codes: Vec<&Json> = replies[1..].iter().map(|r| &r["code"]).collect();
    assert_eq!(
        codes,
        [
            &json!("out_of_range"),
            &json!("not_writable"),
            &Json::Null,
            &json!("bad_request")
        ],
        "{replies:?}"
    );
    assert_eq!(
        replies[3]["values"],
        json!({"running": true, "oil_temp": 200.25})
    );

    // The polls after the last write carry what was written; the viewer's 1.0 never arrived.
    wait_until(
        Duration::from_secs(10),
        "ingestor_writes_total counted",
        || service.metric("ingestor_writes_total{device=\"press-01\",result=\"ok\"}") == 2.0,
    );
    assert_eq!(
        service.metric("ingestor_writes_total{device=\"press-01\",result=\"out_of_range\"}"),
        1.0
    );
    std::thread::sleep(Duration::from_millis(500));
    service.wait_backlog_empty(Duration::from_secs(20));
    let operator =
        async_nats::ConnectOptions::with_user_and_password("operator".into(), "pw".into());
    let records = read_records_as(&url, operator);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_complete_in_order(&seqs);
    let audit: Vec<&Record> = records
        .iter()
        .filter(|r| r.subject.ends_with("._writes"))
        .collect();
    assert_eq!(audit[0].subject, "telemetry.line1-ipc._writes");
    let rows: Vec<(Json, Json)> = audit
        .iter()
        .map(|r| {
            (
                r.payload["write"]["tag"].clone(),
                r.payload["write"]["result"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!("oil_temp"), json!("ok")),
            (json!("oil_temp"), json!("out_of_range")),
            (json!("energy"), json!("not_writable")),
            (json!("running"), json!("ok")),
            (json!("oil_temp"), json!("ok")),
            (Json::Null, json!("bad_request")),
        ],
        "every request, in order"
    );
    let first = &audit[0].payload["write"];
    assert_eq!(first["device"], json!("press-01"));
    assert_eq!(
        (first["requested"].clone(), first["value"].clone()),
        (json!(123.5), json!(123.5))
    );
    assert!(
        first["reply_to"].as_str().unwrap().starts_with("_INBOX."),
        "{first}"
    );
    let last_write = audit[4].seq;
    let later: Vec<&Record> = records
        .iter()
        .filter(|r| r.subject.ends_with(".press-01") && r.seq > last_write + 1)
        .collect();
    assert!(!later.is_empty(), "no poll after the writes");
    for r in later {
        assert_eq!(
            r.payload["values"]["oil_temp"],
            json!(200.25),
            "{:?}",
            r.payload
        );
        assert_eq!(
            r.payload["values"]["running"],
            json!(true),
            "{:?}",
            r.payload
        );
    }
}

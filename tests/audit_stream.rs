//! `ingestor audit` on a stream the real service filled (a test
//! nats-server): complete, exit 0, with gaps that gap events explain counted
//! by reason; a message deleted from the stream, or a poll republished
//! under a second seq, is named and makes it exit 1.

mod service_rig;

use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use service_rig::*;

/// Publishes `payload` on `subject` with the service's three headers.
fn publish(url: &str, subject: &str, seq: u64, installation: &str, payload: &serde_json::Value) {
    block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(client);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{SERVICE}-{seq}").as_str());
        headers.insert("Ingestor-Seq", seq.to_string().as_str());
        headers.insert("Ingestor-Installation", installation);
        let body = serde_json::to_vec(payload).unwrap();
        js.publish_with_headers(subject.to_string(), headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
}

fn delete(url: &str, stream_seq: u64) {
    block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let stream = jetstream::new(client).get_stream(STREAM).await.unwrap();
        assert!(stream.delete_message(stream_seq).await.unwrap());
    });
}

fn gap_event(seq: u64, from: u64, to: u64, reason: &str) -> serde_json::Value {
    serde_json::json!({"seq": seq, "ts": "2026-12-03T10:00:00.000000Z",
        "gap": {"from": from, "to": to, "reason": reason, "count": to - from + 1}})
}

#[test]
fn audit_explains_gaps_by_events_and_names_a_deleted_seq_and_a_poll_stored_twice() {
    let server = NatsServer::start();
    let url = server.url();
    let plant = Plant::new(&url, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "30 batches published", || {
        service.metric("ingestor_published_total") >= 30.0
    });
    assert!(service.term(Duration::from_secs(15)).success());
    let records = read_records(&url);
    let installation = plant.installation();
    let last = records.iter().map(|r| r.seq).max().unwrap();

    let (code, out) = plant.audit(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&installation) && out.contains(&format!("1..={last}")),
        "{out}"
    );

    // A disk-full drop (seqs 5..=7 never reached the stream) and a crash
    // skip (last+3..=last+12 never handed out), each with its gap event.
    for r in records.iter().filter(|r| (5..=7).contains(&r.seq)) {
        delete(&url, r.stream_seq);
    }
    let gaps = format!("telemetry.{SERVICE}._gaps");
    publish(
        &url,
        &gaps,
        last + 1,
        &installation,
        &gap_event(last + 1, 5, 7, "disk_full_oldest"),
    );
    publish(
        &url,
        &gaps,
        last + 2,
        &installation,
        &gap_event(last + 2, last + 3, last + 12, "crash"),
    );
    let after_crash = last + 13;
    let mut batch = records[0].payload.clone();
    batch["seq"] = after_crash.into();
    batch["ts"] = "2026-12-03T11:00:00.000000Z".into();
    publish(
        &url,
        &records[0].subject,
        after_crash,
        &installation,
        &batch,
    );
    let (code, out) = plant.audit(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("disk_full_oldest: 3 seqs (1 event)"), "{out}");
    assert!(out.contains("crash: 10 seqs (1 event)"), "{out}");

    // One message deleted from the stream: named, exit 1.
    let gone = records.iter().find(|r| r.seq == 10).unwrap();
    delete(&url, gone.stream_seq);
    let (code, out) = plant.audit(&[]);
    assert_eq!(code, 1, "{out}");
    let missing = out
        .lines()
        .find(|l| l.contains("MISSING"))
        .unwrap_or_default();
    assert!(missing.contains("seq 10 "), "{out}");
    let (code, json) = plant.audit(&["--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(json["complete"], false);
    assert_eq!(
        json["installations"][0]["missing"],
        serde_json::json!([{"from": 10, "to": 10}])
    );

    // A poll stored again under a second seq (a new Nats-Msg-Id): named.
    let again = records.iter().find(|r| r.seq == 12).unwrap();
    let mut copy = again.payload.clone();
    let second = after_crash + 1;
    copy["seq"] = second.into();
    publish(&url, &again.subject, second, &installation, &copy);
    let (code, out) = plant.audit(&["--installation", &installation]);
    assert_eq!(code, 1, "{out}");
    let twice = out
        .lines()
        .find(|l| l.contains("POLL TWICE"))
        .unwrap_or_default();
    assert!(twice.contains(&format!("as seqs 12 and {second}")), "{out}");

    // Another installation asked for: nothing of it, not complete.
    let (code, out) = plant.audit(&["--installation", "0000"]);
    assert_eq!(code, 1, "{out}");
}

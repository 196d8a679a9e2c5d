//! Upgrading over a backlog: the spool of an earlier version (record
//! format 1, rkyv: the committed fixture `actors/tests/fixtures/spool-v1`,
//! closed cleanly at seq 3) under this version's service. Its batches go out
//! first, each payload byte for byte what the earlier version published,
//! and the service's own batches follow from seq 4 on: every seq once,
//! ascending.
mod service_rig;

#[path = "../actors/tests/fixtures/batches.rs"]
mod batches;

use std::time::Duration;

use service_rig::*;

#[test]
fn a_format_1_spool_is_published_unchanged_then_live_data_continues_the_seq() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(&url, "");
    batches::copy_dir(&batches::fixture(1), &plant.dir.path().join("data"));

    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(30),
        "the old backlog and live batches published",
        || service.metric("ingestor_published_total") >= 23.0,
    );
    assert!(service.term(Duration::from_secs(10)).success());

    let seqs = read_stream(&url);
    assert_complete_in_order(&seqs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = rt.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let stream = async_nats::jetstream::new(client)
            .get_stream(STREAM)
            .await
            .unwrap();
        let mut out = Vec::new();
        for sequence in 1..=4 {
            out.push(stream.get_raw_message(sequence).await.unwrap());
        }
        out
    });
    for (old, message) in batches::expected().iter().zip(&stored) {
        assert_eq!(
            String::from_utf8_lossy(&message.payload),
            String::from_utf8_lossy(&old.to_json()),
            "seq {} as the earlier version published it",
            old.seq
        );
        assert_eq!(
            message.subject.as_str(),
            format!("telemetry.{SERVICE}.press-01")
        );
    }
    let live: serde_json::Value = serde_json::from_slice(&stored[3].payload).unwrap();
    assert_eq!(live["seq"].as_u64(), Some(4), "live data continues the seq");
    drop(nats);
}

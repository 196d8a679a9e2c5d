//! Two PCs left on one `[service] id`, and a spool restored from an old
//! copy (docs/reference.md §3, "One installation per id"): the one that
//! would collide publishes nothing, says so once, keeps every batch; given
//! its own id, everything it polled arrives. The real binary, a real
//! nats-server, `ingestor simulate` as each plant.

mod service_rig;

use std::process::Command;
use std::time::Duration;

use service_rig::*;

const CONFLICTS: &str = "ingestor_publish_errors_total{reason=\"id_conflict\"}";
const REFUSAL: &str = "not publishing, every batch is kept";

/// The stream holds `seqs` = 1..=K in order, exactly once, and the spool
/// of `plant` (stopped) the rest, K+1.. contiguous: nothing lost or doubled.
fn assert_stream_and_spool_complete(seqs: &[u64], plant: &Plant) -> u64 {
    assert_complete_in_order(seqs);
    let last = *seqs.last().unwrap();
    let (count, oldest, newest) = spool_stats(&plant.config);
    if count > 0 {
        assert_eq!(oldest, Some(last + 1), "spool does not continue the stream");
        assert_eq!(newest, Some(last + count), "spool has gaps or extra");
    }
    last + count
}

/// `first` runs and publishes; `second` starts on the same id and stream.
fn second_pc_on_one_id_publishes_nothing_then_its_own_id_delivers_all(swap: bool) {
    let server = NatsServer::start();
    let url = server.url();
    let (a, b) = (Plant::new(&url, ""), Plant::new(&url, ""));
    let (first, second) = if swap { (&b, &a) } else { (&a, &b) };
    let mut one = first.start();
    wait_until(Duration::from_secs(30), "the first PC publishing", || {
        one.metric("ingestor_published_total") >= 10.0
    });

    let mut two = second.start();
    wait_until(Duration::from_secs(30), "the second PC refusing", || {
        two.metric(CONFLICTS) >= 1.0
    });
    wait_until(Duration::from_secs(30), "the second PC polling on", || {
        two.metric("ingestor_batches_total") >= 20.0
    });
    let (mine, theirs) = (second.installation(), first.installation());
    assert_ne!(mine, theirs);
    assert_eq!(two.metric("ingestor_published_total"), 0.0);
    assert_eq!(two.health()["status"], "degraded", "{}", two.health());
    let log = two.log_text();
    assert_eq!(log.matches(REFUSAL).count(), 1, "one clear error:\n{log}");
    let line = log.lines().find(|l| l.contains(REFUSAL)).unwrap();
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(&mine) && line.contains(&theirs), "{line}");
    assert!(
        line.contains(&format!("replaces = \"{theirs}\"")),
        "names the way to take over: {line}"
    );
    assert!(two.term(Duration::from_secs(15)).success());
    let records = read_records(&url);
    assert!(
        records
            .iter()
            .all(|r| r.installation.as_deref() == Some(theirs.as_str())),
        "only the first PC's messages are in the stream"
    );

    // Given its own id, everything it polled arrives.
    second.set_service_id("line2-ipc");
    let mut two = second.start();
    two.wait_backlog_empty(Duration::from_secs(60));
    assert!(two.term(Duration::from_secs(15)).success());
    assert!(one.term(Duration::from_secs(15)).success());
    let records = read_records(&url);
    let seconds: Vec<&Record> = records
        .iter()
        .filter(|r| r.installation.as_deref() == Some(mine.as_str()))
        .collect();
    assert!(seconds
        .iter()
        .all(|r| r.subject.starts_with("telemetry.line2-ipc.")
            && r.msg_id == format!("line2-ipc-{}", r.seq)));
    let polled = assert_stream_and_spool_complete(&seqs_of(&records, &mine), second);
    assert!(
        polled >= 20,
        "the batches of the refused run arrived: {polled}"
    );
    assert_stream_and_spool_complete(&seqs_of(&records, &theirs), first);
    assert_eq!(
        seconds.len() + seqs_of(&records, &theirs).len(),
        records.len(),
        "every message carries one of the two installations"
    );
}

#[test]
fn second_pc_on_one_id_publishes_nothing_keeps_every_batch_and_delivers_all_under_its_own_id() {
    second_pc_on_one_id_publishes_nothing_then_its_own_id_delivers_all(false);
}

#[test]
fn the_reverse_order_of_start_gives_the_same_result() {
    second_pc_on_one_id_publishes_nothing_then_its_own_id_delivers_all(true);
}

#[test]
fn a_spool_restored_from_an_older_copy_is_refused_and_its_data_kept() {
    let server = NatsServer::start();
    let url = server.url();
    let plant = Plant::new(&url, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "publishing", || {
        service.metric("ingestor_published_total") >= 10.0
    });
    assert!(service.term(Duration::from_secs(15)).success());
    let data = plant.data_dir();
    let copy = plant.dir.path().join("data-copy");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());

    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "publishing past the copy", || {
        service.metric("ingestor_published_total") >= 20.0
    });
    assert!(service.term(Duration::from_secs(15)).success());
    let stored = read_records(&url);

    // The old copy comes back: its next seq is below what the stream holds.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&copy, &data).unwrap();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(30),
        "the restored spool refused",
        || service.metric(CONFLICTS) >= 1.0,
    );
    wait_until(Duration::from_secs(30), "polling on", || {
        service.metric("ingestor_batches_total") >= 10.0
    });
    let accepted = service.metric("ingestor_batches_total") as u64;
    assert_eq!(service.metric("ingestor_published_total"), 0.0);
    assert_eq!(service.health()["status"], "degraded");
    let log = service.log_text();
    assert!(log.contains(REFUSAL) && log.contains("restored"), "{log}");
    assert!(service.term(Duration::from_secs(15)).success());
    assert_eq!(read_records(&url).len(), stored.len(), "nothing published");
    let (on_disk, _, _) = spool_stats(&plant.config);
    assert!(on_disk >= accepted, "kept {on_disk} of {accepted} batches");
}

/// The stream, made by the test with a short de-duplication window.
fn create_stream(url: &str, duplicate_window: Duration) {
    block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        async_nats::jetstream::new(client)
            .create_stream(async_nats::jetstream::stream::Config {
                name: STREAM.into(),
                subjects: vec!["telemetry.>".into()],
                duplicate_window,
                ..Default::default()
            })
            .await
            .unwrap();
    });
}

#[test]
fn a_replaced_pc_is_taken_over_with_replaces_and_the_old_one_back_publishes_nothing() {
    let server = NatsServer::start();
    let url = server.url();
    let window = Duration::from_secs(2);
    create_stream(&url, window);
    let old = Plant::new(&url, "");
    let mut service = old.start();
    wait_until(Duration::from_secs(30), "the old PC publishing", || {
        service.metric("ingestor_published_total") >= 10.0
    });
    assert!(service.term(Duration::from_secs(15)).success());
    let old_id = old.installation();

    // The new PC: a new data_dir, the same id, told whom it replaces.
    let new = Plant::new(&url, "");
    new.add_service_key(&format!("replaces = \"{old_id}\""));
    std::thread::sleep(window + Duration::from_millis(500));
    let mut replacement = new.start();
    wait_until(Duration::from_secs(30), "the new PC publishing", || {
        replacement.metric("ingestor_published_total") >= 10.0
    });
    assert!(replacement.log_text().contains("taking over this id"));

    // The old PC switched on again: its check finds the new installation.
    let mut back = old.start();
    wait_until(Duration::from_secs(30), "the old PC refusing", || {
        back.metric(CONFLICTS) >= 1.0
    });
    assert_eq!(back.metric("ingestor_published_total"), 0.0);
    assert!(back.term(Duration::from_secs(15)).success());
    assert!(replacement.term(Duration::from_secs(15)).success());
    let new_id = new.installation();
    let records = read_records(&url);
    assert_stream_and_spool_complete(&seqs_of(&records, &new_id), &new);
    assert_stream_and_spool_complete(&seqs_of(&records, &old_id), &old);
}

#[test]
fn a_batch_answered_duplicate_of_another_installation_s_message_is_kept_not_counted() {
    let server = NatsServer::start();
    let url = server.url();
    let plant = Plant::new(&url, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "publishing", || {
        service.metric("ingestor_published_total") >= 5.0
    });
    // Another installation already stored a message under the msg id of a
    // batch this one is about to publish (a subject the check does not read).
    let planted = service.metric("ingestor_batches_total") as u64 + 40;
    block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{SERVICE}-{planted}").as_str());
        headers.insert("Ingestor-Seq", planted.to_string().as_str());
        headers.insert("Ingestor-Installation", "ffffffffffffffffffffffffffffffff");
        async_nats::jetstream::new(client)
            .publish_with_headers("telemetry.elsewhere.x", headers, "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    wait_until(Duration::from_secs(30), "the duplicate refused", || {
        service.metric(CONFLICTS) >= 1.0
    });
    let log = service.log_text();
    assert!(
        log.contains(&format!("took batch {planted} for a duplicate")),
        "{log}"
    );
    assert!(service.term(Duration::from_secs(15)).success());
    let records = read_records(&url);
    let delivered =
        assert_stream_and_spool_complete(&seqs_of(&records, &plant.installation()), &plant);
    let in_stream = seqs_of(&records, &plant.installation()).len() as u64;
    assert_eq!(
        in_stream,
        planted - 1,
        "stored up to the planted id, not past it"
    );
    assert!(
        delivered >= planted,
        "batch {planted} and later kept in the spool"
    );
}

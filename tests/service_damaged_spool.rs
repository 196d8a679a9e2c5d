//! A flash cell gone bad under the spool: 4 KiB in the middle of a table
//! file overwritten after a clean stop. The next start publishes every
//! readable batch once, in order, counts the unreadable seqs in
//! `ingestor_buffer_corrupt_total`, goes on with live data, and never
//! restarts the buffer in a loop.
mod service_rig;
mod spool_rig;

use std::time::Duration;

use ingestor_actors::{Batch, Value};
use service_rig::*;
use spool_rig::{damage_biggest_table, prefill};

/// The buffer never restarted over the `damage`; the service stops
/// cleanly; what the stream holds, checked strictly ascending.
fn stop_and_read(service: &mut Service, url: &str, damage: &str) -> Vec<u64> {
    let buffer_restarts = service.metric("ingestor_actor_restarts_total{actor=\"buffer\"}");
    assert_eq!(
        buffer_restarts, 0.0,
        "the buffer restarted over a damaged {damage}"
    );
    assert!(service.term(Duration::from_secs(10)).success());
    let seqs = read_stream(url);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "stream not strictly ascending or duplicated"
    );
    seqs
}

/// Batches left on disk by an earlier run, for the configured device.
const BACKLOG: u64 = 3_000;

#[test]
fn damaged_table_block_is_skipped_counted_and_everything_else_flows() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(&url, "");
    let data = plant.dir.path().join("data");
    prefill(&data, 10, BACKLOG, |n| {
        let mut b = Batch::new("press-01", chrono::Utc::now());
        b.values.push(("oil_temp".into(), Value::Float(n as f64)));
        b.values.push(("pad".into(), Value::Str("p".repeat(40))));
        b
    });
    damage_biggest_table(&data.join("spool"));

    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(60),
        "the readable backlog and live batches published",
        || {
            let corrupt = service.metric("ingestor_buffer_corrupt_total");
            corrupt > 0.0
                && service.metric("ingestor_published_total") >= BACKLOG as f64 - corrupt + 20.0
        },
    );
    let corrupt = service.metric("ingestor_buffer_corrupt_total") as u64;
    let seqs = stop_and_read(&mut service, &url, "block");
    let old: Vec<u64> = seqs.iter().copied().filter(|s| *s <= BACKLOG).collect();
    let skipped: Vec<u64> = (1..=BACKLOG).filter(|s| !old.contains(s)).collect();
    assert!(
        !skipped.is_empty(),
        "the damage hid no batch: the test damaged nothing"
    );
    assert_eq!(
        skipped.len() as u64,
        corrupt,
        "every seq not published is counted as corrupt, and only those"
    );
    assert!(
        skipped.windows(2).all(|w| w[1] == w[0] + 1),
        "the unreadable seqs are one block's range, not scattered: {skipped:?}"
    );
    assert!(
        skipped[0] > 1 && *skipped.last().unwrap() < BACKLOG,
        "batches on both sides of the damage are published"
    );
    assert!(
        seqs.iter().any(|s| *s > BACKLOG),
        "live batches follow the backlog"
    );
    let log = service.log_text();
    assert!(
        log.contains("unreadable"),
        "the skipped range is not logged:\n{log}"
    );
}

/// Batches on disk in tables (a clean stop) and after them in the journal
/// only (a run that then lost power).
const IN_TABLES: u64 = 500;
const IN_JOURNAL: u64 = 500;

fn backlog_batch(n: u64) -> Batch {
    let mut b = Batch::new("press-01", chrono::Utc::now());
    b.values.push(("oil_temp".into(), Value::Float(n as f64)));
    b
}

/// `ingestor spool check` on a copy of `data` (so the service later meets
/// the damage itself): (exit code, readable batches, stdout).
fn check_copy(plant: &Plant, data: &std::path::Path) -> (Option<i32>, u64, String) {
    let copy = plant.dir.path().join("data-copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let config = plant.dir.path().join("copy.toml");
    let text = std::fs::read_to_string(&plant.config).unwrap().replace(
        &format!("\"{}\"", data.display()),
        &format!("\"{}\"", copy.display()),
    );
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["spool", "check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let readable = stdout
        .lines()
        .find_map(|l| l.strip_prefix("readable"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no readable count: {stdout}"));
    (out.status.code(), readable, stdout)
}

/// Damage the journal of a power-cut spool with `damage`, then: the
/// service publishes every readable batch once, in order (1..=readable: the
/// tables and the journal's readable part), logs the range it lost, goes
/// on with live data and never restarts the buffer. Returns `spool check`'s
/// exit code and output on the damaged spool.
fn journal_damage_case(damage: impl FnOnce(&std::path::Path)) -> (Option<i32>, String) {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let plant = Plant::new(&url, "");
    let data = plant.dir.path().join("data");
    prefill(&data, 10, IN_TABLES, backlog_batch);
    spool_rig::prefill_crashed(&data, IN_JOURNAL, |n| backlog_batch(IN_TABLES + n));
    damage(&data.join("spool"));
    let (code, readable, check) = check_copy(&plant, &data);
    assert!(
        (IN_TABLES..=IN_TABLES + IN_JOURNAL).contains(&readable),
        "what was in tables must survive: {check}"
    );

    let mut nats = NatsServer::prepare("n1", port, "");
    nats.launch();
    let mut service = plant.start();
    wait_until(
        Duration::from_secs(60),
        "the readable backlog and live batches published",
        || service.metric("ingestor_published_total") >= readable as f64 + 20.0,
    );
    let seqs = stop_and_read(&mut service, &url, "journal");
    let old: Vec<u64> = seqs
        .iter()
        .copied()
        .filter(|s| *s <= IN_TABLES + IN_JOURNAL)
        .collect();
    assert_eq!(
        old,
        (1..=readable).collect::<Vec<_>>(),
        "every readable batch, once, in order, and nothing else"
    );
    assert!(
        seqs.iter().any(|s| *s > IN_TABLES + IN_JOURNAL),
        "live batches follow the backlog"
    );
    let log = service.log_text();
    if readable < IN_TABLES + IN_JOURNAL {
        let from = format!("seqs {}..=", readable + 1);
        assert!(
            log.contains(&from),
            "the lost range ({from}) is not logged:\n{log}"
        );
    }
    drop(nats);
    (code, check)
}

#[test]
fn garbled_journal_after_a_power_cut_is_set_aside_and_everything_readable_flows() {
    // Inside a record of the journal-only part: fjall's checksum fails and
    // it refuses the journal (garbage over a batch marker it cuts off itself).
    let (code, check) = journal_damage_case(|spool| {
        spool_rig::garble_journal(spool, 800, 8);
    });
    assert_eq!(
        code,
        Some(1),
        "spool check must report the journal: {check}"
    );
    assert!(check.contains("could not be replayed"), "{check}");
}

#[test]
fn journal_cut_short_at_random_points_keeps_what_it_holds_in_order() {
    let seed: u64 = std::env::var("JOURNAL_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("JOURNAL_CUT_SEED={seed}");
    let mut x = seed | 1;
    for _ in 0..3 {
        // xorshift: a cut anywhere in the journal's written part
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let permille = (x % 1000) as usize;
        eprintln!("cutting the journal at {permille}‰");
        let (code, check) = journal_damage_case(|spool| spool_rig::cut_journal(spool, permille));
        eprintln!("spool check: exit {code:?}\n{check}");
    }
}

//! `ingestor spool stats|check` on a real spool, offline.

mod spool_rig;

use std::process::Command;

use ingestor_actors::buffer::{Spool, Store};
use ingestor_actors::settings::BufferSettings;
use ingestor_actors::{Batch, Value};
use spool_rig::{damage_biggest_table, garble_journal, prefill, prefill_crashed};

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("ingestor.toml");
    let text = format!(
        "[service]\nid = \"t\"\ndata_dir = \"{}\"\n\n[[devices]]\nid = \"d\"\naddress = \"127.0.0.1:5020\"\n\n[[devices.tags]]\nname = \"x\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn ingestor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn spool_stats_and_check_report_backlog_and_set_aside_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let data = tmp.path().join("data");
    prefill(&data, 2, 5, |n| {
        let mut b = Batch::new("d", chrono::Utc::now());
        b.values.push(("x".into(), Value::UInt(n)));
        b
    });
    let cfg = cfg.to_str().unwrap();
    let (code, out, err) = ingestor(&["spool", "stats", "-c", cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("batches       5"), "{out}");
    assert!(out.contains("oldest        seq 1 "), "{out}");
    assert!(out.contains("newest        seq 5 "), "{out}");
    // Offline: it only looks, it makes no installation.
    assert!(out.contains("installation  none yet"), "{out}");
    assert!(!data.join("installation").exists());

    {
        let (spool, _) = Spool::open(&data).unwrap();
        let mut v = spool
            .raw_batches()
            .unwrap()
            .get(3u64.to_be_bytes())
            .unwrap()
            .unwrap()
            .to_vec();
        let last = v.len() - 1;
        v[last] ^= 0x01;
        spool
            .raw_batches()
            .unwrap()
            .insert(3u64.to_be_bytes(), v)
            .unwrap();
    }
    let (code, out, _) = ingestor(&["spool", "check", "-c", cfg]);
    assert_eq!(code, 1, "damage must make check exit 1: {out}");
    assert!(out.contains("set aside     seq 3"), "{out}");
    assert!(out.contains("readable      4"), "{out}");
    let (code, out, _) = ingestor(&["spool", "check", "-c", cfg]);
    assert_eq!(code, 0, "second check finds the spool clean: {out}");
    assert!(
        out.contains("1 in all"),
        "quarantine keeps the record: {out}"
    );

    // The offline look did not make the next start think it crashed.
    let (_, report) = Store::open(&data, BufferSettings::default()).unwrap();
    assert_eq!(report.skipped, None);
    assert_eq!(report.next_seq, 6);
}

#[test]
fn spool_stats_refuses_while_the_data_dir_is_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let _held = Store::open(&tmp.path().join("data"), BufferSettings::default()).unwrap();
    let (code, _, err) = ingestor(&["spool", "stats", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("in use by another ingestor"), "{err}");
}

/// Every file under `dir` with its bytes, for "nothing changed" checks.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "ingestor.lock") {
                let mut bytes = std::fs::read(&p).unwrap();
                // fjall pre-allocates its journal on open (a sparse tail of
                // zeros): its length is not content.
                if p.extension().is_some_and(|e| e == "jnl") {
                    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                    bytes.truncate(end);
                }
                out.push((p.clone(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn spool_check_finds_a_damaged_table_block_and_stats_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let data = tmp.path().join("data");
    prefill(&data, 10, 3000, |n| {
        let mut b = Batch::new("d", chrono::Utc::now());
        b.values.push(("x".into(), Value::UInt(n)));
        b.values.push(("pad".into(), Value::Str("p".repeat(40))));
        b
    });
    damage_biggest_table(&data.join("spool"));

    let cfg = cfg.to_str().unwrap();
    let before = snapshot(&data);
    let (code, out, err) = ingestor(&["spool", "stats", "-c", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    let after = snapshot(&data);
    let changed: Vec<_> = after
        .iter()
        .filter(|f| !before.contains(f))
        .map(|(p, _)| p.clone())
        .collect();
    assert!(changed.is_empty(), "spool stats changed {changed:?}");
    let (code, out, err) = ingestor(&["spool", "check", "-c", cfg]);
    assert_eq!(code, 1, "damage must make check exit 1: {out}{err}");
    assert!(out.contains("unreadable    seqs "), "{out}");
    let readable: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("readable"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(readable > 2000 && readable < 3000, "{out}");
}

/// Every entry under `dir`, directories included: name, size, mtime and
/// bytes, exactly as they are (nothing left out, nothing trimmed).
fn exact_snapshot(
    dir: &std::path::Path,
) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::metadata(&p).unwrap();
            let bytes = if meta.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.push((p, meta.len(), meta.modified().unwrap(), bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn spool_stats_leaves_a_damaged_journal_and_the_data_dir_exactly_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let data = tmp.path().join("data");
    prefill(&data, 10, 200, |n| {
        let mut b = Batch::new("d", chrono::Utc::now());
        b.values.push(("x".into(), Value::UInt(n)));
        b
    });
    prefill_crashed(&data, 300, |n| {
        let mut b = Batch::new("d", chrono::Utc::now());
        b.values.push(("x".into(), Value::UInt(200 + n)));
        b.values.push(("pad".into(), Value::Str("p".repeat(40))));
        b
    });
    // Over a record of the journal: fjall refuses to replay it.
    let journal = garble_journal(&data.join("spool"), 800, 8);
    // mtimes of what is left untouched must not be "now" for the test to see a touch.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let cfg = cfg.to_str().unwrap();
    let before = exact_snapshot(tmp.path());
    let (code, out, err) = ingestor(&["spool", "stats", "-c", cfg]);
    let after = exact_snapshot(tmp.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(journal.exists(), "the journal was moved: {out}");
    let differ: Vec<_> = after
        .iter()
        .filter(|f| !before.contains(f))
        .chain(before.iter().filter(|f| !after.contains(f)))
        .map(|(p, len, _, _)| (p.clone(), *len))
        .collect();
    assert!(differ.is_empty(), "spool stats changed {differ:?}\n{out}");
    assert!(
        out.contains("cannot be replayed"),
        "the damage is reported: {out}"
    );
    assert!(out.contains("batches       "), "{out}");
}

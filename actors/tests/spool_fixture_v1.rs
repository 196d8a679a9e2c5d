//! Spools written by record format version 1 must stay readable forever:
//! `tests/fixtures/spool-v1` was written once by this build and is committed.
//! Regenerate only for a *new* format version, never over an old one:
//! `INGESTOR_WRITE_FIXTURE=1 cargo test -p ingestor-actors --test spool_fixture_v1 -- --ignored`

use std::path::{Path, PathBuf};

use ingestor_actors::buffer::Store;
use ingestor_actors::settings::BufferSettings;
use ingestor_actors::{Batch, Value};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spool-v1")
}

fn expected() -> Vec<Batch> {
    let ts = 1_795_774_829_123_456; // 2026-11-27T10:20:29.123456Z
    (1..=3u64)
        .map(|seq| Batch {
            seq,
            device: "press-01".into(),
            ts_micros: ts + seq as i64 * 1_000_000,
            values: vec![
                ("oil_temp".into(), Value::Float(71.3 + seq as f64)),
                ("running".into(), Value::Bool(seq % 2 == 1)),
                ("recipe".into(), Value::Str("PX-200".into())),
                ("count".into(), Value::UInt(u64::MAX - seq)),
                ("delta".into(), Value::Int(-(seq as i64))),
            ],
            errors: vec![(
                "pressure".into(),
                "exception 0x02 illegal data address".into(),
            )],
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn spool_written_by_format_v1_still_reads() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let (mut store, report) = Store::open(tmp.path(), BufferSettings::default()).unwrap();
    assert_eq!(report.skipped, None, "fixture was closed cleanly");
    let got = store.take(10).unwrap();
    assert_eq!(got, expected());
    assert_eq!(
        store.push(expected()[0].clone()).unwrap(),
        4,
        "seq continues after the fixture's"
    );
}

#[test]
#[ignore = "writes the committed fixture; run by hand for a new format version only"]
fn write_fixture() {
    if std::env::var_os("INGESTOR_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture();
    assert!(!dir.exists(), "refusing to overwrite {}", dir.display());
    let (mut store, _) = Store::open(
        &dir,
        BufferSettings {
            memory_batches: 1,
            ..Default::default()
        },
    )
    .unwrap();
    for b in expected() {
        store.push(b).unwrap();
    }
    store.close().unwrap();
    std::fs::remove_file(dir.join("ingestor.lock")).unwrap();
}

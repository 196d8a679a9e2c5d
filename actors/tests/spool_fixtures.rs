//! Spools written by every record format version must stay readable
//! forever, and publish exactly what was polled: `tests/fixtures/spool-v1`
//! (rkyv records), `tests/fixtures/spool-v2` (encoded payloads) and
//! `tests/fixtures/spool-v3` (compact bodies) were each written once by the
//! build that wrote that format, and are committed.
//! Write one only for a *new* format version, never over an old one:
//! `INGESTOR_WRITE_FIXTURE=1 cargo test -p ingestor-actors --test spool_fixtures -- --ignored`
//! (writes `spool-v<current version>` if it does not exist).

#[path = "fixtures/batches.rs"]
mod batches;

use batches::{copy_dir, expected, fixture};
use ingestor_actors::buffer::{record, Store};
use ingestor_actors::settings::BufferSettings;
use ingestor_actors::{Batch, EncodedBatch};

/// The batches taken from a fixture are the ones written, and publish as
/// the JSON the build that wrote them would have published.
fn assert_publishes_expected(got: &[EncodedBatch], want: &[Batch]) {
    assert_eq!(got.len(), want.len(), "batches in the fixture");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.seq, w.seq);
        assert_eq!(g.device(), w.device);
        assert_eq!(g.ts_micros(), w.ts_micros);
        assert_eq!(
            String::from_utf8_lossy(&g.payload()),
            String::from_utf8_lossy(&w.to_json()),
            "payload of seq {}",
            w.seq
        );
    }
}

fn reads_and_continues(version: u8) {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(version), tmp.path());
    let (mut store, report) = Store::open(tmp.path(), BufferSettings::default()).unwrap();
    assert_eq!(report.skipped, None, "fixture was closed cleanly");
    assert_publishes_expected(&store.take(10).unwrap(), &expected());
    // A new batch joins the old records in this build's format; after a
    // restart the spool holds both, and both read.
    let mut fourth = expected()[0].clone();
    assert_eq!(
        store.push(fourth.clone()).unwrap(),
        4,
        "seq continues after the fixture's"
    );
    store.close().unwrap();
    drop(store);
    let (mut store, _) = Store::open(tmp.path(), BufferSettings::default()).unwrap();
    fourth.seq = 4;
    let mut want = expected();
    want.push(fourth);
    assert_publishes_expected(&store.take(10).unwrap(), &want);
}

#[test]
fn spool_written_by_format_v1_still_reads() {
    reads_and_continues(1);
}

#[test]
fn spool_written_by_format_v2_still_reads() {
    reads_and_continues(2);
}

#[test]
fn spool_written_by_format_v3_still_reads() {
    reads_and_continues(3);
}

#[test]
#[ignore = "writes a committed fixture; run by hand for a new format version only"]
fn write_fixture() {
    if std::env::var_os("INGESTOR_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture(record::FORMAT_VERSION);
    assert!(!dir.exists(), "refusing to overwrite {}", dir.display());
    for batch in expected() {
        let written = record::encode(&EncodedBatch::encode(&batch));
        assert_eq!(written[0], record::FORMAT_VERSION, "the format named");
    }
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

//! `ingestor spool stats|check` on a real spool, offline.

use std::process::Command;

use ingestor_actors::buffer::{Spool, Store};
use ingestor_actors::settings::BufferSettings;
use ingestor_actors::{Batch, Value};

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
    {
        let (mut store, _) = Store::open(
            &data,
            BufferSettings {
                memory_batches: 2,
                ..Default::default()
            },
        )
        .unwrap();
        for n in 1..=5u64 {
            let mut b = Batch::new("d", chrono::Utc::now());
            b.values.push(("x".into(), Value::UInt(n)));
            store.push(b).unwrap();
        }
        store.close().unwrap();
    }
    let cfg = cfg.to_str().unwrap();
    let (code, out, err) = ingestor(&["spool", "stats", "-c", cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("batches       5"), "{out}");
    assert!(out.contains("oldest        seq 1 "), "{out}");
    assert!(out.contains("newest        seq 5 "), "{out}");

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
        spool.raw_batches().unwrap().insert(3u64.to_be_bytes(), v).unwrap();
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

//! `ingestor write` against `ingestor simulate` (issue 21): a writable tag
//! is written, read back and printed, exit 0, and `ingestor poll` then
//! reads the written value; a refusal says its code, exits 1 and writes
//! nothing; with `[writes] enabled = false` every write is `disabled`.

mod simulate_rig;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simulate_rig::{free_port, Simulator, BIN};

fn config(dir: &Path, port: u16, enabled: bool) -> PathBuf {
    let path = dir.join(format!("plant-{enabled}.toml"));
    let text = format!(
        r#"[service]
id = "cli-test"
data_dir = "{data}"

[writes]
enabled = {enabled}

[[devices]]
id = "press-01"
address = "127.0.0.1:{port}"

[[devices.tags]]
name = "temp_sp"
register = "holding"
address = 10
type = "i16"
scale = 0.1
writable = true
min = -20.0
max = 80.0

[[devices.tags]]
name = "pump_on"
register = "coil"
address = 2
type = "bool"
writable = true

[[devices.tags]]
name = "temp"
register = "input"
address = 0
type = "i16"
scale = 0.1
"#,
        data = dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn ingestor(args: &[&str], config: &Path) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (status.code(), text(stdout), text(stderr))
}

/// The VALUE column of `ingestor poll` for `tag`.
fn polled(config: &Path, tag: &str) -> String {
    let (_, out, _) = ingestor(&["poll"], config);
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.get(1) == Some(&tag))
        .and_then(|cols| cols.get(2).map(|v| v.to_string()))
        .unwrap_or_else(|| panic!("{tag} not in poll output:\n{out}"))
}

#[test]
fn write_prints_the_value_read_back_and_refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let on = config(dir.path(), port, true);
    let off = config(dir.path(), port, false);
    let _sim = Simulator::start(&on, port, &[]);
    let write = |config: &Path, tag: &str, value: &str| {
        ingestor(&["write", "--device", "press-01", tag, value], config)
    };

    let (code, out, err) = write(&on, "temp_sp", "-12.5");
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), "press-01 temp_sp = -12.5 (read back)");
    assert_eq!(polled(&on, "temp_sp"), "-12.5");
    let (code, out, _) = write(&on, "pump_on", "true");
    assert_eq!(
        (code, out.trim()),
        (Some(0), "press-01 pump_on = true (read back)")
    );
    assert_eq!(polled(&on, "pump_on"), "true");

    for (config, tag, value, said) in [
        (&on, "temp_sp", "80.5", "refused (out_of_range)"),
        (&on, "temp_sp", "21.55", "refused (out_of_range)"),
        (&on, "temp", "1", "refused (not_writable)"),
        (&on, "temp_sp", "warm", "refused (bad_request)"),
        (&off, "temp_sp", "30", "refused (disabled)"),
    ] {
        let (code, out, err) = write(config, tag, value);
        assert_eq!(code, Some(1), "{tag} {value}: {out}{err}");
        assert!(err.contains(said), "{tag} {value}: {err}");
    }
    assert_eq!(
        polled(&on, "temp_sp"),
        "-12.5",
        "a refused write changed the register"
    );

    let (_, out, _) = ingestor(&["poll"], &on);
    let write_column = |tag: &str| {
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|c| c.get(1) == Some(&tag))
            .and_then(|c| c.get(3).map(|v| v.to_string()))
    };
    assert_eq!(
        write_column("temp_sp").as_deref(),
        Some("-20..=80"),
        "{out}"
    );
    assert_eq!(write_column("pump_on").as_deref(), Some("yes"), "{out}");
    assert_eq!(write_column("temp").as_deref(), Some("-"), "{out}");
}

#[test]
fn check_shows_writable_tags_and_whether_writes_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let on = config(dir.path(), free_port(), true);
    let off = config(dir.path(), free_port(), false);
    let (code, out, err) = ingestor(&["check", "--offline"], &on);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("writes    enabled, requests on setpoint.cli-test.<device> for press-01"),
        "{out}"
    );
    let line = |out: &str, tag: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(tag))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line(&out, "temp_sp").ends_with("writable -20..=80"),
        "{out}"
    );
    assert!(line(&out, "pump_on").ends_with("writable"), "{out}");
    assert!(!line(&out, "temp ").contains("writable"), "{out}");
    let (_, out, _) = ingestor(&["check", "--offline"], &off);
    assert!(out.contains("writes    disabled"), "{out}");
}

//! `ingestor simulate` speaks RTU frames over TCP when the config's devices
//! say `framing = "rtu"` (or with `--framing rtu`), so such a config can be
//! commissioned with `ingestor poll` without a serial gateway. The config
//! also uses the poll-group and report-by-exception keys, which `simulate`
//! and `poll` accept (poll shows every value, groups read one by one).

mod simulate_rig;

use std::path::Path;
use std::process::Command;

use simulate_rig::{free_port, Simulator, BIN};

fn config(dir: &Path, port: u16, framing: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{framing}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[service]
id = "test"

[[devices]]
id = "gw-meter"
address = "127.0.0.1:{port}"
framing = "{framing}"
unit = 3
poll_interval = "1s"

[[devices.tags]]
name = "flow"
register = "input"
address = 12
type = "u16"
poll_interval = "100ms"
deadband = 2.0
max_silence = "10s"

[[devices.tags]]
name = "energy"
register = "holding"
address = 100
type = "u32"
poll_interval = "1m"
"#
        ),
    )
    .unwrap();
    path
}

fn poll(config: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["poll", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), text)
}

fn value_of(table: &str, tag: &str) -> Option<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(tag))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
}

#[test]
fn rtu_config_is_served_in_rtu_frames_and_polled_group_by_group() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let rtu = config(dir.path(), port, "rtu");
    let _sim = Simulator::start(&rtu, port, &[]);
    let (code, table) = poll(&rtu);
    assert_eq!(code, Some(0), "{table}");
    // flow: 12 + 12/10 = 13.2, a u16 holds 13; energy: 100 + 0/10.
    assert_eq!(value_of(&table, "flow").as_deref(), Some("13"), "{table}");
    assert_eq!(
        value_of(&table, "energy").as_deref(),
        Some("100"),
        "{table}"
    );
}

#[test]
fn framing_flag_overrides_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tcp = config(dir.path(), port, "tcp");
    let _sim = Simulator::start(&tcp, port, &["--framing".as_ref(), "rtu".as_ref()]);
    // A TCP master gets no MBAP answer from an RTU slave: every tag fails.
    let (code, table) = poll(&tcp);
    assert_eq!(code, Some(1), "{table}");
    assert!(table.contains("0 of 2 tags read"), "{table}");
    // The same slave read with RTU framing answers.
    let rtu = config(dir.path(), port, "rtu");
    let (code, table) = poll(&rtu);
    assert_eq!(code, Some(0), "{table}");
}

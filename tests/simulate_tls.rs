//! `ingestor simulate --tls-cert … --tls-key … --tls-client-ca …` serves
//! Modbus/TCP Security, and `ingestor poll` reads it over TLS with a client
//! certificate, getting the simulator's documented values; without a
//! client certificate, with one the simulator's client CA did not sign, or
//! trusting another CA, poll names the reason in its table and its log and
//! exits 1. Certificates are made in the test.

#[path = "../actors/tests/tls_rig/certs.rs"]
mod certs;
mod simulate_rig;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use certs::{Ca, CertFiles};
use simulate_rig::{free_port, Simulator, BIN};

/// A config with one TLS meter at `port`; `tls` is its TLS keys.
fn config(dir: &Path, name: &str, port: u16, tls: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[service]
id = "test"

[[devices]]
id = "meter-tls"
address = "127.0.0.1:{port}"
timeout = "2s"
{tls}

[[devices.tags]]
name = "current_l1"
register = "input"
address = 12
type = "f32"

[[devices.tags]]
name = "energy_import"
register = "holding"
address = 105
type = "u32"
scale = 0.1

[[devices.tags]]
name = "board_temp"
register = "holding"
address = 7
type = "i16"
scale = 0.1

[[devices.tags]]
name = "serial_no"
register = "holding"
address = 200
type = "string"
length = 8
"#
        ),
    )
    .unwrap();
    path
}

fn tls_keys(ca: &Path, client: Option<&CertFiles>) -> String {
    let mut keys = format!("tls = true\ntls_ca_file = {ca:?}\n");
    if let Some(c) = client {
        keys.push_str(&format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            c.cert, c.key
        ));
    }
    keys
}

/// `ingestor poll` → (exit code, stdout, stderr).
fn poll(config: &Path) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(["poll", "-c"])
        .arg(config)
        .output()
        .unwrap();
    (
        status.code(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The value column of `tag`'s row.
fn value<'a>(table: &'a str, tag: &str) -> &'a str {
    table
        .lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 3 && cols[1] == tag).then_some(cols[2])
        })
        .unwrap_or_else(|| panic!("no row for {tag}:\n{table}"))
}

#[test]
fn poll_reads_the_tls_simulator_and_names_each_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let plant = Ca::new(dir.path(), "plant");
    let stranger = Ca::new(dir.path(), "stranger");
    let server = plant.server("simulator");
    let client = plant.client("ingestor");
    let stranger_client = stranger.client("intruder");
    let port = free_port();
    let good = config(
        dir.path(),
        "good",
        port,
        &tls_keys(&plant.pem, Some(&client)),
    );
    let _sim = Simulator::start(
        &good,
        port,
        &[
            "--tls-cert".as_ref(),
            server.cert.as_os_str(),
            "--tls-key".as_ref(),
            server.key.as_os_str(),
            "--tls-client-ca".as_ref(),
            plant.pem.as_os_str(),
        ],
    );

    let (code, table, log) = poll(&good);
    assert_eq!(code, Some(0), "{table}\n{log}");
    // The simulator's documented values: address + (address mod 100)/10.
    assert_eq!(value(&table, "current_l1"), "13.2", "{table}");
    assert_eq!(value(&table, "energy_import"), "105.5", "{table}");
    assert_eq!(value(&table, "board_temp"), "-7.7", "{table}");
    assert_eq!(value(&table, "serial_no"), "\"SIM-200-00\"", "{table}");
    assert!(table.contains("4 of 4 tags read"), "{table}");

    let refusals = [
        (
            tls_keys(&plant.pem, None),
            "the device demands a client certificate",
        ),
        (
            tls_keys(&stranger.pem, Some(&client)),
            "not signed by a CA in tls_ca_file",
        ),
        (
            tls_keys(&plant.pem, Some(&stranger_client)),
            "the device refused our client certificate",
        ),
    ];
    for (i, (keys, reason)) in refusals.iter().enumerate() {
        let refused = config(dir.path(), &format!("refused-{i}"), port, keys);
        let (code, table, log) = poll(&refused);
        assert_eq!(code, Some(1), "{table}");
        assert_eq!(value(&table, "current_l1"), "-", "{table}");
        assert!(
            table.contains(&format!("error: TLS to 127.0.0.1:{port} failed: "))
                && table.contains(reason),
            "the table should say {reason:?}:\n{table}"
        );
        assert!(table.contains("0 of 4 tags read"), "{table}");
        assert!(
            log.contains(reason),
            "the log should say {reason:?}:\n{log}"
        );
    }
}

#[test]
fn simulate_refuses_an_unusable_tls_key_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let plant = Ca::new(dir.path(), "plant");
    let server = plant.server("simulator");
    let other = plant.server("other");
    let cfg = config(dir.path(), "sim", free_port(), "");
    let out = Command::new(BIN)
        .args(["simulate", "-c"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--tls-cert")
        .arg(&server.cert)
        .arg("--tls-key")
        .arg(&other.key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--tls-key") && stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
}

//! An independent master cross-checks the simulator and the poller: Debian's
//! `mbpoll` reads the raw words `ingestor simulate` serves, this test decodes
//! them by hand, and `ingestor poll` must print the same values.

mod simulate_rig;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use simulate_rig::{free_port, Simulator, BIN};

fn meter_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("meter.toml");
    std::fs::write(
        &path,
        format!(
            r#"[service]
id = "test"

[[devices]]
id = "meter-01"
address = "127.0.0.1:{port}"
unit = 1

[[devices.tags]]
name = "voltage_l1"
register = "input"
address = 0
type = "f32"
order = "CDAB"
unit = "V"

[[devices.tags]]
name = "current_l1"
register = "input"
address = 6
type = "f32"
order = "CDAB"
unit = "A"

[[devices.tags]]
name = "energy_import"
register = "holding"
address = 100
type = "u32"
scale = 0.1
unit = "kWh"

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

/// `mbpoll` once, PDU (0-based) addresses; returns address → word.
fn mbpoll(port: u16, table: &str, start: u16, count: u16) -> HashMap<u16, u16> {
    let out = Command::new("mbpoll")
        .args([
            "-m",
            "tcp",
            "-p",
            &port.to_string(),
            "-a",
            "1",
            "-t",
            table,
            "-0",
            "-1",
        ])
        .args([
            "-r",
            &start.to_string(),
            "-c",
            &count.to_string(),
            "127.0.0.1",
        ])
        .output()
        .expect("mbpoll is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "mbpoll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let words: HashMap<u16, u16> = text
        .lines()
        .filter_map(|l| {
            let (addr, value) = l.trim().strip_prefix('[')?.split_once("]:")?;
            let value = value.trim();
            let word = match value.strip_prefix("0x") {
                Some(hex) => u16::from_str_radix(hex, 16).ok()?,
                None => value.parse::<i32>().ok()? as u16,
            };
            Some((addr.parse().ok()?, word))
        })
        .collect();
    assert_eq!(words.len(), usize::from(count), "mbpoll output: {text}");
    words
}

/// `ingestor poll` → (exit code, tag → printed value, full stdout).
fn poll(config: &Path) -> (Option<i32>, HashMap<String, String>, String) {
    let Output { status, stdout, .. } = Command::new(BIN)
        .args(["poll", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8(stdout).unwrap();
    let values = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 3).then(|| (cols[1].to_string(), cols[2].to_string()))
        })
        .collect();
    (status.code(), values, text)
}

#[test]
fn mbpoll_reads_the_words_that_ingestor_poll_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = meter_config(dir.path(), port);
    let sim = Simulator::start(&config, port, &[]);

    let input = mbpoll(port, "3:hex", 0, 8);
    let holding = mbpoll(port, "4:hex", 100, 2);
    let serial = mbpoll(port, "4:hex", 200, 8);

    // By hand, as a vendor manual says: CDAB = low word first.
    let f32_cdab =
        |a: u16| f32::from_bits((u32::from(input[&(a + 1)]) << 16) | u32::from(input[&a]));
    let voltage = f32_cdab(0);
    let current = f32_cdab(6);
    let energy = f64::from((u32::from(holding[&100]) << 16) | u32::from(holding[&101])) / 10.0;
    let serial_no: String = (200..208)
        .flat_map(|a| serial[&a].to_be_bytes())
        .filter(|&b| b != 0)
        .map(char::from)
        .collect();
    // The simulator's documented function at the frozen time: address + p/10, p = address mod 100.
    assert_eq!(voltage, 0.0);
    assert_eq!(current, 6.6);
    assert_eq!(energy, 100.0);
    assert_eq!(serial_no, "SIM-200-00");

    let (code, values, text) = poll(&config);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        values["voltage_l1"].parse::<f32>().unwrap(),
        voltage,
        "{text}"
    );
    assert_eq!(
        values["current_l1"].parse::<f32>().unwrap(),
        current,
        "{text}"
    );
    assert_eq!(
        values["energy_import"].parse::<f64>().unwrap(),
        energy,
        "{text}"
    );
    assert_eq!(values["serial_no"], format!("{serial_no:?}"), "{text}");
    assert!(text.contains("4 of 4 tags read"), "{text}");

    assert_eq!(sim.terminate(), Some(0), "simulate exits 0 on SIGTERM");
}

#[test]
fn poll_exits_1_and_names_the_error_when_a_device_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let config = meter_config(dir.path(), free_port()); // nothing listens there
    let (code, values, text) = poll(&config);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(values["voltage_l1"], "-");
    assert!(
        text.contains("error: cannot connect to 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("0 of 4 tags read"), "{text}");
}

#[test]
fn poll_of_an_unknown_device_says_which_devices_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = meter_config(dir.path(), free_port());
    let out = Command::new(BIN)
        .args(["poll", "--device", "nope", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("devices: meter-01"));
}

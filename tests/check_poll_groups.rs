//! `ingestor check` prints the request plan per poll group, and the demo
//! plant's meter uses poll groups and a deadband with heartbeat.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ingestor");

#[test]
fn check_prints_the_demo_meters_three_poll_groups_with_their_requests() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let out = Command::new(BIN)
        .args(["check", "--offline", "-c", demo])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let plan: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("every 250ms: 1 request per poll"))
        .take(6)
        .map(str::trim)
        .collect();
    assert_eq!(
        plan,
        [
            "every 250ms: 1 request per poll",
            "fc04 read_input_registers   start     0  count    6  tags: voltage_l1, voltage_l2, voltage_l3",
            "every 1s: 1 request per poll",
            "fc04 read_input_registers   start     6  count    6  tags: current_l1, current_l2, current_l3",
            "every 10s: 1 request per poll",
            "fc04 read_input_registers   start   100  count    2  tags: energy_kwh",
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "voltage_l1           input 0  f32 CDAB [V] every 250ms deadband 0.5 max_silence 10s"
        ),
        "{text}"
    );
}

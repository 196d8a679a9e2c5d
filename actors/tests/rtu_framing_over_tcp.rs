//! RTU: frames with CRC over a TCP socket (cheap serial gateways), and over
//! a real serial device (a pseudo-terminal bridged by `socat` to the same
//! RTU slave), both read against the simulator's predictable values.

mod poller_rig;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::decode::{decode_registers, encode};
use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::settings::DeviceSettings;
use ingestor_actors::simulator::{simulated_value, Simulator};
use ingestor_actors::Value;
use poller_rig::{device, listener};

const T: u64 = 1_800_000_000;

fn tags() -> &'static str {
    "[[tags]]\nname = \"power\"\nregister = \"holding\"\naddress = 100\ntype = \"f32\"\norder = \"CDAB\"\n\
     [[tags]]\nname = \"energy\"\nregister = \"holding\"\naddress = 102\ntype = \"u32\"\nscale = 0.1\n\
     [[tags]]\nname = \"model\"\nregister = \"input\"\naddress = 0\ntype = \"string\"\nlength = 8\n\
     [[tags]]\nname = \"alarm\"\nregister = \"coil\"\naddress = 3\ntype = \"bool\"\n"
}

/// What the simulator's documented function says each tag reads at `T`.
fn expected(dev: &DeviceSettings) -> Vec<(String, Value)> {
    dev.tags
        .iter()
        .map(|t| {
            let words = encode(t, &simulated_value(t, T));
            let v = if t.register.is_bits() {
                Value::Bool(words[0] != 0)
            } else {
                decode_registers(t, &words).unwrap()
            };
            (t.name.clone(), v)
        })
        .collect()
}

#[tokio::test]
async fn rtu_framing_over_tcp_reads_the_simulated_values() {
    let (l, addr) = listener().await;
    let dev = device(&format!(
        "id = \"rtu\"\naddress = \"{addr}\"\nframing = \"rtu\"\nunit = 7\n{}",
        tags()
    ));
    let sim = Arc::new(Simulator::new(std::slice::from_ref(&dev)).frozen_at(T));
    tokio::spawn(sim.serve_rtu_over_tcp(l));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let outcome = reader.poll().await;
    assert_eq!(outcome.result, PollResult::Ok, "{outcome:?}");
    assert_eq!(outcome.values, expected(&dev));
    assert_eq!(outcome.values[2].1, Value::Str("SIM-0-00".into()));
}

struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn rtu_over_a_serial_pty_reads_the_simulated_values() {
    if Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!(
            "socat not installed: serial RTU over a pty not tested (scripts/test.sh installs it)"
        );
        return;
    }
    let (l, addr) = listener().await;
    let dir = tempfile::tempdir().unwrap();
    let tty = dir.path().join("ttyV0");
    let dev = device(&format!(
        "id = \"serial\"\nserial = \"{}\"\nbaud_rate = 9600\nparity = \"even\"\nunit = 7\ntimeout = \"1s\"\n{}",
        tty.display(),
        tags()
    ));
    let sim = Arc::new(Simulator::new(std::slice::from_ref(&dev)).frozen_at(T));
    tokio::spawn(sim.serve_rtu_over_tcp(l));
    let _socat = Socat(
        Command::new("socat")
            .arg(format!("pty,link={},raw,echo=0", tty.display()))
            .arg(format!("tcp:{addr}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !tty.exists() {
        assert!(std::time::Instant::now() < deadline, "socat made no pty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let outcome = reader.poll().await;
    assert_eq!(outcome.result, PollResult::Ok, "{outcome:?}");
    assert_eq!(outcome.values, expected(&dev));
}

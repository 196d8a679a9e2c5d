//! Modbus/TCP Security against a peer nobody here wrote: pymodbus 3.11's
//! TLS server, with a CA, server and client certificates made in the test.
//! Over TLS the vendor's numbers decode exactly as over plain TCP; a wrong
//! CA, an expired certificate, a certificate for another name and a missing
//! client certificate each fail with their reason, back off, and cost a
//! plain-TCP device polled beside them no poll.

mod poller_rig;
mod tls_rig;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use ingestor_actors::poller::{poll_groups, DeviceReader, Links};
use ingestor_actors::settings::DeviceSettings;
use ingestor_actors::{Batch, Value};
use poller_rig::{collecting_buffer, device, spawn_pollers};
use tls_rig::certs::{Ca, CertFiles, Role};
use tls_rig::{free_port, PeerServer, Pymodbus};

/// An energy meter's registers as its manual lists them (0-based).
const INPUT: [(u16, u16); 6] = [
    (0, 0x4366), // 30001 voltage L1, f32 ABCD: 230.1 V
    (1, 0x199A),
    (6, 0x40A8), // 30007 current L1, f32 ABCD: 5.25 A
    (7, 0x0000),
    (342, 0x4640), // 30343 total import energy, f32 ABCD: 12345.5 kWh
    (343, 0xE600),
];
const HOLDING: [(u16, u16); 7] = [
    (10, 0x81CD), // 40011 operating hours, u32 CDAB, 0.1 h: 9876.5 h
    (11, 0x0001),
    (20, 0xFF83), // 40021 board temperature, i16, 0.1 degC: -12.5
    (30, 0x5344), // 40031 model, 4 registers of text: "SDM630"
    (31, 0x4D36),
    (32, 0x3330),
    (33, 0x0000),
];

fn vendor_values() -> Vec<(String, Value)> {
    [
        ("voltage_l1", Value::Float(230.1)),
        ("current_l1", Value::Float(5.25)),
        ("energy_import", Value::Float(12345.5)),
        ("hours", Value::Float(9876.5)),
        ("board_temp", Value::Float(-12.5)),
        ("model", Value::Str("SDM630".into())),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect()
}

const TAGS: &str = "\
[[tags]]\nname = \"voltage_l1\"\nregister = \"input\"\naddress = 0\ntype = \"f32\"\n\
[[tags]]\nname = \"current_l1\"\nregister = \"input\"\naddress = 6\ntype = \"f32\"\n\
[[tags]]\nname = \"energy_import\"\nregister = \"input\"\naddress = 342\ntype = \"f32\"\n\
[[tags]]\nname = \"hours\"\nregister = \"holding\"\naddress = 10\ntype = \"u32\"\norder = \"CDAB\"\nscale = 0.1\n\
[[tags]]\nname = \"board_temp\"\nregister = \"holding\"\naddress = 20\ntype = \"i16\"\nscale = 0.1\n\
[[tags]]\nname = \"model\"\nregister = \"holding\"\naddress = 30\ntype = \"string\"\nlength = 4\n";

/// A meter at `port`; `tls` holds the TLS keys (empty for plain TCP).
fn meter(id: &str, port: u16, tls: &str, interval_ms: u64) -> DeviceSettings {
    device(&format!(
        "id = \"{id}\"\naddress = \"127.0.0.1:{port}\"\npoll_interval = \"{interval_ms}ms\"\n\
         timeout = \"2s\"\nretries = 1\n{tls}\n{TAGS}"
    ))
}

fn tls_keys(ca: &Ca, client: Option<&CertFiles>, server_name: Option<&str>) -> String {
    let mut keys = format!("tls = true\ntls_ca_file = {:?}\n", ca.pem);
    if let Some(c) = client {
        keys.push_str(&format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            c.cert, c.key
        ));
    }
    if let Some(name) = server_name {
        keys.push_str(&format!("tls_server_name = {name:?}\n"));
    }
    keys
}

/// Every tag of `device` once, as `ingestor poll` reads it.
async fn read_once(
    device: &DeviceSettings,
    links: &mut Links,
) -> (Vec<(String, Value)>, Vec<(String, String)>) {
    let link = links.link_for(device).unwrap();
    let (mut values, mut errors) = (Vec::new(), Vec::new());
    for group in poll_groups(device) {
        let outcome = DeviceReader::new(group, link.clone()).poll().await;
        values.extend(outcome.values);
        errors.extend(outcome.errors);
    }
    (values, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_device_reads_the_vendors_values_as_over_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "plant");
    let server = ca.server("meter");
    let client = ca.client("ingestor");
    let (tls_port, plain_port) = (free_port(), free_port());
    let _peer = Pymodbus::start(
        &HOLDING,
        &INPUT,
        &[
            PeerServer::Tls {
                port: tls_port,
                cert: &server,
                client_ca: Some(&ca.pem),
            },
            PeerServer::Plain { port: plain_port },
        ],
    );
    let secure = meter(
        "meter-tls",
        tls_port,
        &tls_keys(&ca, Some(&client), None),
        1000,
    );
    let plain = meter("meter-plain", plain_port, "", 1000);

    let mut links = Links::new();
    let (tls_values, tls_errors) = read_once(&secure, &mut links).await;
    let (plain_values, plain_errors) = read_once(&plain, &mut links).await;
    assert_eq!(tls_errors, vec![], "over TLS");
    assert_eq!(plain_errors, vec![], "over plain TCP");
    assert_eq!(tls_values, vendor_values(), "over TLS");
    assert_eq!(plain_values, tls_values, "plain TCP and TLS read the same");
}

/// Batches per device until `done` says enough, or the deadline.
async fn collect(
    batches: &mut tokio::sync::mpsc::UnboundedReceiver<Batch>,
    done: impl Fn(&HashMap<String, Vec<Batch>>) -> bool,
) -> HashMap<String, Vec<Batch>> {
    let mut seen: HashMap<String, Vec<Batch>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&seen) {
        let batch = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .unwrap_or_else(|_| panic!("batches in time; so far {seen:#?}"))
            .unwrap();
        seen.entry(batch.device.clone()).or_default().push(batch);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tls_failure_says_why_backs_off_and_spares_a_plain_device() {
    const INTERVAL_MS: u64 = 400;
    let dir = tempfile::tempdir().unwrap();
    let plant = Ca::new(dir.path(), "plant");
    let stranger = Ca::new(dir.path(), "stranger");
    let by_stranger = stranger.server("by-stranger");
    let expired = plant.issue("expired", &["127.0.0.1"], Role::Server, true);
    let other_name = plant.issue("other-name", &["meter-99.plant"], Role::Server, false);
    let good = plant.server("good");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let _peer = Pymodbus::start(
        &HOLDING,
        &INPUT,
        &[
            PeerServer::Tls {
                port: ports[0],
                cert: &by_stranger,
                client_ca: None,
            },
            PeerServer::Tls {
                port: ports[1],
                cert: &expired,
                client_ca: None,
            },
            PeerServer::Tls {
                port: ports[2],
                cert: &other_name,
                client_ca: None,
            },
            PeerServer::Tls {
                port: ports[3],
                cert: &good,
                client_ca: Some(&plant.pem),
            },
            PeerServer::Plain { port: ports[4] },
        ],
    );
    let trust_plant = tls_keys(&plant, None, None);
    let failing = [
        (
            meter("wrong-ca", ports[0], &trust_plant, INTERVAL_MS),
            "not signed by a CA in tls_ca_file",
        ),
        (
            meter("expired", ports[1], &trust_plant, INTERVAL_MS),
            "certificate has expired",
        ),
        (
            meter("wrong-name", ports[2], &trust_plant, INTERVAL_MS),
            "not valid for the name \"127.0.0.1\"",
        ),
        (
            meter("no-client-cert", ports[3], &trust_plant, INTERVAL_MS),
            "demands a client certificate",
        ),
    ];
    let plain = meter("plain", ports[4], "", INTERVAL_MS);

    let (buffer, mut batches) = collecting_buffer().await;
    // The wall clock read first: slot k starts no earlier than wall0 + k·interval.
    let wall0_micros = Utc::now().timestamp_micros() + 200_000;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let (_links, pollers) = spawn_pollers(
        &failing
            .iter()
            .map(|(d, _)| d)
            .chain([&plain])
            .collect::<Vec<_>>(),
        &buffer,
        t0,
        Duration::from_secs(2),
    )
    .await;
    // Enough failed polls for the back-off to pass a poll interval.
    let seen = collect(&mut batches, |seen| {
        failing
            .iter()
            .all(|(d, _)| seen.get(&d.id).is_some_and(|b| b.len() >= 5))
    })
    .await;
    for p in pollers {
        p.stop(None);
    }

    for (dev, reason) in &failing {
        let polls = &seen[&dev.id];
        eprintln!("{}: {}", dev.id, polls[0].errors[0].1);
        for batch in polls {
            assert!(batch.values.is_empty(), "{batch:?}");
            assert_eq!(batch.errors.len(), dev.tags.len(), "{batch:?}");
            for (tag, error) in &batch.errors {
                assert!(
                    error.starts_with("TLS to 127.0.0.1:") && error.contains(reason),
                    "{}: {tag}: {error:?} should say {reason:?}",
                    dev.id
                );
            }
        }
        // Backed off: after some failures it no longer polls every slot.
        let gaps: Vec<i64> = polls
            .windows(2)
            .map(|w| (w[1].ts_micros - w[0].ts_micros) / 1000)
            .collect();
        assert!(
            gaps.iter().any(|&g| g >= 2 * INTERVAL_MS as i64),
            "{} kept polling every slot (gaps {gaps:?} ms): no back-off",
            dev.id
        );
    }
    // The plain device beside them: every value, every slot.
    let plain_polls = &seen[&plain.id];
    assert!(plain_polls.len() >= 5, "{plain_polls:?}");
    for (k, batch) in plain_polls.iter().enumerate() {
        assert!(batch.errors.is_empty(), "{batch:?}");
        assert_eq!(batch.values, vendor_values());
        let slot = (batch.ts_micros - wall0_micros) / (INTERVAL_MS as i64 * 1000);
        assert_eq!(
            slot, k as i64,
            "plain poll {k} was not in its slot: {batch:?}"
        );
    }
}

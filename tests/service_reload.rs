//! SIGHUP reloads the config file of a running `ingestor run`, with a real
//! nats-server and `ingestor simulate` as the plant:
//!
//! - devices added, changed and removed while an untouched device keeps its
//!   schedule: no missed and no doubled poll cycle, its poller never
//!   restarted; a `[nats]` change reconnects; the stream holds every seq
//!   exactly once, ascending;
//! - an invalid file is counted and ignored: everything keeps running;
//! - `[metrics].listen` moves to the new address.
mod service_rig;

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use service_rig::*;

/// The untouched device's interval: long enough that a loaded test machine
/// does not make it skip slots on its own.
const STEADY_MS: i64 = 500;

/// One batch as a consumer of the stream sees it.
#[derive(Debug, Clone)]
struct Seen {
    seq: u64,
    device: String,
    ts: DateTime<Utc>,
}

/// The address `plant`'s simulator serves on (from the config it wrote).
fn simulator(plant: &Plant) -> String {
    let text = std::fs::read_to_string(&plant.config).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("address = \"")?.strip_suffix('"'))
        .expect("the plant's simulator address")
        .to_owned()
}

/// A config for `plant` (its `[service]`, its simulator at `sim`), with
/// `nats`, `metrics` and `devices` as given.
fn config(plant: &Plant, sim: &str, nats: &str, metrics: &str, devices: &str) -> String {
    let data = plant.dir.path().join("data");
    format!(
        "[service]\nid = \"{SERVICE}\"\ndata_dir = \"{}\"\n\n{nats}\n\n[metrics]\nlisten = \"{metrics}\"\n\n{}",
        data.display(),
        devices.replace("SIM", sim)
    )
}

fn nats_section(url: &str, ack_timeout: &str) -> String {
    format!("[nats]\nservers = [\"{url}\"]\nack_timeout = \"{ack_timeout}\"")
}

/// The untouched device: unit 1 of the simulator.
fn steady() -> String {
    format!(
        r#"
[[devices]]
id = "press-01"
address = "SIM"
unit = 1
poll_interval = "{STEADY_MS}ms"
timeout = "300ms"

[[devices.tags]]
name = "oil_temp"
register = "holding"
address = 0
type = "f32"
order = "CDAB"
"#
    )
}

/// unit 2 of the simulator, every `interval`.
fn meter(interval: &str) -> String {
    format!(
        r#"
[[devices]]
id = "meter-07"
address = "SIM"
unit = 2
poll_interval = "{interval}"
timeout = "300ms"

[[devices.tags]]
name = "energy"
register = "input"
address = 10
type = "u32"
"#
    )
}

/// A second entry for unit 1 (same gateway, same unit, another schedule).
fn slow() -> String {
    r#"
[[devices]]
id = "press-01-slow"
address = "SIM"
unit = 1
poll_interval = "300ms"
timeout = "300ms"

[[devices.tags]]
name = "running"
register = "coil"
address = 0
type = "bool"
"#
    .to_owned()
}

fn hangup(service: &Service) {
    let status = Command::new("kill")
        .args(["-HUP", &service.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends SIGHUP and waits until the service counted the reload as `result`.
fn reload(service: &Service, result: &str) {
    let counter = format!("ingestor_config_reloads_total{{result=\"{result}\"}}");
    let before = service.metric(&counter);
    hangup(service);
    wait_until(
        Duration::from_secs(30),
        &format!("reload counted {result}"),
        || service.metric(&counter) > before,
    );
}

/// Every message of the stream, in stream order.
fn read_batches(url: &str) -> Vec<Seen> {
    read_records(url)
        .into_iter()
        .map(|r| Seen {
            seq: r.payload["seq"].as_u64().unwrap(),
            device: r.payload["device"].as_str().unwrap().to_owned(),
            ts: r.payload["ts"].as_str().unwrap().parse().unwrap(),
        })
        .collect()
}

fn of_device<'a>(batches: &'a [Seen], device: &str) -> Vec<&'a Seen> {
    batches.iter().filter(|b| b.device == device).collect()
}

/// The batches of a device on one schedule: the k-th is slot k, started
/// late by a lag that varies by less than half an interval. A skipped slot
/// shifts everything after it by a whole interval; a doubled one or a
/// restarted schedule by some fraction of it.
fn assert_one_per_slot(batches: &[&Seen], interval_ms: i64) {
    assert!(batches.len() >= 2, "too few batches: {}", batches.len());
    let t0 = batches[0].ts;
    let residuals: Vec<i64> = batches
        .iter()
        .enumerate()
        .map(|(k, b)| (b.ts - t0).num_milliseconds() - k as i64 * interval_ms)
        .collect();
    let least = *residuals.iter().min().unwrap();
    let off: Vec<(usize, i64)> = residuals
        .iter()
        .enumerate()
        .filter(|(_, r)| **r - least >= interval_ms / 2)
        .map(|(k, r)| (k, r - least))
        .take(5)
        .collect();
    assert!(
        off.is_empty(),
        "batches off their slot (index, ms late against the earliest): {off:?}"
    );
}

#[test]
fn reload_adds_changes_and_removes_devices_while_the_untouched_one_keeps_its_schedule() {
    let nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, "");
    let metrics = plant.metrics.clone();
    let sim = simulator(&plant);
    let write = |nats: &str, devices: &str| {
        std::fs::write(&plant.config, config(&plant, &sim, nats, &metrics, devices)).unwrap();
    };
    write(
        &nats_section(&url, "2s"),
        &format!("{}{}", steady(), meter("100ms")),
    );
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "first batches published", || {
        service.metric("ingestor_published_total") >= 10.0
    });

    // Add a device on the shared gateway and change another.
    write(
        &nats_section(&url, "2s"),
        &format!("{}{}{}", steady(), meter("200ms"), slow()),
    );
    reload(&service, "ok");
    assert_eq!(service.health()["devices"], 3, "{}", service.health());
    wait_until(
        Duration::from_secs(20),
        "the added device publishes",
        || {
            read_batches(&url)
                .iter()
                .filter(|b| b.device == "press-01-slow")
                .count()
                >= 3
        },
    );

    // Remove one, and change [nats]: the publisher reconnects. [buffer]
    // needs a restart: logged, not applied.
    let restart_only = format!(
        "{}\n\n[buffer]\nmemory_batches = 500",
        nats_section(&url, "3s")
    );
    write(&restart_only, &format!("{}{}", steady(), slow()));
    reload(&service, "ok");
    assert_eq!(service.health()["devices"], 2, "{}", service.health());
    wait_until(Duration::from_secs(20), "NATS reconnected", || {
        service.health()["nats"] == "connected"
    });
    service.wait_backlog_empty(Duration::from_secs(20));
    let meter_after_removal = of_device(&read_batches(&url), "meter-07").len();
    // The stream has one replica: said once at start, once after the [nats] reload.
    let told = service.log_text().matches("sync_interval: always").count();
    assert_eq!(told, 2, "{}", service.log_text());

    // An invalid file: counted, ignored, everything keeps running.
    let published = service.metric("ingestor_published_total");
    std::fs::write(
        &plant.config,
        "[service]\nid = \"bad id!\"\n[[devices]]\nid = \"x\"\npoll_interval = \"soon\"\n",
    )
    .unwrap();
    reload(&service, "error");
    wait_until(Duration::from_secs(20), "publishing goes on", || {
        service.metric("ingestor_published_total") >= published + 10.0
    });
    assert_eq!(service.health()["devices"], 2, "{}", service.health());
    assert_eq!(
        service.metric("ingestor_config_reloads_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        service.metric("ingestor_actor_restarts_total{actor=\"poller\"}"),
        0.0,
        "a poller restarted\n{}",
        service.log_text()
    );
    let log = service.log_text();
    assert!(
        log.contains("bad id!") && log.contains("soon"),
        "every problem is logged:\n{log}"
    );
    assert!(
        log.contains("[buffer]") && log.contains("next restart"),
        "a [buffer] change is logged as needing a restart:\n{log}"
    );
    service.wait_backlog_empty(Duration::from_secs(20));
    assert!(service.term(Duration::from_secs(10)).success());
    // `spool stats` reads the data dir from the file: the valid one again.
    write(&restart_only, &format!("{}{}", steady(), slow()));

    let batches = assert_stream_complete(&url, &plant);
    let steady = of_device(&batches, "press-01");
    assert!(steady.len() >= 6, "too few batches of the untouched device");
    assert_one_per_slot(&steady, STEADY_MS);
    assert_one_per_slot(&of_device(&batches, "press-01-slow"), 300);
    assert_eq!(
        of_device(&batches, "meter-07").len(),
        meter_after_removal,
        "the removed device kept publishing"
    );
    let meter = of_device(&batches, "meter-07");
    let fast = meter
        .windows(2)
        .filter(|w| (w[1].ts - w[0].ts).num_milliseconds() < 150)
        .count();
    let last = meter.len().saturating_sub(4);
    let slowed = meter[last..]
        .windows(2)
        .all(|w| (w[1].ts - w[0].ts).num_milliseconds() >= 150);
    assert!(
        fast > 0 && slowed,
        "meter-07 did not move from 100 ms to 200 ms"
    );
}

/// Every seq exactly once, ascending, from 1, in the stream plus the spool.
fn assert_stream_complete(url: &str, plant: &Plant) -> Vec<Seen> {
    let seqs = assert_stream_plus_spool_complete(url, &plant.config);
    let batches = read_batches(url);
    assert_eq!(
        batches.iter().map(|b| b.seq).collect::<Vec<_>>(),
        seqs,
        "payload seqs match the headers"
    );
    batches
}

#[test]
fn reload_moves_the_metrics_listener_to_the_new_address_and_refuses_a_taken_one() {
    let nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, "");
    let old = plant.metrics.clone();
    let new = format!("127.0.0.1:{}", free_port());
    let sim = simulator(&plant);
    std::fs::write(
        &plant.config,
        config(&plant, &sim, &nats_section(&url, "2s"), &old, &steady()),
    )
    .unwrap();
    let mut service = plant.start();

    // A taken port: the whole reload is refused, the old address serves on.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    std::fs::write(
        &plant.config,
        config(
            &plant,
            &sim,
            &nats_section(&url, "2s"),
            &taken_addr,
            &steady(),
        ),
    )
    .unwrap();
    reload(&service, "error");
    assert_eq!(service.health()["devices"], 1, "{}", service.health());
    drop(taken);

    std::fs::write(
        &plant.config,
        config(&plant, &sim, &nats_section(&url, "2s"), &new, &steady()),
    )
    .unwrap();
    hangup(&service);
    wait_until(
        Duration::from_secs(30),
        "/health on the new address",
        || std::net::TcpStream::connect(&new).is_ok(),
    );
    wait_until(Duration::from_secs(10), "the old address released", || {
        std::net::TcpStream::connect(&old).is_err()
    });
    wait_until(
        Duration::from_secs(10),
        "the reload counted on the new address",
        || {
            http_get(&new, "/metrics")
                .unwrap_or_default()
                .lines()
                .any(|l| l == "ingestor_config_reloads_total{result=\"ok\"} 1")
        },
    );
    let body = http_get(&new, "/metrics").unwrap_or_default();
    // Polling went on across the move.
    let polls = |body: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with("ingestor_polls_total{device=\"press-01\",result=\"ok\"}"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = polls(&body);
    wait_until(Duration::from_secs(20), "polls go on", || {
        polls(&http_get(&new, "/metrics").unwrap_or_default()) >= before + 2.0
    });
    assert!(service.term(Duration::from_secs(10)).success());
}

/// GET `path` from `addr` (HTTP/1.0: no chunking); the body of a 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

//! A reload that removes a device takes its series off `/metrics`
//! (`ingestor_device_up` and the rest), so its alerts stop; the devices
//! that stay keep theirs, and a device added back has them again.

mod service_rig;

use std::process::Command;
use std::time::Duration;

use service_rig::{free_port, wait_until, Plant};

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The sample lines of `/metrics` that carry `device="<id>"`.
fn series_of(scrape: &str, id: &str) -> Vec<String> {
    let label = format!("device=\"{id}\"");
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .map(str::to_owned)
        .collect()
}

#[test]
fn reload_removing_a_device_takes_its_series_off_metrics() {
    // No NATS server: the plant polls and keeps everything in the buffer.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let plant = Plant::new(&url, "");
    let full = std::fs::read_to_string(&plant.config).unwrap();
    let (without_meter, _) = full
        .split_once("[[devices]]\nid = \"meter-07\"")
        .expect("the rig's second device");
    let service = plant.start();
    let scrape = || service.get("/metrics").unwrap_or_default();
    wait_until(Duration::from_secs(20), "both devices up", || {
        let s = scrape();
        ["press-01", "meter-07"]
            .iter()
            .all(|d| s.contains(&format!("ingestor_device_up{{device=\"{d}\"}} 1")))
    });

    std::fs::write(&plant.config, without_meter).unwrap();
    let reloads = "ingestor_config_reloads_total{result=\"ok\"}";
    hangup(service.pid());
    wait_until(Duration::from_secs(30), "the reload", || {
        service.metric(reloads) >= 1.0
    });
    let after = scrape();
    let left = series_of(&after, "meter-07");
    assert!(left.is_empty(), "series of the removed device: {left:?}");
    let kept = series_of(&after, "press-01");
    assert!(
        kept.iter().any(|l| l.starts_with("ingestor_device_up"))
            && kept.iter().any(|l| l.starts_with("ingestor_polls_total"))
            && kept
                .iter()
                .any(|l| l.starts_with("ingestor_poll_duration_seconds_bucket")),
        "the remaining device lost series: {kept:?}"
    );
    let polls = |s: &str| {
        series_of(s, "press-01")
            .iter()
            .find(|l| l.starts_with("ingestor_polls_total{") && l.contains("result=\"ok\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = polls(&after);
    wait_until(
        Duration::from_secs(10),
        "the remaining device polls on",
        || polls(&scrape()) > before,
    );

    // Added back: its series are there again (device_up from its polls).
    std::fs::write(&plant.config, &full).unwrap();
    hangup(service.pid());
    wait_until(Duration::from_secs(30), "the second reload", || {
        service.metric(reloads) >= 2.0
    });
    wait_until(Duration::from_secs(20), "meter-07 up again", || {
        scrape().contains("ingestor_device_up{device=\"meter-07\"} 1")
    });
}

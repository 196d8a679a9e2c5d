//! An ack from a stream with one replica is not yet on the server's disk:
//! the service says so once at start, and `ingestor check` says the same
//! when it reaches the server, with who last published on `[service] id`;
//! without a server `check` still answers at once, exit 0, with a note
//! (docs/reference.md §1, §3).

mod service_rig;

use std::process::{Command, Output};
use std::time::Duration;

use service_rig::*;

const HOW: &str = "sync_interval: always";

fn check(plant: &Plant) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["check", "-c"])
        .arg(&plant.config)
        .env_remove("INGESTOR_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn check_and_the_service_warn_about_a_single_replica_stream_once() {
    let server = NatsServer::start();
    let plant = Plant::new(&server.url(), "");
    let out = check(&plant);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("does not exist yet"), "{stdout}");
    assert!(stdout.contains(HOW), "{stdout}");

    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "publishing", || {
        service.metric("ingestor_published_total") >= 10.0
    });
    let log = service.log_text();
    assert_eq!(log.matches(HOW).count(), 1, "said once:\n{log}");
    assert!(log.contains("1 replica:"), "{log}");
    assert!(service.term(Duration::from_secs(15)).success());

    let out = check(&plant);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout.lines().find(|l| l.contains(HOW)).unwrap_or_default();
    assert!(
        line.starts_with("warning") && line.contains("1 replica:"),
        "{stdout}"
    );
    let mine = plant.installation();
    assert!(
        stdout.contains(&format!("is this installation's ({mine})")),
        "{stdout}"
    );

    // A second PC with a copy of the config hears, before it runs, that the
    // id is in use, by whom, and what to do.
    let copy = Plant::new(&server.url(), "");
    let out = check(&copy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("is in use"))
        .unwrap_or_default();
    assert!(line.starts_with("warning"), "{stdout}");
    assert!(
        line.contains(&mine) && line.contains("a new installation"),
        "{stdout}"
    );
    assert!(line.contains(&format!("replaces = \"{mine}\"")), "{stdout}");
}

#[test]
fn check_without_a_server_answers_at_once_with_exit_0_and_a_note() {
    let plant = Plant::new(&format!("nats://127.0.0.1:{}", free_port()), "");
    let out = check(&plant);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("NATS not reached"), "{stdout}");
    assert!(!stdout.contains(HOW), "{stdout}");
}

#[test]
fn check_warns_when_a_poll_group_can_make_a_batch_over_the_servers_max_payload() {
    let server = NatsServer::start_with("max_payload: 4096");
    // Four 100-register strings on one device: a batch can reach about
    // 5 KB (every byte escaped), over the server's 4 KiB.
    let mut labels = String::from(
        "[[devices]]\nid = \"labels-01\"\naddress = \"127.0.0.1:1\"\nunit = 9\npoll_interval = \"5s\"\n",
    );
    for i in 0..4 {
        labels.push_str(&format!(
            "\n[[devices.tags]]\nname = \"label_{i}\"\nregister = \"holding\"\naddress = {}\ntype = \"string\"\nlength = 100\n",
            i * 100
        ));
    }
    let plant = Plant::new(&server.url(), &labels);
    let out = check(&plant);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not an error:\n{stdout}"
    );
    let warned: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning") && l.contains("max_payload"))
        .collect();
    assert_eq!(warned.len(), 1, "one group over the limit:\n{stdout}");
    assert!(
        warned[0].contains("\"labels-01\"") && warned[0].contains("(4096)"),
        "{stdout}"
    );
}

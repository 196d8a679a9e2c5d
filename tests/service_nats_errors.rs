//! A NATS connect that keeps failing, against a real nats-server: the
//! cause is said once, in one line naming it and the key to fix, while the
//! attempts go on twice a second; async-nats' own ERROR per attempt is not
//! in the log. Wrong password; a server certificate from an unknown CA.

#[path = "../actors/tests/tls_rig/certs.rs"]
mod certs;
mod service_rig;

use std::time::Duration;

use service_rig::*;

/// Lines of the service's log that contain `what`.
fn lines_with(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .map(str::to_owned)
        .collect()
}

/// Waits for `what` in the log, then lets ~10 more attempts fail.
fn log_after_attempts(service: &Service, what: &str) -> String {
    wait_until(Duration::from_secs(20), what, || {
        service.log_text().contains(what)
    });
    std::thread::sleep(Duration::from_secs(5));
    service.log_text()
}

#[test]
fn wrong_password_is_said_once_naming_the_credential_keys() {
    let nats = NatsServer::start_with(&users("\">\""));
    let plant = Plant::with_nats(
        &[&nats.url()],
        "user = \"ingest\"\npassword = \"wrong\"",
        "",
    );
    let service = plant.start();
    let log = log_after_attempts(&service, "NATS refused our credentials");
    let said = lines_with(&log, "NATS refused our credentials");
    assert_eq!(said.len(), 1, "said more than once:\n{log}");
    assert!(said[0].contains("user + password"), "{}", said[0]);
    assert!(
        lines_with(&log, "async_nats").is_empty(),
        "async-nats' own lines:\n{log}"
    );
    assert_eq!(service.health()["nats"], "disconnected");
}

#[test]
fn untrusted_server_certificate_is_said_as_a_certificate_error_naming_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new(dir.path(), "unknown-ca");
    let server = ca.server("nats");
    let nats = NatsServer::start_with(&format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}",
        server.cert, server.key
    ));
    let url = format!("tls://127.0.0.1:{}", nats.url().rsplit(':').next().unwrap());
    // No ca_file: the system roots do not know the test CA.
    let plant = Plant::with_nats(&[&url], "tls_required = true", "");
    let service = plant.start();
    let said_as = "TLS certificate does not verify";
    let log = log_after_attempts(&service, said_as);
    let said = lines_with(&log, said_as);
    assert_eq!(said.len(), 1, "said more than once:\n{log}");
    assert!(
        said[0].contains("ca_file") && said[0].contains("UnknownIssuer"),
        "{}",
        said[0]
    );
    assert!(
        lines_with(&log, "cannot reach NATS").is_empty(),
        "reported as unreachable:\n{log}"
    );
}

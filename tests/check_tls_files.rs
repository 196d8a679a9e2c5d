//! `ingestor check` on a device's TLS files: every problem at its key path
//! (`devices[N].tls_ca_file`), all at once; a valid TLS device passes and
//! its line in the plan says `tls`; a key file group or others may read is
//! a warning naming the file and the mode to set.

#[path = "../actors/tests/tls_rig/certs.rs"]
mod certs;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use certs::Ca;

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["check", "--offline", "-c"])
        .arg(file)
        .env_remove("INGESTOR_CONFIG")
        .output()
        .expect("run ingestor")
}

/// A `[[devices]]` entry with one tag, `keys` added.
fn device(id: &str, address: &str, keys: &str) -> String {
    format!(
        "[[devices]]\nid = \"{id}\"\naddress = \"{address}\"\n{keys}\n\
         [[devices.tags]]\nname = \"v\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\n"
    )
}

fn write(dir: &Path, name: &str, devices: &[String]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("[service]\nid = \"t\"\n\n{}", devices.concat()),
    )
    .unwrap();
    path
}

#[test]
fn check_lists_every_tls_file_problem_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plant = Ca::new(d, "plant");
    let client = plant.client("ingestor");
    let other = plant.client("other");
    let not_pem = d.join("notes.txt");
    std::fs::write(&not_pem, "this is no certificate\n").unwrap();
    let missing = d.join("missing.pem");
    let devices = [
        // 0: a CA file that is not there
        device(
            "a",
            "127.0.0.1:802",
            &format!("tls = true\ntls_ca_file = {missing:?}"),
        ),
        // 1: a CA file and a certificate file without a certificate; no key
        device(
            "b",
            "127.0.0.1:802",
            &format!("tls = true\ntls_ca_file = {not_pem:?}\ntls_cert_file = {not_pem:?}"),
        ),
        // 2: a key that belongs to another certificate
        device(
            "c",
            "127.0.0.1:802",
            &format!(
                "tls = true\ntls_ca_file = {:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}",
                plant.pem, client.cert, other.key
            ),
        ),
        // 3: TLS keys without tls = true
        device(
            "d",
            "127.0.0.1:502",
            &format!("tls_ca_file = {:?}", plant.pem),
        ),
        // 4: tls = true without a CA file; a key file that is a certificate
        device(
            "e",
            "plc.local",
            &format!(
                "tls = true\ntls_cert_file = {:?}\ntls_key_file = {:?}",
                client.cert, client.cert
            ),
        ),
    ];
    let config = write(d, "bad.toml", &devices);
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = [
        ("devices[0].tls_ca_file", "cannot read it"),
        ("devices[1].tls_ca_file", "no certificate in it"),
        ("devices[1].tls_cert_file", "no certificate in it"),
        (
            "devices[1].tls_key_file",
            "`tls_cert_file` needs `tls_key_file`",
        ),
        (
            "devices[2].tls_key_file",
            "does not belong to the certificate in tls_cert_file",
        ),
        ("devices[3].tls_ca_file", "without `tls = true`"),
        ("devices[4].tls_ca_file", "`tls = true` needs `tls_ca_file`"),
        ("devices[4].tls_key_file", "no private key in it"),
    ];
    for (key, what) in expected {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!(": {key}: ")) && l.contains(what)),
            "{key} should say {what:?}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "{}: {} problems found",
            config.display(),
            expected.len()
        )),
        "{stderr}"
    );
}

#[test]
fn check_passes_a_tls_device_and_warns_about_a_readable_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plant = Ca::new(d, "plant");
    let client = plant.client("ingestor");
    let keys = format!(
        "tls = true\ntls_ca_file = {:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}\ntls_server_name = \"plc-07.plant\"",
        plant.pem, client.cert, client.key
    );
    let config = write(d, "good.toml", &[device("plc-07", "10.0.0.7", &keys)]);

    let out = check(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("10.0.0.7:802 (tls, certificate for \"plc-07.plant\", client certificate)"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning"), "a 0600 key is fine:\n{stdout}");

    std::fs::set_permissions(&client.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error");
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("warning"))
        .unwrap_or_else(|| panic!("no warning:\n{stdout}"));
    let key = client.key.display().to_string();
    assert!(
        warning.contains("devices[0].tls_key_file")
            && warning.contains(&key)
            && warning.contains("mode 0644")
            && warning.contains(&format!("chmod 0600 {key}")),
        "{warning}"
    );
}

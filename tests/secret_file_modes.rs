//! A secret file (`[nats] creds_file`, `nkey_seed_file`, `key_file`, a
//! device's `tls_key_file`) that others, or a group other than root's, may
//! read is warned about, naming the file and the mode to set: by
//! `ingestor check`, at start and on every reload. Real files, real modes.

mod service_rig;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use service_rig::{free_port, wait_until, Plant};

/// Writes `text` to `dir/name` with `mode` and, if given, group `gid`.
fn secret(dir: &Path, name: &str, mode: u32, gid: Option<u32>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "SUAM-not-a-real-seed\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&path, None, Some(gid)).unwrap();
    }
    path
}

fn check(dir: &Path, nats: &str) -> String {
    let config = dir.join("ingestor.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nid = \"t\"\n\n[nats]\n{nats}\n\n[[devices]]\nid = \"d\"\n\
             address = \"127.0.0.1:502\"\n\n[[devices.tags]]\nname = \"v\"\n\
             register = \"holding\"\naddress = 0\ntype = \"u16\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The warning lines about `key`.
fn warnings_about(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(key) && l.contains("is readable by"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn check_names_each_readable_secret_file_and_the_mode_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Others may read the seed; group 4242 (not root) may read the key.
    let seed = secret(d, "seed.nk", 0o644, None);
    let key = secret(d, "client.key", 0o640, Some(4242));
    let cert = secret(d, "client.pem", 0o644, None);
    let out = check(
        d,
        &format!("nkey_seed_file = {seed:?}\ncert_file = {cert:?}\nkey_file = {key:?}"),
    );
    let on_seed = warnings_about(&out, "nats.nkey_seed_file");
    assert_eq!(on_seed.len(), 1, "{out}");
    assert!(
        on_seed[0].contains("by others (mode 0644)")
            && on_seed[0].contains(&format!("chmod 0600 {}", seed.display())),
        "{out}"
    );
    let on_key = warnings_about(&out, "nats.key_file");
    assert_eq!(on_key.len(), 1, "{out}");
    assert!(
        on_key[0].contains("by group 4242 (mode 0640)")
            && on_key[0].contains("0640 with group root"),
        "{out}"
    );
    assert!(
        warnings_about(&out, "cert_file").is_empty(),
        "a certificate is no secret: {out}"
    );

    // 0600, and 0640 with the root group: nothing to say.
    let creds = secret(d, "svc.creds", 0o600, None);
    let key = secret(d, "root-group.key", 0o640, Some(0));
    let out = check(
        d,
        &format!("creds_file = {creds:?}\ncert_file = {cert:?}\nkey_file = {key:?}"),
    );
    assert!(!out.contains("is readable by"), "{out}");
    // The same creds file opened to others is named.
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o604)).unwrap();
    let out = check(
        d,
        &format!("creds_file = {creds:?}\ncert_file = {cert:?}\nkey_file = {key:?}"),
    );
    assert_eq!(warnings_about(&out, "nats.creds_file").len(), 1, "{out}");
}

#[test]
fn start_and_every_reload_warn_about_a_readable_seed_file() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let seeds = tempfile::tempdir().unwrap();
    let seed = secret(seeds.path(), "seed.nk", 0o644, None);
    let plant = Plant::with_nats(&[&url], &format!("nkey_seed_file = {seed:?}"), "");
    let service = plant.start();
    let count = || warnings_about(&service.log_text(), "nats.nkey_seed_file").len();
    wait_until(Duration::from_secs(10), "the warning at start", || {
        count() == 1
    });
    let reloads = "ingestor_config_reloads_total{result=\"ok\"}";
    let status = Command::new("kill")
        .args(["-HUP", &service.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(Duration::from_secs(30), "the reload", || {
        service.metric(reloads) >= 1.0
    });
    wait_until(
        Duration::from_secs(10),
        "the warning again on reload",
        || count() == 2,
    );
    assert!(
        service
            .log_text()
            .contains(&format!("chmod 0600 {}", seed.display())),
        "{}",
        service.log_text()
    );
}

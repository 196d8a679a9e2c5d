//! `ingestor check -c FILE`, the real binary: exit 0 on the shipped configs,
//! exit 2 with every problem (file, line, key path) on stderr otherwise.

use std::path::Path;
use std::process::{Command, Output};

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(["check", "--offline", "-c"])
        .arg(file)
        .env_remove("INGESTOR_CONFIG")
        .output()
        .expect("run ingestor")
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), text).expect("write config");
    file
}

fn shipped(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

#[test]
fn check_refuses_the_shipped_placeholder_id_and_accepts_the_default_config_once_it_is_picked() {
    let out = check(&shipped("default.toml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("service.id"), "{stderr}");
    assert!(stderr.contains("placeholder"), "{stderr}");
    let text = std::fs::read_to_string(shipped("default.toml"))
        .unwrap()
        .replace("id = \"CHANGE-ME\"", "id = \"site4-line2-ipc\"");
    let picked = write_config(&text);
    let out = check(picked.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(stdout.contains("press-01"), "{stdout}");
}

#[test]
fn check_accepts_the_demo_config_and_lists_its_devices() {
    let out = check(&shipped("demo.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for device in ["meter-01", "press-01", "tank-01", "drive-01", "flow-01"] {
        assert!(stdout.contains(device), "{device} missing from:\n{stdout}");
    }
}

const BAD: &str = r#"[service]
id = "line 1"

[nats]
servers = []
max_in_flight = 0

[metrics]
listen = "localhost"

[[devices]]
id = "press-01"
address = "10.0.0.21:502"
unit = 300
poll_interval = "0s"

[[devices.tags]]
name = "oil_temp"
register = "holding"
address = 65535
type = "f32"

[[devices.tags]]
name = "running"
register = "coil"
address = 0
type = "float"

[[devices.tags]]
name = "recipe"
register = "holding"
address = 10
type = "string"
bit = 2

[[devices]]
id = "press-01"
address = "10.0.0.22:502"

[[devices.tags]]
name = "level"
register = "input"
address = 0
type = "u16"
length = 4
"#;

#[test]
fn check_lists_every_problem_with_key_path_and_exits_2() {
    let file = write_config(BAD);
    let out = check(file.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let name = file.path().display().to_string();
    let expected = [
        (2, "service.id", "\"line 1\""),
        (5, "nats.servers", "[]"),
        (6, "nats.max_in_flight", "0"),
        (9, "metrics.listen", "\"localhost\""),
        (14, "devices[0].unit", "300"),
        (15, "devices[0].poll_interval", "\"0s\""),
        (20, "devices[0].tags[0].address", "65535"),
        (27, "devices[0].tags[1].type", "float"),
        (29, "devices[0].tags[2].length", "needs `length`"),
        (34, "devices[0].tags[2].bit", "2"),
        (37, "devices[1].id", "\"press-01\""),
        (45, "devices[1].tags[0].length", "4"),
    ];
    for (line, path, value) in expected {
        let prefix = format!("{name}:{line}: {path}: ");
        let found = stderr.lines().find(|l| l.starts_with(&prefix));
        let found = found.unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stderr}"));
        assert!(found.contains(value), "{found:?} should show {value:?}");
    }
    assert!(
        stderr.contains(&format!("{} problems found", expected.len())),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for an invalid config"
    );
}

#[test]
fn check_names_an_unknown_key_by_its_path() {
    let text = "[service]\nid = \"a\"\n\n[[devices]]\nid = \"d\"\naddress = \"h:502\"\n\n\
                [[devices.tags]]\nname = \"t\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\nsacle = 0.1\n";
    let file = write_config(text);
    let out = check(file.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let prefix = format!(
        "{}:13: devices[0].tags[0].sacle: unknown field `sacle`",
        file.path().display()
    );
    assert!(stderr.contains(&prefix), "{prefix:?} not in:\n{stderr}");
    assert!(
        stderr.contains("`scale`"),
        "the allowed keys are listed:\n{stderr}"
    );
}

#[test]
fn check_on_a_missing_file_exits_2_saying_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let out = check(&missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("nope.toml: cannot read the config file"),
        "{stderr}"
    );
}

/// The demo config with `[nats]` replaced by `nats`.
fn with_nats(nats: &str) -> String {
    let demo = std::fs::read_to_string(shipped("demo.toml")).expect("demo.toml");
    let start = demo.find("[nats]").expect("demo.toml has [nats]");
    let end = demo[start + 1..]
        .find("\n[")
        .map_or(demo.len(), |i| start + 1 + i);
    format!("{}{nats}\n{}", &demo[..start], &demo[end..])
}

#[test]
fn check_warns_about_credentials_without_tls_and_never_prints_url_user_info() {
    let file = write_config(&with_nats(
        "[nats]\nservers = [\"nats://plantuser:Sup3rSecret@10.1.2.3:4222\"]\ntoken = \"tok-123\"",
    ));
    let out = check(file.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("warning"), "{stdout}");
    assert!(stdout.contains("token"), "{stdout}");
    assert!(stdout.contains("10.1.2.3:4222"), "{stdout}");
    for secret in ["Sup3rSecret", "plantuser", "tok-123"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed:\n{stdout}{stderr}"
        );
    }
}

#[test]
fn check_does_not_warn_when_tls_is_required() {
    let file = write_config(&with_nats(
        "[nats]\nservers = [\"tls://10.1.2.3:4222\"]\nuser = \"u\"\npassword = \"p\"\ntls_required = true",
    ));
    let out = check(file.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn check_of_a_bad_server_url_does_not_print_its_password() {
    let file = write_config(&with_nats(
        "[nats]\nservers = [\"http://u:Sup3rSecret@10.1.2.3:4222\"]",
    ));
    let out = check(file.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nats.servers[0]"), "{stderr}");
    assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
}

//! One test per rule: a config breaking it names the key, the value and what is allowed.

use std::path::Path;
use std::time::Duration;

use super::{from_toml, load, ConfigErrors};

mod devices;
mod tag_reporting;
mod tls;
mod writes;

const SERVICE: &str = "[service]\nid = \"plant\"\ndata_dir = \"/tmp/ingestor\"\n";

/// A config with one TCP device `dev` holding `device_extra` keys and `tags`.
fn config(device_extra: &str, tags: &str) -> String {
    format!(
        "{SERVICE}\n[[devices]]\nid = \"dev\"\naddress = \"127.0.0.1:502\"\n{device_extra}\n{tags}"
    )
}

/// One `[[devices.tags]]` with `body`.
fn tag(body: &str) -> String {
    format!("[[devices.tags]]\n{body}\n")
}

const GOOD_TAG: &str = "name = \"t\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"";

fn check(text: &str) -> Result<ingestor_actors::settings::Settings, ConfigErrors> {
    from_toml(text, Path::new("test.toml"))
}

/// Every problem as printed, one string each.
fn problems(text: &str) -> Vec<String> {
    match check(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

/// The printed problem about `path`; fails listing all problems when there is none.
fn problem_at(text: &str, path: &str) -> String {
    let all = problems(text);
    let wanted = format!(" {path}: ");
    all.iter()
        .find(|p| p.contains(&wanted))
        .cloned()
        .unwrap_or_else(|| panic!("no problem at {path}; problems: {all:#?}"))
}

fn assert_valid(text: &str) {
    if let Err(e) = check(text) {
        panic!("expected valid, got:\n{e}\n--- config:\n{text}");
    }
}

#[test]
fn minimal_config_gets_contract_defaults() {
    let s = check(&config("", &tag(GOOD_TAG))).expect("valid");
    assert_eq!(s.nats.servers, vec!["nats://127.0.0.1:4222"]);
    assert_eq!(s.buffer.memory_batches, 10_000);
    assert_eq!(s.buffer.disk_max.as_u64(), 1 << 30);
    assert_eq!(s.buffer.disk_min_free.as_u64(), 256 << 20);
    assert_eq!(s.devices[0].poll_interval, Duration::from_secs(1));
    assert_eq!(s.devices[0].max_registers_per_request, 125);
}

#[test]
fn durations_and_sizes_parse_from_strings() {
    let text = format!(
        "{}\n[buffer]\ndisk_max = \"512MiB\"\ndisk_min_free = \"0B\"\n[nats]\nack_timeout = \"250ms\"\n",
        config("poll_interval = \"5m\"", &tag(GOOD_TAG))
    );
    let s = check(&text).expect("valid");
    assert_eq!(s.buffer.disk_max.as_u64(), 512 << 20);
    assert_eq!(s.buffer.disk_min_free.as_u64(), 0, "0B: no floor");
    assert_eq!(s.nats.ack_timeout, Duration::from_millis(250));
    assert_eq!(s.devices[0].poll_interval, Duration::from_secs(300));
}

#[test]
fn shipped_demo_config_is_valid_the_default_one_once_its_id_is_picked() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    if let Err(e) = load(&path) {
        panic!("config/demo.toml is not valid:\n{e}");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // As shipped: one problem, the placeholder id.
    let e = check(&text).expect_err("the placeholder id is refused");
    assert_eq!(e.problems.len(), 1, "{e}");
    assert!(e.to_string().contains("service.id"), "{e}");
    let picked = text.replace("id = \"CHANGE-ME\"", "id = \"site4-line2-ipc\"");
    if let Err(e) = check(&picked) {
        panic!("config/default.toml with its id picked is not valid:\n{e}");
    }
}

#[test]
fn unreadable_file_is_one_clear_problem() {
    let e = load(Path::new("/nonexistent/ingestor.toml")).expect_err("must fail");
    assert_eq!(e.problems.len(), 1);
    assert!(
        e.to_string()
            .contains("/nonexistent/ingestor.toml: cannot read the config file"),
        "{e}"
    );
}

#[test]
fn syntax_errors_name_file_and_line() {
    let all = problems("[service]\nid = \"a\"\n[nats\nservers = 1\n");
    assert!(!all.is_empty());
    assert!(all[0].starts_with("test.toml:3: not valid TOML"), "{all:?}");
}

#[test]
fn unknown_keys_are_named_with_their_path_everywhere() {
    let tags = tag(&format!("{GOOD_TAG}\nlenght = 3"));
    let text = format!(
        "{}\n[nats]\nserver = []\n[colour]\n",
        config("adress = \"x\"", &tags)
    );
    assert!(problem_at(&text, "devices[0].tags[0].lenght")
        .contains("unknown field `lenght`, expected one of"));
    assert!(problem_at(&text, "devices[0].adress").contains("unknown field `adress`"));
    assert!(problem_at(&text, "nats.server").contains("`servers`"));
    assert!(problem_at(&text, "colour").contains("expected one of `service`"));
}

#[test]
fn missing_service_and_required_tag_keys_are_all_reported() {
    let text =
        "[[devices]]\nid = \"d\"\naddress = \"h:502\"\n[[devices.tags]]\nregister = \"coil\"\n";
    problem_at(text, "service");
    for key in ["name", "address", "type"] {
        assert!(problem_at(text, &format!("devices[0].tags[0].{key}")).contains("missing"));
    }
}

#[test]
fn wrong_types_report_value_and_allowed_and_keep_checking_the_rest() {
    let tags = tag("name = \"t\"\nregister = \"holding\"\naddress = \"ten\"\ntype = \"float\"");
    let text = config("unit = 300\ntimeout = \"soon\"", &tags);
    assert!(
        problem_at(&text, "devices[0].unit").contains("`300`, expected a Modbus unit id 0..=247")
    );
    assert!(problem_at(&text, "devices[0].timeout").contains("\"soon\", expected a duration"));
    assert!(problem_at(&text, "devices[0].tags[0].address").contains("\"ten\""));
    assert!(problem_at(&text, "devices[0].tags[0].type")
        .contains("unknown variant `float`, expected one of `bool`"));
}

#[test]
fn a_broken_device_does_not_hide_problems_of_the_others() {
    let mut text = config("unit = \"one\"", &tag(GOOD_TAG));
    text.push_str("[[devices]]\nid = \"bad id\"\naddress = \"h:502\"\n");
    text.push_str(&tag(
        "name = \"x\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\nbit = 1",
    ));
    assert!(problem_at(&text, "devices[0].unit").contains("\"one\""));
    assert!(problem_at(&text, "devices[1].id").contains("\"bad id\" is not allowed"));
    problem_at(&text, "devices[1].tags[0].bit");
}

#[test]
fn problems_are_listed_in_file_order_with_lines() {
    let text = config("unit = 250\npoll_interval = \"0s\"", &tag(GOOD_TAG));
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].starts_with("test.toml:8: devices[0].unit: 250 is not allowed"),
        "{all:?}"
    );
    assert!(
        all[1].starts_with("test.toml:9: devices[0].poll_interval: \"0s\""),
        "{all:?}"
    );
}

#[test]
fn intervals_and_timeouts_must_be_longer_than_zero() {
    let text = format!(
        "{}\n[nats]\nack_timeout = \"0s\"\n[supervision]\nwithin = \"0s\"\n",
        config("poll_interval = \"0ms\"\ntimeout = \"0s\"", &tag(GOOD_TAG))
    );
    for path in [
        "devices[0].poll_interval",
        "devices[0].timeout",
        "nats.ack_timeout",
        "supervision.within",
    ] {
        assert!(
            problem_at(&text, path).contains("longer than zero"),
            "{path}"
        );
    }
}

#[test]
fn nats_servers_are_nats_or_tls_urls() {
    let with = |servers: &str| {
        format!(
            "{}\n[nats]\nservers = {servers}\n",
            config("", &tag(GOOD_TAG))
        )
    };
    problem_at(&with("[]"), "nats.servers");
    assert!(problem_at(
        &with("[\"nats://a:4222\", \"http://b:4222\"]"),
        "nats.servers[1]"
    )
    .contains("\"http://b:4222\""));
    problem_at(&with("[\"nats://\"]"), "nats.servers[0]");
    assert_valid(&with(
        "[\"nats://a:4222\", \"tls://user:pw@b.example.com:4443\"]",
    ));
}

#[test]
fn subject_prefix_and_stream_are_valid_nats_names() {
    let with = |nats: &str| format!("{}\n[nats]\n{nats}\n", config("", &tag(GOOD_TAG)));
    problem_at(&with("subject_prefix = \"tele.*\""), "nats.subject_prefix");
    problem_at(&with("subject_prefix = \"a b\""), "nats.subject_prefix");
    problem_at(&with("subject_prefix = \"\""), "nats.subject_prefix");
    assert_valid(&with("subject_prefix = \"site1.telemetry\""));
    problem_at(&with("stream = \"TELE.METRY\""), "nats.stream");
    assert_valid(&with("mode = \"core\"\nstream = \"\""));
}

#[test]
fn nats_auth_options_are_exclusive_and_complete() {
    let with = |nats: &str| format!("{}\n[nats]\n{nats}\n", config("", &tag(GOOD_TAG)));
    assert!(
        problem_at(&with("token = \"t\"\ncreds_file = \"/c\""), "nats.token")
            .contains("together with `creds_file`")
    );
    assert!(problem_at(&with("user = \"u\""), "nats.password").contains("`user` needs `password`"));
    problem_at(&with("password = \"p\""), "nats.user");
    assert!(
        problem_at(&with("cert_file = \"/c.pem\""), "nats.key_file").contains("needs `key_file`")
    );
    assert_valid(&with(
        "user = \"u\"\npassword = \"p\"\ncert_file = \"/c\"\nkey_file = \"/k\"",
    ));
}

#[test]
fn max_in_flight_at_least_one() {
    let text = format!(
        "{}\n[nats]\nmax_in_flight = 0\n",
        config("", &tag(GOOD_TAG))
    );
    problem_at(&text, "nats.max_in_flight");
}

#[test]
fn memory_batches_and_disk_max_larger_than_zero() {
    let text = format!(
        "{}\n[buffer]\nmemory_batches = 0\ndisk_max = \"0B\"\n",
        config("", &tag(GOOD_TAG))
    );
    problem_at(&text, "buffer.memory_batches");
    problem_at(&text, "buffer.disk_max");
}

#[test]
fn backoff_min_at_most_backoff_max() {
    let text = format!(
        "{}\n[supervision]\nbackoff_min = \"1m\"\nbackoff_max = \"30s\"\n",
        config("", &tag(GOOD_TAG))
    );
    assert!(problem_at(&text, "supervision.backoff_min").contains("at most backoff_max (\"30s\")"));
}

#[test]
fn metrics_listen_is_a_socket_address() {
    let with = |listen: &str| {
        format!(
            "{}\n[metrics]\nlisten = \"{listen}\"\n",
            config("", &tag(GOOD_TAG))
        )
    };
    problem_at(&with("localhost:9898"), "metrics.listen");
    problem_at(&with("127.0.0.1"), "metrics.listen");
    assert_valid(&with("[::]:9898"));
}

#[test]
fn sections_and_arrays_of_the_wrong_shape_are_named() {
    let text = format!("nats = 5\ndevices = \"press\"\n{SERVICE}");
    assert!(problem_at(&text, "nats").contains("invalid type: integer `5`"));
    assert!(problem_at(&text, "devices").contains("expected an array of tables ([[devices]])"));
    let text = format!("{SERVICE}[[devices]]\nid = \"d\"\naddress = \"h:502\"\ntags = 3\n");
    assert!(problem_at(&text, "devices[0].tags")
        .contains("expected an array of tables ([[devices.tags]])"));
}

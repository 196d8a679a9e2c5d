//! Rules for a device's Modbus/TCP Security keys that need no files (the
//! file checks: tests/check_tls_files.rs).

use super::{config, problem_at, problems, tag, GOOD_TAG, SERVICE};

fn at_address(address: &str, extra: &str) -> String {
    config(extra, &tag(GOOD_TAG)).replace("\"127.0.0.1:502\"", &format!("{address:?}"))
}

fn has_problem_at(text: &str, path: &str) -> bool {
    problems(text)
        .iter()
        .any(|p| p.contains(&format!(": {path}: ")))
}

#[test]
fn tls_address_may_leave_out_the_port_802() {
    let tls = "tls = true\ntls_ca_file = \"/nonexistent/ca.pem\"";
    for address in ["plc.local", "10.0.0.5", "[fd00::5]", "plc.local:8802"] {
        let text = at_address(address, tls);
        assert!(
            !has_problem_at(&text, "devices[0].address"),
            "{address}: {:?}",
            problems(&text)
        );
        assert!(problem_at(&text, "devices[0].tls_ca_file").contains("cannot read it"));
    }
    assert!(problem_at(&at_address("fd00::5", tls), "devices[0].address").contains("\"fd00::5\""));
    assert!(problem_at(&at_address("plc.local", ""), "devices[0].address").contains("host:port"));
}

#[test]
fn tls_needs_a_ca_file_an_address_and_mbap_framing() {
    let text = config("tls = true", &tag(GOOD_TAG));
    assert!(problem_at(&text, "devices[0].tls_ca_file").contains("needs `tls_ca_file`"));
    let text = config(
        "tls = true\ntls_ca_file = \"/x.pem\"\nframing = \"rtu\"",
        &tag(GOOD_TAG),
    );
    assert!(problem_at(&text, "devices[0].framing").contains("MBAP"));
    let serial = format!(
        "{SERVICE}\n[[devices]]\nid = \"dev\"\nserial = \"/dev/ttyUSB0\"\ntls = true\ntls_ca_file = \"/x.pem\"\n{}",
        tag(GOOD_TAG)
    );
    assert!(problem_at(&serial, "devices[0].tls").contains("needs `address`"));
}

#[test]
fn tls_keys_without_tls_and_bad_names_are_refused() {
    let text = config("tls_server_name = \"plc\"", &tag(GOOD_TAG));
    assert!(problem_at(&text, "devices[0].tls_server_name").contains("without `tls = true`"));
    let text = config(
        "tls = true\ntls_ca_file = \"/x.pem\"\ntls_server_name = \"not a name\"",
        &tag(GOOD_TAG),
    );
    assert!(problem_at(&text, "devices[0].tls_server_name").contains("\"not a name\""));
    let text = config("tls = true\ntls_key_file = \"/k.pem\"", &tag(GOOD_TAG));
    assert!(problem_at(&text, "devices[0].tls_cert_file").contains("needs `tls_cert_file`"));
}

//! Rules for `[[devices]]` and `[[devices.tags]]`.

use super::{assert_valid, config, problem_at, tag, GOOD_TAG, SERVICE};

#[test]
fn ids_must_be_letters_digits_dash_underscore() {
    let text = config("", &tag(GOOD_TAG)).replace("id = \"plant\"", "id = \"plant.1\"");
    assert!(problem_at(&text, "service.id").contains("\"plant.1\" is not allowed"));
    let text = config("", &tag(GOOD_TAG)).replace("id = \"dev\"", "id = \"\"");
    problem_at(&text, "devices[0].id");
    assert_valid(&config("", &tag(GOOD_TAG)).replace("id = \"dev\"", "id = \"Press_01-a\""));
}

#[test]
fn device_ids_may_not_start_with_an_underscore_the_service_s_own_subjects_do() {
    let text = config("", &tag(GOOD_TAG)).replace("id = \"dev\"", "id = \"_gaps\"");
    assert!(problem_at(&text, "devices[0].id").contains("reserved for the service's own"));
    assert_valid(&config("", &tag(GOOD_TAG)).replace("id = \"dev\"", "id = \"dev_1\""));
}

#[test]
fn the_shipped_placeholder_id_is_refused_with_how_to_pick_one() {
    for placeholder in ["CHANGE-ME", "change-me"] {
        let text = config("", &tag(GOOD_TAG))
            .replace("id = \"plant\"", &format!("id = \"{placeholder}\""));
        let problem = problem_at(&text, "service.id");
        assert!(problem.contains("placeholder"), "{problem}");
        assert!(problem.contains("hostname"), "{problem}");
    }
}

#[test]
fn replaces_must_be_an_installation_id() {
    let text = format!(
        "{SERVICE}replaces = \"not an id\"\n{}",
        &config("", &tag(GOOD_TAG))[SERVICE.len()..]
    );
    assert!(problem_at(&text, "service.replaces").contains("installation id"));
    let text = format!(
        "{SERVICE}replaces = \"3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b\"\n{}",
        &config("", &tag(GOOD_TAG))[SERVICE.len()..]
    );
    assert_valid(&text);
}

#[test]
fn device_ids_must_be_unique() {
    let mut text = config("", &tag(GOOD_TAG));
    text.push_str(&format!(
        "[[devices]]\nid = \"dev\"\naddress = \"h:502\"\n{}",
        tag(GOOD_TAG)
    ));
    assert!(problem_at(&text, "devices[1].id").contains("already used at devices[0].id"));
}

#[test]
fn tag_names_must_be_valid_and_unique_within_a_device_only() {
    let text = config("", &format!("{}{}", tag(GOOD_TAG), tag(GOOD_TAG)));
    assert!(problem_at(&text, "devices[0].tags[1].name")
        .contains("already used at devices[0].tags[0].name"));
    let text = config("", &tag(&GOOD_TAG.replace("\"t\"", "\"oil-temp\"")));
    assert!(problem_at(&text, "devices[0].tags[0].name").contains("\"oil-temp\""));
    let mut text = config("", &tag(GOOD_TAG));
    text.push_str(&format!(
        "[[devices]]\nid = \"other\"\naddress = \"h:502\"\n{}",
        tag(GOOD_TAG)
    ));
    assert_valid(&text);
}

#[test]
fn registers_must_end_within_65535() {
    let f32_at = |address: u32| {
        tag(&format!(
            "name = \"t\"\nregister = \"input\"\naddress = {address}\ntype = \"f32\""
        ))
    };
    assert!(
        problem_at(&config("", &f32_at(65535)), "devices[0].tags[0].address").contains("0..=65534")
    );
    assert_valid(&config("", &f32_at(65534)));
    let string = tag(
        "name = \"s\"\nregister = \"holding\"\naddress = 65530\ntype = \"string\"\nlength = 10",
    );
    problem_at(&config("", &string), "devices[0].tags[0].address");
}

#[test]
fn bit_only_with_register_bools_and_0_to_15() {
    let bit = |register: &str, kind: &str, bit: u32| {
        tag(&format!(
            "name = \"b\"\nregister = \"{register}\"\naddress = 0\ntype = \"{kind}\"\nbit = {bit}"
        ))
    };
    assert!(problem_at(
        &config("", &bit("coil", "bool", 1)),
        "devices[0].tags[0].bit"
    )
    .contains("coil"));
    assert!(problem_at(
        &config("", &bit("holding", "u16", 1)),
        "devices[0].tags[0].bit"
    )
    .contains("type = \"bool\""));
    assert!(problem_at(
        &config("", &bit("input", "bool", 16)),
        "devices[0].tags[0].bit"
    )
    .contains("0..=15"));
    assert_valid(&config("", &bit("input", "bool", 15)));
}

#[test]
fn bool_from_a_register_needs_bit() {
    let text = config(
        "",
        &tag("name = \"b\"\nregister = \"holding\"\naddress = 0\ntype = \"bool\""),
    );
    assert!(problem_at(&text, "devices[0].tags[0].bit").contains("needs `bit"));
}

#[test]
fn coils_and_discrete_inputs_are_bool() {
    let text = config(
        "",
        &tag("name = \"c\"\nregister = \"discrete\"\naddress = 0\ntype = \"u16\""),
    );
    assert!(problem_at(&text, "devices[0].tags[0].type").contains("\"u16\" is not allowed"));
}

#[test]
fn length_only_with_and_required_for_strings() {
    let text = config("", &tag(&format!("{GOOD_TAG}\nlength = 2")));
    assert!(problem_at(&text, "devices[0].tags[0].length").contains("only with type = \"string\""));
    let text = config(
        "",
        &tag("name = \"s\"\nregister = \"holding\"\naddress = 0\ntype = \"string\""),
    );
    assert!(problem_at(&text, "devices[0].tags[0].length").contains("needs `length`"));
    let text = config(
        "",
        &tag("name = \"s\"\nregister = \"holding\"\naddress = 0\ntype = \"string\"\nlength = 0"),
    );
    problem_at(&text, "devices[0].tags[0].length");
}

#[test]
fn scale_only_on_numbers_and_finite() {
    let text = config(
        "",
        &tag("name = \"c\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\nscale = 2.0"),
    );
    assert!(problem_at(&text, "devices[0].tags[0].scale").contains("numeric types only"));
    let text = config("", &tag(&format!("{GOOD_TAG}\noffset = nan")));
    assert!(problem_at(&text, "devices[0].tags[0].offset").contains("finite"));
}

#[test]
fn exactly_one_of_address_and_serial() {
    let both = config("serial = \"/dev/ttyUSB0\"", &tag(GOOD_TAG));
    assert!(problem_at(&both, "devices[0].serial").contains("not both"));
    let neither = format!("{SERVICE}[[devices]]\nid = \"d\"\n{}", tag(GOOD_TAG));
    assert!(problem_at(&neither, "devices[0].address").contains("needs `address"));
    let bad = config("", &tag(GOOD_TAG)).replace("127.0.0.1:502", "127.0.0.1");
    assert!(problem_at(&bad, "devices[0].address").contains("host:port"));
}

#[test]
fn serial_settings_must_be_sane_and_only_on_serial_devices() {
    let serial = format!(
        "{SERVICE}[[devices]]\nid = \"d\"\nserial = \"/dev/ttyUSB0\"\nbaud_rate = 0\ndata_bits = 9\nstop_bits = 3\n{}",
        tag(GOOD_TAG)
    );
    problem_at(&serial, "devices[0].baud_rate");
    assert!(problem_at(&serial, "devices[0].data_bits").contains("5, 6, 7 or 8"));
    assert!(problem_at(&serial, "devices[0].stop_bits").contains("1 or 2"));
    let tcp = config("parity = \"even\"", &tag(GOOD_TAG));
    assert!(problem_at(&tcp, "devices[0].parity").contains("Modbus TCP device"));
    let ok = format!(
        "{SERVICE}[[devices]]\nid = \"d\"\nserial = \"/dev/ttyUSB0\"\nbaud_rate = 9600\nparity = \"even\"\n{}",
        tag(GOOD_TAG)
    );
    assert_valid(&ok);
}

#[test]
fn unit_is_0_to_247() {
    assert!(
        problem_at(&config("unit = 248", &tag(GOOD_TAG)), "devices[0].unit").contains("0..=247")
    );
    assert_valid(&config("unit = 247", &tag(GOOD_TAG)));
    assert_valid(&config("unit = 0", &tag(GOOD_TAG)));
}

#[test]
fn max_registers_per_request_is_125_for_registers_2000_for_bits() {
    let coil = tag("name = \"c\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"");
    problem_at(
        &config("max_registers_per_request = 126", &tag(GOOD_TAG)),
        "devices[0].max_registers_per_request",
    );
    problem_at(
        &config("max_registers_per_request = 0", &tag(GOOD_TAG)),
        "devices[0].max_registers_per_request",
    );
    assert_valid(&config("max_registers_per_request = 2000", &coil));
    problem_at(
        &config("max_registers_per_request = 2001", &coil),
        "devices[0].max_registers_per_request",
    );
}

#[test]
fn a_tag_must_fit_in_one_request() {
    let text = config(
        "max_registers_per_request = 2",
        &tag("name = \"w\"\nregister = \"holding\"\naddress = 0\ntype = \"u64\""),
    );
    assert!(problem_at(&text, "devices[0].tags[0].type").contains("max_registers_per_request = 2"));
}

#[test]
fn a_device_needs_tags() {
    assert!(problem_at(&config("", ""), "devices[0].tags").contains("at least one"));
}

#[test]
fn addresses_beyond_u16_are_refused_with_the_range() {
    let text = config(
        "",
        &tag("name = \"t\"\nregister = \"holding\"\naddress = 70000\ntype = \"u16\""),
    );
    assert!(problem_at(&text, "devices[0].tags[0].address")
        .contains("`70000`, expected an integer 0..=65535"));
    let text = config(
        "",
        &tag("name = \"b\"\nregister = \"holding\"\naddress = 0\ntype = \"bool\"\nbit = 300"),
    );
    assert!(problem_at(&text, "devices[0].tags[0].bit").contains("expected a bit number 0..=15"));
}

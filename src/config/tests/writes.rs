//! Setpoints: `writable`, `min`, `max` of a tag and `[writes]` (issue 21).

use std::time::Duration;

use super::{assert_valid, check, config, problem_at, problems, tag, GOOD_TAG};

#[test]
fn writes_are_off_by_default_with_the_contract_defaults() {
    let s = check(&config("", &tag(GOOD_TAG))).expect("valid");
    assert!(!s.writes.enabled);
    assert_eq!(s.writes.subject_prefix, "setpoint");
    assert_eq!(s.writes.rate_per_tag, Duration::from_secs(1));
    assert_eq!(s.writes.timeout, Duration::from_secs(2));
    assert!(!s.has_writable_tags());
}

#[test]
fn a_writable_numeric_tag_with_its_range_and_writes_section_parse() {
    let text = format!(
        "{}\n[writes]\nenabled = true\nsubject_prefix = \"plant.set\"\nrate_per_tag = \"250ms\"\ntimeout = \"3s\"\n",
        config("", &tag(&format!("{GOOD_TAG}\nwritable = true\nmin = 0.0\nmax = 100.0")))
    );
    assert_valid(&text);
    let s = check(&text).expect("valid");
    assert!(s.writes.enabled && s.has_writable_tags());
    assert_eq!(
        (s.devices[0].tags[0].min, s.devices[0].tags[0].max),
        (Some(0.0), Some(100.0))
    );
    assert_eq!(s.writes.subject("plant", "dev"), "plant.set.plant.dev");
}

#[test]
fn a_writable_number_needs_min_and_max_and_min_below_max() {
    let text = config("", &tag(&format!("{GOOD_TAG}\nwritable = true")));
    assert!(problem_at(&text, "devices[0].tags[0].min").contains("needs `min` and `max`"));
    assert!(problem_at(&text, "devices[0].tags[0].max").contains("needs `min` and `max`"));
    let text = config(
        "",
        &tag(&format!(
            "{GOOD_TAG}\nwritable = true\nmin = 5.0\nmax = 5.0"
        )),
    );
    assert!(problem_at(&text, "devices[0].tags[0].min").contains("less than max"));
}

#[test]
fn min_and_max_must_fit_the_type_after_scale() {
    // u16 with scale 0.1: 0.0 ..= 6553.5
    let text = config(
        "",
        &tag(&format!(
            "{GOOD_TAG}\nscale = 0.1\nwritable = true\nmin = -1.0\nmax = 7000.0"
        )),
    );
    assert!(problem_at(&text, "devices[0].tags[0].min").contains("0..=6553.5"));
    assert!(problem_at(&text, "devices[0].tags[0].max").contains("0..=6553.5"));
}

#[test]
fn input_registers_and_discrete_inputs_cannot_be_writable() {
    let input = tag("name = \"i\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\nwritable = true\nmin = 0.0\nmax = 1.0");
    let discrete =
        tag("name = \"d\"\nregister = \"discrete\"\naddress = 0\ntype = \"bool\"\nwritable = true");
    let text = config("", &format!("{input}{discrete}"));
    assert!(
        problem_at(&text, "devices[0].tags[0].writable").contains("input registers are read-only")
    );
    assert!(
        problem_at(&text, "devices[0].tags[1].writable").contains("discrete inputs are read-only")
    );
}

#[test]
fn coils_bits_and_strings_are_writable_without_a_range_and_refuse_one() {
    let coil =
        tag("name = \"c\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\nwritable = true");
    let bit = tag("name = \"b\"\nregister = \"holding\"\naddress = 1\ntype = \"bool\"\nbit = 3\nwritable = true");
    let text = tag("name = \"s\"\nregister = \"holding\"\naddress = 2\ntype = \"string\"\nlength = 4\nwritable = true");
    assert_valid(&config("", &format!("{coil}{bit}{text}")));
    let ranged = tag("name = \"c\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\nwritable = true\nmax = 1.0");
    assert!(problem_at(&config("", &ranged), "devices[0].tags[0].max")
        .contains("only for numeric types"));
}

#[test]
fn min_and_max_without_writable_are_a_mistake() {
    let text = config("", &tag(&format!("{GOOD_TAG}\nmin = 0.0")));
    assert!(problem_at(&text, "devices[0].tags[0].min").contains("only with `writable = true`"));
}

#[test]
fn the_write_subject_must_lie_outside_the_stream() {
    let base = config("", &tag(GOOD_TAG));
    let text = format!(
        "{base}\n[nats]\nsubject_prefix = \"plant\"\n[writes]\nsubject_prefix = \"plant.set\"\n"
    );
    let p = problem_at(&text, "writes.subject_prefix");
    assert!(
        p.contains("outside the stream's subjects \"plant.>\""),
        "{p}"
    );
    let text = format!("{base}\n[writes]\nsubject_prefix = \"telemetry\"\n");
    assert!(problem_at(&text, "writes.subject_prefix").contains("\"telemetry.plant.dev\""));
    let text = format!("{base}\n[writes]\nsubject_prefix = \"set point\"\nrate_per_tag = \"0s\"\ntimeout = \"0s\"\n");
    let all = problems(&text);
    for key in [
        "writes.subject_prefix",
        "writes.rate_per_tag",
        "writes.timeout",
    ] {
        assert!(
            all.iter().any(|p| p.contains(&format!(" {key}: "))),
            "{key}: {all:#?}"
        );
    }
    assert_valid(&format!(
        "{base}\n[writes]\nsubject_prefix = \"telemetry_set\"\n"
    ));
}

#[test]
fn unknown_keys_in_writes_are_refused() {
    let text = format!("{}\n[writes]\nenable = true\n", config("", &tag(GOOD_TAG)));
    assert!(problem_at(&text, "writes.enable").contains("unknown field"));
}

//! Tag keys `poll_interval`, `deadband`, `max_silence` (issue 12).

use std::time::Duration;

use super::{assert_valid, check, config, problem_at, problems, tag, GOOD_TAG};

#[test]
fn tag_interval_deadband_and_heartbeat_parse() {
    let text = config(
        "poll_interval = \"1s\"",
        &tag(&format!(
            "{GOOD_TAG}\npoll_interval = \"250ms\"\ndeadband = 0.5\nmax_silence = \"1m\""
        )),
    );
    assert_valid(&text);
    let s = check(&text).expect("valid");
    let t = &s.devices[0].tags[0];
    assert_eq!(t.poll_interval, Some(Duration::from_millis(250)));
    assert_eq!(t.deadband, Some(0.5));
    assert_eq!(t.max_silence, Some(Duration::from_secs(60)));
}

#[test]
fn tag_poll_interval_must_be_longer_than_zero() {
    let text = config("", &tag(&format!("{GOOD_TAG}\npoll_interval = \"0s\"")));
    assert!(problem_at(&text, "devices[0].tags[0].poll_interval").contains("longer than zero"));
}

#[test]
fn deadband_is_at_least_zero_and_on_numbers_only() {
    let text = config("", &tag(&format!("{GOOD_TAG}\ndeadband = -1.0")));
    assert!(problem_at(&text, "devices[0].tags[0].deadband").contains("≥ 0"));
    let text = config(
        "",
        &tag("name = \"c\"\nregister = \"coil\"\naddress = 0\ntype = \"bool\"\ndeadband = 1.0"),
    );
    assert!(problem_at(&text, "devices[0].tags[0].deadband").contains("numeric types only"));
    assert_valid(&config("", &tag(&format!("{GOOD_TAG}\ndeadband = 0.0"))));
}

#[test]
fn max_silence_is_at_least_the_tags_poll_interval() {
    // the device's interval when the tag has none
    let text = config(
        "poll_interval = \"5s\"",
        &tag(&format!("{GOOD_TAG}\nmax_silence = \"2s\"")),
    );
    let p = problem_at(&text, "devices[0].tags[0].max_silence");
    assert!(p.contains("\"2s\"") && p.contains("\"5s\""), "{p}");
    // the tag's own interval when it has one
    let text = config(
        "poll_interval = \"5s\"",
        &tag(&format!(
            "{GOOD_TAG}\npoll_interval = \"100ms\"\nmax_silence = \"2s\""
        )),
    );
    assert_valid(&text);
    // a string tag may have a heartbeat (sent on change or heartbeat)
    let text = config(
        "",
        &tag("name = \"s\"\nregister = \"holding\"\naddress = 0\ntype = \"string\"\nlength = 4\nmax_silence = \"10s\""),
    );
    assert_valid(&text);
}

#[test]
fn every_reporting_problem_is_listed_at_once() {
    let text = config(
        "",
        &format!(
            "{}{}",
            tag(&format!("{GOOD_TAG}\ndeadband = -2.0\nmax_silence = \"10ms\"")),
            tag("name = \"u\"\nregister = \"holding\"\naddress = 1\ntype = \"u16\"\npoll_interval = \"0ms\"")
        ),
    );
    let all = problems(&text);
    for path in [
        "devices[0].tags[0].deadband",
        "devices[0].tags[0].max_silence",
        "devices[0].tags[1].poll_interval",
    ] {
        assert!(
            all.iter().any(|p| p.contains(&format!(" {path}: "))),
            "{path} missing in {all:#?}"
        );
    }
}

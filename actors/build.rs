//! Refuses the test-only features in a build with the release profile.
//!
//! `fault-injection` lets an unauthenticated `POST /fault/...` crash the
//! service, and `failpoints` makes spool calls fail on demand: neither may be
//! part of an installed binary. Keying on `debug_assertions` is not enough
//! (`CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true` turns them on in a release
//! build), so this script asks cargo for the profile itself: `PROFILE` is
//! `release` for the release profile and every profile inheriting from it,
//! whatever the environment says. Such a build stops here, before anything
//! is compiled.
//!
//! Otherwise it sets `cfg(ingestor_test_build)`, which the code behind the
//! features also requires (`fault.rs`, `lib.rs`): without this script, or
//! with one that did not run, the features do not compile either.

use std::process::ExitCode;

const TEST_ONLY: &[(&str, &str)] = &[
    ("CARGO_FEATURE_FAULT_INJECTION", "fault-injection"),
    ("CARGO_FEATURE_FAILPOINTS", "failpoints"),
];

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(ingestor_test_build)");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let debug_assertions = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some();
    let release = profile == "release" || !debug_assertions;
    let asked: Vec<&str> = TEST_ONLY
        .iter()
        .filter(|(var, _)| std::env::var_os(var).is_some())
        .map(|(_, name)| *name)
        .collect();
    if release && !asked.is_empty() {
        eprintln!(
            "error: the feature(s) {} of ingestor-actors are for test builds only \
             (fault-injection lets an HTTP request crash the service) and cannot be part of a \
             build with the release profile (PROFILE={profile}, debug assertions {})",
            asked.join(", "),
            if debug_assertions { "on" } else { "off" },
        );
        return ExitCode::FAILURE;
    }
    if !release {
        println!("cargo::rustc-cfg=ingestor_test_build");
    }
    ExitCode::SUCCESS
}

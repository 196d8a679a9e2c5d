//! The test-only features (`fault-injection`: `POST /fault/...` crashes the
//! service; `failpoints`: spool calls fail on demand) cannot be built with
//! the release profile, not even with debug assertions turned on from the
//! environment (they were the old guard's key, `not(debug_assertions)`).
//!
//! The guard is `actors/build.rs`. The quick cases build a stand-in package
//! that has this crate's two features and that very build script (and no
//! dependencies), with the real cargo, so each costs seconds; its library
//! does not compile unless the script set `cfg(ingestor_test_build)`, as
//! the real crate's features require. The case on the real workspace is
//! `#[ignore]`d: cargo runs our build script only after checking most
//! dependencies, ~10 min on 2 cores (`--ignored` to run it).

use std::path::Path;
use std::process::Command;

/// A package beside the real one: the features and `build.rs` of
/// `ingestor-actors`, a library that needs the script's cfg.
fn stand_in(dir: &Path) {
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs");
    let manifest = format!(
        "[package]\nname = \"guard-stand-in\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         build = {:?}\n\n[features]\nfault-injection = []\nfailpoints = []\n\n[workspace]\n",
        build.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "#[cfg(not(ingestor_test_build))]\ncompile_error!(\"no ingestor_test_build\");\n",
    )
    .unwrap();
}

/// Runs `cargo <args>` in `dir` with the release profile's debug assertions
/// forced on (as `CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true` in a shell);
/// returns (success, stderr).
fn cargo(dir: &Path, args: &[&str]) -> (bool, String) {
    let target = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .args(["--offline", "-j", "2"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target.path())
        .env("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_refused(dir: &Path, args: &[&str], feature: &str) {
    let (ok, err) = cargo(dir, args);
    assert!(!ok, "cargo {args:?} built with {feature}:\n{err}");
    assert!(
        err.contains(&format!(
            "the feature(s) {feature} of ingestor-actors are for test builds only"
        )) && err.contains("cannot be part of a build with the release profile"),
        "cargo {args:?} failed, but not at the guard:\n{err}"
    );
}

#[test]
fn release_profile_with_either_test_feature_is_refused_even_with_debug_assertions() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    for feature in ["fault-injection", "failpoints"] {
        assert_refused(
            dir.path(),
            &["build", "--release", "--features", feature],
            feature,
        );
        assert_refused(
            dir.path(),
            &["check", "--release", "--features", feature],
            feature,
        );
    }
    // The profile `bench` inherits from release: refused too.
    assert_refused(
        dir.path(),
        &[
            "build",
            "--profile",
            "bench",
            "--features",
            "fault-injection",
        ],
        "fault-injection",
    );
}

#[test]
fn dev_builds_get_the_test_cfg_and_release_builds_without_the_features_pass_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path());
    let (ok, err) = cargo(dir.path(), &["build", "--all-features"]);
    assert!(ok, "a dev build with both features must build:\n{err}");
    // Without a feature the release build goes through the script (but its
    // library, made to need the test cfg, does not compile: the script did
    // not set the cfg for a release build).
    let (ok, err) = cargo(dir.path(), &["build", "--release"]);
    assert!(!ok && err.contains("no ingestor_test_build"), "{err}");
    assert!(!err.contains("are for test builds only"), "{err}");
}

#[test]
#[ignore = "checks the real workspace with the release profile: ~10 min on 2 cores"]
fn release_build_of_the_real_service_with_fault_injection_is_refused() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let args = [
        "build",
        "--release",
        "-p",
        "ingestor",
        "--features",
        "fault-injection",
    ];
    assert_refused(&workspace, &args, "fault-injection");
}

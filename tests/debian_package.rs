//! The Debian package, as `apt install ./ingestor_*.deb` would get it: built
//! with `cargo deb`, unpacked with `dpkg-deb`, its files, modes, conffiles and
//! maintainer scripts checked, the packaged binary run on the packaged
//! config, and the unit verified with `systemd-analyze`.
//!
//! Which package: `$INGESTOR_DEB` when set (`scripts/package.sh` builds the
//! release one and `scripts/test.sh` points here at it); otherwise this test
//! packages the test build's own binary with `cargo deb --no-build` under the
//! profile `deb-test`, so it costs no second build. The metadata, scripts
//! and layout are the same either way; only the binary's optimisation differs.
//! `cargo-deb` must be installed (`scripts/test.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The .deb to check: `$INGESTOR_DEB`, or one built here into `work`.
fn package(work: &Path) -> PathBuf {
    if let Some(deb) = std::env::var_os("INGESTOR_DEB") {
        return PathBuf::from(deb);
    }
    let bin_dir = work.join("target/deb-test");
    std::fs::create_dir_all(&bin_dir).expect("target dir");
    std::fs::copy(env!("CARGO_BIN_EXE_ingestor"), bin_dir.join("ingestor")).expect("copy binary");
    let out_dir = work.join("out");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args(["deb", "--no-build", "--profile", "deb-test", "--fast", "-o"])
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .current_dir(manifest_dir())
        .output()
        .expect("run cargo");
    assert!(
        built.status.success(),
        "cargo deb failed (not installed? scripts/test.sh installs it: \
         cargo install cargo-deb --locked):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = std::fs::read_dir(&out_dir)
        .expect("cargo deb output dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb in the output dir");
    deb
}

/// `dpkg-deb -c`: path -> (mode string, owner/group).
fn listing(deb: &Path) -> Vec<(String, String, String)> {
    let out = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5)?.trim_start_matches('.').trim_end_matches('/');
            Some((path.to_owned(), f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

/// One test, because building and unpacking the package is the cost; each
/// check says what failed.
#[test]
fn package_installs_binary_unit_user_config_and_dashboards() {
    let work = tempfile::tempdir().expect("temp dir");
    let deb = package(work.path());

    // Contents and modes, as dpkg will lay them down.
    let files = listing(&deb);
    let entry = |path: &str| {
        files
            .iter()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("{path} not in the package: {files:#?}"))
            .clone()
    };
    let unit_path = [
        "/usr/lib/systemd/system/ingestor.service",
        "/lib/systemd/system/ingestor.service",
    ]
    .into_iter()
    .find(|p| files.iter().any(|(f, _, _)| f == p))
    .unwrap_or_else(|| panic!("no systemd unit in the package: {files:#?}"));
    let expected = [
        ("/usr/bin/ingestor", "-rwxr-xr-x"),
        ("/etc/ingestor/ingestor.toml", "-rw-r-----"),
        (unit_path, "-rw-r--r--"),
        (
            "/usr/share/ingestor/grafana/dashboards/ingestor.json",
            "-rw-r--r--",
        ),
        (
            "/usr/share/ingestor/grafana/provisioning/dashboards/ingestor.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/ingestor/grafana/provisioning/datasources/prometheus.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/ingestor/prometheus/prometheus.yml",
            "-rw-r--r--",
        ),
        ("/usr/share/ingestor/prometheus/alerts.yml", "-rw-r--r--"),
        ("/usr/share/doc/ingestor/README.md", "-rw-r--r--"),
        ("/usr/share/doc/ingestor/reference.md", "-rw-r--r--"),
        ("/usr/share/doc/ingestor/copyright", "-rw-r--r--"),
    ];
    for (path, mode) in expected {
        let (_, got, owner) = entry(path);
        assert_eq!(got, mode, "{path}: mode");
        assert_eq!(
            owner, "0/0",
            "{path}: owner (the group comes from postinst)"
        );
    }
    assert!(
        !files.iter().any(|(p, _, _)| p.starts_with("/var/lib")),
        "the data dir is systemd's StateDirectory, not a packaged directory"
    );

    // Unpacked: the config and the unit are the repo's.
    let root = work.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        read(&root.join("etc/ingestor/ingestor.toml")),
        read(&manifest_dir().join("config/default.toml"))
    );
    let unit = root.join(unit_path.trim_start_matches('/'));
    let unit_text = read(&unit);
    assert_eq!(
        unit_text,
        read(&manifest_dir().join("config/ingestor.service"))
    );
    for line in [
        "ExecStart=/usr/bin/ingestor run -c /etc/ingestor/ingestor.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus=2",
        "StateDirectory=ingestor",
        "User=ingestor",
    ] {
        assert!(unit_text.lines().any(|l| l == line), "unit lacks {line}");
    }

    // The binary is stripped and runs: `check` on the packaged config.
    let binary = root.join("usr/bin/ingestor");
    let sections = run(Command::new("readelf").arg("-S").arg(&binary));
    let sections = String::from_utf8_lossy(&sections.stdout);
    for s in [".symtab", ".debug_info"] {
        assert!(!sections.contains(s), "binary not stripped: has {s}");
    }
    // As installed, the conffile's id is the placeholder: no two sites
    // start on one id. `check` refuses it and says how to pick one; with an
    // id picked the packaged config is valid.
    let packaged = root.join("etc/ingestor/ingestor.toml");
    let refused = Command::new(&binary)
        .args(["check", "--offline", "-c"])
        .arg(&packaged)
        .env_remove("INGESTOR_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("service.id") && stderr.contains("placeholder"),
        "{stderr}"
    );
    let picked = work.path().join("picked.toml");
    std::fs::write(
        &picked,
        read(&packaged).replace("id = \"CHANGE-ME\"", "id = \"site4-line2-ipc\""),
    )
    .unwrap();
    let check = run(Command::new(&binary)
        .args(["check", "--offline", "-c"])
        .arg(&picked)
        .env_remove("INGESTOR_CONFIG"));
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("valid") && stdout.contains("press-01"),
        "{stdout}"
    );

    // Control files: the config is a conffile; the scripts make the user,
    // set the config's group, enable the unit, and clean up on purge.
    let control = work.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert_eq!(
        read(&control.join("conffiles")).trim(),
        "/etc/ingestor/ingestor.toml"
    );
    let postinst = read(&control.join("postinst"));
    for needle in [
        "adduser --system",
        "dpkg-statoverride --update --add root ingestor 0640 \"$CONF\"",
        "deb-systemd-helper enable ingestor.service",
    ] {
        assert!(
            postinst.contains(needle),
            "postinst lacks {needle}:\n{postinst}"
        );
    }
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "postinst must not start the service before its config is edited"
    );
    let postrm = read(&control.join("postrm"));
    for needle in ["purge", "dpkg-statoverride --remove", "deluser --system"] {
        assert!(postrm.contains(needle), "postrm lacks {needle}:\n{postrm}");
    }
    for script in ["postinst", "postrm", "prerm"] {
        let path = control.join(script);
        if path.exists() {
            run(Command::new("sh").arg("-n").arg(&path));
        }
    }
    let fields = read(&control.join("control"));
    assert!(fields.contains("Package: ingestor"), "{fields}");
    assert!(
        fields.contains("adduser"),
        "Depends lacks adduser: {fields}"
    );

    verify_unit(&unit);
}

/// `systemd-analyze verify` where there is one: no complaint but the
/// binary missing from this (uninstalled) machine's /usr/bin.
fn verify_unit(unit: &Path) {
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
    else {
        eprintln!("systemd-analyze not available: unit not verified");
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !(l.contains("/usr/bin/ingestor") && l.contains("not executable")))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify {}:\n{}",
        unit.display(),
        complaints.join("\n")
    );
}

/// The unit's exposure by `systemd-analyze security --offline=yes` (printed),
/// at most 2.5 (it was 3.4 before `SystemCallFilter`, `ProtectProc`, ...).
/// The packaged unit is this file (checked above).
#[test]
fn unit_exposure_by_systemd_analyze_security_is_at_most_2_5() {
    let unit = manifest_dir().join("config/ingestor.service");
    let text = std::fs::read_to_string(&unit).expect("config/ingestor.service");
    for line in [
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RemoveIPC=yes",
        "LimitNOFILE=65536",
        // RTU on a Raspberry Pi, an i.MX board, an SC16IS7xx UART.
        "DeviceAllow=char-ttyAMA rw",
        "DeviceAllow=char-ttymxc rw",
        "DeviceAllow=char-ttySC rw",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks {line}");
    }
    let Ok(out) = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
    else {
        eprintln!("systemd-analyze not available: exposure not measured");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!("{overall}");
    let exposure: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the level: {overall}"));
    assert!(exposure <= 2.5, "exposure {exposure} > 2.5:\n{text}");
}

//! The shipped Prometheus files are valid and the alerts behave: `promtool
//! check rules`, `promtool check config` and `promtool test rules` (a firing
//! and a not-firing case for every alert, in `alerts_test.yml`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/prometheus")
}

/// Runs `promtool <args>` in `grafana/prometheus/`, failing with its output.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(prometheus_dir())
        .output()
        .expect("promtool (Debian package `prometheus`; scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// Alert names declared in alerts.yml.
fn alert_names() -> Vec<String> {
    let rules = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).expect("alerts.yml");
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn example_scrape_config_passes_promtool_check_config() {
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_fires_and_stays_quiet_as_alerts_test_expects() {
    promtool(&["test", "rules", "alerts_test.yml"]);
}

#[test]
fn every_alert_has_a_firing_and_a_not_firing_test_case() {
    let tests =
        std::fs::read_to_string(prometheus_dir().join("alerts_test.yml")).expect("alerts_test.yml");
    // Split into `- eval_time:` cases; each names its alert and either
    // expects alerts (`exp_labels`) or none (`exp_alerts: []`).
    let cases: Vec<&str> = tests.split("- eval_time:").skip(1).collect();
    let names = alert_names();
    assert!(names.len() >= 7, "alerts.yml lost alerts: {names:?}");
    for name in &names {
        let alert_line = format!("alertname: {name}\n");
        let of_alert = || cases.iter().filter(|c| c.contains(&alert_line));
        let firing = of_alert().any(|c| c.contains("exp_labels"));
        let quiet = of_alert().any(|c| c.contains("exp_alerts: []"));
        assert!(firing, "{name}: no test case where it fires");
        assert!(quiet, "{name}: no test case where it must stay quiet");
    }
}

#[test]
fn alerts_name_only_contract_metrics_and_carry_summary_and_runbook() {
    let rules = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).expect("alerts.yml");
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        for name in metric_names(expr) {
            assert!(
                CONTRACT.contains(&name.as_str()) || name == "up",
                "alerts.yml uses `{name}`, not a docs/reference.md §4 metric: {expr}"
            );
        }
    }
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    for block in blocks {
        let name = block.lines().next().unwrap_or_default().trim();
        assert!(block.contains("summary:"), "{name} has no summary");
        assert!(block.contains("runbook:"), "{name} has no runbook");
    }
}

/// docs/reference.md §4.
const CONTRACT: &[&str] = &[
    "ingestor_build_info",
    "ingestor_polls_total",
    "ingestor_poll_duration_seconds",
    "ingestor_modbus_requests_total",
    "ingestor_modbus_exceptions_total",
    "ingestor_device_up",
    "ingestor_poll_lag_seconds",
    "ingestor_batches_total",
    "ingestor_buffer_batches",
    "ingestor_buffer_disk_bytes",
    "ingestor_buffer_spilled_total",
    "ingestor_buffer_dropped_total",
    "ingestor_buffer_corrupt_total",
    "ingestor_buffer_set_aside_total",
    "ingestor_buffer_oldest_age_seconds",
    "ingestor_published_total",
    "ingestor_publish_errors_total",
    "ingestor_publish_ack_seconds",
    "ingestor_nats_connected",
    "ingestor_nats_reconnects_total",
    "ingestor_actor_restarts_total",
];

/// `ingestor_*` identifiers in a PromQL expression (histogram suffixes
/// folded onto their base name).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ingestor_") || *w == "up")
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

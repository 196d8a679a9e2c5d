//! `docs/reference.md` and the product agree, both ways: every config key
//! `config/default.toml` shows (set or in a comment), every metric the service
//! describes or exports, every label on a live series and every `/health`
//! field is in the reference; and everything the reference lists exists.
//!
//! The reference's tables are the contract's index: a config key is a first
//! column `` `section.key` `` in §2, a metric a first column `` `ingestor_...` ``
//! in §4, a `/health` field a first column in §5.
#[allow(unused_imports)] // NatsServer: this file needs no NATS server
mod service_rig;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use service_rig::*;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the reference between the heading starting `## {from}` and
/// the next `## ` heading.
fn section(from: &str) -> String {
    let doc = read("docs/reference.md");
    let start = doc
        .find(&format!("\n## {from}"))
        .unwrap_or_else(|| panic!("docs/reference.md has no section '## {from}'"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// First-column code spans of the table rows of a section (`| `x` | ...`).
fn first_column(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn reference_keys() -> BTreeSet<String> {
    first_column(&section("2. Config file"))
        .into_iter()
        .filter(|k| k.contains('.'))
        .collect()
}

fn reference_metrics() -> BTreeSet<String> {
    first_column(&section("4. Metrics"))
        .into_iter()
        .filter(|m| m.starts_with("ingestor_"))
        .collect()
}

/// The labels column (third) of a metric's row in §4.
fn reference_labels(metric: &str) -> BTreeSet<String> {
    let metrics = section("4. Metrics");
    let row = metrics
        .lines()
        .find(|l| l.starts_with(&format!("| `{metric}` |")))
        .unwrap_or_else(|| panic!("no row for {metric}"));
    let labels = row.split('|').nth(3).unwrap_or_default();
    labels
        .split(',')
        .filter_map(|part| part.trim().strip_prefix('`')?.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Every key `config/default.toml` shows, as `section.key`
/// (`devices.tags.name`): the keys it sets, and those in comments written
/// `#   key = value` (optional keys: auth, TLS, serial).
fn default_toml_keys() -> BTreeSet<String> {
    let text = read("config/default.toml");
    let mut keys = BTreeSet::new();
    let value: toml::Table = toml::from_str(&text).expect("default.toml parses");
    collect_keys("", &toml::Value::Table(value), &mut keys);
    let mut table = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let Some(comment) = line.strip_prefix('#') else {
            continue;
        };
        // `#   user = "..."  and  password = "..."`: every `key =` that starts
        // the comment or follows "and".
        let mut rest = comment;
        while let Some((key, after)) = leading_key(rest) {
            keys.insert(format!("{table}.{key}"));
            rest = match after.find(" and ") {
                Some(i) => &after[i + 5..],
                None => "",
            };
        }
    }
    keys
}

/// `  key = value...` -> `(key, value...)`.
fn leading_key(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_lowercase() || c == '_'))?;
    let (key, after) = s.split_at(end);
    let after = after.trim_start().strip_prefix('=')?;
    (!key.is_empty() && after.starts_with(' ')).then_some((key, after))
}

fn collect_keys(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Table(_) => collect_keys(&path, v, out),
                    toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                        if items.is_empty() {
                            out.insert(path.clone());
                        }
                        for item in items {
                            collect_keys(&path, item, out);
                        }
                    }
                    _ => {
                        out.insert(path);
                    }
                }
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// Every `"ingestor_..."` string literal in the service's and the actors'
/// sources: the metric names the code can record or describe.
fn described_metrics() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = BTreeSet::new();
    for dir in ["src", "actors/src"] {
        scan_dir(&root.join(dir), &mut names);
    }
    names
}

fn scan_dir(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            scan_dir(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source file");
            for piece in text.split("\"ingestor_").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if piece[name.len()..].starts_with('"') {
                    out.insert(format!("ingestor_{name}"));
                }
            }
        }
    }
}

fn missing(want: &BTreeSet<String>, have: &BTreeSet<String>) -> Vec<String> {
    want.difference(have).cloned().collect()
}

#[test]
fn reference_lists_every_key_default_toml_shows() {
    let shown = default_toml_keys();
    assert!(shown.contains("nats.creds_file") && shown.contains("devices.tags.bit"));
    let gaps = missing(&shown, &reference_keys());
    assert!(
        gaps.is_empty(),
        "keys in config/default.toml but not in docs/reference.md §2: {gaps:?}"
    );
}

/// Fails until the branches adding `[buffer].disk_min_free` and the tag keys
/// `poll_interval`, `deadband`, `max_silence` are merged: the reference
/// already lists the whole contract.
#[test]
fn every_key_in_the_reference_is_shown_in_default_toml() {
    let gaps = missing(&reference_keys(), &default_toml_keys());
    assert!(
        gaps.is_empty(),
        "keys in docs/reference.md §2 that config/default.toml does not show: {gaps:?}"
    );
}

#[test]
fn reference_lists_every_metric_the_code_names() {
    let named = described_metrics();
    assert!(named.contains("ingestor_published_total"), "{named:?}");
    let gaps = missing(&named, &reference_metrics());
    assert!(
        gaps.is_empty(),
        "metrics named in src/ or actors/src/ but not in docs/reference.md §4: {gaps:?}"
    );
}

/// Fails until the branches adding `ingestor_spool_errors_total`,
/// `ingestor_config_reloads_total` and `ingestor_values_suppressed_total`
/// are merged.
#[test]
fn every_metric_in_the_reference_is_named_in_the_code() {
    let gaps = missing(&reference_metrics(), &described_metrics());
    assert!(
        gaps.is_empty(),
        "metrics in docs/reference.md §4 that no code records: {gaps:?}"
    );
}

/// A running service (NATS away, so the disk/offline series are there too):
/// every series it exports, with its labels, and every `/health` field is in
/// the reference.
#[test]
fn live_metrics_labels_and_health_fields_are_in_the_reference() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let plant = Plant::new(&nowhere, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "both devices polled", || {
        service.metric("ingestor_polls_total{device=\"meter-07\",result=\"ok\"}") >= 1.0
            && service.metric("ingestor_polls_total{device=\"press-01\",result=\"ok\"}") >= 1.0
    });
    let text = service.get("/metrics").expect("/metrics answers");
    let documented = reference_metrics();
    let mut problems = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("ingestor_")) {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| documented.contains(*b))
            .unwrap_or(name);
        if !documented.contains(base) {
            problems.push(format!("metric {base} not documented"));
            continue;
        }
        let allowed = reference_labels(base);
        for pair in labels.trim_end_matches('}').split(',') {
            let Some((label, _)) = pair.split_once('=') else {
                continue;
            };
            if label != "le" && !allowed.contains(label) {
                problems.push(format!("{base}: label {label} not documented"));
            }
        }
    }
    let health = service.health();
    let fields = first_column(&section("5. /health"));
    for field in health.as_object().expect("/health is a JSON object").keys() {
        if !fields.contains(field) {
            problems.push(format!("/health field {field} not documented"));
        }
    }
    assert!(service.term(Duration::from_secs(15)).success());
    problems.dedup();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Fails until the branch adding the `spool` field to `/health` is merged.
#[test]
fn every_health_field_in_the_reference_is_served() {
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let plant = Plant::new(&nowhere, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(30), "/health answers", || {
        service.get("/health").is_some()
    });
    let health = service.health();
    assert!(service.term(Duration::from_secs(15)).success());
    let served: BTreeSet<String> = health
        .as_object()
        .expect("/health is a JSON object")
        .keys()
        .cloned()
        .collect();
    let gaps = missing(&first_column(&section("5. /health")), &served);
    assert!(
        gaps.is_empty(),
        "/health fields in docs/reference.md §5 that /health does not serve: {gaps:?}"
    );
}

/// Every subcommand `ingestor --help` lists has a row in §1.
#[test]
fn reference_lists_every_command() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .arg("--help")
        .output()
        .expect("run ingestor --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let commands = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(commands.contains(&"run".to_owned()), "{help}");
    let documented = section("1. Command line");
    for c in commands {
        assert!(
            documented.contains(&format!("`ingestor {c}")),
            "ingestor {c} is not in docs/reference.md §1"
        );
    }
}

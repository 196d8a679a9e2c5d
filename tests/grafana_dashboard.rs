//! The shipped dashboard works against a real Prometheus: every PromQL query
//! of every panel (template variables substituted) parses and returns data
//! from a Prometheus scraping a live `/metrics`. A panel that would say
//! "No data" fails the test with its title.
//!
//! The scrape target is a parameter of [`assert_every_dashboard_query_returns_data`].
//! By default the test serves the real telemetry code with every metric
//! recorded (as a running service would); set `INGESTOR_METRICS_TARGET=host:port`
//! to check a running `ingestor` (e.g. `ingestor demo`) instead.

#[allow(dead_code)]
mod metrics_fixture;
mod service_rig;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use metrics_fixture::http::Health;
use metrics_fixture::{contract_metrics, MetricsServer};

/// How long Prometheus gets to come up and collect a few scrapes.
const DEADLINE: Duration = Duration::from_secs(60);

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn dashboard() -> Value {
    let path = repo_path("grafana/dashboards/ingestor.json");
    let text = std::fs::read_to_string(&path).expect("grafana/dashboards/ingestor.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A query of a panel: (panel title, refId, PromQL as written).
struct PanelQuery {
    title: String,
    ref_id: String,
    expr: String,
}

/// Every panel's queries, rows and nested panels included.
fn panel_queries(dashboard: &Value) -> Vec<PanelQuery> {
    fn walk(panels: &Value, out: &mut Vec<PanelQuery>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("<untitled>");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(PanelQuery {
                        title: title.to_owned(),
                        ref_id: target["refId"].as_str().unwrap_or("?").to_owned(),
                        expr: expr.to_owned(),
                    });
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Grafana's variables as Prometheus sees them after substitution.
fn substitute(expr: &str, instance: &str) -> String {
    let out = expr
        .replace("${__rate_interval}", "1m")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("${device}", ".*")
        .replace("$device", ".*");
    assert!(!out.contains('$'), "unsubstituted variable in {expr}");
    out
}

/// `ingestor_*` metric names in a PromQL expression, histogram suffixes
/// folded onto their base name.
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ingestor_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

/// A Prometheus server of our own: tempdir storage, a free loopback port,
/// scraping `target` every second. Killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let rules = repo_path("grafana/prometheus/alerts.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [\"{}\"]\n\
                 scrape_configs:\n  - job_name: ingestor\n    \
                 static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package `prometheus`; scripts/test.sh installs it)");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            agent,
            _dir: dir,
        }
    }

    /// `GET /api/v1/<path>` with query parameters; the `data` member, or
    /// Prometheus's error text.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let mut req = self.agent.get(&format!("{}/api/v1/{path}", self.url));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().map_err(|e| format!("request failed: {e}"))?;
        let body: Value = resp
            .body_mut()
            .read_json()
            .map_err(|e| format!("not JSON: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query's result samples.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr)])?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") | Some("string") => Ok(vec![data["result"].clone()]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// Waits until Prometheus answers and has scraped `target` a few times.
    fn wait_for_scrapes(&mut self, target: &str) {
        let start = Instant::now();
        let enough =
            format!(r#"count_over_time(up{{job="ingestor",instance="{target}"}}[1m]) >= 4"#);
        let up = format!(r#"up{{job="ingestor",instance="{target}"}} == 1"#);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited early: {status}");
            }
            let scraped = self.query(&enough).map(|r| !r.is_empty()).unwrap_or(false);
            let is_up = self.query(&up).map(|r| !r.is_empty()).unwrap_or(false);
            if scraped && is_up {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "prometheus at {} did not scrape {target} successfully within {DEADLINE:?}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when every sample value is NaN (Grafana draws nothing).
fn all_nan(samples: &[Value]) -> bool {
    let value_of = |s: &Value| -> Option<String> {
        s.get("value")
            .and_then(|v| v.get(1))
            .or_else(|| s.get(1))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    samples
        .iter()
        .all(|s| value_of(s).is_some_and(|v| v == "NaN"))
}

/// Starts a Prometheus scraping `target` (`host:port` serving `/metrics`)
/// and runs every dashboard query and template-variable query through it.
/// Fails naming every panel whose query errs or returns nothing.
fn assert_every_dashboard_query_returns_data(target: &str) {
    let mut prometheus = Prometheus::start(target);
    prometheus.wait_for_scrapes(target);
    let dashboard = dashboard();
    let mut failures = Vec::new();

    for q in panel_queries(&dashboard) {
        let expr = substitute(&q.expr, target);
        match prometheus.query(&expr) {
            Err(e) => failures.push(format!(
                "panel {:?} ({}): {e}\n    {expr}",
                q.title, q.ref_id
            )),
            Ok(r) if r.is_empty() => failures.push(format!(
                "panel {:?} ({}) returns nothing (\"No data\")\n    {expr}",
                q.title, q.ref_id
            )),
            Ok(r) if all_nan(&r) => failures.push(format!(
                "panel {:?} ({}) returns only NaN\n    {expr}",
                q.title, q.ref_id
            )),
            Ok(_) => {}
        }
    }

    // Template variables: `label_values(<selector>, <label>)` must list values.
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(def) = var["definition"].as_str() else {
            continue;
        };
        let name = var["name"].as_str().unwrap_or("?");
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: unsupported query {def}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let selector = substitute(selector.trim(), target);
        let path = format!("label/{}/values", label.trim());
        match prometheus.api(&path, &[("match[]", &selector)]) {
            Ok(values) if values.as_array().is_some_and(|v| !v.is_empty()) => {}
            Ok(_) => failures.push(format!("variable ${name} lists no values: {def}")),
            Err(e) => failures.push(format!("variable ${name}: {e}: {def}")),
        }
    }

    assert!(
        failures.is_empty(),
        "{} dashboard queries fail against Prometheus scraping {target}:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// The real thing: `ingestor run` polling `ingestor simulate`, publishing to
/// a nats-server the test started, scraped by a real Prometheus.
#[test]
fn every_dashboard_panel_shows_data_from_the_running_service() {
    let nats = service_rig::NatsServer::start();
    let plant = service_rig::Plant::new(&nats.url(), "");
    let service = plant.start();
    service_rig::wait_until(Duration::from_secs(20), "data published", || {
        service.metric("ingestor_published_total") > 0.0
    });
    // The live exposition is clean for Prometheus's own linter.
    let text = service.get("/metrics").expect("/metrics");
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs prometheus)");
    std::io::Write::write_all(lint.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics on the live service: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_every_dashboard_query_returns_data(&plant.metrics);
}

#[test]
fn every_dashboard_panel_shows_data_from_a_real_prometheus() {
    match std::env::var("INGESTOR_METRICS_TARGET") {
        Ok(target) => assert_every_dashboard_query_returns_data(&target),
        Err(_) => {
            let server = MetricsServer::start(Health::default());
            server.keep_recording(Duration::from_millis(200));
            assert_every_dashboard_query_returns_data(&server.addr.to_string());
        }
    }
}

#[test]
fn dashboard_uses_only_contract_metrics_and_covers_all_of_them() {
    let contract: BTreeSet<String> = contract_metrics().map(str::to_owned).collect();
    let mut used = BTreeSet::new();
    for q in panel_queries(&dashboard()) {
        for name in metric_names(&q.expr) {
            assert!(
                contract.contains(&name),
                "panel {:?} queries `{name}`, which is not in docs/reference.md §4: {}",
                q.title,
                q.expr
            );
            used.insert(name);
        }
    }
    let unused: Vec<_> = contract.difference(&used).collect();
    assert!(unused.is_empty(), "no panel shows {unused:?}");
}

#[test]
fn dashboard_queries_go_through_the_datasource_and_instance_variables() {
    let dashboard = dashboard();
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    let ds = var("datasource").expect("a `datasource` variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    assert!(var("instance").is_some(), "an `instance` variable");

    fn check_panels(panels: &Value, ids: &mut BTreeSet<i64>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("<untitled>");
            let id = panel["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("panel {title:?} has no id"));
            assert!(ids.insert(id), "panel id {id} ({title:?}) used twice");
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], "${datasource}",
                    "panel {title:?} must use the datasource variable"
                );
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{title:?}");
                assert!(
                    expr.contains("instance=~\"$instance\""),
                    "panel {title:?} ignores the instance variable: {expr}"
                );
            }
            check_panels(&panel["panels"], ids);
        }
    }
    check_panels(&dashboard["panels"], &mut BTreeSet::new());
}

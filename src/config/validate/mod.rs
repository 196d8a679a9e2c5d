//! The rules a config must follow beyond its types (docs/reference.md §2).
//!
//! Runs on whatever parsed, so a file with a type error in one device still
//! gets every other device checked. Each rule reports the key path, the
//! value and what is allowed; none stops the others.

mod device;
mod tls;
mod writes;

use std::net::SocketAddr;
use std::time::Duration;

use ingestor_actors::nats::{self, NatsProblemKind};
use ingestor_actors::settings::{
    BufferSettings, MetricsSettings, NatsSettings, ServiceSettings, SupervisionSettings,
};

use super::error::{ConfigError, KeyPath, Problem};
use super::parse::Parsed;

/// What `service.id` and device ids may be made of.
pub(super) const ID_CHARS: &str = "letters A-Z a-z, digits 0-9, '_' and '-' only, at least one";

/// Checks every rule on every piece that parsed, reporting into `out`.
pub(super) fn validate(parsed: &Parsed, out: &mut Vec<Problem>) {
    if let Some(s) = &parsed.service {
        service(s, out);
    }
    if let Some(n) = &parsed.nats {
        nats(n, out);
    }
    if let Some(b) = &parsed.buffer {
        buffer(b, out);
    }
    if let Some(m) = &parsed.metrics {
        metrics(m, out);
    }
    if let Some(s) = &parsed.supervision {
        supervision(s, out);
    }
    device::devices(&parsed.devices, out);
    writes::writes(parsed, out);
}

/// `[A-Za-z0-9_-]+`: service and device ids (they become NATS subject tokens).
pub(super) fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A string value as written in TOML.
pub(super) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// A duration value as written in the file.
pub(super) fn shown(d: Duration) -> String {
    quoted(&humantime::format_duration(d).to_string())
}

/// Reports `d` at `path` unless it is longer than zero.
pub(super) fn positive(d: Duration, path: KeyPath, out: &mut Vec<Problem>) {
    if d.is_zero() {
        out.push(Problem::invalid(
            path,
            shown(d),
            "a duration longer than zero, like \"500ms\" or \"1s\"",
        ));
    }
}

/// The `[service] id` the shipped config (and the Debian package's
/// conffile) carries: no two sites may publish under it, so `check` and
/// `run` refuse it until someone picks this PC's own.
pub(super) const PLACEHOLDER_ID: &str = "CHANGE-ME";

fn service(s: &ServiceSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("service");
    if !is_id(&s.id) {
        out.push(Problem::invalid(path.key("id"), quoted(&s.id), ID_CHARS));
    } else if s.id.eq_ignore_ascii_case(PLACEHOLDER_ID) {
        out.push(Problem::invalid(
            path.key("id"),
            quoted(&s.id),
            "this PC's own id, not the shipped placeholder: one that no other ingestor \
             publishing to this NATS uses, e.g. the host name (`hostname -s`) or \
             \"<site>-<line>-ipc\" (it names this PC's subjects, <prefix>.<id>.<device>)",
        ));
    }
    if let Some(replaces) = &s.replaces {
        if ingestor_actors::installation::Installation::parse(replaces).is_none() {
            out.push(Problem::invalid(
                path.key("replaces"),
                quoted(replaces),
                "the installation id of the PC this one replaces, as the conflict error \
                 names it (letters, digits and '-', at most 64)",
            ));
        }
    }
    if s.data_dir.as_os_str().is_empty() {
        out.push(Problem::invalid(
            path.key("data_dir"),
            "\"\"",
            "a directory path, like \"/var/lib/ingestor\"",
        ));
    }
}

/// `[nats]`: the rules live beside the client setup (`nats::check`), so
/// the service and the ConnectionMonitor accept the same settings.
fn nats(n: &NatsSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("nats");
    for problem in nats::check(n) {
        let mut at = path.key(problem.key);
        if let Some(i) = problem.index {
            at = at.index(i);
        }
        out.push(match problem.kind {
            NatsProblemKind::Invalid { value, allowed } => Problem::invalid(at, value, allowed),
            NatsProblemKind::Missing(text) => Problem::new(at, ConfigError::Missing(text)),
        });
    }
}

fn buffer(b: &BufferSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("buffer");
    if b.memory_batches == 0 {
        out.push(Problem::invalid(
            path.key("memory_batches"),
            0,
            "1 or more batches in the memory ring",
        ));
    }
    if b.disk_max.as_u64() == 0 {
        out.push(Problem::invalid(
            path.key("disk_max"),
            "\"0B\"",
            "a size larger than zero, like \"1GiB\"",
        ));
    }
}

fn metrics(m: &MetricsSettings, out: &mut Vec<Problem>) {
    if m.listen.parse::<SocketAddr>().is_err() {
        out.push(Problem::invalid(
            KeyPath::root().key("metrics").key("listen"),
            quoted(&m.listen),
            "an IP address and port, like \"127.0.0.1:9898\" or \"[::]:9898\"",
        ));
    }
}

fn supervision(s: &SupervisionSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("supervision");
    positive(s.within, path.key("within"), out);
    positive(s.backoff_min, path.key("backoff_min"), out);
    positive(s.backoff_max, path.key("backoff_max"), out);
    if s.backoff_min > s.backoff_max {
        out.push(Problem::invalid(
            path.key("backoff_min"),
            shown(s.backoff_min),
            format!("at most backoff_max ({})", shown(s.backoff_max)),
        ));
    }
}

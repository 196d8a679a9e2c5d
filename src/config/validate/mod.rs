//! The rules a config must follow beyond its types (docs/reference.md §2).
//!
//! Runs on whatever parsed, so a file with a type error in one device still
//! gets every other device checked. Each rule reports the key path, the
//! value and what is allowed; none stops the others.

mod device;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use async_nats::ServerAddr;
use ingestor_actors::settings::{
    BufferSettings, MetricsSettings, NatsMode, NatsSettings, ServiceSettings, SupervisionSettings,
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

fn service(s: &ServiceSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("service");
    if !is_id(&s.id) {
        out.push(Problem::invalid(path.key("id"), quoted(&s.id), ID_CHARS));
    }
    if s.data_dir.as_os_str().is_empty() {
        out.push(Problem::invalid(
            path.key("data_dir"),
            "\"\"",
            "a directory path, like \"/var/lib/ingestor\"",
        ));
    }
}

fn nats(n: &NatsSettings, out: &mut Vec<Problem>) {
    let path = KeyPath::root().key("nats");
    if n.servers.is_empty() {
        out.push(Problem::invalid(
            path.key("servers"),
            "[]",
            "at least one server, like \"nats://127.0.0.1:4222\"",
        ));
    }
    for (i, server) in n.servers.iter().enumerate() {
        if !is_server_url(server) {
            let allowed = "a nats:// or tls:// URL with a host, like \"nats://127.0.0.1:4222\"";
            out.push(Problem::invalid(
                path.key("servers").index(i),
                quoted(&ingestor_actors::credentials::redact_url(server)),
                allowed,
            ));
        }
    }
    if !is_subject(&n.subject_prefix) {
        let allowed = "dot-separated NATS tokens without spaces, '*' or '>', like \"telemetry\" or \"site1.telemetry\"";
        out.push(Problem::invalid(
            path.key("subject_prefix"),
            quoted(&n.subject_prefix),
            allowed,
        ));
    }
    if n.mode == NatsMode::Jetstream && !is_stream_name(&n.stream) {
        let allowed = "a JetStream stream name: not empty, no spaces, '.', '*', '>', '/' or '\\'";
        out.push(Problem::invalid(
            path.key("stream"),
            quoted(&n.stream),
            allowed,
        ));
    }
    if n.max_in_flight == 0 {
        out.push(Problem::invalid(
            path.key("max_in_flight"),
            0,
            "1 or more unacknowledged messages",
        ));
    }
    positive(n.ack_timeout, path.key("ack_timeout"), out);
    nats_auth(n, &path, out);
}

/// `nats://` or `tls://`, parsed as async-nats will parse it, with a host.
fn is_server_url(s: &str) -> bool {
    (s.starts_with("nats://") || s.starts_with("tls://"))
        && ServerAddr::from_str(s).is_ok_and(|addr| !addr.host().is_empty())
}

/// Dot-separated tokens, each non-empty, no whitespace or wildcards.
fn is_subject(s: &str) -> bool {
    s.split('.')
        .all(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c == '*' || c == '>'))
}

fn is_stream_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || ".*>/\\".contains(c))
}

/// One way to authenticate at most; user and password together; cert and key together.
fn nats_auth(n: &NatsSettings, path: &KeyPath, out: &mut Vec<Problem>) {
    let methods = [
        ("creds_file", n.creds_file.is_some()),
        ("nkey_seed_file", n.nkey_seed_file.is_some()),
        ("token", n.token.is_some()),
        ("user", n.user.is_some() || n.password.is_some()),
    ];
    let given: Vec<&str> = methods
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
    if let [first, rest @ ..] = given.as_slice() {
        for other in rest {
            out.push(Problem::invalid(
                path.key(other),
                format!("`{other}` together with `{first}`"),
                "one way to authenticate: creds_file, nkey_seed_file, token, or user + password",
            ));
        }
    }
    match (&n.user, &n.password) {
        (Some(_), None) => out.push(Problem::new(
            path.key("password"),
            ConfigError::Missing("`user` needs `password`".into()),
        )),
        (None, Some(_)) => out.push(Problem::new(
            path.key("user"),
            ConfigError::Missing("`password` needs `user`".into()),
        )),
        _ => {}
    }
    match (&n.cert_file, &n.key_file) {
        (Some(_), None) => out.push(Problem::new(
            path.key("key_file"),
            ConfigError::Missing("`cert_file` needs `key_file` (the client key)".into()),
        )),
        (None, Some(_)) => out.push(Problem::new(
            path.key("cert_file"),
            ConfigError::Missing("`key_file` needs `cert_file` (the client certificate)".into()),
        )),
        _ => {}
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

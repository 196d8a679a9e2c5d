//! The rules `[nats]` must follow beyond its types, checked in this one
//! place: the config file's validation turns each [`NatsProblem`] into a
//! problem at `nats.<key>`, and [`connect_options`](super::connect_options)
//! refuses settings that have any.

use std::fmt;
use std::str::FromStr;

use async_nats::ServerAddr;

use crate::credentials::redact_url;
use crate::settings::{NatsMode, NatsSettings};

/// One thing wrong with `[nats]`. Never fixed by retrying: the settings
/// have to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsProblem {
    /// The key under `[nats]` it is about (`servers`, `password`, ...).
    pub key: &'static str,
    /// Which entry, for a list (`servers`).
    pub index: Option<usize>,
    /// What is wrong.
    pub kind: NatsProblemKind,
}

/// What is wrong at a `[nats]` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsProblemKind {
    /// The value breaks a rule.
    Invalid {
        /// The value as written (strings quoted, credentials redacted).
        value: String,
        /// What the rule allows.
        allowed: String,
    },
    /// A key that another one needs is absent (the text says which).
    Missing(String),
}

impl NatsProblem {
    fn invalid(key: &'static str, value: impl Into<String>, allowed: impl Into<String>) -> Self {
        NatsProblem {
            key,
            index: None,
            kind: NatsProblemKind::Invalid {
                value: value.into(),
                allowed: allowed.into(),
            },
        }
    }

    fn missing(key: &'static str, text: &str) -> Self {
        NatsProblem {
            key,
            index: None,
            kind: NatsProblemKind::Missing(text.into()),
        }
    }

    /// `servers[index]` is not a NATS server address.
    pub(super) fn server(index: usize, url: &str) -> Self {
        NatsProblem {
            index: Some(index),
            ..NatsProblem::invalid(
                "servers",
                quoted(&redact_url(url)),
                "a nats:// or tls:// URL with a host, like \"nats://127.0.0.1:4222\"",
            )
        }
    }
}

impl fmt::Display for NatsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nats.{}", self.key)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        match &self.kind {
            NatsProblemKind::Invalid { value, allowed } => {
                write!(f, ": {value} is not allowed: {allowed}")
            }
            NatsProblemKind::Missing(text) => write!(f, ": missing: {text}"),
        }
    }
}

/// Every problem of `[nats]`, in key order; empty when the settings are
/// usable.
pub fn check(n: &NatsSettings) -> Vec<NatsProblem> {
    let mut out = Vec::new();
    if n.servers.is_empty() {
        out.push(NatsProblem::invalid(
            "servers",
            "[]",
            "at least one server, like \"nats://127.0.0.1:4222\"",
        ));
    }
    for (i, server) in n.servers.iter().enumerate() {
        if !is_server_url(server) {
            out.push(NatsProblem::server(i, server));
        }
    }
    if !is_subject(&n.subject_prefix) {
        out.push(NatsProblem::invalid(
            "subject_prefix",
            quoted(&n.subject_prefix),
            "dot-separated NATS tokens without spaces, '*' or '>', like \"telemetry\" or \"site1.telemetry\"",
        ));
    }
    if n.mode == NatsMode::Jetstream && !is_stream_name(&n.stream) {
        out.push(NatsProblem::invalid(
            "stream",
            quoted(&n.stream),
            "a JetStream stream name: not empty, no spaces, '.', '*', '>', '/' or '\\'",
        ));
    }
    // The JetStream context sizes a tokio semaphore with it, which panics
    // above MAX_PERMITS.
    if n.max_in_flight == 0 || n.max_in_flight > MAX_IN_FLIGHT {
        out.push(NatsProblem::invalid(
            "max_in_flight",
            n.max_in_flight.to_string(),
            "1 to 1048576 unacknowledged messages (256 to 1024 is the useful range)",
        ));
    }
    if n.ack_timeout.is_zero() {
        out.push(NatsProblem::invalid(
            "ack_timeout",
            quoted("0s"),
            "a duration longer than zero, like \"500ms\" or \"1s\"",
        ));
    }
    auth(n, &mut out);
    out
}

/// A string value as written in TOML.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// `nats://` or `tls://`, parsed as async-nats will parse it, with a host.
fn is_server_url(s: &str) -> bool {
    (s.starts_with("nats://") || s.starts_with("tls://"))
        && ServerAddr::from_str(s).is_ok_and(|addr| !addr.host().is_empty())
}

/// Dot-separated tokens, each non-empty, no whitespace or wildcards.
pub fn is_subject(s: &str) -> bool {
    s.split('.')
        .all(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c == '*' || c == '>'))
}

fn is_stream_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || ".*>/\\".contains(c))
}

/// One way to authenticate at most; user and password together; cert and key together.
fn auth(n: &NatsSettings, out: &mut Vec<NatsProblem>) {
    let methods = [
        ("creds_file", n.creds_file.is_some()),
        ("nkey_seed_file", n.nkey_seed_file.is_some()),
        ("token", n.token.is_some()),
        ("user", n.user.is_some() || n.password.is_some()),
    ];
    let given: Vec<&'static str> = methods
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
    if let [first, rest @ ..] = given.as_slice() {
        for other in rest {
            out.push(NatsProblem::invalid(
                other,
                format!("`{other}` together with `{first}`"),
                "one way to authenticate: creds_file, nkey_seed_file, token, or user + password",
            ));
        }
    }
    match (&n.user, &n.password) {
        (Some(_), None) => out.push(NatsProblem::missing("password", "`user` needs `password`")),
        (None, Some(_)) => out.push(NatsProblem::missing("user", "`password` needs `user`")),
        _ => {}
    }
    match (&n.cert_file, &n.key_file) {
        (Some(_), None) => out.push(NatsProblem::missing(
            "key_file",
            "`cert_file` needs `key_file` (the client key)",
        )),
        (None, Some(_)) => out.push(NatsProblem::missing(
            "cert_file",
            "`key_file` needs `cert_file` (the client certificate)",
        )),
        _ => {}
    }
}

/// The most unacknowledged messages `max_in_flight` may ask for: far
/// below tokio's `Semaphore::MAX_PERMITS` (which `Semaphore::new` panics
/// above), and more than any server acknowledges usefully.
pub(crate) const MAX_IN_FLIGHT: usize = 1 << 20;

const _: () = assert!(MAX_IN_FLIGHT <= tokio::sync::Semaphore::MAX_PERMITS);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys(s: &NatsSettings) -> Vec<String> {
        check(s)
            .iter()
            .map(|p| p.to_string().split(':').next().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn default_settings_have_no_problem() {
        assert_eq!(check(&NatsSettings::default()), vec![]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let s = NatsSettings {
            servers: vec!["nats://a:4222".into(), "http://u:pw@b:4222".into()],
            subject_prefix: "tele.*".into(),
            stream: "A.B".into(),
            max_in_flight: 0,
            ack_timeout: Duration::ZERO,
            token: Some("t".into()),
            user: Some("u".into()),
            cert_file: Some("c.pem".into()),
            ..NatsSettings::default()
        };
        assert_eq!(
            keys(&s),
            [
                "nats.servers[1]",
                "nats.subject_prefix",
                "nats.stream",
                "nats.max_in_flight",
                "nats.ack_timeout",
                "nats.user",
                "nats.password",
                "nats.key_file"
            ]
        );
        let shown = check(&s)[0].to_string();
        assert!(!shown.contains("pw"), "credentials redacted: {shown}");
    }

    #[test]
    fn max_in_flight_that_would_panic_the_semaphore_is_a_problem() {
        for bad in [
            usize::MAX,
            tokio::sync::Semaphore::MAX_PERMITS + 1,
            MAX_IN_FLIGHT + 1,
        ] {
            let s = NatsSettings {
                max_in_flight: bad,
                ..NatsSettings::default()
            };
            assert_eq!(keys(&s), ["nats.max_in_flight"], "{bad}");
        }
        let s = NatsSettings {
            max_in_flight: MAX_IN_FLIGHT,
            ..NatsSettings::default()
        };
        assert_eq!(check(&s), vec![]);
    }
}

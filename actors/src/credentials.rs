//! What the `[nats]` credentials may show, and where they are at risk.
//!
//! Invariants:
//! - user info inside a server URL (`nats://user:secret@host:4222`) never
//!   reaches a log line or a printed summary: everything that shows a server
//!   address shows [`redact_url`] of it;
//! - credentials (`token`, `user`/`password`, `creds_file`,
//!   `nkey_seed_file`, or user info in a URL) on a connection that is not
//!   sure to use TLS are reported by [`plaintext_warning`], at start and in
//!   `ingestor check`. It is a warning, not an error: a lab network may be
//!   fine with it, a plant network usually is not.
//! - a secret file (`creds_file`, `nkey_seed_file`, `[nats] key_file`, a
//!   device's `tls_key_file`) that others, or a group other than root's,
//!   may read is reported by [`secret_file_warnings`] at start, on every
//!   reload and in `ingestor check`, naming the file and the mode to set.

use crate::settings::{NatsSettings, Settings};

/// What stands in for the user info of a URL.
const HIDDEN: &str = "***";

/// `url` with any user name and password replaced by `***`
/// (`nats://***@host:4222`). A string that does not parse as a URL but holds
/// an `@` keeps only what follows the last `@`, so a malformed entry does not
/// leak either.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            // Both setters fail only for URLs without a host, which have no
            // user info to hide.
            let _ = parsed.set_password(None);
            let _ = parsed.set_username(HIDDEN);
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match url.rsplit_once('@') {
            Some((before, host)) => match before.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://{HIDDEN}@{host}"),
                None => format!("{HIDDEN}@{host}"),
            },
            None => url.to_owned(),
        },
    }
}

/// Every server of `[nats]`, redacted, comma-separated: for log lines and
/// summaries.
pub fn redacted_servers(settings: &NatsSettings) -> String {
    settings
        .servers
        .iter()
        .map(|s| redact_url(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A server URL that carries user info.
fn has_user_info(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(parsed) => !parsed.username().is_empty() || parsed.password().is_some(),
        Err(_) => url.contains('@'),
    }
}

/// The credentials `[nats]` configures, by key name.
fn configured_credentials(s: &NatsSettings) -> Vec<&'static str> {
    let mut found = Vec::new();
    if s.token.is_some() {
        found.push("token");
    }
    if s.user.is_some() || s.password.is_some() {
        found.push("user/password");
    }
    if s.creds_file.is_some() {
        found.push("creds_file");
    }
    if s.nkey_seed_file.is_some() {
        found.push("nkey_seed_file");
    }
    if s.servers.iter().any(|u| has_user_info(u)) {
        found.push("user info in a server URL");
    }
    found
}

/// The connection is sure to be encrypted: `tls_required`, or every server
/// is a `tls://` URL. (A `ca_file` alone only verifies a server that offers
/// TLS; it does not demand it.)
fn tls_guaranteed(s: &NatsSettings) -> bool {
    s.tls_required
        || (!s.servers.is_empty()
            && s.servers
                .iter()
                .all(|u| u.trim().to_ascii_lowercase().starts_with("tls://")))
}

/// A warning when `[nats]` sends credentials over a connection that may be
/// unencrypted; `None` when there are none or TLS is required.
pub fn plaintext_warning(s: &NatsSettings) -> Option<String> {
    let found = configured_credentials(s);
    if found.is_empty() || tls_guaranteed(s) {
        return None;
    }
    Some(format!(
        "[nats] credentials ({}) are configured but the connection to {} may be unencrypted: \
         anyone on the network path can read or replay them. Use tls:// server URLs or \
         tls_required = true (with ca_file for a private CA).",
        found.join(", "),
        redacted_servers(s)
    ))
}

/// A warning per secret file of `s` that is readable by more than the
/// service's user (see [`crate::tls::key_mode_warning`]), each naming its
/// key path. Blocking (a `stat` per file): call from a blocking thread.
pub fn secret_file_warnings(s: &Settings) -> Vec<String> {
    let nats = [
        ("nats.creds_file", &s.nats.creds_file),
        ("nats.nkey_seed_file", &s.nats.nkey_seed_file),
        ("nats.key_file", &s.nats.key_file),
    ];
    let nats = nats
        .into_iter()
        .filter_map(|(key, path)| Some((key.to_owned(), path.as_deref()?)));
    let devices = s
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| d.tls)
        .filter_map(|(i, d)| {
            Some((
                format!("devices[{i}].tls_key_file"),
                d.tls_key_file.as_deref()?,
            ))
        });
    nats.chain(devices)
        .filter_map(|(key, path)| crate::tls::key_mode_warning(&key, path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nats(servers: &[&str]) -> NatsSettings {
        NatsSettings {
            servers: servers.iter().map(|s| (*s).to_owned()).collect(),
            ..NatsSettings::default()
        }
    }

    #[test]
    fn url_with_user_and_password_shows_neither() {
        let shown = redact_url("nats://alice:s3cret@10.0.0.5:4222");
        assert_eq!(shown, "nats://***@10.0.0.5:4222");
        let shown = redact_url("tls://tokenvalue@nats.plant:4443");
        assert!(!shown.contains("tokenvalue"), "{shown}");
    }

    #[test]
    fn url_without_user_info_is_unchanged() {
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn unparsable_url_with_at_sign_leaks_nothing_before_it() {
        let shown = redact_url("nats://al ice:pw@@host:4222");
        assert!(
            !shown.contains("pw") && !shown.contains("al ice"),
            "{shown}"
        );
    }

    #[test]
    fn token_over_plain_nats_is_warned_about() {
        let s = NatsSettings {
            token: Some("t".into()),
            ..nats(&["nats://10.0.0.5:4222"])
        };
        let warning = plaintext_warning(&s).expect("a warning");
        assert!(warning.contains("token") && warning.contains("10.0.0.5"));
    }

    #[test]
    fn each_kind_of_credential_is_warned_about() {
        let base = nats(&["nats://h:4222"]);
        let cases = [
            NatsSettings {
                user: Some("u".into()),
                password: Some("p".into()),
                ..base.clone()
            },
            NatsSettings {
                creds_file: Some("/etc/x.creds".into()),
                ..base.clone()
            },
            NatsSettings {
                nkey_seed_file: Some("/etc/x.nk".into()),
                ..base.clone()
            },
            nats(&["nats://u:p@h:4222"]),
        ];
        for s in cases {
            let warning = plaintext_warning(&s).expect("a warning");
            assert!(!warning.contains("u:p"), "{warning}");
        }
    }

    #[test]
    fn credentials_with_tls_required_or_tls_urls_are_not_warned_about() {
        let s = NatsSettings {
            token: Some("t".into()),
            tls_required: true,
            ..nats(&["nats://h:4222"])
        };
        assert_eq!(plaintext_warning(&s), None);
        let s = NatsSettings {
            token: Some("t".into()),
            ..nats(&["tls://a:4222", "TLS://b:4222"])
        };
        assert_eq!(plaintext_warning(&s), None);
    }

    #[test]
    fn one_plain_server_in_a_tls_cluster_is_warned_about() {
        let s = NatsSettings {
            token: Some("t".into()),
            ..nats(&["tls://a:4222", "nats://b:4222"])
        };
        assert!(plaintext_warning(&s).is_some());
    }

    #[test]
    fn no_credentials_no_warning() {
        assert_eq!(plaintext_warning(&nats(&["nats://h:4222"])), None);
    }
}

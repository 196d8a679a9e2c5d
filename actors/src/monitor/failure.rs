//! A failed NATS connect, classified once, and said in one line that names
//! the cause and the key to fix; a failure that repeats is logged again
//! only when its cause changes, or every [`REPEAT_EVERY`] with a count.
//!
//! The cause comes from async-nats' error kind where it has one (DNS,
//! authorization, TLS setup) and from the error text where it does not: a
//! certificate that does not verify reaches us as an I/O error whose text
//! says `invalid peer certificate: UnknownIssuer`.

use std::time::{Duration, Instant};

use async_nats::{ConnectError, ConnectErrorKind};
use tracing::{debug, error, warn};

/// How often a failure that goes on is logged again (with its count).
pub(super) const REPEAT_EVERY: Duration = Duration::from_secs(300);

/// Why a connect failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// Nothing listens at the address (connection refused).
    Refused,
    /// The server's name does not resolve.
    Dns,
    /// The server's certificate does not verify (unknown CA, wrong name, expired).
    TlsCertificate,
    /// TLS failed otherwise (no TLS on the server, a client certificate refused, ...).
    TlsHandshake,
    /// The server refused our credentials.
    Authorization,
    /// The server denies the user a permission it needs.
    Permission,
    /// No answer within the connect timeout.
    Timeout,
    /// Another network or protocol error.
    Unreachable,
    /// `[nats]` cannot be turned into a client (a creds file that does not parse).
    Setup,
}

impl Cause {
    /// The line's start: what happened, and what to check.
    fn said(self) -> &'static str {
        match self {
            Cause::Refused => "NATS refused the connection (nothing listens there): check that nats-server runs at [nats] servers",
            Cause::Dns => "cannot resolve the NATS server's name: check the host names in [nats] servers and DNS",
            Cause::TlsCertificate => "the NATS server's TLS certificate does not verify: check [nats] ca_file (the CA that signed it) and that [nats] servers names a host the certificate is for",
            Cause::TlsHandshake => "TLS with NATS failed: check [nats] tls_required, cert_file / key_file and tls:// in [nats] servers against the server's tls block",
            Cause::Authorization => "NATS refused our credentials (authorization violation): check [nats] user + password / token / creds_file / nkey_seed_file",
            Cause::Permission => "NATS denies a permission the service needs: fix the user's permissions on the server (publish on the stream's subjects and its API)",
            Cause::Timeout => "connecting to NATS timed out: check [nats] servers, the network and firewalls",
            Cause::Unreachable => "cannot reach NATS: check [nats] servers and the network",
            Cause::Setup => "[nats] cannot be used",
        }
    }

    /// A configuration problem (logged at ERROR), not a server that is away.
    fn is_config(self) -> bool {
        matches!(
            self,
            Cause::TlsCertificate
                | Cause::TlsHandshake
                | Cause::Authorization
                | Cause::Permission
                | Cause::Setup
                | Cause::Dns
        )
    }
}

/// A classified failure and the library's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConnectFailure {
    pub(super) cause: Cause,
    pub(super) detail: String,
}

impl ConnectFailure {
    /// Classifies what `connect` returned.
    pub(super) fn of(e: &ConnectError) -> Self {
        let detail = e.to_string();
        let cause = match e.kind() {
            ConnectErrorKind::Dns => Cause::Dns,
            ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                Cause::Authorization
            }
            ConnectErrorKind::TimedOut => Cause::Timeout,
            kind => Self::from_text(&detail, kind == ConnectErrorKind::Tls),
        };
        ConnectFailure { cause, detail }
    }

    /// A failure known only by its text (a server error event, a setup error).
    pub(super) fn from_message(cause: Option<Cause>, detail: String) -> Self {
        let cause = cause.unwrap_or_else(|| Self::from_text(&detail, false));
        ConnectFailure { cause, detail }
    }

    fn from_text(text: &str, tls: bool) -> Cause {
        let t = text.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
        if has(&["authorization violation", "authentication"]) {
            Cause::Authorization
        } else if has(&["permissions violation"]) {
            Cause::Permission
        } else if has(&["certificate", "unknownissuer", "notvalidforname", "expired"]) {
            Cause::TlsCertificate
        } else if tls || has(&["tls", "handshake", "alert"]) {
            Cause::TlsHandshake
        } else if has(&["connection refused"]) {
            Cause::Refused
        } else if has(&["timed out"]) {
            Cause::Timeout
        } else if has(&["failed to lookup", "dns", "name or service not known"]) {
            Cause::Dns
        } else {
            Cause::Unreachable
        }
    }

    /// The one line: cause, key to fix, the library's words.
    pub(super) fn line(&self) -> String {
        format!(
            "{} ({}); batches stay buffered, retrying",
            self.cause.said(),
            self.detail
        )
    }
}

/// What was logged last, so a repeat is not.
#[derive(Debug, Default)]
pub(super) struct FailureLog {
    last: Option<(Cause, Instant)>,
    /// Failures of the last cause since it was last logged.
    repeats: u64,
}

impl FailureLog {
    /// Logs `f` unless it repeats the last cause within [`REPEAT_EVERY`].
    pub(super) fn report(&mut self, f: &ConnectFailure) {
        let now = Instant::now();
        match self.last {
            Some((cause, at)) if cause == f.cause && now.duration_since(at) < REPEAT_EVERY => {
                self.repeats += 1;
                debug!(error = %f.detail, "NATS connect failed again");
                return;
            }
            Some((cause, _)) if cause == f.cause => {
                let attempts = self.repeats + 1;
                log(
                    f,
                    &format!("still failing, {attempts} attempts since the last report: "),
                );
            }
            _ => log(f, ""),
        }
        self.last = Some((f.cause, now));
        self.repeats = 0;
    }

    /// Connected: the next failure is news.
    pub(super) fn clear(&mut self) {
        self.last = None;
        self.repeats = 0;
    }
}

fn log(f: &ConnectFailure, prefix: &str) {
    let line = f.line();
    if f.cause.is_config() {
        error!(cause = ?f.cause, "{prefix}{line}");
    } else {
        warn!(cause = ?f.cause, "{prefix}{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_of_the_common_failures_get_their_cause() {
        let cause = |t: &str| ConnectFailure::from_message(None, t.into()).cause;
        assert_eq!(
            cause("IO error: invalid peer certificate: UnknownIssuer"),
            Cause::TlsCertificate
        );
        assert_eq!(
            cause("IO error: Connection refused (os error 111)"),
            Cause::Refused
        );
        assert_eq!(cause("authorization violation"), Cause::Authorization);
        assert_eq!(
            cause("received alert HandshakeFailure"),
            Cause::TlsHandshake
        );
        assert_eq!(cause("connection reset"), Cause::Unreachable);
    }
}

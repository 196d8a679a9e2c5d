//! Why a publishing session ends, and how soon the next one starts.

use std::time::Duration;

use thiserror::Error;

use crate::backoff::Backoff;

/// Why a publishing session ended.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PublishError {
    /// The connection dropped with batches unconfirmed. Heals on reconnect.
    #[error("connection to NATS lost with batches unconfirmed")]
    Disconnected,
    /// No PubAck (or no flush) within `ack_timeout`. Usually transient
    /// (server busy, leader election); retried with back-off.
    #[error("no acknowledgement for batch {seq} within ack_timeout")]
    AckTimeout {
        /// The first unconfirmed batch.
        seq: u64,
    },
    /// The server refused us a subject (its `-ERR 'Permissions Violation ...'`).
    /// Needs a server-side permission change; retried slowly.
    #[error("NATS denied permission: {0}; fix the user's permissions on the server")]
    PermissionDenied(String),
    /// No stream listens on the subject and `create_stream = false`.
    /// Needs the stream created; retried slowly.
    #[error("no JetStream stream takes subject {subject}: create stream {stream:?} or set create_stream = true")]
    NoStream {
        /// The configured stream.
        stream: String,
        /// The subject of the refused batch.
        subject: String,
    },
    /// A publish was answered "no responders" although the stream was there
    /// when the session began: its cluster is electing a new leader (or the
    /// stream was just deleted, which the next session's lookup reports as
    /// [`PublishError::NoStream`]). Transient: retried with back-off.
    #[error("no stream leader answered batch {seq} (leader election?)")]
    StreamUnavailable {
        /// The first unconfirmed batch.
        seq: u64,
    },
    /// Looking up or creating the stream failed. A timeout or "JetStream
    /// not ready" (a server just started) is retried with back-off; a refusal
    /// (bad name, limits, permissions) slowly.
    #[error("cannot set up stream {stream:?}: {reason}")]
    StreamSetup {
        /// The configured stream.
        stream: String,
        /// The server's or client's answer.
        reason: String,
        /// Retrying soon may help (timeout, JetStream not ready yet).
        transient: bool,
    },
    /// A batch is bigger than the server's `max_payload`. Sessions no
    /// longer end with it (such a batch is set aside by the buffer, see
    /// `publisher::limit`); kept for callers that match on it.
    #[error("batch {seq} is {size} bytes, over the server's max_payload: raise max_payload on the server")]
    PayloadTooBig {
        /// The refused batch.
        seq: u64,
        /// Its payload size.
        size: usize,
    },
    /// JetStream refused the message (limits, sealed stream, ...).
    #[error("JetStream rejected batch {seq}: {reason}")]
    Rejected {
        /// The refused batch.
        seq: u64,
        /// The server's answer.
        reason: String,
    },
    /// The stream's last message on `<prefix>.<service.id>.>` is not ours
    /// to follow: another installation's (two PCs on one `[service] id`), or
    /// this installation's with a seq at or above our next one (a spool
    /// restored from an old copy). Nothing is published, every batch stays
    /// buffered; someone has to act (`what` says what). Checked again slowly
    /// (see `publisher::conflict`).
    #[error(
        "[service] id = {service_id:?} on stream {stream:?}: not publishing, every batch is \
         kept. This is installation {ours}; the stream's last message on this id is from \
         installation {theirs}: {what}"
    )]
    IdConflict {
        /// The stream.
        stream: String,
        /// `[service] id`.
        service_id: String,
        /// This installation.
        ours: String,
        /// The installation of the stream's last message.
        theirs: String,
        /// What was found and what to do.
        what: String,
    },
    /// Any other client-side failure.
    #[error("NATS client error: {0}")]
    Client(String),
    /// The buffer actor is gone: the Publisher stops and its supervisor decides.
    #[error("the buffer actor is gone")]
    BufferGone,
}

impl PublishError {
    /// The `reason` label of `ingestor_publish_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::Disconnected => "disconnected",
            PublishError::AckTimeout { .. } => "timeout",
            PublishError::PermissionDenied(_) => "permission_denied",
            PublishError::NoStream { .. } => "no_stream",
            PublishError::StreamUnavailable { .. } => "stream_unavailable",
            PublishError::StreamSetup { .. } => "stream_setup",
            PublishError::PayloadTooBig { .. } => "payload_too_big",
            PublishError::Rejected { .. } => "rejected",
            PublishError::IdConflict { .. } => "id_conflict",
            PublishError::Client(_) => "client",
            PublishError::BufferGone => "buffer_gone",
        }
    }

    /// Retrying soon cannot help: someone has to change something.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PublishError::PermissionDenied(_)
                | PublishError::NoStream { .. }
                | PublishError::StreamSetup {
                    transient: false,
                    ..
                }
                | PublishError::PayloadTooBig { .. }
                | PublishError::Rejected { .. }
                | PublishError::IdConflict { .. }
        )
    }
}

/// How soon a new session starts after one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays after transient failures: `min` after the first, doubling per
    /// failure in a row, at most `max`.
    pub backoff: Backoff,
    /// Delay after a permanent rejection.
    pub rejected: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_secs(5),
            },
            rejected: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next session, after one that ran for `ran` and
    /// ended with `error`. A transient failure's back-off counts from the
    /// failed session's start: a session that spent its back-off waiting on
    /// an answer (the stream lookup during a leader election, an ack
    /// timeout) is followed by the next at once, so retries stay one
    /// back-off apart instead of a back-off plus a timeout.
    pub(super) fn delay(
        &self,
        error: &PublishError,
        failures_in_a_row: u32,
        ran: Duration,
    ) -> Duration {
        if error.is_permanent() {
            return self.rejected;
        }
        // `failures_in_a_row` does not count this failure yet.
        self.backoff
            .after(failures_in_a_row.saturating_add(1))
            .saturating_sub(ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_doubling_to_max_rejections_wait_the_slow_delay() {
        let retry = RetryPolicy {
            backoff: Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_secs(5),
            },
            rejected: Duration::from_secs(10),
        };
        let timeout = PublishError::AckTimeout { seq: 7 };
        let none = Duration::ZERO;
        assert_eq!(retry.delay(&timeout, 0, none), Duration::from_millis(100));
        assert_eq!(retry.delay(&timeout, 30, none), Duration::from_secs(5));
        // Counted from the session's start: what it ran is already waited.
        let ran = Duration::from_secs(2);
        assert_eq!(retry.delay(&timeout, 30, ran), Duration::from_secs(3));
        assert_eq!(retry.delay(&timeout, 30, Duration::from_secs(6)), none);
        let denied = PublishError::PermissionDenied("Publish to \"telemetry.a.b\"".into());
        assert_eq!(retry.delay(&denied, 0, none), Duration::from_secs(10));
        assert_eq!(retry.delay(&denied, 0, ran), Duration::from_secs(10));
        assert_eq!(denied.reason(), "permission_denied");
        assert!(!PublishError::Disconnected.is_permanent());
    }
}

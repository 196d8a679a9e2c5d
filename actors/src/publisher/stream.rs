//! The stream side of a JetStream session: making sure the stream is there,
//! and learning which of our batches it already holds before anything is
//! (re)sent.
//!
//! # The already-stored rule
//! A batch counts as stored only when *its own* message was read back from
//! the stream: a message on `<prefix>.<service.id>.>` whose `Ingestor-Seq`
//! is its seq, whose `Nats-Msg-Id` is `<service.id>-<seq>` and whose
//! `Ingestor-Installation` is this installation's (another installation on
//! the same id numbers its own batches: its seqs say nothing about ours). Reads use the
//! stream's message-get API (`STREAM.MSG.GET`, answered by the stream
//! leader, so a follower that lags cannot hide a stored message), walking
//! our subjects forward with `next_by_subj`.
//!
//! # Where the walk starts and ends
//! The walk must see every message of ours that the buffer may hand out
//! again: every seq from the oldest batch of the session's first Take
//! (`oldest`) on. What the buffer hands out again is whatever it has no
//! durable ack for, whoever lost the ack: an ack held back when a session
//! was cut, an `Ack` message lost with a restarted buffer, a delete that
//! failed, acks not yet synced when the power went. So the start is
//! derived from `oldest`, never from what this process confirmed alone:
//! - when the last batch this process saw confirmed (seq, stream sequence)
//!   is older than `oldest`, just after its stream sequence (our messages
//!   are stored in seq order, so everything of ours from `oldest` on lies
//!   after it);
//! - otherwise (nothing confirmed yet in this process, or the buffer hands
//!   out batches already confirmed), from the first of our messages whose
//!   `Ingestor-Seq` is at least `oldest`, found by a binary search over
//!   stream sequences. The search relies on our messages being in seq
//!   order in the stream, after any other installation's (a replaced one);
//!   if an older stream is not, it may start too late
//!   and miss a stored batch, which is then sent again (de-duplicated
//!   within the duplicate window) — never skipped.
//!
//! The walk ends at the end of the stream (no message of ours after the
//! last one read): there is no cap on its length. What it has to cover is
//! bounded by what may be stored but not durably acked: the window in
//! flight plus, after a power cut, the acks of the last tick (the buffer
//! syncs its acks every second).
//!
//! No high-water mark is ever inferred: a batch refused while later ones
//! were stored is not in the set and is sent again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::PoisonError;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, stream};
use tracing::{info, warn};

use super::election::ask_until;
use super::PublishError;
use crate::installation::{self, Installation};
use crate::nats::durability::single_replica_warning;
use crate::settings::NatsSettings;

/// The shortest de-duplication window a stream we create gets (NATS' default).
const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The de-duplication window a stream needs: longer than any batch can be
/// unconfirmed while its publishes are retried.
pub(super) fn duplicate_window(settings: &NatsSettings) -> Duration {
    MIN_DUPLICATE_WINDOW.max(settings.ack_timeout.saturating_mul(20))
}

/// The stream, created first with `create_stream` (subjects `<prefix>.>`, a
/// de-dup window covering any retry). Logs when its `duplicate_window` is
/// shorter than `ack_timeout × 20`, and (once per `durability_told`, i.e.
/// per Publisher: at start and after a `[nats]` reload) when it has fewer
/// than three replicas (`nats::durability`).
///
/// The lookup is asked again while unanswered (`election`): a cluster
/// electing the stream's leader answers nothing, or "unavailable", until it
/// has one. It gives up after `ack_timeout` with the last answer; a refusal
/// that asking again cannot change (no such stream, a bad config) ends it
/// at once.
pub(super) async fn open_stream(
    js: &jetstream::Context,
    settings: &NatsSettings,
    service_id: &str,
    durability_told: &AtomicBool,
) -> Result<Stream, PublishError> {
    let wanted = duplicate_window(settings);
    let last = std::sync::Mutex::new(None);
    let until = tokio::time::Instant::now() + settings.ack_timeout;
    let answer = ask_until(Some(until), || async {
        match look_up(js, settings, service_id, wanted).await {
            Ok(stream) => Some(Ok(stream)),
            Err(e) if e.is_permanent() => Some(Err(e)),
            Err(e) => {
                *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                None
            }
        }
    })
    .await;
    let stream = match answer {
        Some(answer) => answer?,
        None => {
            let last = last.lock().unwrap_or_else(PoisonError::into_inner).take();
            return Err(last.unwrap_or_else(|| PublishError::StreamSetup {
                stream: settings.stream.clone(),
                reason: "jetstream request timed out".into(),
                transient: true,
            }));
        }
    };
    let existing = stream.cached_info().config.duplicate_window;
    if existing < wanted {
        warn!(
            stream = %settings.stream,
            duplicate_window = ?existing,
            wanted = ?wanted,
            "the stream's duplicate_window is shorter than ack_timeout x 20; exactly-once \
             still holds (the ingestor reads back what the stream holds before resending), \
             but the server-side de-duplication is a shorter second line"
        );
    }
    let replicas = stream.cached_info().config.num_replicas;
    if let Some(warning) = single_replica_warning(&settings.stream, replicas) {
        if !durability_told.swap(true, Ordering::Relaxed) {
            warn!(stream = %settings.stream, replicas = replicas.max(1), "{warning}");
        }
    }
    Ok(stream)
}

/// One lookup (or creation) of the stream, as one request.
async fn look_up(
    js: &jetstream::Context,
    settings: &NatsSettings,
    service_id: &str,
    duplicate_window: Duration,
) -> Result<Stream, PublishError> {
    let setup = |reason: String, transient: bool| PublishError::StreamSetup {
        stream: settings.stream.clone(),
        reason,
        transient,
    };
    if settings.create_stream {
        let config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        js.get_or_create_stream(config).await.map_err(|e| {
            let transient = match e.kind() {
                CreateStreamErrorKind::TimedOut
                | CreateStreamErrorKind::JetStreamUnavailable
                | CreateStreamErrorKind::Response
                | CreateStreamErrorKind::ResponseParse => true,
                CreateStreamErrorKind::JetStream(error) => jetstream_error_is_transient(&error),
                _ => false,
            };
            setup(e.to_string(), transient)
        })
    } else {
        js.get_stream(&settings.stream).await.map_err(|e| {
            let text = e.to_string();
            let not_found = match e.kind() {
                GetStreamErrorKind::JetStream(error) => {
                    error.code() == 404 || error.kind() == ErrorCode::STREAM_NOT_FOUND
                }
                _ => false,
            } || text.to_ascii_lowercase().contains("not found");
            if not_found {
                PublishError::NoStream {
                    stream: settings.stream.clone(),
                    subject: format!("{}.{}.*", settings.subject_prefix, service_id),
                }
            } else {
                setup(text, true)
            }
        })
    }
}

/// Whether JetStream's refusal may go away by itself: its cluster is not
/// ready (no leader, no quorum, a peer catching up) or it is busy. Other
/// refusals (a bad config, limits, permissions) need someone to act.
pub(super) fn jetstream_error_is_transient(error: &async_nats::jetstream::Error) -> bool {
    matches!(error.code(), 408 | 500 | 503 | 504)
        || [
            ErrorCode::CLUSTER_INCOMPLETE,
            ErrorCode::CLUSTER_NO_PEERS,
            ErrorCode::CLUSTER_NOT_ACTIVE,
            ErrorCode::CLUSTER_NOT_ASSIGNED,
            ErrorCode::CLUSTER_NOT_AVAILABLE,
            ErrorCode::CLUSTER_NOT_LEADER,
            ErrorCode::CLUSTER_SERVER_MEMBER_CHANGE_INFLIGHT,
            ErrorCode::PEER_REMAP,
        ]
        .contains(&error.kind())
}

/// One of our messages, as read back (or as its PubAck confirmed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ours {
    /// Its `Ingestor-Seq`.
    pub(super) seq: u64,
    /// Where the stream holds it.
    pub(super) stream_seq: u64,
}

/// Where a walk for `oldest` on may start: after the last confirmed
/// message when it is older than `oldest`, otherwise unknown (search).
fn walk_start(oldest: u64, last_confirmed: Option<Ours>) -> Option<u64> {
    last_confirmed
        .filter(|last| last.seq < oldest)
        .map(|last| last.stream_seq + 1)
}

/// Reads the stream back from `stream_seq` on.
pub(super) struct Reader<'a> {
    pub(super) stream: &'a Stream,
    /// `<prefix>.<service.id>.>`
    pub(super) filter: String,
    pub(super) service_id: &'a str,
    /// Only messages of this installation are ours.
    pub(super) installation: &'a Installation,
    /// How long one read is asked (again, `election`) before it fails:
    /// `ack_timeout`.
    pub(super) patience: Duration,
}

/// Who sent a message, as its headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MessageOrigin {
    /// `Ingestor-Installation` (none from builds before it).
    pub(super) installation: Option<Installation>,
    /// `Ingestor-Seq`.
    pub(super) seq: Option<u64>,
    /// `Nats-Msg-Id`.
    pub(super) msg_id: Option<String>,
}

impl MessageOrigin {
    pub(super) fn of(message: &StreamMessage) -> MessageOrigin {
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        MessageOrigin {
            installation: header(installation::HEADER)
                .as_deref()
                .and_then(Installation::parse),
            seq: header("Ingestor-Seq").and_then(|v| v.parse::<u64>().ok()),
            msg_id: header("Nats-Msg-Id"),
        }
    }
}

impl Reader<'_> {
    /// The first message on our subjects at or after `stream_seq`, whoever
    /// sent it; `None` past the end of the stream.
    pub(super) async fn next_any(
        &self,
        stream_seq: u64,
    ) -> Result<Option<StreamMessage>, PublishError> {
        self.asked_again(|| {
            crate::nats::last::next_on_subjects(self.stream, &self.filter, stream_seq)
        })
        .await
        .map_err(|e| PublishError::Client(format!("reading back what the stream holds: {e}")))
    }

    /// `read`, asked again while it fails (a leader being elected answers
    /// nothing, or "unavailable"), until one answer comes or `patience`
    /// has passed: then the last failure.
    pub(super) async fn asked_again<T, F, Fut>(&self, mut read: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let last = std::sync::Mutex::new(None);
        let until = tokio::time::Instant::now() + self.patience;
        let answer = ask_until(Some(until), || {
            let read = read();
            let last = &last;
            async move {
                match read.await {
                    Ok(answer) => Some(answer),
                    Err(e) => {
                        *last.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                        None
                    }
                }
            }
        })
        .await;
        answer.ok_or_else(|| {
            last.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| "request timed out".into())
        })
    }

    /// The first of our messages at or after `stream_seq`, if any. Messages
    /// on our subjects that are not our batches (no or another header,
    /// another installation's) are stepped over.
    async fn next(&self, mut stream_seq: u64) -> Result<Option<Ours>, PublishError> {
        loop {
            let Some(message) = self.next_any(stream_seq).await? else {
                return Ok(None);
            };
            match self.ours(&message) {
                Some(ours) => return Ok(Some(ours)),
                None => stream_seq = message.sequence + 1,
            }
        }
    }

    /// Our batches with seq `>= oldest` that the stream holds: seq → stream
    /// sequence. `last_confirmed` is the last batch this process saw
    /// confirmed, if any (see "Where the walk starts and ends").
    pub(super) async fn already_stored(
        &self,
        oldest: u64,
        last_confirmed: Option<Ours>,
    ) -> Result<BTreeMap<u64, u64>, PublishError> {
        let mut at = match walk_start(oldest, last_confirmed) {
            Some(stream_seq) => stream_seq,
            None => self.first_at_or_after(oldest).await?,
        };
        let mut found = BTreeMap::new();
        loop {
            match self.next(at).await? {
                Some(ours) => {
                    if ours.seq >= oldest {
                        found.insert(ours.seq, ours.stream_seq);
                    }
                    at = ours.stream_seq + 1;
                }
                None => {
                    if !found.is_empty() {
                        info!(
                            batches = found.len(),
                            first = found.keys().next().copied(),
                            "the stream already holds batches whose acknowledgement was lost; \
                             they count as published and are not sent again"
                        );
                    }
                    return Ok(found);
                }
            }
        }
    }

    /// Binary search for the stream sequence of our first message with seq
    /// `>= oldest` (or the end of the stream). Another installation's
    /// message is taken to lie before ours (after a takeover the replaced
    /// installation's messages all do), so the search never walks through
    /// its history one message at a time.
    async fn first_at_or_after(&self, oldest: u64) -> Result<u64, PublishError> {
        let state = &self.stream.cached_info().state;
        let (mut lo, mut hi) = (state.first_sequence.max(1), state.last_sequence + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.next_any(mid).await? {
                Some(message) => match self.ours(&message) {
                    Some(ours) if ours.seq >= oldest => hi = mid,
                    _ => lo = (message.sequence + 1).min(hi),
                },
                None => hi = mid,
            }
        }
        Ok(lo)
    }

    /// `message` as one of ours, if it is (see "The already-stored rule").
    fn ours(&self, message: &StreamMessage) -> Option<Ours> {
        match MessageOrigin::of(message) {
            MessageOrigin {
                installation: Some(installation),
                seq: Some(seq),
                msg_id: Some(msg_id),
            } if installation == *self.installation
                && msg_id == crate::batch::msg_id(self.service_id, seq) =>
            {
                Some(Ours {
                    seq,
                    stream_seq: message.sequence,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_starts_after_the_last_confirmed_only_when_it_is_older_than_the_oldest_handed_out() {
        let last = Some(Ours {
            seq: 100,
            stream_seq: 5_000,
        });
        // The buffer hands out what follows the last confirmed: walk on from it.
        assert_eq!(walk_start(101, last), Some(5_001));
        // It hands out batches already confirmed (their acks never reached
        // it, or not durably): the walk must go back to find them.
        assert_eq!(walk_start(100, last), None);
        assert_eq!(walk_start(37, last), None);
        // Nothing confirmed in this process yet.
        assert_eq!(walk_start(1, None), None);
    }
}

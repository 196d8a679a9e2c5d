//! The conflict check: before a JetStream session publishes anything, is
//! `<prefix>.<service.id>.>` still ours to write?
//!
//! `Nats-Msg-Id` is `<service.id>-<seq>`: two installations numbering their
//! batches on one `service.id` (two PCs given one id, or a spool restored
//! from an old copy that hands out seqs the stream already holds) collide,
//! JetStream de-duplication answers "duplicate" and the batch would be
//! deleted as delivered without being stored. So each session first reads
//! the stream's last message on our subjects ([`Reader::last_any`]) and
//! [`judge`]s it:
//!
//! - none, or this installation's with a seq below our next one: clear;
//! - this installation's with a seq at or above our next one (a restored
//!   spool), or one without an `Ingestor-Installation` header (a build from
//!   before it) with such a seq: conflict;
//! - another installation's: conflict, unless `[service] replaces` names it
//!   and its last message is older than the stream's `duplicate_window`
//!   (then our msg ids can no longer be taken for its): take over, with one
//!   warning. A header-less message with a lower seq is taken for this PC
//!   before its upgrade: clear.
//!
//! A second line covers what a check cannot see (two PCs starting at the
//! same moment on an empty id, a message under our `Nats-Msg-Id` stored
//! elsewhere): a PubAck that says "duplicate" counts only when the stored
//! message is ours ([`duplicate_is_ours`]); otherwise the session ends
//! with `IdConflict` and the batch stays buffered.
//!
//! A conflict ends the session before its first Take
//! ([`PublishError::IdConflict`], `reason="id_conflict"`, retried slowly):
//! nothing is sent, the buffer keeps every batch, `/health` is degraded.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::Stream;
use ractor::rpc::CallResult;
use tracing::warn;

use super::session::Session;
use super::stream::{MessageOrigin, Reader};
use super::PublishError;
use crate::buffer::BufferMsg;
use crate::installation::Installation;

/// The last message on our subjects, as far as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LastMessage {
    /// Where the stream holds it.
    pub(super) stream_seq: u64,
    /// Its headers.
    pub(super) origin: MessageOrigin,
    /// How long ago it was stored.
    pub(super) age: Duration,
}

impl LastMessage {
    fn of(message: &StreamMessage) -> LastMessage {
        let stored = message.time.unix_timestamp_nanos();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or_default();
        let age = u64::try_from(now.saturating_sub(stored)).unwrap_or_default();
        LastMessage {
            stream_seq: message.sequence,
            origin: MessageOrigin::of(message),
            age: Duration::from_nanos(age),
        }
    }
}

/// Who we are, for [`judge`].
pub(super) struct Us<'a> {
    pub(super) service_id: &'a str,
    pub(super) stream: &'a str,
    pub(super) installation: &'a Installation,
    pub(super) replaces: Option<&'a Installation>,
    /// The buffer's next seq: every seq we ever handed out is below it.
    pub(super) next_seq: u64,
    pub(super) duplicate_window: Duration,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Ours to write.
    Clear,
    /// `replaces` names the installation of the last message, silent for
    /// longer than the duplicate window: ours from now on.
    TakeOver(Installation),
}

/// Reads the last message on our subjects and judges it.
pub(super) async fn check(reader: &Reader<'_>, us: &Us<'_>) -> Result<Verdict, PublishError> {
    let last = reader.last_any().await?.as_ref().map(LastMessage::of);
    judge(last.as_ref(), us)
}

/// The rule of the module doc, on the last message read.
pub(super) fn judge(last: Option<&LastMessage>, us: &Us<'_>) -> Result<Verdict, PublishError> {
    let Some(last) = last else {
        return Ok(Verdict::Clear);
    };
    let seq_ahead = last.origin.seq.is_some_and(|seq| seq >= us.next_seq);
    let conflict = |what: String| {
        Err(PublishError::IdConflict {
            stream: us.stream.to_string(),
            service_id: us.service_id.to_string(),
            ours: us.installation.to_string(),
            theirs: last.origin.installation.as_ref().map_or_else(
                || "(none: a build before installation ids)".into(),
                |i| i.to_string(),
            ),
            what,
        })
    };
    match &last.origin.installation {
        Some(theirs) if theirs == us.installation => {
            if seq_ahead {
                return conflict(restored(last, us));
            }
            Ok(Verdict::Clear)
        }
        None if seq_ahead => conflict(format!(
            "its last message (stream seq {}, Ingestor-Seq {}) has no Ingestor-Installation \
             header and a seq this installation would hand out again (next {}): an older build \
             published on this id. Give this PC its own [service] id",
            last.stream_seq,
            last.origin.seq.unwrap_or_default(),
            us.next_seq
        )),
        None => Ok(Verdict::Clear),
        Some(theirs) if us.replaces == Some(theirs) => {
            if last.age >= us.duplicate_window {
                return Ok(Verdict::TakeOver(theirs.clone()));
            }
            conflict(format!(
                "[service] replaces names it, but its last message (stream seq {}) is only {}s \
                 old, within the stream's duplicate_window ({}s): publishing starts once it has \
                 been silent that long (checked again every few seconds). If that PC still \
                 runs, stop it first",
                last.stream_seq,
                last.age.as_secs(),
                us.duplicate_window.as_secs()
            ))
        }
        Some(theirs) => conflict(format!(
            "its last message (stream seq {}, {}s ago) comes from that other installation: two \
             PCs use this id, or this PC replaces one. Give this PC its own [service] id; or, \
             if the PC of installation {theirs} was replaced by this one and is off for good, \
             set [service] replaces = \"{theirs}\" and restart",
            last.stream_seq,
            last.age.as_secs()
        )),
    }
}

fn restored(last: &LastMessage, us: &Us<'_>) -> String {
    format!(
        "the stream already holds Ingestor-Seq {} of this installation (stream seq {}), but \
         this spool's next seq is {}: the data_dir was restored from an older copy, or copied \
         to a second PC that also runs. Its seqs would be taken for ones already stored. Stop \
         the other PC if there is one; otherwise move this data_dir aside (keep it: its batches \
         are not published) and start with an empty one, a new installation",
        last.origin.seq.unwrap_or_default(),
        last.stream_seq,
        us.next_seq
    )
}

impl Session {
    /// The conflict check (`conflict`): `Err(IdConflict)` when the stream's
    /// last message on our subjects is not ours to follow.
    pub(super) async fn check_conflict(&self, reader: &Reader<'_>) -> Result<(), PublishError> {
        let next_seq = match self.buffer.call(BufferMsg::Stats, None).await {
            Ok(CallResult::Success(stats)) => stats.next_seq,
            _ => return Err(PublishError::BufferGone),
        };
        let us = Us {
            service_id: &self.service_id,
            stream: &self.settings.stream,
            installation: &self.installation,
            replaces: self.replaces.as_ref(),
            next_seq,
            duplicate_window: reader.stream.cached_info().config.duplicate_window,
        };
        match check(reader, &us).await? {
            Verdict::Clear => {}
            Verdict::TakeOver(old) => warn!(
                replaced = %old, installation = %self.installation, service_id = %self.service_id,
                "taking over this id from the replaced installation named in [service] replaces \
                 (silent for longer than the stream's duplicate_window); its messages stay in \
                 the stream, ours follow them"
            ),
        }
        Ok(())
    }
}

/// A PubAck that says "duplicate": JetStream holds a message with our
/// `Nats-Msg-Id` already. Ours (a resend after a lost ack): confirmed.
/// Another installation's (two PCs that passed the check at the same
/// moment, or a build without the check on our id): `IdConflict`, and the
/// batch stays in the buffer.
pub(super) async fn duplicate_is_ours(
    stream: &Stream,
    ack: &PublishAck,
    installation: &Installation,
    service_id: &str,
    seq: u64,
) -> Result<(), PublishError> {
    let stored = stream
        .get_raw_message(ack.sequence)
        .await
        .map_err(|e| PublishError::Client(format!("reading the duplicate of batch {seq}: {e}")))?;
    let origin = MessageOrigin::of(&stored);
    if origin.installation.as_ref() == Some(installation) && origin.seq == Some(seq) {
        return Ok(());
    }
    Err(PublishError::IdConflict {
        stream: ack.stream.clone(),
        service_id: service_id.to_string(),
        ours: installation.to_string(),
        theirs: origin
            .installation
            .map_or_else(|| "(none)".into(), |i| i.to_string()),
        what: format!(
            "JetStream took batch {seq} for a duplicate of stream seq {} ({}), stored under \
             the same Nats-Msg-Id by that installation: two PCs publish on one id. Give this \
             PC its own [service] id",
            ack.sequence, stored.subject
        ),
    })
}

impl Reader<'_> {
    /// The last message on our subjects, whoever sent it (`nats::last`).
    pub(super) async fn last_any(&self) -> Result<Option<StreamMessage>, PublishError> {
        self.asked_again(|| crate::nats::last::last_on_subjects(self.stream, &self.filter))
            .await
            .map_err(|e| {
                PublishError::Client(format!("reading the stream's last message on our id: {e}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Installation {
        Installation::parse(s).unwrap()
    }

    fn last(installation: Option<&str>, seq: u64, age_secs: u64) -> LastMessage {
        LastMessage {
            stream_seq: 77,
            origin: MessageOrigin {
                installation: installation.map(id),
                seq: Some(seq),
                msg_id: Some(format!("line1-{seq}")),
            },
            age: Duration::from_secs(age_secs),
        }
    }

    fn us<'a>(me: &'a Installation, replaces: Option<&'a Installation>, next: u64) -> Us<'a> {
        Us {
            service_id: "line1",
            stream: "TELEMETRY",
            installation: me,
            replaces,
            next_seq: next,
            duplicate_window: Duration::from_secs(120),
        }
    }

    #[test]
    fn our_own_last_message_below_our_next_seq_is_clear_at_or_above_it_a_restored_spool() {
        let me = id("aaaa");
        assert_eq!(judge(None, &us(&me, None, 1)), Ok(Verdict::Clear));
        let ours = last(Some("aaaa"), 41, 0);
        assert_eq!(judge(Some(&ours), &us(&me, None, 42)), Ok(Verdict::Clear));
        let err = judge(Some(&ours), &us(&me, None, 41)).unwrap_err();
        assert_eq!(err.reason(), "id_conflict");
        assert!(err.to_string().contains("restored"), "{err}");
    }

    #[test]
    fn another_installation_is_a_conflict_naming_both_unless_replaced_and_silent_long_enough() {
        let (me, old) = (id("aaaa"), id("bbbb"));
        let theirs = last(Some("bbbb"), 5, 10);
        let err = judge(Some(&theirs), &us(&me, None, 1000)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("aaaa") && text.contains("bbbb"), "{text}");
        assert!(text.contains("replaces = \"bbbb\""), "{text}");
        // Named in `replaces` but still inside the duplicate window: wait.
        let err = judge(Some(&theirs), &us(&me, Some(&old), 1)).unwrap_err();
        assert!(err.to_string().contains("duplicate_window"), "{err}");
        let silent = last(Some("bbbb"), 5, 600);
        assert_eq!(
            judge(Some(&silent), &us(&me, Some(&old), 1)),
            Ok(Verdict::TakeOver(old.clone()))
        );
        // `replaces` names someone else: still a conflict.
        let other = id("cccc");
        assert!(judge(Some(&silent), &us(&me, Some(&other), 1)).is_err());
    }

    #[test]
    fn a_message_without_installation_blocks_only_when_its_seq_would_be_reused() {
        let me = id("aaaa");
        let legacy = last(None, 500, 0);
        assert_eq!(
            judge(Some(&legacy), &us(&me, None, 501)),
            Ok(Verdict::Clear)
        );
        assert!(judge(Some(&legacy), &us(&me, None, 1)).is_err());
    }
}

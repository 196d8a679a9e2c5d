//! The last message a stream holds on a (wildcard) subject filter: what the
//! publisher's conflict check reads before publishing, and what `ingestor
//! check` shows about `[service] id`.
//!
//! A binary search over stream sequences with "next message on the filter
//! at or after" (`STREAM.MSG.GET` with `next_by_subj`, answered by the
//! stream leader; a wildcard "last by subject" is not served by every
//! server), then on over what was stored meanwhile. About log2(stream
//! length) requests.

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};

/// How many messages stored after the search began are stepped over to
/// find the very last one (someone busy publishing on the filter).
const CATCH_UP_STEPS: usize = 1000;

/// The first message on `filter` at or after `stream_seq`; `None` past the
/// end of the stream.
pub async fn next_on_subjects(
    stream: &Stream,
    filter: &str,
    stream_seq: u64,
) -> Result<Option<StreamMessage>, String> {
    let got = stream
        .raw_message_builder()
        .sequence(stream_seq.max(1))
        .next_by_subject(filter.to_string())
        .send()
        .await;
    match got {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The last message on `filter`, whoever sent it (`stream`'s cached info
/// bounds the search; later messages are found by stepping on).
pub async fn last_on_subjects(
    stream: &Stream,
    filter: &str,
) -> Result<Option<StreamMessage>, String> {
    let state = &stream.cached_info().state;
    let (mut lo, mut hi) = (state.first_sequence.max(1), state.last_sequence + 1);
    let mut best: Option<StreamMessage> = None;
    // Invariant: nothing on the filter at or after `hi` (when asked); the
    // last one is at or after `lo`, if any.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match next_on_subjects(stream, filter, mid).await? {
            Some(message) => {
                lo = message.sequence + 1;
                best = Some(message);
            }
            None => hi = mid,
        }
    }
    for _ in 0..CATCH_UP_STEPS {
        let from = best.as_ref().map_or(hi, |b| b.sequence + 1);
        match next_on_subjects(stream, filter, from).await? {
            Some(message) => best = Some(message),
            None => break,
        }
    }
    Ok(best)
}

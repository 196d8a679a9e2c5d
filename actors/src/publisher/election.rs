//! While a cluster elects a stream leader: the stream lookup asked again
//! and again, and the watch that ends a session whose leader died.
//!
//! A JetStream request made while the stream has no leader is not answered
//! (or answered "unavailable"). Asked once and waited on for `ack_timeout`,
//! it keeps a session blind for up to that long after the cluster has
//! elected a new leader: with three leader kills in a row the service
//! could not publish for 23 s, each retry waiting out its 5 s. So both
//! questions here are asked again at short, growing intervals
//! ([`ASK_FIRST`], doubling up to [`ASK_MAX`]) without dropping the
//! earlier ones: the first answer wins, a slow link's answer still counts
//! (each question waits up to `ack_timeout`), and an answer comes at most
//! about `ASK_MAX` after a leader is there.
//!
//! - [`ask_until`] runs the asking; the stream lookup (`stream::open_stream`)
//!   asks until `ack_timeout` has passed, as long as the single question
//!   used to wait.
//! - [`new_leader_elected`] is the watch of a session whose oldest publish
//!   is past the fence (`window`): its PubAck can only come from the
//!   leader it was sent to. When `stream info` names another leader, that
//!   one is gone, the publish is lost or already in the new leader's log,
//!   and the session ends at once instead of waiting out `ack_timeout`;
//!   the next session reads back what the stream holds before it resends
//!   (`stream`), so the order and the once-only hold as after a timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::time::Instant;

/// The first interval between two questions.
pub(super) const ASK_FIRST: Duration = Duration::from_millis(250);
/// The longest interval between two questions.
pub(super) const ASK_MAX: Duration = Duration::from_millis(500);

/// Asks `ask` at once and again after [`ASK_FIRST`], doubling to
/// [`ASK_MAX`], never cancelling a question still open, until one answers
/// `Some` (that answer) or `until` passes (`None`; never with `None`).
/// Each question has to end by itself (a timeout of its own): open ones
/// pile up otherwise.
pub(super) async fn ask_until<T, F, Fut>(until: Option<Instant>, mut ask: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let mut open = FuturesUnordered::new();
    let mut every = ASK_FIRST;
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if until.is_some_and(|until| now >= until) {
            return None;
        }
        if now >= next {
            open.push(ask());
            next = now + every;
            every = every.saturating_mul(2).min(ASK_MAX);
        }
        let wake = until.map_or(next, |until| next.min(until));
        tokio::select! {
            Some(answer) = open.next(), if !open.is_empty() => {
                if answer.is_some() {
                    return answer;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Ends when `stream info` names a leader other than `old`; each question
/// waits up to `timeout`. Never ends while no other leader is named (a
/// leader that is only slow, or a server that does not answer at all).
pub(super) async fn new_leader_elected(stream: Arc<Stream>, old: String, timeout: Duration) {
    let asked = ask_until(None, || {
        let (stream, old) = (stream.clone(), old.clone());
        async move {
            let info = tokio::time::timeout(timeout, stream.get_info())
                .await
                .ok()?
                .ok()?;
            let leader = info.cluster?.leader?;
            (leader != old).then_some(())
        }
    })
    .await;
    debug_assert!(asked.is_some(), "asked without an end");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn asks_again_at_growing_intervals_keeping_the_open_questions() {
        // Each question is answered 10 s after it was asked; the first
        // answer is the first question's, although 20 more were asked.
        let asked = Arc::new(AtomicU32::new(0));
        let start = tokio::time::Instant::now();
        let counter = asked.clone();
        let answer = ask_until(None, move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Some(n)
            }
        })
        .await;
        assert_eq!(answer, Some(0));
        // At 0, 0.25, 0.75, then every 0.5 s up to 10 s: 21 questions.
        assert_eq!(asked.load(Ordering::SeqCst), 21);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_question_answers_first_when_the_earlier_ones_never_do() {
        // Questions before 2 s go unanswered (no leader); later ones are
        // answered at once: the answer comes within ASK_MAX of 2 s.
        let start = tokio::time::Instant::now();
        let answer = ask_until(None, move || {
            let elected = start.elapsed() >= Duration::from_secs(2);
            async move {
                if elected {
                    Some(())
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    None
                }
            }
        })
        .await;
        assert_eq!(answer, Some(()));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited <= Duration::from_secs(2) + ASK_MAX,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_until_passes() {
        let start = tokio::time::Instant::now();
        let until = Instant::now() + Duration::from_secs(5);
        let answer: Option<()> = ask_until(Some(until), std::future::pending).await;
        assert_eq!(answer, None);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}

//! The publish window of a JetStream session: the publishes awaiting their
//! PubAck, and the acks on their way to the buffer.
//!
//! # The fence
//! While the oldest publish in flight has waited longer than [`FENCE`]
//! (1 s, or `ack_timeout` when shorter), no new publish goes out; the
//! window reopens when it is confirmed, or the session ends when it fails.
//! A publish lost with a dying stream leader is never answered; without
//! the fence, a publish sent a few seconds later could be stored by the
//! newly elected leader before the lost one times out and is resent — an
//! order step-back. A JetStream cluster takes seconds to notice a dead
//! leader and elect another (nats-server's election timeout is 4 s and
//! more), so nothing sent before the fence closes can reach a new leader.
//! Acks normally come back within milliseconds: the fence costs nothing
//! while the server answers.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::publish::PublishAck;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use ractor::ActorRef;

use super::PublishError;
use crate::buffer::{BufferMsg, LeaseId, SetAsideReason};

/// How long the oldest publish may wait for its ack before the window stops
/// taking new publishes.
pub(super) const FENCE: Duration = Duration::from_secs(1);

/// Why a publish was not confirmed.
#[derive(Debug)]
pub(super) enum AckFailure {
    /// The client's or the server's answer.
    Js(async_nats::jetstream::context::PublishError),
    /// Answered "duplicate", but the message stored under our
    /// `Nats-Msg-Id` is not ours (`conflict::duplicate_is_ours`).
    NotOurs(PublishError),
}

pub(super) type AckResult = Result<PublishAck, AckFailure>;

/// A batch's seq, when it was sent (`None`: found already stored), its ack.
pub(super) type AckFuture =
    Pin<Box<dyn std::future::Future<Output = (u64, Option<Instant>, AckResult)> + Send>>;

/// Publishes awaiting their ack, oldest first, with when each went out.
#[derive(Default)]
pub(super) struct InFlight {
    acks: FuturesOrdered<AckFuture>,
    /// Each one's seq and when it went out, oldest first.
    sent: VecDeque<(u64, Instant)>,
}

impl InFlight {
    pub(super) fn len(&self) -> usize {
        self.acks.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// `seq`'s publish, gone out now, its ack to come.
    pub(super) fn push(&mut self, seq: u64, ack: AckFuture) {
        self.acks.push_back(ack);
        self.sent.push_back((seq, Instant::now()));
    }

    /// The oldest ack, when it comes.
    pub(super) async fn next(&mut self) -> Option<(u64, Option<Instant>, AckResult)> {
        let next = self.acks.next().await;
        if next.is_some() {
            self.sent.pop_front();
        }
        next
    }

    /// The oldest ack, if it is there already.
    pub(super) fn next_ready(&mut self) -> Option<(u64, Option<Instant>, AckResult)> {
        let next = self.acks.next().now_or_never().flatten();
        if next.is_some() {
            self.sent.pop_front();
        }
        next
    }

    /// When the oldest publish in flight went out.
    pub(super) fn oldest_sent(&self) -> Option<Instant> {
        self.sent.front().map(|(_, at)| *at)
    }

    /// The seq of the oldest publish in flight.
    pub(super) fn oldest_seq(&self) -> Option<u64> {
        self.sent.front().map(|(seq, _)| *seq)
    }

    /// The oldest publish has waited longer than `fence`.
    pub(super) fn fenced(&self, fence: Duration) -> bool {
        self.sent.front().is_some_and(|(_, t)| t.elapsed() >= fence)
    }
}

/// Confirmed seqs not yet acked to the buffer: one `Ack` per quarter window
/// (or when idle, or every 100 ms) instead of one per PubAck, so the buffer
/// deletes in bigger write batches.
///
/// The seq held back lives in [`Unsent`], which the Publisher shares: when
/// it cuts a session short (aborts its task), it sends that `Ack` itself
/// before the session's lease ends, so nothing JetStream confirmed is
/// handed out again.
pub(super) struct AckCoalescer {
    buffer: ActorRef<BufferMsg>,
    lease: LeaseId,
    unsent: Arc<Unsent>,
    count: usize,
    every: usize,
    since: Instant,
}

/// The highest seq JetStream confirmed (in publish order) that the buffer
/// has not been told yet; shared by a Publisher and its sessions.
#[derive(Debug, Default)]
pub(super) struct Unsent(AtomicU64);

impl Unsent {
    /// The seq held back (clearing it), if any.
    pub(super) fn take(&self) -> Option<u64> {
        match self.0.swap(0, Ordering::AcqRel) {
            0 => None,
            seq => Some(seq),
        }
    }
}

impl AckCoalescer {
    pub(super) fn new(
        buffer: ActorRef<BufferMsg>,
        lease: LeaseId,
        window: usize,
        unsent: Arc<Unsent>,
    ) -> Self {
        AckCoalescer {
            buffer,
            lease,
            unsent,
            count: 0,
            every: (window / 4).max(1),
            since: Instant::now(),
        }
    }

    pub(super) fn confirmed(&mut self, seq: u64) {
        self.unsent.0.fetch_max(seq, Ordering::AcqRel);
        self.count += 1;
    }

    /// Whether the held acks go to the buffer now: the window is `idle`
    /// (nothing awaits its ack), a quarter window was confirmed, or 100 ms
    /// passed. (Failpoint `publisher::hold_acks`: never, so a test can cut
    /// a session while acks are held.)
    pub(super) fn due(&self, idle: bool) -> bool {
        fail::fail_point!("publisher::hold_acks", |_| false);
        idle || self.count >= self.every || self.since.elapsed() >= Duration::from_millis(100)
    }

    pub(super) fn flush(&mut self) -> Result<(), PublishError> {
        self.since = Instant::now();
        self.count = 0;
        match self.unsent.take() {
            Some(seq) => self
                .buffer
                .cast(BufferMsg::Ack {
                    lease: self.lease,
                    seq,
                })
                .map_err(|_| PublishError::BufferGone),
            None => Ok(()),
        }
    }

    /// Acks what was confirmed before `error`, then hands `error` on.
    pub(super) fn flush_then(&mut self, error: PublishError) -> PublishError {
        match self.flush() {
            Ok(()) => error,
            Err(gone) => gone,
        }
    }

    /// Takes `seq` out of delivery for good (too big for the server or the
    /// stream): the acks before it go first, so the buffer sees them in
    /// seq order; the buffer keeps the batch and counts it (`SetAside`).
    pub(super) fn set_aside(
        &mut self,
        seq: u64,
        reason: SetAsideReason,
    ) -> Result<(), PublishError> {
        self.flush()?;
        self.buffer
            .cast(BufferMsg::SetAside { seq, reason })
            .map_err(|_| PublishError::BufferGone)
    }
}

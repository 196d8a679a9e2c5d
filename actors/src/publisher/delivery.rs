//! Whether NATS confirms what the Publisher sends: the Publisher's verdict,
//! followed by the BufferActor (`persist = "disconnect"` writes through
//! while batches are not being confirmed) and read by `/health`.
//!
//! A TCP link that is up says nothing about delivery: a server that answers
//! but cannot store (no stream, no leader, a missing permission), a paused
//! server, a socket that died silently all keep the link up while no batch
//! is confirmed. Only the Publisher sees confirmations come or not come, so
//! it is the one source of this state.
//!
//! # Invariants
//! - One channel for the life of the tree: the service makes it
//!   ([`DeliveryWatch::new`]), the supervisor lends its sending side to each
//!   Publisher incarnation, and the BufferActor and `/health` read it. Only
//!   the Publisher (its actor and its sessions) writes it.
//! - [`Delivery::Confirming`] only on evidence, in the running session: a
//!   batch was confirmed (a PubAck, or found already stored), or the stream
//!   was opened with nothing waiting in the buffer. A session that has only
//!   connected, looked up its stream or sent is not evidence.
//! - Back to [`Delivery::Stalled`] at once when the oldest publish in
//!   flight has waited [`super::window::FENCE`] (1 s) unanswered, when the
//!   session ends (any error: timeout, rejection, no stream or leader, the
//!   connection lost), when a new session begins, and when the Publisher
//!   stops or dies (its state is dropped, also on a panic).
//! - A stall keeps the `since` of its start: retries do not move it, only
//!   a confirmation ends the stall. `since` is when the oldest unanswered
//!   publish went out (overdue), or when confirming stopped otherwise.
//! - Each session writes under a number the watch hands out (never reused,
//!   also across Publisher incarnations); once the Publisher has ended a
//!   session (or begun another), that session's writes are ignored, so an
//!   aborted session finishing a poll cannot report `Confirming` late.
//! - Listeners are woken only when [`DeliveryState::is_confirming`] changes;
//!   the reason and `since` change without waking anyone.

use std::time::{Duration, Instant};

use ractor::{ActorRef, Message};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether batches are being confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The running session gets its batches confirmed (see the module doc).
    Confirming,
    /// Nothing is being confirmed.
    Stalled {
        /// Since when (the stall's start; retries do not move it).
        since: Instant,
        /// The latest reason.
        why: Stall,
    },
}

/// Why batches are not being confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// No Publisher runs (not started yet, stopped, or died), or it has
    /// not begun a session yet.
    NoPublisher,
    /// A session began and has had nothing confirmed yet.
    Unconfirmed,
    /// The oldest publish in flight has waited the fence unanswered.
    Overdue,
    /// The session ended with an error of this `reason` label
    /// (`ingestor_publish_errors_total{reason}`).
    Failed(&'static str),
}

/// What the Publisher tells whoever watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    delivery: Delivery,
    /// The session whose writes count (0: none).
    session: u64,
    /// Sessions begun on this channel, over every Publisher incarnation:
    /// numbers are never reused.
    sessions: u64,
    /// The writing Publisher's `ack_timeout`: how long nothing may be
    /// confirmed while batches wait before `/health` says `stalled`.
    ack_timeout: Duration,
}

impl DeliveryState {
    /// Confirming or stalled, and since when.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// Batches are being confirmed (the buffer keeps them in memory).
    pub fn is_confirming(&self) -> bool {
        self.delivery == Delivery::Confirming
    }

    /// `/health`'s `"delivery":"stalled"`: batches wait (`backlog > 0`) and
    /// nothing was confirmed for `ack_timeout`.
    pub fn is_stalled_with(&self, backlog: u64) -> bool {
        match self.delivery {
            Delivery::Stalled { since, .. } => backlog > 0 && since.elapsed() >= self.ack_timeout,
            Delivery::Confirming => false,
        }
    }

    /// Stalled for `why`, unless stalled already (then only the reason
    /// changes). Returns whether it was confirming before.
    fn stall(&mut self, why: Stall, since: Instant) -> bool {
        match &mut self.delivery {
            Delivery::Stalled { why: was, .. } => {
                *was = why;
                false
            }
            Delivery::Confirming => {
                self.delivery = Delivery::Stalled { since, why };
                true
            }
        }
    }
}

/// The sending side of the delivery state; cloned for each Publisher
/// incarnation (and its sessions), kept by the supervisor.
#[derive(Debug, Clone)]
pub struct DeliveryWatch(watch::Sender<DeliveryState>);

impl DeliveryWatch {
    /// A channel that starts stalled (no Publisher yet); `ack_timeout` is
    /// `[nats] ack_timeout` until a Publisher brings its own.
    pub fn new(ack_timeout: Duration) -> Self {
        DeliveryWatch(watch::Sender::new(DeliveryState {
            delivery: Delivery::Stalled {
                since: Instant::now(),
                why: Stall::NoPublisher,
            },
            session: 0,
            sessions: 0,
            ack_timeout,
        }))
    }

    /// A receiver for a listener (the BufferActor, `/health`).
    pub fn subscribe(&self) -> watch::Receiver<DeliveryState> {
        self.0.subscribe()
    }

    /// A receiver that stays stalled: for a BufferActor without a Publisher
    /// (tests, benches, offline tools).
    pub fn never_delivering() -> watch::Receiver<DeliveryState> {
        Self::new(Duration::from_secs(5)).subscribe()
    }

    /// A Publisher starts: its `ack_timeout` counts from now on; whatever
    /// a predecessor left, nothing is confirmed before its first session.
    pub(super) fn publisher_started(&self, ack_timeout: Duration) {
        self.0.send_if_modified(|s| {
            s.ack_timeout = ack_timeout;
            s.session = 0;
            s.stall(Stall::NoPublisher, Instant::now())
        });
    }

    /// A session begins: stalled until it earns `Confirming`. Returns the
    /// handle it writes through, under a number of its own.
    pub(super) fn begin(&self) -> SessionDelivery {
        let mut session = 0;
        self.0.send_if_modified(|s| {
            s.sessions += 1;
            s.session = s.sessions;
            session = s.session;
            s.stall(Stall::Unconfirmed, Instant::now())
        });
        SessionDelivery {
            watch: self.clone(),
            session,
            confirming: false,
        }
    }

    /// The session ended (or was ended) with `why`: no session's writes
    /// count until the next one begins.
    pub(super) fn ended(&self, why: Stall) {
        self.0.send_if_modified(|s| {
            s.session = 0;
            s.stall(why, Instant::now())
        });
    }
}

/// The Publisher's own end: what it leaves behind when it goes, however it
/// goes (its state is dropped also after a panic), is a stall.
#[derive(Debug)]
pub(super) struct DeliveryReport(pub(super) DeliveryWatch);

impl Drop for DeliveryReport {
    fn drop(&mut self) {
        self.0.ended(Stall::NoPublisher);
    }
}

/// One session's writes. Remembers what it reported last, so a
/// confirmation costs no lock while the state is already `Confirming`.
#[derive(Debug)]
pub(super) struct SessionDelivery {
    watch: DeliveryWatch,
    session: u64,
    confirming: bool,
}

impl SessionDelivery {
    /// Evidence that batches are confirmed (see the module doc).
    pub(super) fn confirming(&mut self) {
        if self.confirming {
            return;
        }
        let session = self.session;
        let mut current = false;
        self.watch.0.send_if_modified(|s| {
            current = s.session == session;
            if !current || s.is_confirming() {
                return false;
            }
            s.delivery = Delivery::Confirming;
            true
        });
        self.confirming = current;
    }

    /// Whether the last report was `Confirming` (the overdue timer runs).
    pub(super) fn is_confirming(&self) -> bool {
        self.confirming
    }

    /// The oldest publish, sent at `since`, has waited the fence.
    pub(super) fn overdue(&mut self, since: Instant) {
        self.confirming = false;
        let session = self.session;
        self.watch.0.send_if_modified(|s| {
            if s.session != session {
                return false;
            }
            s.stall(Stall::Overdue, since)
        });
    }
}

/// A task that tells `actor` whether batches are being confirmed (as
/// `to_msg` makes the message): the current state first, then each change.
/// Aborted when dropped, so it never outlives the actor whose state holds
/// it.
#[derive(Debug)]
pub struct FollowingDelivery(JoinHandle<()>);

impl FollowingDelivery {
    /// Starts following `rx` for `actor` (of kind `kind`, for the log: a
    /// panic in the task stops the actor, `watched`).
    pub fn start<M: Message>(
        kind: &'static str,
        mut rx: watch::Receiver<DeliveryState>,
        actor: ActorRef<M>,
        to_msg: fn(bool) -> M,
    ) -> Self {
        let cell = actor.get_cell();
        let follow = async move {
            loop {
                let confirming = rx.borrow_and_update().is_confirming();
                if actor.cast(to_msg(confirming)).is_err() || rx.changed().await.is_err() {
                    return;
                }
            }
        };
        FollowingDelivery(crate::watched::spawn_stopping(
            kind,
            "delivery watch",
            follow,
            cell,
        ))
    }
}

impl Drop for FollowingDelivery {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(watch: &DeliveryWatch) -> DeliveryState {
        watch.subscribe().borrow().clone()
    }

    #[test]
    fn confirming_only_within_the_current_session_and_a_stall_keeps_its_start() {
        let watch = DeliveryWatch::new(Duration::from_secs(5));
        let mut rx = watch.subscribe();
        rx.borrow_and_update();
        watch.publisher_started(Duration::from_millis(50));
        let mut one = watch.begin();
        assert!(
            !rx.has_changed().unwrap(),
            "stalled to stalled wakes nobody"
        );
        let Delivery::Stalled { since: start, .. } = state(&watch).delivery() else {
            panic!("a new session is not confirming");
        };
        one.confirming();
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().is_confirming());

        let sent = Instant::now();
        one.overdue(sent);
        let overdue = Delivery::Stalled {
            since: sent,
            why: Stall::Overdue,
        };
        assert_eq!(state(&watch).delivery(), overdue);
        watch.ended(Stall::Failed("timeout"));
        // An ended session cannot report confirmations any more, also not
        // once a new Publisher has started (numbers are never reused).
        watch.publisher_started(Duration::from_millis(50));
        one.confirming();
        assert!(!state(&watch).is_confirming());
        let _two = watch.begin();
        one.confirming();
        let Delivery::Stalled { since, .. } = state(&watch).delivery() else {
            panic!("still stalled");
        };
        assert_eq!(since, sent, "retries do not move the stall's start");
        assert!(sent >= start);
    }

    #[test]
    fn health_says_stalled_only_with_a_backlog_after_ack_timeout() {
        let watch = DeliveryWatch::new(Duration::from_secs(3600));
        assert!(!state(&watch).is_stalled_with(5), "not yet ack_timeout");
        watch.publisher_started(Duration::ZERO);
        assert!(state(&watch).is_stalled_with(5));
        assert!(!state(&watch).is_stalled_with(0), "nothing waits");
        watch.begin().confirming();
        assert!(!state(&watch).is_stalled_with(5));
    }

    #[test]
    fn a_dropped_report_leaves_a_stall() {
        let watch = DeliveryWatch::new(Duration::from_secs(5));
        let report = DeliveryReport(watch.clone());
        report.0.begin().confirming();
        assert!(state(&watch).is_confirming());
        drop(report);
        assert!(matches!(
            state(&watch).delivery(),
            Delivery::Stalled {
                why: Stall::NoPublisher,
                ..
            }
        ));
    }
}

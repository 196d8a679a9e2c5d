//! The connection state the ConnectionMonitor publishes, and how a
//! listener follows it.
//!
//! The monitor does not know who listens: it writes a [`ConnectionState`]
//! into a `tokio::sync::watch` ([`ConnectionWatch`]), and the BufferActor
//! and the Publisher each get a receiver in their arguments.
//!
//! # Invariants
//! - One channel for the life of the tree: the supervisor makes it once and
//!   lends the sending side to each monitor incarnation, so a restarted
//!   buffer or publisher reads the current state at once, and a restarted
//!   monitor carries on where the last one left off.
//! - [`Link::Up`] only while a running monitor vouches for that client:
//!   a monitor that stops or dies (its state dropped, also on a panic)
//!   leaves [`Link::Down`] behind, so nobody keeps using a client whose
//!   events nobody watches.
//! - A watch keeps only the latest value, so a quick down-and-up could be
//!   seen as one state. A [`Follower`] tells the changes apart by the
//!   connection number: a new `Up` after another `Up` is reported as
//!   [`LinkEvent::Disconnected`] then [`LinkEvent::Connected`], exactly the
//!   sequence the monitor went through. A permissions violation reported by
//!   the server comes as [`LinkEvent::Rejected`], ordered with the
//!   connection it happened on; several between two looks are reported
//!   once, with the last text.

use async_nats::Client;
use ractor::{ActorRef, Message};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether NATS can be reached right now.
#[derive(Debug, Clone)]
pub enum Link {
    /// Connected: publish through this client (it dies with its connection).
    Up(Client),
    /// Not connected; `why` is the last connection problem, when there was one.
    Down {
        /// The last connect error (or why the monitor stopped).
        why: Option<String>,
    },
}

/// A permissions violation (`-ERR`) the server reported on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Counts the rejections on this channel (1 = the first).
    pub count: u64,
    /// The connection it came on (see [`ConnectionState::connection`]).
    pub connection: u64,
    /// The server's text.
    pub text: String,
}

/// What the ConnectionMonitor tells whoever watches.
#[derive(Debug, Clone)]
pub struct ConnectionState {
    /// Up (with the client) or down (with why).
    pub link: Link,
    /// Numbers the connections made on this channel: the current one while
    /// up, the last one while down (0: none yet).
    pub connection: u64,
    /// The latest permissions violation, if there was one.
    pub rejected: Option<Rejection>,
}

/// The sending side of the connection state; cloned for each monitor
/// incarnation, kept by whoever made it (the supervisor).
#[derive(Debug, Clone)]
pub struct ConnectionWatch(watch::Sender<ConnectionState>);

impl Default for ConnectionWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionWatch {
    /// A channel that starts down, with no connection made yet.
    pub fn new() -> Self {
        ConnectionWatch(watch::Sender::new(ConnectionState {
            link: Link::Down { why: None },
            connection: 0,
            rejected: None,
        }))
    }

    /// A receiver for a listener (the BufferActor, the Publisher).
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.0.subscribe()
    }

    /// A receiver whose state is down and stays so: for a BufferActor that
    /// runs without NATS (tests, benches, offline tools).
    pub fn never_connected() -> watch::Receiver<ConnectionState> {
        Self::new().subscribe()
    }

    /// A new connection is up with `client`.
    pub(super) fn up(&self, client: Client) {
        self.0.send_modify(|s| {
            s.connection += 1;
            s.link = Link::Up(client);
        });
    }

    /// The connection is gone: listeners are told (unless already down).
    pub(super) fn down(&self, why: Option<String>) {
        self.0.send_if_modified(|s| match s.link {
            Link::Up(_) => {
                s.link = Link::Down { why };
                true
            }
            Link::Down { .. } => false,
        });
    }

    /// A connect attempt failed: the reason shows in the state while down
    /// (nobody is woken for it; the link did not change).
    pub(super) fn problem(&self, text: &str) {
        self.0.send_if_modified(|s| {
            if let Link::Down { why } = &mut s.link {
                *why = Some(text.to_owned());
            }
            false
        });
    }

    /// The server rejected something on the current connection.
    pub(super) fn rejected(&self, text: String) {
        self.0.send_modify(|s| {
            let count = s.rejected.as_ref().map_or(0, |r| r.count) + 1;
            s.rejected = Some(Rejection {
                count,
                connection: s.connection,
                text,
            });
        });
    }
}

/// The monitor's end of the watch: what it leaves behind when it goes,
/// however it goes (its state is dropped also after a panic), is down.
#[derive(Debug)]
pub(super) struct Announcer(pub(super) ConnectionWatch);

impl Drop for Announcer {
    fn drop(&mut self) {
        self.0.down(Some(MONITOR_GONE.into()));
    }
}

/// `Link::Down`'s reason after the monitor stopped.
pub(super) const MONITOR_GONE: &str = "the connection monitor stopped";

/// A change of the connection state, as one listener sees it.
#[derive(Debug, Clone)]
pub enum LinkEvent {
    /// Connected; publish through this client.
    Connected(Client),
    /// The connection is down.
    Disconnected,
    /// The server sent `-ERR` (a permissions violation).
    Rejected(String),
}

/// Turns the watched state into the sequence of [`LinkEvent`]s one
/// listener needs (see the module doc).
#[derive(Debug)]
pub struct Follower {
    rx: watch::Receiver<ConnectionState>,
    /// The connection last reported up, while it is.
    up: Option<u64>,
    /// Rejections already reported (or older than this follower).
    rejections: u64,
    started: bool,
}

impl Follower {
    /// Starts following; the first [`events`](Self::events) reports the
    /// current state (connected or not). Older rejections are not reported.
    pub fn new(rx: watch::Receiver<ConnectionState>) -> Self {
        let rejections = rx.borrow().rejected.as_ref().map_or(0, |r| r.count);
        Follower {
            rx,
            up: None,
            rejections,
            started: false,
        }
    }

    /// What changed since the last call, in the order it happened.
    pub fn events(&mut self) -> Vec<LinkEvent> {
        let state = self.rx.borrow_and_update().clone();
        let mut out = Vec::new();
        let now_up = match &state.link {
            Link::Up(_) => Some(state.connection),
            Link::Down { .. } => None,
        };
        let rejection = state
            .rejected
            .filter(|r| r.count > self.rejections)
            .inspect(|r| self.rejections = r.count);
        // A rejection on a connection that only comes up now is news after
        // the link change; any other one happened before it.
        let (before, after) = match rejection {
            Some(r) if now_up == Some(r.connection) && self.up != now_up => (None, Some(r)),
            other => (other, None),
        };
        out.extend(before.map(|r| LinkEvent::Rejected(r.text)));
        let was_up = self.up.is_some();
        if was_up && self.up != now_up {
            out.push(LinkEvent::Disconnected);
        }
        match state.link {
            Link::Up(client) if self.up != now_up => out.push(LinkEvent::Connected(client)),
            Link::Down { .. } if !self.started && !was_up => out.push(LinkEvent::Disconnected),
            _ => {}
        }
        out.extend(after.map(|r| LinkEvent::Rejected(r.text)));
        self.up = now_up;
        self.started = true;
        out
    }

    /// Waits for the next change; `None` once no sender is left.
    pub async fn changed(&mut self) -> Option<Vec<LinkEvent>> {
        self.rx.changed().await.ok()?;
        Some(self.events())
    }
}

/// A task that tells `actor` every [`LinkEvent`] (as `to_msg` makes it),
/// starting with the current state. Aborted when dropped, so it never
/// outlives the actor whose state holds it (also when the actor panics).
#[derive(Debug)]
pub struct Following(JoinHandle<()>);

impl Following {
    /// Starts following `rx` for `actor` (of kind `kind`, for the log);
    /// events `to_msg` maps to `None` are not the actor's business.
    pub fn start<M: Message>(
        kind: &'static str,
        rx: watch::Receiver<ConnectionState>,
        actor: ActorRef<M>,
        to_msg: fn(LinkEvent) -> Option<M>,
    ) -> Self {
        let mut follower = Follower::new(rx);
        let cell = actor.get_cell();
        let follow = async move {
            let mut events = follower.events();
            loop {
                for msg in events.into_iter().filter_map(to_msg) {
                    if actor.cast(msg).is_err() {
                        return;
                    }
                }
                match follower.changed().await {
                    Some(next) => events = next,
                    None => return,
                }
            }
        };
        // A panic here stops the actor (`watched`): its supervisor restarts it.
        Following(crate::watched::spawn_stopping(
            kind,
            "connection watch",
            follow,
            cell,
        ))
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that never connects (nothing listens on port 1): enough to
    /// stand for a connection in the state.
    async fn client() -> Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("nats://127.0.0.1:1")
            .await
            .unwrap()
    }

    fn names(events: &[LinkEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                LinkEvent::Connected(_) => "up".to_string(),
                LinkEvent::Disconnected => "down".to_string(),
                LinkEvent::Rejected(text) => format!("rejected {text}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn first_look_reports_the_current_state_then_only_changes() {
        let watch = ConnectionWatch::new();
        let mut down = Follower::new(watch.subscribe());
        assert_eq!(names(&down.events()), ["down"]);
        assert_eq!(names(&down.events()), Vec::<String>::new());
        watch.up(client().await);
        let mut up = Follower::new(watch.subscribe());
        assert_eq!(names(&up.events()), ["up"]);
        assert_eq!(names(&down.events()), ["up"]);
        watch.problem("ignored while up");
        watch.down(Some("connection lost".into()));
        assert_eq!(names(&up.events()), ["down"]);
    }

    #[tokio::test]
    async fn a_quick_down_and_up_is_seen_as_both() {
        let watch = ConnectionWatch::new();
        let mut f = Follower::new(watch.subscribe());
        watch.up(client().await);
        assert_eq!(names(&f.events()), ["up"]);
        watch.down(None);
        watch.up(client().await);
        assert_eq!(names(&f.events()), ["down", "up"]);
    }

    #[tokio::test]
    async fn rejections_come_in_order_with_their_connection_and_old_ones_are_not_replayed() {
        let watch = ConnectionWatch::new();
        watch.up(client().await);
        watch.rejected("before".into());
        let mut f = Follower::new(watch.subscribe());
        assert_eq!(names(&f.events()), ["up"]);
        watch.rejected("a".into());
        watch.rejected("b".into());
        assert_eq!(names(&f.events()), ["rejected b"]);
        // On the old connection, then a new one: before the switch.
        watch.rejected("old".into());
        watch.down(None);
        watch.up(client().await);
        assert_eq!(names(&f.events()), ["rejected old", "down", "up"]);
        // On a connection that only comes up now: after it.
        watch.down(None);
        watch.up(client().await);
        watch.rejected("new".into());
        assert_eq!(names(&f.events()), ["down", "up", "rejected new"]);
    }

    #[tokio::test]
    async fn a_dropped_announcer_leaves_the_state_down() {
        let watch = ConnectionWatch::new();
        let mut f = Follower::new(watch.subscribe());
        f.events();
        let announcer = Announcer(watch.clone());
        announcer.0.up(client().await);
        assert_eq!(names(&f.events()), ["up"]);
        drop(announcer);
        assert_eq!(names(&f.events()), ["down"]);
        assert!(matches!(
            &watch.subscribe().borrow().link,
            Link::Down { why: Some(why) } if why == MONITOR_GONE
        ));
    }

    #[tokio::test]
    async fn the_follower_ends_when_no_sender_is_left() {
        let mut f = Follower::new(ConnectionWatch::never_connected());
        assert_eq!(names(&f.events()), ["down"]);
        assert!(f.changed().await.is_none());
    }
}

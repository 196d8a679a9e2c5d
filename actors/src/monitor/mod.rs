//! ConnectionMonitor: makes the connections to NATS and tells the others
//! whether NATS can be reached.
//!
//! # Invariants
//! - One async-nats client per connection. A client never reconnects on its
//!   own: when its connection dies, the client dies with it, with every
//!   command still queued in it (see `connect` for how), so nothing issued
//!   on an old connection can reach the server after the Publisher resent
//!   what was lost. The monitor then connects a fresh client.
//! - Connect attempts run in a task, never in the actor's handler: `/health`
//!   and the supervisor get answers while a server is unreachable.
//! - Back quickly, no storm: after a loss the first attempt is immediate,
//!   then 50 ms doubling to [`connect::RECONNECT_MAX_DELAY`] (500 ms) apart.
//!   A server that comes back is in use within about half a second.
//! - The monitor does not know who listens: the state of the current
//!   connection (up with its client, or down and why, and the server's
//!   permission rejections) goes into the [`ConnectionWatch`] it is lent.
//!   The Publisher and the BufferActor (for `persist = "disconnect"`) each
//!   follow a receiver of it, so their restarts need nothing from here.
//!   Events of a retired client (tagged with its generation) are ignored.
//! - Up only while this monitor runs: when it stops or dies, the state it
//!   leaves is down (see [`ConnectionWatch`]).
//! - The service starts and buffers when NATS is down at boot: the first
//!   connect is just another attempt.
//! - No global state: everything comes in [`ConnectionMonitorArgs`], so a
//!   `[nats]` change is applied by stopping this actor and spawning a new one.
//!
//! A TCP path that dies without a FIN (cable pulled, VPN gone) is noticed by
//! pings: the client sends one every
//! [`ConnectionMonitorArgs::ping_interval`] and gives up after two
//! unanswered, so within about three intervals instead of the library's
//! default of minutes.
//!
//! Metrics: `ingestor_nats_connected` (gauge), `ingestor_nats_reconnects_total`.
//!
//! # Files
//! - [`actor`]: the ConnectionMonitor itself (`ConnectionMonitorArgs`,
//!   `ConnectionMonitorMsg`, `ConnectionMonitorState`, `impl Actor`).
//! - `events`: what a client's events mean, how a problem is reported.
//! - `connect`: one connection, and the sink a client dies against.
//! - `connection`: the watch of the connection state and its followers.

pub mod actor;
mod connect;
mod connection;
mod events;
mod failure;

pub use actor::{
    ConnectionMonitor, ConnectionMonitorArgs, ConnectionMonitorMsg, ConnectionMonitorStatus,
    DEFAULT_PING_INTERVAL,
};
pub use connect::{reconnect_delay, RECONNECT_MAX_DELAY};
pub use connection::{
    ConnectionState, ConnectionWatch, Follower, Following, Link, LinkEvent, Rejection,
};

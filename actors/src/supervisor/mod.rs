//! RootSupervisor: starts and restarts the tree.
//!
//! ```text
//! RootSupervisor
//! ├── BufferActor        store (ring + spool) kept here, handed to each incarnation
//! │                      (the root itself only requeues and closes: `StoreControl`);
//! │                      follows the delivery watch
//! ├── Publisher          needs: buffer; follows the connection watch, writes the
//! │                      delivery watch (made by the service, lent to each incarnation)
//! ├── ConnectionMonitor  needs nothing; writes the connection watch (made here
//! │                      once, lent to each incarnation)
//! └── DevicePoller × N   need nothing (links kept here, shared by devices on one
//!                        address; they push through the inlet, kept here too)
//! ```
//!
//! A failed child is restarted after `backoff_min · 2^(n−1)` (capped at
//! `backoff_max`), together with the children that hold a reference to it
//! (they are stopped at once and come back with it): the buffer takes the
//! publisher with it. Nobody holds a reference to the monitor: the
//! publisher reads the connection state from the watch when it starts, so
//! its restarts cost no NATS reconnect; a monitor that stops or dies leaves
//! the state down (the publisher's session ends as on a lost connection)
//! until its successor connects. The buffer follows the Publisher's
//! delivery watch the same way: a Publisher that stops or dies leaves it
//! stalled, so `persist = "disconnect"` writes through until a successor's
//! batches are confirmed. When a Publisher (or the
//! buffer) comes back, the in-flight batches are requeued first
//! (`StoreControl`). More than `max_restarts` failures of one child within
//! `within`: the tree shuts down cleanly (ring to disk) and reports exit
//! status 1. A supervisor
//! reacts only to children it owns, matched by actor id; the default
//! handler (stop on any child failure) is overridden. A child starts only
//! when the children it needs run (else it comes with them after their
//! back-off).
//!
//! Pollers are named by a key per device entry (`devices`), not by
//! position, so a config reload ([`RootSupervisorMsg::Reload`], `reload`)
//! can add and remove them at runtime:
//!
//! - a device entry that did not change keeps its poller, untouched: no
//!   missed or doubled poll cycle; it is told `DevicePollerMsg::Reloaded`;
//! - a removed entry's poller stops; a changed one stops and a new one
//!   starts; a new entry's poller starts;
//! - devices on one address keep sharing one link; links nobody uses any
//!   more are forgotten (they close with their last poller);
//! - a changed `[nats]` stops the Publisher and the ConnectionMonitor and
//!   starts them with the new settings; the in-flight batches are nacked
//!   first, as on a publisher restart, so order and exactly-once hold;
//! - `seq`, the ring and the spool are never touched: the BufferActor runs on.
//!
//! # Files
//! - this file: who the children are ([`Child`]), how the tree ended
//!   ([`Exit`]), the children running now ([`Refs`]).
//! - [`actor`]: the RootSupervisor itself (`RootSupervisorArgs`,
//!   `RootSupervisorMsg`, `RootSupervisorState`, `impl Actor`): failures,
//!   back-off, starting what is missing.
//! - `children`: how each child is built from what the root keeps.
//! - `stop`: stopping one child, its dependents, and the whole tree.
//! - `reload`: a reloaded config applied to the running tree.
//! - `devices`: which poller runs which `[[devices]]` entry.
//! - `restarts`: back-off and restart intensity, per child.

pub mod actor;
mod children;
mod devices;
mod reload;
mod restarts;
mod stop;

use ractor::ActorRef;

pub use actor::{RootSupervisor, RootSupervisorArgs, RootSupervisorMsg};
pub use reload::ReloadReport;
pub use restarts::{Restarts, Verdict};

use crate::buffer::BufferMsg;
use crate::monitor::ConnectionMonitorMsg;
use crate::poller::{DevicePollerMsg, DeviceStatus};
use crate::publisher::PublisherMsg;

/// A child of the root, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    /// The BufferActor.
    Buffer,
    /// The Publisher.
    Publisher,
    /// The ConnectionMonitor.
    Monitor,
    /// The DevicePoller with this key (one per device entry, stable while
    /// the entry is unchanged; see `devices`).
    Poller(usize),
}

impl Child {
    /// The `actor` label of `ingestor_actor_restarts_total`.
    pub fn label(self) -> &'static str {
        match self {
            Child::Buffer => "buffer",
            Child::Publisher => "publisher",
            Child::Monitor => "monitor",
            Child::Poller(_) => "poller",
        }
    }

    /// Whether `self` holds a reference to `other` (and must restart with it).
    fn depends_on(self, other: Child) -> bool {
        // The monitor knows neither buffer nor publisher: they follow its
        // watch, so their restarts cost no NATS reconnect.
        // Pollers push through the inlet, which holds their batches while
        // the buffer restarts: they keep polling.
        matches!((other, self), (Child::Buffer, Child::Publisher))
    }

    /// The children that must run before `self` can start.
    fn needs(self) -> &'static [Child] {
        match self {
            // Pollers push through the inlet, which holds their batches
            // while no buffer runs.
            // The monitor writes to the watch kept here, whoever listens.
            Child::Buffer | Child::Poller(_) | Child::Monitor => &[],
            Child::Publisher => &[Child::Buffer],
        }
    }
}

/// How the tree ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop (SIGTERM/SIGINT): exit 0.
    Clean,
    /// A child failed too often: exit 1.
    GaveUp,
    /// An actor stopped answering and the service stopped the tree itself
    /// (the service's hang detector; the supervisor never reports this): exit 1.
    Hung,
}

/// The children running right now (for health checks and the watchdog).
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// The BufferActor, unless restarting.
    pub buffer: Option<ActorRef<BufferMsg>>,
    /// The Publisher, unless restarting.
    pub publisher: Option<ActorRef<PublisherMsg>>,
    /// The ConnectionMonitor, unless restarting.
    pub monitor: Option<ActorRef<ConnectionMonitorMsg>>,
    /// The DevicePollers, in config order.
    pub pollers: Vec<Option<ActorRef<DevicePollerMsg>>>,
    /// One status per device, in config order: up or not, last poll, last
    /// values (a reload changes the devices).
    pub devices: Vec<DeviceStatus>,
}

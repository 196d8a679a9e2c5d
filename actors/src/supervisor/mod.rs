//! RootSupervisor: starts and restarts the tree.
//!
//! ```text
//! RootSupervisor
//! ├── BufferActor        store (ring + spool) kept here, handed to each incarnation
//! │                      (the root itself only requeues and closes: `StoreControl`);
//! │                      follows the connection watch
//! ├── Publisher          needs: buffer; follows the connection watch
//! ├── ConnectionMonitor  needs nothing; writes the connection watch (made here
//! │                      once, lent to each incarnation)
//! └── DevicePoller × N   need nothing (links kept here, shared by devices on one
//!                        address; they push through the inlet, kept here too)
//! ```
//!
//! A failed child is restarted after `backoff_min · 2^(n−1)` (capped at
//! `backoff_max`), together with the children that hold a reference to it
//! (they are stopped at once and come back with it): the buffer takes the
//! publisher with it. Nobody holds a reference to the monitor: the buffer
//! and the publisher read the connection state from the watch when they
//! start, so their restarts cost no NATS reconnect; a monitor that stops or
//! dies leaves the state down (the publisher's session ends as on a lost
//! connection) until its successor connects. When a Publisher (or the
//! buffer) comes back, the in-flight batches are requeued first
//! (`StoreControl`). More than `max_restarts` failures of one child within
//! `within`: the tree shuts down cleanly (ring to disk) and reports exit
//! status 1. A supervisor
//! reacts only to children it owns, matched by actor id; the default
//! handler (stop on any child failure) is overridden. A child starts only
//! when the children it needs run (else it comes with them after their
//! back-off).
//!
//! Pollers are named by a key per device entry (`devices`), not by position,
//! so a config reload ([`RootMsg::Reload`], `reload`) can add and remove
//! them at runtime:
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

mod children;
mod devices;
mod reload;
mod restarts;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::counter;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

pub use reload::ReloadReport;
pub use restarts::{Restarts, Verdict};

use devices::DeviceTable;

use crate::buffer::{BufferInlet, BufferMsg, SharedStore, StoreControl};
use crate::metric_names;
use crate::monitor::{ConnectionMonitorMsg, ConnectionWatch};
use crate::poller::{DevicePollerMsg, Links};
use crate::publisher::PublisherMsg;
use crate::settings::Settings;

/// How long a stopping child may take before it is left behind.
const STOP_WAIT: Duration = Duration::from_secs(3);

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

/// What the root starts from.
pub struct RootArgs {
    /// The validated config.
    pub settings: Arc<Settings>,
    /// The buffer's store; survives every restart.
    pub store: SharedStore,
    /// One flag per device, set while its last poll got answers.
    pub device_up: Vec<Arc<AtomicBool>>,
    /// Told once when the tree has shut down, and why.
    pub exit: tokio::sync::watch::Sender<Option<Exit>>,
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
    /// One flag per device, in config order, set while its last poll got
    /// answers (a reload changes the devices).
    pub device_up: Vec<Arc<AtomicBool>>,
}

/// Messages of the RootSupervisor.
#[derive(Debug)]
pub enum RootMsg {
    /// Internal: a back-off is over; start what is missing.
    Restart(Child),
    /// Stop everything cleanly (pollers, publisher, buffer to disk); the
    /// reply comes when done.
    Shutdown(RpcReplyPort<()>),
    /// The children running now.
    Refs(RpcReplyPort<Refs>),
    /// Apply a reloaded, validated config: devices and `[nats]` (see the
    /// module doc). Everything else is taken as it is; the caller keeps the
    /// keys that need a restart at their running values. The reply says
    /// what changed.
    Reload(Box<Settings>, RpcReplyPort<ReloadReport>),
}

/// The RootSupervisor.
pub struct RootSupervisor;

/// The root's state: what it needs to rebuild each child (ractor consumes
/// `Arguments`), and who is who.
pub struct RootState {
    settings: Arc<Settings>,
    /// Handed to each BufferActor; never read or written here.
    store: SharedStore,
    /// All the root does with the store itself: requeue, close.
    control: StoreControl,
    links: Links,
    devices: DeviceTable,
    exit: tokio::sync::watch::Sender<Option<Exit>>,
    refs: Refs,
    ids: HashMap<ActorId, Child>,
    waiting: HashSet<Child>,
    restarts: Restarts<Child>,
    stopping: bool,
    /// The pollers' way into the buffer; outlives buffer restarts.
    inlet: BufferInlet,
    /// Tells the inlet which BufferActor is current (`None`: restarting).
    inlet_target: tokio::sync::watch::Sender<Option<ActorRef<BufferMsg>>>,
    /// The NATS connection state: written by each monitor incarnation,
    /// followed by the buffer and the publisher; outlives all of them.
    connection: ConnectionWatch,
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let (inlet_target, target) = tokio::sync::watch::channel(None);
        Ok(RootState {
            inlet: BufferInlet::new(target),
            inlet_target,
            restarts: Restarts::new(args.settings.supervision.clone()),
            devices: DeviceTable::new(&args.settings.devices, &args.device_up),
            settings: args.settings,
            control: args.store.control(),
            store: args.store,
            links: Links::new(),
            exit: args.exit,
            refs: Refs::default(),
            ids: HashMap::new(),
            waiting: HashSet::new(),
            stopping: false,
            connection: ConnectionWatch::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        state.start_missing(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Restart(child) => {
                state.waiting.remove(&child);
                if matches!(child, Child::Publisher | Child::Buffer) {
                    // Its in-flight batches go out again, first. Done now,
                    // after the back-off, not at the failure: a Take the dead
                    // session sent meanwhile has been answered into the void
                    // (and undone) by now, so no orphan holds batches that
                    // the new session's acks would sweep away.
                    state.control.requeue();
                }
                if !state.stopping {
                    state.start_missing(&myself).await;
                }
            }
            RootMsg::Shutdown(reply) => {
                state.shutdown(&myself, Exit::Clean).await;
                let _ = reply.send(());
            }
            RootMsg::Refs(reply) => {
                let refs = Refs {
                    pollers: state.devices.pollers(),
                    device_up: state.devices.up_flags(),
                    ..state.refs.clone()
                };
                let _ = reply.send(refs);
            }
            RootMsg::Reload(settings, reply) => {
                let report = state.reload(&myself, *settings).await;
                let _ = reply.send(report);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        // Only children we own and did not stop ourselves.
        let Some(child) = state.ids.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.clear(child);
        if state.stopping {
            return Ok(());
        }
        counter!(metric_names::ACTOR_RESTARTS_TOTAL, "actor" => child.label()).increment(1);
        match state.restarts.failed(child, Instant::now()) {
            Verdict::GiveUp(n) => {
                tracing::error!(actor = child.label(), ?child, failures = n, reason = %why,
                    "actor failed too often; shutting down cleanly (exit 1) so the service manager restarts the process");
                state.shutdown(&myself, Exit::GaveUp).await;
            }
            Verdict::RestartAfter(delay) => {
                tracing::warn!(actor = child.label(), ?child, reason = %why, ?delay, "actor failed; restarting");
                state.stop_dependents(child).await;
                state.waiting.insert(child);
                myself.send_after(delay, move || RootMsg::Restart(child));
            }
        }
        Ok(())
    }
}

impl RootState {
    fn clear(&mut self, child: Child) {
        match child {
            Child::Buffer => {
                self.refs.buffer = None;
                self.inlet_target.send_replace(None);
            }
            Child::Publisher => self.refs.publisher = None,
            Child::Monitor => self.refs.monitor = None,
            Child::Poller(key) => {
                if let Some(slot) = self.devices.slot_mut(key) {
                    slot.poller = None;
                }
            }
        }
    }

    fn cell(&self, child: Child) -> Option<ActorCell> {
        match child {
            Child::Buffer => self.refs.buffer.as_ref().map(|r| r.get_cell()),
            Child::Publisher => self.refs.publisher.as_ref().map(|r| r.get_cell()),
            Child::Monitor => self.refs.monitor.as_ref().map(|r| r.get_cell()),
            Child::Poller(key) => self
                .devices
                .slot(key)?
                .poller
                .as_ref()
                .map(|r| r.get_cell()),
        }
    }

    fn children(&self) -> Vec<Child> {
        let mut all = vec![Child::Buffer, Child::Publisher, Child::Monitor];
        all.extend(self.devices.keys().into_iter().map(Child::Poller));
        all
    }

    /// Stops (and forgets) `child`, waiting briefly for it.
    async fn stop_child(&mut self, child: Child) {
        if let Some(cell) = self.cell(child) {
            self.ids.remove(&cell.get_id());
            self.clear(child);
            let _ = cell.stop_and_wait(None, Some(STOP_WAIT)).await;
        }
    }

    async fn stop_dependents(&mut self, failed: Child) {
        for child in self.children() {
            if child.depends_on(failed) {
                self.stop_child(child).await;
            }
        }
    }

    /// Starts, in dependency order, every child that is not running, not
    /// waiting out a back-off, and whose prerequisites run (otherwise it
    /// starts with them, when their back-off ends).
    async fn start_missing(&mut self, myself: &ActorRef<RootMsg>) {
        for child in self.children() {
            if self.cell(child).is_some() || self.waiting.contains(&child) {
                continue;
            }
            if child.needs().iter().any(|&n| self.cell(n).is_none()) {
                continue;
            }
            if let Err(e) = self.start(myself, child).await {
                tracing::error!(actor = child.label(), ?child, error = %e, "could not start actor; retrying after back-off");
                counter!(metric_names::ACTOR_RESTARTS_TOTAL, "actor" => child.label()).increment(1);
                let delay = match self.restarts.failed(child, Instant::now()) {
                    Verdict::RestartAfter(d) => d,
                    Verdict::GiveUp(_) => {
                        self.shutdown(myself, Exit::GaveUp).await;
                        return;
                    }
                };
                self.waiting.insert(child);
                myself.send_after(delay, move || RootMsg::Restart(child));
            }
        }
    }

    /// Pollers first (no new data), then the publisher (its in-flight
    /// batches are nacked), then the buffer writes memory to disk and syncs.
    async fn shutdown(&mut self, myself: &ActorRef<RootMsg>, exit: Exit) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for key in self.devices.keys() {
            self.stop_child(Child::Poller(key)).await;
        }
        // What the pollers handed over reaches the buffer before it closes.
        if !self.inlet.drained(STOP_WAIT).await {
            tracing::warn!("batches still on their way into the buffer at shutdown");
        }
        self.stop_child(Child::Publisher).await;
        self.stop_child(Child::Monitor).await;
        // Acks the publisher sent before it stopped are still in the
        // buffer's mailbox: a call behind them lets them land before the
        // close (else a confirmed batch stays on disk and goes out again).
        if let Some(buffer) = &self.refs.buffer {
            let _ = ractor::call_t!(buffer, BufferMsg::Stats, STOP_WAIT.as_millis() as u64);
        }
        let control = self.control.clone();
        let closed = tokio::task::spawn_blocking(move || control.requeue_and_close()).await;
        match closed {
            Ok(Ok(())) => tracing::info!("buffer closed: memory written to disk and synced"),
            Ok(Err(e)) => tracing::error!(error = %e, "closing the buffer failed"),
            Err(e) => tracing::error!(error = %e, "closing the buffer panicked"),
        }
        // Batches a poller handed over that no buffer took before the store
        // closed (a hung buffer) can no longer be kept: counted, not silent.
        let lost = self.inlet.unanswered();
        if lost > 0 {
            metrics::counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error")
                .increment(lost as u64);
            tracing::error!(
                lost,
                "batches handed over by the pollers never reached the buffer before it closed: \
                 lost (counted as storage_error)"
            );
        }
        self.stop_child(Child::Buffer).await;
        let _ = self.exit.send(Some(exit));
        myself.stop(None);
    }
}

//! The RootSupervisor actor: its arguments, messages, state and handlers
//! side by side (the tree and its rules are in the module doc,
//! [`crate::supervisor`]).
//!
//! # Messages
//! [`RootSupervisorMsg`] has what the service sends (`Shutdown`, `Refs`,
//! `Reload`) and one opaque [`InternalMsg`] for what the root sends itself:
//! a child's back-off is over (its timer). Only this module can make or
//! match one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use metrics::counter;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::devices::DeviceTable;
use super::{Child, Exit, Refs, ReloadReport, Restarts, Verdict};
use crate::buffer::{BufferInlet, BufferMsg, SharedStore, StoreControl};
use crate::installation::Installation;
use crate::metric_names;
use crate::monitor::ConnectionWatch;
use crate::poller::DeviceStatus;
use crate::poller::Links;
use crate::publisher::DeliveryWatch;
use crate::settings::Settings;

/// The RootSupervisor.
pub struct RootSupervisor;

/// What the root starts from.
pub struct RootSupervisorArgs {
    /// The validated config.
    pub settings: Arc<Settings>,
    /// The buffer's store; survives every restart.
    pub store: SharedStore,
    /// This `data_dir`'s installation id (`Ingestor-Installation`).
    pub installation: Installation,
    /// One status per device, in config order (a fresh one for any
    /// missing); the service makes them to read them before the tree answers.
    pub devices: Vec<DeviceStatus>,
    /// Told once when the tree has shut down, and why.
    pub exit: tokio::sync::watch::Sender<Option<Exit>>,
    /// Whether batches are being confirmed: written by each Publisher
    /// incarnation, followed by the buffer; the service reads it too
    /// (`/health`), so it makes the channel.
    pub delivery: DeliveryWatch,
}

/// Messages of the RootSupervisor.
#[derive(Debug)]
pub enum RootSupervisorMsg {
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
    /// Sent by the root to itself; nothing outside this module can make or
    /// read one.
    Internal(InternalMsg),
}

/// A message the RootSupervisor sends itself (opaque outside this module).
#[derive(Debug)]
pub struct InternalMsg(Internal);

/// What the RootSupervisor's own timers tell it.
#[derive(Debug)]
enum Internal {
    /// A back-off is over; start what is missing.
    Restart(Child),
}

impl Internal {
    fn msg(self) -> RootSupervisorMsg {
        RootSupervisorMsg::Internal(InternalMsg(self))
    }
}

/// The root's state: what it needs to rebuild each child (ractor consumes
/// `Arguments`), and who is who. Its fields are open to the supervisor's
/// other files (`children`, `stop`, `reload`), which are its handlers too.
pub struct RootSupervisorState {
    pub(super) settings: Arc<Settings>,
    /// This `data_dir`'s installation id, for each Publisher.
    pub(super) installation: Installation,
    /// Handed to each BufferActor; never read or written here.
    pub(super) store: SharedStore,
    /// All the root does with the store itself: close it at the stop.
    pub(super) control: StoreControl,
    pub(super) links: Links,
    pub(super) devices: DeviceTable,
    pub(super) exit: tokio::sync::watch::Sender<Option<Exit>>,
    pub(super) refs: Refs,
    pub(super) ids: HashMap<ActorId, Child>,
    pub(super) waiting: HashSet<Child>,
    pub(super) restarts: Restarts<Child>,
    pub(super) stopping: bool,
    /// The pollers' way into the buffer; outlives buffer restarts.
    pub(super) inlet: BufferInlet,
    /// Tells the inlet which BufferActor is current (`None`: restarting).
    pub(super) inlet_target: tokio::sync::watch::Sender<Option<ActorRef<BufferMsg>>>,
    /// The NATS connection state: written by each monitor incarnation,
    /// followed by the publisher; outlives all of them.
    pub(super) connection: ConnectionWatch,
    /// Whether batches are being confirmed: lent to each Publisher
    /// incarnation, followed by each BufferActor; outlives all of them.
    pub(super) delivery: DeliveryWatch,
}

impl Actor for RootSupervisor {
    type Msg = RootSupervisorMsg;
    type State = RootSupervisorState;
    type Arguments = RootSupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RootSupervisorMsg>,
        args: RootSupervisorArgs,
    ) -> Result<RootSupervisorState, ActorProcessingErr> {
        let (inlet_target, target) = tokio::sync::watch::channel(None);
        Ok(RootSupervisorState {
            inlet: BufferInlet::new(target),
            inlet_target,
            restarts: Restarts::new(args.settings.supervision.clone()),
            devices: DeviceTable::new(&args.settings.devices, &args.devices),
            settings: args.settings,
            installation: args.installation,
            control: args.store.control(),
            store: args.store,
            links: Links::new(),
            exit: args.exit,
            refs: Refs::default(),
            ids: HashMap::new(),
            waiting: HashSet::new(),
            stopping: false,
            connection: ConnectionWatch::new(),
            delivery: args.delivery,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RootSupervisorMsg>,
        state: &mut RootSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.start_missing(&myself).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RootSupervisorMsg>,
        msg: RootSupervisorMsg,
        state: &mut RootSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootSupervisorMsg::Internal(InternalMsg(Internal::Restart(child))) => {
                state.waiting.remove(&child);
                // What a dead Publisher's session held is requeued by the
                // buffer itself when its lease drops (`buffer::Lease`).
                if !state.stopping {
                    state.start_missing(&myself).await;
                }
            }
            RootSupervisorMsg::Shutdown(reply) => {
                state.shutdown(&myself, Exit::Clean).await;
                let _ = reply.send(());
            }
            RootSupervisorMsg::Refs(reply) => {
                let refs = Refs {
                    pollers: state.devices.pollers(),
                    devices: state.devices.statuses(),
                    ..state.refs.clone()
                };
                let _ = reply.send(refs);
            }
            RootSupervisorMsg::Reload(settings, reply) => {
                let report = state.reload(&myself, *settings).await;
                let _ = reply.send(report);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootSupervisorMsg>,
        event: SupervisionEvent,
        state: &mut RootSupervisorState,
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
                myself.send_after(delay, move || Internal::Restart(child).msg());
            }
        }
        Ok(())
    }
}

impl RootSupervisorState {
    pub(super) fn clear(&mut self, child: Child) {
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

    pub(super) fn cell(&self, child: Child) -> Option<ActorCell> {
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

    pub(super) fn children(&self) -> Vec<Child> {
        let mut all = vec![Child::Buffer, Child::Publisher, Child::Monitor];
        all.extend(self.devices.keys().into_iter().map(Child::Poller));
        all
    }

    /// Starts, in dependency order, every child that is not running, not
    /// waiting out a back-off, and whose prerequisites run (otherwise it
    /// starts with them, when their back-off ends).
    pub(super) async fn start_missing(&mut self, myself: &ActorRef<RootSupervisorMsg>) {
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
                myself.send_after(delay, move || Internal::Restart(child).msg());
            }
        }
    }
}

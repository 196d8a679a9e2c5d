//! What `/health`, the watchdog and the demo's status line ask the tree.
//!
//! `/health` asks no actor: one task ([`TreeHealth::publish`]) asks the
//! tree every [`PUBLISH_EVERY`] and puts the answer in a `watch`, which
//! every request reads. A flood of `/health` therefore sends no message to
//! any mailbox and cannot starve the watchdog's probes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingestor_actors::buffer::{BufferMsg, BufferStats};
use ingestor_actors::publisher::{DeliveryState, PublishError};
use ingestor_actors::supervisor::{Refs, RootSupervisorMsg};
use ractor::ActorRef;
use tokio::sync::watch;

use crate::telemetry::http::{Health, HealthSource};

/// How long a healthy actor may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How often `/health`'s state is refreshed from the tree (how stale an
/// answer may be).
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// A handle on the running tree.
#[derive(Clone)]
pub(crate) struct TreeHealth {
    root: ActorRef<RootSupervisorMsg>,
    /// The devices' `up` flags as the tree last reported them (a reload
    /// adds and removes devices); used when the tree is busy.
    device_up: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    /// The Publisher's delivery state (read as it is, without asking an
    /// actor: a restarting Publisher left it stalled).
    delivery: watch::Receiver<DeliveryState>,
}

/// Everything the status line shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) buffer: BufferStats,
    pub(crate) nats_connected: bool,
    /// Batches wait and nothing was confirmed for `ack_timeout`.
    pub(crate) delivery_stalled: bool,
    pub(crate) published: u64,
    /// The publisher's last failure is an id conflict (it publishes nothing).
    pub(crate) id_conflict: bool,
    pub(crate) devices_up: usize,
    pub(crate) devices: usize,
}

impl TreeHealth {
    pub(crate) fn new(
        root: ActorRef<RootSupervisorMsg>,
        device_up: Vec<Arc<AtomicBool>>,
        delivery: watch::Receiver<DeliveryState>,
    ) -> Self {
        TreeHealth {
            root,
            device_up: Arc::new(Mutex::new(device_up)),
            delivery,
        }
    }

    async fn refs(&self) -> Option<Refs> {
        let refs = ractor::call_t!(
            self.root,
            RootSupervisorMsg::Refs,
            ANSWER_WITHIN.as_millis() as u64
        )
        .ok();
        if let (Some(r), Ok(mut known)) = (&refs, self.device_up.lock()) {
            known.clone_from(&r.device_up);
        }
        refs
    }

    /// (devices up, devices), from the flags last reported.
    fn devices_up(&self) -> (usize, usize) {
        match self.device_up.lock() {
            Ok(flags) => (
                flags.iter().filter(|u| u.load(Ordering::Relaxed)).count(),
                flags.len(),
            ),
            Err(_) => (0, 0),
        }
    }

    /// Buffer counts, NATS state, devices; best effort (a restarting actor
    /// contributes its defaults).
    pub(crate) async fn snapshot(&self) -> Snapshot {
        let ms = ANSWER_WITHIN.as_millis() as u64;
        let refs = self.refs().await;
        let (devices_up, devices) = self.devices_up();
        let mut snap = Snapshot {
            devices,
            devices_up,
            ..Snapshot::default()
        };
        let Some(refs) = refs else {
            return snap;
        };
        if let Some(b) = &refs.buffer {
            snap.buffer = ractor::call_t!(b, BufferMsg::Stats, ms).unwrap_or_default();
        }
        snap.delivery_stalled = self
            .delivery
            .borrow()
            .is_stalled_with(backlog(&snap.buffer));
        if let Some(m) = &refs.monitor {
            if let Ok(status) = ractor::call_t!(
                m,
                ingestor_actors::monitor::ConnectionMonitorMsg::Status,
                ms
            ) {
                snap.nats_connected = status.connected;
            }
        }
        if let Some(p) = &refs.publisher {
            if let Ok(status) =
                ractor::call_t!(p, ingestor_actors::publisher::PublisherMsg::Status, ms)
            {
                snap.published = status.published;
                snap.id_conflict = status
                    .last_error
                    .is_some_and(|e| matches!(e, PublishError::IdConflict { .. }));
            }
        }
        snap
    }

    /// The actors that do not answer right now (the watchdog's question):
    /// empty when every one does. Asked all at once, each within
    /// [`ANSWER_WITHIN`], so one check takes at most that long.
    pub(crate) async fn silent(&self) -> Vec<&'static str> {
        let ms = ANSWER_WITHIN.as_millis() as u64;
        let Some(refs) = self.refs().await else {
            return vec!["supervisor"];
        };
        let (Some(b), Some(m), Some(p)) = (&refs.buffer, &refs.monitor, &refs.publisher) else {
            // Restarting under back-off is healing, not hanging.
            return Vec::new();
        };
        let mut asks = tokio::task::JoinSet::new();
        let (b, m, p) = (b.clone(), m.clone(), p.clone());
        asks.spawn(async move { ("buffer", ractor::call_t!(b, BufferMsg::Stats, ms).is_ok()) });
        asks.spawn(async move {
            let ok = ractor::call_t!(
                m,
                ingestor_actors::monitor::ConnectionMonitorMsg::Status,
                ms
            )
            .is_ok();
            ("monitor", ok)
        });
        asks.spawn(async move {
            let ok =
                ractor::call_t!(p, ingestor_actors::publisher::PublisherMsg::Status, ms).is_ok();
            ("publisher", ok)
        });
        for poller in refs.pollers.into_iter().flatten() {
            asks.spawn(async move {
                let ok =
                    ractor::call_t!(poller, ingestor_actors::poller::DevicePollerMsg::Ping, ms)
                        .is_ok();
                ("poller", ok)
            });
        }
        let mut silent = Vec::new();
        while let Some(answer) = asks.join_next().await {
            match answer {
                Ok((_, true)) => {}
                Ok((who, false)) => silent.push(who),
                Err(_) => silent.push("health check"),
            }
        }
        silent.sort_unstable();
        silent.dedup();
        silent
    }
}

/// `/health`'s state as the tree last reported it: one writer task, read
/// by every request.
#[derive(Clone)]
pub(crate) struct HealthFeed {
    tree: TreeHealth,
    tx: Arc<watch::Sender<Health>>,
}

impl HealthFeed {
    /// The latest state, for the HTTP server.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Health> {
        self.tx.subscribe()
    }

    /// Asks the tree now (a reload changed the devices: `/health` says so
    /// before the reload is counted).
    pub(crate) async fn refresh(&self) {
        let health = self.tree.health().await;
        self.tx.send_replace(health);
    }
}

impl TreeHealth {
    /// `/health`'s state, refreshed from the tree every [`PUBLISH_EVERY`]
    /// by one task, which ends once the feed (every clone) is dropped. (Not
    /// when the receivers are gone: right after the start there are none
    /// yet, and a task ending then left `/health` frozen at its first
    /// answer, backlog and `devices_up: 0` included.)
    pub(crate) async fn publish(&self) -> HealthFeed {
        let feed = HealthFeed {
            tree: self.clone(),
            tx: Arc::new(watch::Sender::new(self.health().await)),
        };
        let tree = self.clone();
        let tx = Arc::downgrade(&feed.tx);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PUBLISH_EVERY).await;
                let Some(tx) = tx.upgrade() else {
                    return;
                };
                let health = tree.health().await;
                tx.send_replace(health);
            }
        });
        feed
    }
}

impl HealthSource for TreeHealth {
    async fn health(&self) -> Health {
        let snap = self.snapshot().await;
        Health {
            nats_connected: snap.nats_connected,
            delivery_stalled: snap.delivery_stalled,
            backlog: backlog(&snap.buffer),
            spool: snap.buffer.spool,
            id_conflict: snap.id_conflict,
            devices_up: snap.devices_up,
            devices: snap.devices,
        }
    }
}

/// Unpublished batches: memory (ring and awaiting their commit) and disk.
fn backlog(b: &BufferStats) -> u64 {
    b.memory_batches + b.pending + b.disk_batches
}

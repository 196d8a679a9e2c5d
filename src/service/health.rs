//! What `/health`, the watchdog and the demo's status line ask the tree.
//!
//! `/health` asks no actor: one task ([`TreeHealth::publish`]) asks the
//! tree every [`PUBLISH_EVERY`] and puts the answer in a `watch`, which
//! every request reads. A flood of `/health` therefore sends no message to
//! any mailbox and cannot starve the watchdog's probes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingestor_actors::buffer::{BufferMsg, BufferStats};
use ingestor_actors::poller::DeviceStatus;
use ingestor_actors::publisher::{DeliveryState, PublishError};
use ingestor_actors::supervisor::{Refs, RootSupervisorMsg};
use ractor::ActorRef;
use tokio::sync::watch;

use crate::telemetry::http::{Health, HealthSource};
use crate::telemetry::status::{without_credentials, BacklogHistory, Overview, StatusSource};

/// How long a healthy actor may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How often `/health`'s state is refreshed from the tree (how stale an
/// answer may be).
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// A handle on the running tree.
#[derive(Clone)]
pub(crate) struct TreeHealth {
    root: ActorRef<RootSupervisorMsg>,
    /// The devices' statuses as the tree last reported them (a reload
    /// adds and removes devices); used when the tree is busy.
    devices: Arc<Mutex<Vec<DeviceStatus>>>,
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
    /// The ConnectionMonitor's last connection problem.
    pub(crate) nats_error: Option<String>,
}

impl TreeHealth {
    pub(crate) fn new(
        root: ActorRef<RootSupervisorMsg>,
        devices: Vec<DeviceStatus>,
        delivery: watch::Receiver<DeliveryState>,
    ) -> Self {
        TreeHealth {
            root,
            devices: Arc::new(Mutex::new(devices)),
            delivery,
        }
    }

    /// Every device's status, in config order, as last reported.
    pub(crate) fn devices(&self) -> Vec<DeviceStatus> {
        self.devices.lock().map(|d| d.clone()).unwrap_or_default()
    }

    async fn refs(&self) -> Option<Refs> {
        let refs = ractor::call_t!(
            self.root,
            RootSupervisorMsg::Refs,
            ANSWER_WITHIN.as_millis() as u64
        )
        .ok();
        if let (Some(r), Ok(mut known)) = (&refs, self.devices.lock()) {
            known.clone_from(&r.devices);
        }
        refs
    }

    /// (devices up, devices), from the statuses last reported.
    fn devices_up(&self) -> (usize, usize) {
        match self.devices.lock() {
            Ok(devices) => (devices.iter().filter(|d| d.is_up()).count(), devices.len()),
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
                snap.nats_error = status.last_error;
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

/// `/health`'s state and the status page's header as the tree last
/// reported them: one writer task, read by every request.
#[derive(Clone)]
pub(crate) struct HealthFeed {
    tree: TreeHealth,
    tx: Arc<watch::Sender<Overview>>,
    /// What the tree does not know: `[service].id`, `[nats].servers`
    /// (a reload may change them), the start time.
    about: Arc<Mutex<About>>,
}

/// The header's part that comes from the config.
#[derive(Debug, Clone, Default)]
pub(crate) struct About {
    service_id: String,
    nats_servers: Vec<String>,
    started: Option<chrono::DateTime<chrono::Utc>>,
}

impl About {
    /// From the running settings, started now.
    pub(crate) fn new(settings: &ingestor_actors::settings::Settings) -> Self {
        About {
            service_id: settings.service.id.clone(),
            nats_servers: settings
                .nats
                .servers
                .iter()
                .map(|s| without_credentials(s))
                .collect(),
            started: Some(chrono::Utc::now()),
        }
    }
}

impl HealthFeed {
    /// The latest state, for the HTTP server.
    pub(crate) fn view(&self) -> StatusView {
        StatusView {
            overview: self.tx.subscribe(),
            tree: self.tree.clone(),
        }
    }

    /// Asks the tree now (a reload changed the devices: `/health` says so
    /// before the reload is counted); `settings`: the config now running.
    pub(crate) async fn refresh(&self, settings: &ingestor_actors::settings::Settings) {
        if let Ok(mut about) = self.about.lock() {
            let started = about.started;
            *about = About {
                started,
                ..About::new(settings)
            };
        }
        publish_once(&self.tree, &self.tx, &self.about).await;
    }
}

/// Asks the tree and publishes the header built from its answer and the
/// config part, the sparkline's history carried over.
async fn publish_once(tree: &TreeHealth, tx: &watch::Sender<Overview>, about: &Mutex<About>) {
    let snap = tree.snapshot().await;
    let about = about.lock().map(|a| a.clone()).unwrap_or_default();
    tx.send_modify(|o| *o = overview(snap, &about, std::mem::take(&mut o.history)));
}

/// The header from a snapshot of the tree, with the backlog noted in the
/// sparkline's history.
fn overview(snap: Snapshot, about: &About, mut history: BacklogHistory) -> Overview {
    let health = snap.health();
    history.note(chrono::Utc::now(), health.backlog);
    Overview {
        health,
        service_id: about.service_id.clone(),
        started: about.started,
        nats_servers: about.nats_servers.clone(),
        nats_error: snap.nats_error,
        published: snap.published,
        memory_batches: snap.buffer.memory_batches + snap.buffer.pending,
        disk_batches: snap.buffer.disk_batches,
        disk_bytes: snap.buffer.disk_bytes,
        oldest_ts_micros: snap.buffer.oldest_ts_micros,
        history,
    }
}

/// What one HTTP request reads: the feed's latest header, and the devices'
/// statuses (read as they are: nothing is asked of an actor).
#[derive(Clone)]
pub(crate) struct StatusView {
    overview: watch::Receiver<Overview>,
    tree: TreeHealth,
}

impl HealthSource for StatusView {
    fn health(&self) -> impl std::future::Future<Output = Health> + Send {
        std::future::ready(self.overview.borrow().health.clone())
    }
}

impl StatusSource for StatusView {
    fn overview(&self) -> Overview {
        self.overview.borrow().clone()
    }

    fn devices(&self) -> Vec<DeviceStatus> {
        self.tree.devices()
    }
}

impl TreeHealth {
    /// `/health`'s state, refreshed from the tree every [`PUBLISH_EVERY`]
    /// by one task, which ends once the feed (every clone) is dropped. (Not
    /// when the receivers are gone: right after the start there are none
    /// yet, and a task ending then left `/health` frozen at its first
    /// answer, backlog and `devices_up: 0` included.)
    pub(crate) async fn publish(&self, about: About) -> HealthFeed {
        let first = overview(self.snapshot().await, &about, BacklogHistory::default());
        let feed = HealthFeed {
            tree: self.clone(),
            tx: Arc::new(watch::Sender::new(first)),
            about: Arc::new(Mutex::new(about)),
        };
        let tree = self.clone();
        let (tx, about) = (Arc::downgrade(&feed.tx), Arc::downgrade(&feed.about));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PUBLISH_EVERY).await;
                let (Some(tx), Some(about)) = (tx.upgrade(), about.upgrade()) else {
                    return;
                };
                publish_once(&tree, &tx, &about).await;
            }
        });
        feed
    }
}

impl Snapshot {
    /// What `/health` says of it.
    pub(crate) fn health(&self) -> Health {
        Health {
            nats_connected: self.nats_connected,
            delivery_stalled: self.delivery_stalled,
            backlog: backlog(&self.buffer),
            spool: self.buffer.spool,
            id_conflict: self.id_conflict,
            devices_up: self.devices_up,
            devices: self.devices,
        }
    }
}

/// Unpublished batches: memory (ring and awaiting their commit) and disk.
fn backlog(b: &BufferStats) -> u64 {
    b.memory_batches + b.pending + b.disk_batches
}

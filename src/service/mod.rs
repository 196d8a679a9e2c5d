//! Wiring: the supervision tree, `/metrics` + `/health`, signals, systemd.
//!
//! `ingestor run` calls [`serve_reloading`] (SIGHUP reloads its config file,
//! see `reload`); `ingestor demo` calls [`serve`] (SIGHUP keeps its default:
//! closing the terminal ends the demo).

mod endpoint;
mod health;
mod reload;
mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ingestor_actors::buffer::{CloseReport, Store, StoreControl};
use ingestor_actors::installation::Installation;
use ingestor_actors::poller::DeviceStatus;
use ingestor_actors::publisher::DeliveryWatch;
use ingestor_actors::settings::Settings;
use ingestor_actors::supervisor::{Exit, RootSupervisor, RootSupervisorArgs, RootSupervisorMsg};
use ractor::{Actor, ActorRef};

pub(crate) use health::{Snapshot, TreeHealth};

use endpoint::Endpoint;
use reload::Reloader;
use watchdog::Watchdog;

use crate::telemetry;
use crate::telemetry::exposition::RemovedDevices;

/// The whole stop, SIGTERM to exit, must fit in this (docs/reference.md §1: within 10 s).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);
/// The stop after an actor hung (`watchdog`): as SIGTERM's, shorter,
/// because waits on the hung actor run out anyway; the store is closed
/// after it whatever the tree did.
const HUNG_STOP_BUDGET: Duration = Duration::from_secs(6);
/// The last close of the store, after the tree is gone.
const CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// Runs the service until SIGTERM/SIGINT (exit `Clean`) or until the tree
/// gives up (`GaveUp`). `on_up` gets the health view once the tree is up
/// (the demo prints its status line from it).
pub(crate) async fn serve(
    settings: Settings,
    on_up: impl FnOnce(TreeHealth),
) -> anyhow::Result<Exit> {
    serve_reloading(settings, None, on_up).await
}

/// [`serve`], and with `config` (the file `settings` came from) every
/// SIGHUP re-reads that file and applies it (`reload`).
pub(crate) async fn serve_reloading(
    settings: Settings,
    config: Option<PathBuf>,
    on_up: impl FnOnce(TreeHealth),
) -> anyhow::Result<Exit> {
    // First thing: a SIGHUP from now on is a reload, never the default
    // (which ends the process).
    let mut hangup = match config {
        Some(_) => Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("listening for SIGHUP")?,
        ),
        None => None,
    };
    let handle = telemetry::metrics::install().context("installing the metrics recorder")?;
    telemetry::metrics::register_devices(settings.devices.iter().map(|d| d.id.as_str()));
    let data_dir = settings.service.data_dir.clone();
    let buffer = settings.buffer.clone();
    let (store, report, installation) = open_data_dir(data_dir, buffer).await?;
    tracing::info!(next_seq = report.next_seq, data_dir = %settings.service.data_dir.display(),
        %installation, "spool open");
    // Bound before any actor runs: a taken port is a fatal start-up error.
    // (After the spool: a second ingestor on the same config is told that
    // the data dir is in use, which is the real reason.)
    let listener = telemetry::http::bind(&settings.metrics.listen).await?;

    let settings = Arc::new(settings);
    let devices: Vec<DeviceStatus> = settings.devices.iter().map(DeviceStatus::new).collect();
    let (exit_tx, mut exit_rx) = tokio::sync::watch::channel(None);
    let store = store
        .shared()
        .context("starting the buffer's disk thread")?;
    let control = store.control();
    let delivery = DeliveryWatch::new(settings.nats.ack_timeout);
    let health_delivery = delivery.subscribe();
    let args = RootSupervisorArgs {
        settings: settings.clone(),
        store,
        installation,
        devices: devices.clone(),
        exit: exit_tx,
        delivery,
    };
    let (root, root_done) = Actor::spawn(None, RootSupervisor, args)
        .await
        .context("starting the supervision tree")?;
    let health = TreeHealth::new(root.clone(), devices, health_delivery);

    let removed = RemovedDevices::new();
    let exposition = removed.exposition(handle);
    let published = health.publish(health::About::new(&settings)).await;
    let mut endpoint = Endpoint::start(listener, &settings.metrics.listen, exposition, published);
    let mut reloader = config.map(|path| Reloader::new(path, (*settings).clone(), removed));
    let mut watchdog = Watchdog::start(health.clone());
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(devices = settings.devices.len(), "ingestor running");
    on_up(health);

    let stop = stop_signal();
    tokio::pin!(stop);
    let exit = loop {
        tokio::select! {
            () = &mut stop => {
                shutdown(&root, SHUTDOWN_BUDGET).await;
                break Exit::Clean;
            }
            silent = watchdog.hung() => {
                tracing::error!(actors = ?silent, budget = ?HUNG_STOP_BUDGET,
                    "stopping because an actor hangs: polling stops, memory goes to disk");
                shutdown(&root, HUNG_STOP_BUDGET).await;
                break Exit::Hung;
            }
            changed = exit_rx.wait_for(Option::is_some) => {
                break changed.ok().and_then(|e| *e).unwrap_or(Exit::GaveUp);
            }
            Some(()) = hangup_signal(&mut hangup) => {
                let Some(reloader) = reloader.as_mut() else { continue };
                // A stop is served at once, also mid-reload: what the tree
                // was sent, it applies before it shuts down.
                tokio::select! {
                    () = reloader.reload(&root, &mut endpoint) => {}
                    () = &mut stop => {
                        shutdown(&root, SHUTDOWN_BUDGET).await;
                        break Exit::Clean;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), root_done).await;
    watchdog.stop();
    endpoint.stop().await;
    close_store(control).await?;
    Ok(exit)
}

/// Opens the spool, then the installation id (created with the spool:
/// a new `data_dir` is a new installation). Blocking file I/O, off the
/// async workers.
async fn open_data_dir(
    data_dir: PathBuf,
    buffer: ingestor_actors::settings::BufferSettings,
) -> anyhow::Result<(Store, ingestor_actors::buffer::OpenReport, Installation)> {
    tokio::task::spawn_blocking(move || {
        let (store, report) = Store::open(&data_dir, buffer)
            .with_context(|| format!("opening the spool in {}", data_dir.display()))?;
        let (installation, created) = Installation::open_or_create(&data_dir)
            .context("reading this data_dir's installation id")?;
        if created {
            tracing::info!(%installation, file = %Installation::path(&data_dir).display(),
                "a new installation: its id is sent with every message (Ingestor-Installation)");
        }
        Ok((store, report, installation))
    })
    .await?
}

/// Closes the store whatever the actors did: the supervisor closed it
/// already on a clean stop (then this repeats its verdict), but not if a
/// child overran its stop budget, hung, or the tree gave up. A close that
/// could not save everything is an error: the process exits 1 and says why.
/// A spool call that never returns keeps the disk thread busy: then nothing
/// can be written, and the error says so (the caller exits, it does not wait).
async fn close_store(control: StoreControl) -> anyhow::Result<()> {
    match control.close(CLOSE_BUDGET).await {
        CloseReport::Closed => Ok(()),
        report => Err(anyhow::anyhow!("{report}")),
    }
}

/// The next SIGHUP; never, when the service does not reload.
async fn hangup_signal(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Stops the tree within `budget`. `STOPPING=1` first: systemd then stops
/// enforcing `WatchdogSec` and gives the stop `TimeoutStopSec` instead.
async fn shutdown(root: &ActorRef<RootSupervisorMsg>, budget: Duration) {
    tracing::info!("stop requested: polling stops, memory goes to disk");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let asked = ractor::call_t!(root, RootSupervisorMsg::Shutdown, budget.as_millis() as u64);
    if let Err(e) = asked {
        tracing::error!(error = %e, ?budget,
            "the tree did not stop within its budget; the store is closed without it");
    }
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

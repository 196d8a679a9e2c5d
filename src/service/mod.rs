//! Wiring: the supervision tree, `/metrics` + `/health`, signals, systemd.
//!
//! `ingestor run` and `ingestor demo` both call [`serve`].

mod health;
mod watchdog;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ingestor_actors::buffer::{lock, SharedStore, Store};
use ingestor_actors::settings::Settings;
use ingestor_actors::supervisor::{Exit, RootArgs, RootMsg, RootSupervisor};
use ractor::{Actor, ActorRef};

pub(crate) use health::TreeHealth;

use crate::telemetry;

/// The whole stop, SIGTERM to exit, must fit in this (CONTRACT: within 10 s).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);
/// The last close of the store, after the tree is gone.
const CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// Runs the service until SIGTERM/SIGINT (exit `Clean`) or until the tree
/// gives up (`GaveUp`). `on_up` gets the health view once the tree is up
/// (the demo prints its status line from it).
pub(crate) async fn serve(
    settings: Settings,
    on_up: impl FnOnce(TreeHealth),
) -> anyhow::Result<Exit> {
    let handle = telemetry::metrics::install().context("installing the metrics recorder")?;
    telemetry::metrics::register_devices(settings.devices.iter().map(|d| d.id.as_str()));
    let data_dir = settings.service.data_dir.clone();
    let buffer = settings.buffer.clone();
    let (store, report) = tokio::task::spawn_blocking(move || Store::open(&data_dir, buffer))
        .await?
        .with_context(|| {
            format!(
                "opening the spool in {}",
                settings.service.data_dir.display()
            )
        })?;
    tracing::info!(next_seq = report.next_seq, data_dir = %settings.service.data_dir.display(), "spool open");
    // Bound before any actor runs: a taken port is a fatal start-up error.
    // (After the spool: a second ingestor on the same config is told that
    // the data dir is in use, which is the real reason.)
    let listener = telemetry::http::bind(&settings.metrics.listen).await?;

    let settings = Arc::new(settings);
    let device_up: Vec<Arc<AtomicBool>> = settings
        .devices
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let (exit_tx, mut exit_rx) = tokio::sync::watch::channel(None);
    let store = store.shared();
    let args = RootArgs {
        settings: settings.clone(),
        store: store.clone(),
        device_up: device_up.clone(),
        exit: exit_tx,
    };
    let (root, root_done) = Actor::spawn(None, RootSupervisor, args)
        .await
        .context("starting the supervision tree")?;
    let health = TreeHealth::new(root.clone(), device_up);

    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(telemetry::http::serve_on(
        listener,
        handle,
        health.clone(),
        async move {
            let _ = http_stop_rx.await;
        },
    ));
    let watchdog = watchdog::start(health.clone());
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(devices = settings.devices.len(), "ingestor running");
    on_up(health);

    let exit = tokio::select! {
        () = stop_signal() => {
            tracing::info!("stop requested: polling stops, memory goes to disk");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            shutdown(&root).await;
            Exit::Clean
        }
        changed = exit_rx.wait_for(Option::is_some) => {
            changed.ok().and_then(|e| *e).unwrap_or(Exit::GaveUp)
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), root_done).await;
    watchdog.abort();
    let _ = http_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    close_store(store).await?;
    Ok(exit)
}

/// Closes the store whatever the actors did: the supervisor closed it
/// already on a clean stop (then this repeats its verdict), but not if a
/// child overran its stop budget or the tree gave up. A close that could
/// not save everything is an error: the process exits 1 and says why.
async fn close_store(store: SharedStore) -> anyhow::Result<()> {
    let closing = tokio::task::spawn_blocking(move || lock(&store).close());
    match tokio::time::timeout(CLOSE_BUDGET, closing).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(anyhow::anyhow!(e)),
        Ok(Err(panicked)) => Err(anyhow::anyhow!("closing the buffer panicked: {panicked}")),
        Err(_) => Err(anyhow::anyhow!(
            "closing the buffer did not finish within {CLOSE_BUDGET:?} (a spool call hangs); \
             what was not yet on disk may be lost"
        )),
    }
}

async fn shutdown(root: &ActorRef<RootMsg>) {
    let asked = ractor::call_t!(root, RootMsg::Shutdown, SHUTDOWN_BUDGET.as_millis() as u64);
    if let Err(e) = asked {
        tracing::error!(error = %e, "clean shutdown did not finish in time");
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

//! The `/metrics` + `/health` server as the service runs it: started on a
//! listener bound before the tree starts, moved to a new address by a
//! reload (bind the new one first, then stop the old one), stopped last.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::health::HealthFeed;
use crate::telemetry::exposition::Exposition;
use crate::telemetry::http::{self, HttpError};

/// How long open connections may take to finish when the server stops.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// A running `/metrics` + `/health` server.
pub(super) struct Endpoint {
    listen: String,
    exposition: Exposition,
    health: HealthFeed,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), HttpError>>,
}

impl Endpoint {
    /// Serves on `listener` (bound to `listen`).
    pub(super) fn start(
        listener: TcpListener,
        listen: &str,
        exposition: Exposition,
        health: HealthFeed,
    ) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(http::serve_on(
            listener,
            exposition.clone(),
            health.view(),
            async move {
                let _ = stopped.await;
            },
        ));
        Endpoint {
            listen: listen.to_owned(),
            exposition,
            health,
            stop,
            task,
        }
    }

    /// `/health` asks the tree now (after a reload; `settings`: the
    /// config now running).
    pub(super) async fn refresh_health(&self, settings: &ingestor_actors::settings::Settings) {
        self.health.refresh(settings).await;
    }

    /// The configured address it serves on.
    pub(super) fn listen(&self) -> &str {
        &self.listen
    }

    /// Serves on `listener` (bound to `listen`) from now on; the old
    /// address is released.
    pub(super) async fn move_to(&mut self, listener: TcpListener, listen: &str) {
        let next = Endpoint::start(
            listener,
            listen,
            self.exposition.clone(),
            self.health.clone(),
        );
        let old = std::mem::replace(self, next);
        tracing::info!(from = %old.listen, to = %listen, "/metrics and /health moved");
        old.stop().await;
    }

    /// Stops serving: open connections get [`STOP_WAIT`] to finish.
    pub(super) async fn stop(self) {
        let Endpoint { stop, mut task, .. } = self;
        let _ = stop.send(());
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

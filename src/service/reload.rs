//! SIGHUP: re-read the config file and apply what can change while running.
//!
//! - An invalid file (or one that cannot be read) changes nothing: every
//!   problem is logged as `ingestor check` prints it, and
//!   `ingestor_config_reloads_total{result="error"}` counts it.
//! - A valid file: devices and `[nats]` go to the supervision tree
//!   (`RootSupervisorMsg::Reload`: unchanged devices keep polling untouched), a new
//!   `[metrics].listen` is bound first and then served (a taken port rejects
//!   the whole reload, nothing applied). `[service]`, `[buffer]` and
//!   `[supervision]` need a restart: a change there is logged and the running
//!   values stay. `result="ok"`.
//! - systemd's notify-reload protocol: `RELOADING=1` with `MONOTONIC_USEC`
//!   when a reload starts, `READY=1` when it is done (either way).

use std::path::PathBuf;
use std::time::Duration;

use ingestor_actors::settings::Settings;
use ingestor_actors::supervisor::{ReloadReport, RootSupervisorMsg};
use ractor::ActorRef;

use super::endpoint::Endpoint;
use crate::config;
use crate::telemetry::exposition::RemovedDevices;
use crate::telemetry::http::HttpError;
use crate::telemetry::metrics::{register_devices, CONFIG_RELOADS_TOTAL};

/// How long the tree may take to apply a reload (stopping pollers and the
/// publisher waits a few seconds each at most).
const APPLY_WITHIN: Duration = Duration::from_secs(60);

/// Why a reload was not applied.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    /// The file is invalid or unreadable (each problem logged). Fix the file
    /// and send SIGHUP again.
    #[error("{0} problem(s) in the config file")]
    Invalid(usize),
    /// Reading the file did not finish (the blocking task panicked).
    #[error("reading the config file failed: {0}")]
    Read(String),
    /// The new `[metrics].listen` cannot be bound (taken, not local). Fix
    /// the address and send SIGHUP again.
    #[error(transparent)]
    Bind(#[from] HttpError),
    /// The tree did not confirm in time; it applies the devices and
    /// `[nats]` when it gets to it.
    #[error("the supervision tree did not confirm the reload: {0}")]
    Tree(String),
}

/// Reloads `path` on request, knowing what runs now.
pub(super) struct Reloader {
    path: PathBuf,
    running: Settings,
    /// Tells `/metrics` which devices a reload removed.
    removed: RemovedDevices,
}

impl Reloader {
    /// `running`: the settings the service started with.
    pub(super) fn new(path: PathBuf, running: Settings, removed: RemovedDevices) -> Self {
        Reloader {
            path,
            running,
            removed,
        }
    }

    /// One reload, start to end, with its log lines, count and systemd
    /// notifications.
    pub(super) async fn reload(
        &mut self,
        root: &ActorRef<RootSupervisorMsg>,
        endpoint: &mut Endpoint,
    ) {
        notify_reloading();
        tracing::info!(file = %self.path.display(), "SIGHUP: reloading the config");
        let applied = self.apply(root, endpoint).await;
        endpoint.refresh_health(&self.running).await;
        match applied {
            Ok(r) => {
                metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "ok").increment(1);
                tracing::info!(added = ?r.added, removed = ?r.removed, changed = ?r.changed,
                    unchanged = r.unchanged, nats_restarted = r.nats_restarted, "config reloaded");
            }
            Err(e) => {
                metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "error").increment(1);
                tracing::error!(file = %self.path.display(), error = %e,
                    "config reload not applied; running as before");
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }

    async fn apply(
        &mut self,
        root: &ActorRef<RootSupervisorMsg>,
        endpoint: &mut Endpoint,
    ) -> Result<ReloadReport, ReloadError> {
        let path = self.path.clone();
        // The secret files' modes are looked at again: a reload is when a
        // new creds file or key comes in.
        let loaded = tokio::task::spawn_blocking(move || {
            config::load(&path).map(|s| {
                let secrets = ingestor_actors::credentials::secret_file_warnings(&s);
                (s, secrets)
            })
        })
        .await
        .map_err(|e| ReloadError::Read(e.to_string()))?;
        let new = match loaded {
            Ok((settings, secrets)) => {
                if let Some(warning) =
                    ingestor_actors::credentials::plaintext_warning(&settings.nats)
                {
                    tracing::warn!("{warning}");
                }
                for warning in secrets {
                    tracing::warn!("{warning}");
                }
                self.live_part_of(settings)
            }
            Err(errors) => {
                for line in errors.to_string().lines() {
                    tracing::error!("{line}");
                }
                return Err(ReloadError::Invalid(errors.problems.len()));
            }
        };
        let listener = if new.metrics.listen == endpoint.listen() {
            None
        } else {
            Some(crate::telemetry::http::bind(&new.metrics.listen).await?)
        };
        register_devices(
            new.devices
                .iter()
                .filter(|d| !self.running.devices.iter().any(|r| r.id == d.id))
                .map(|d| d.id.as_str()),
        );
        let tree = new.clone();
        let applied = ractor::call_t!(
            root,
            |reply| RootSupervisorMsg::Reload(Box::new(tree), reply),
            APPLY_WITHIN.as_millis() as u64
        );
        if let Some(listener) = listener {
            endpoint.move_to(listener, &new.metrics.listen).await;
        }
        // After the tree stopped their pollers: a removed device's series
        // (`ingestor_device_up` = 1 forever, its alert) leave `/metrics`.
        self.removed.update(
            self.running.devices.iter().map(|d| d.id.as_str()),
            new.devices.iter().map(|d| d.id.as_str()),
        );
        self.running = new;
        applied.map_err(|e| ReloadError::Tree(e.to_string()))
    }

    /// `new` with the sections that need a restart kept as they run (each
    /// change there logged).
    fn live_part_of(&self, mut new: Settings) -> Settings {
        let old = &self.running;
        let mut restart_only = Vec::new();
        if new.service != old.service {
            restart_only.push("[service]");
            new.service = old.service.clone();
        }
        if new.buffer != old.buffer {
            restart_only.push("[buffer]");
            new.buffer = old.buffer.clone();
        }
        if new.supervision != old.supervision {
            restart_only.push("[supervision]");
            new.supervision = old.supervision.clone();
        }
        if new.writes != old.writes {
            restart_only.push("[writes]");
            new.writes = old.writes.clone();
        }
        for section in restart_only {
            tracing::warn!(section,
                "changed in the config file, but takes effect only at the next restart; running with the old values");
        }
        new
    }
}

/// `RELOADING=1` with the monotonic time, as systemd's `Type=notify-reload`
/// expects (no-op outside systemd).
fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading, now]);
        }
        Err(e) => tracing::debug!(error = %e, "no monotonic clock for MONOTONIC_USEC"),
    }
}

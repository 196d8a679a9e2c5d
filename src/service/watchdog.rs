//! Hang detection, and the systemd watchdog on top of it.
//!
//! Every [`CHECK_EVERY`] (or half of systemd's `WatchdogSec`, if shorter)
//! the service asks every actor to answer within 2 s
//! ([`TreeHealth::silent`]). While all answer, systemd gets `WATCHDOG=1`
//! (when it asked for pings). When one does not, the ping is withheld; after
//! [`HUNG_AFTER`] checks in a row without an answer the service does not
//! wait for systemd to kill it (SIGABRT, which loses the memory ring): it
//! reports the hang to `serve`, which stops the tree as on SIGTERM within a
//! bounded budget, closes and syncs the store whatever the hung actor does,
//! and exits 1 so that systemd (`Restart=on-failure`) starts it again.
//!
//! Invariants:
//! - the hang is declared at most about `HUNG_AFTER × (CHECK_EVERY + 2 s)`
//!   = 12 s after the last check every actor answered, well inside the
//!   unit's `WatchdogSec=30s` (pings stop at the first silent check);
//! - an actor restarting under back-off is not a hang;
//! - once declared, the detector says so once and stops checking.

use std::time::Duration;

use tokio::sync::oneshot;

use super::TreeHealth;

/// How often every actor is asked to answer.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Checks in a row without an answer after which the service stops itself.
pub(super) const HUNG_AFTER: u32 = 3;

/// The running detector: [`Watchdog::hung`] resolves with the silent
/// actors once the tree is declared hung.
pub(super) struct Watchdog {
    task: tokio::task::JoinHandle<()>,
    hung: oneshot::Receiver<Vec<&'static str>>,
}

impl Watchdog {
    /// Starts checking; pings systemd when it asked for it.
    pub(super) fn start(health: TreeHealth) -> Watchdog {
        let (tx, hung) = oneshot::channel();
        let task = tokio::spawn(watch(health, tx));
        Watchdog { task, hung }
    }

    /// Resolves when the tree is declared hung (never otherwise).
    pub(super) async fn hung(&mut self) -> Vec<&'static str> {
        match (&mut self.hung).await {
            Ok(silent) => silent,
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops checking and pinging.
    pub(super) fn stop(self) {
        self.task.abort();
    }
}

async fn watch(health: TreeHealth, hung: oneshot::Sender<Vec<&'static str>>) {
    let systemd = sd_notify::watchdog_enabled();
    let period = systemd.map_or(CHECK_EVERY, |p| (p / 2).min(CHECK_EVERY));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = 0u32;
    loop {
        every.tick().await;
        let silent = health.silent().await;
        if silent.is_empty() {
            if failed > 0 {
                tracing::info!(checks = failed, "every actor answers again");
            }
            failed = 0;
            if systemd.is_some() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
            continue;
        }
        failed += 1;
        if failed < HUNG_AFTER {
            tracing::warn!(actors = ?silent, checks = failed,
                "an actor does not answer: withholding the watchdog ping");
            continue;
        }
        tracing::error!(actors = ?silent, checks = failed,
            "an actor has not answered for {failed} checks in a row: the service stops itself \
             (memory to disk) and exits 1 so the service manager restarts it");
        let _ = hung.send(silent);
        return;
    }
}

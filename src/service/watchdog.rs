//! systemd watchdog: WATCHDOG=1 only while every actor answers, so a hung
//! actor stops the pings and systemd restarts the process.

use super::TreeHealth;

/// Starts pinging at half of `WatchdogSec` when systemd asked for it.
pub(super) fn start(health: TreeHealth) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(period) = sd_notify::watchdog_enabled() else {
            return;
        };
        let mut every = tokio::time::interval(period / 2);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if health.all_answer().await {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            } else {
                tracing::error!("an actor does not answer: withholding the watchdog ping");
            }
        }
    })
}

//! Applying a reloaded config to the running tree (`RootSupervisorMsg::Reload`).
//!
//! Invariants (see the module doc of `supervisor`): an unchanged device's
//! poller is not touched; the buffer (ring, spool, `seq`) is not touched;
//! a `[nats]` change nacks the in-flight batches before a new Publisher
//! exists, so they go out again first and exactly once (JetStream
//! de-duplicates by `Nats-Msg-Id`).

use std::sync::Arc;

use ractor::ActorRef;

use super::actor::{RootSupervisorMsg, RootSupervisorState};
use super::Child;
use crate::poller::DevicePollerMsg;
use crate::settings::Settings;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Ids of devices whose pollers started.
    pub added: Vec<String>,
    /// Ids of devices whose pollers stopped.
    pub removed: Vec<String>,
    /// Ids of devices whose pollers restarted with the new entry.
    pub changed: Vec<String>,
    /// Devices left polling as they were.
    pub unchanged: usize,
    /// `[nats]` changed: the Publisher and ConnectionMonitor restarted.
    pub nats_restarted: bool,
}

impl RootSupervisorState {
    /// Applies `new`'s devices and `[nats]`; takes the rest of `new` as the
    /// settings from now on (the caller keeps restart-only keys as they run).
    pub(super) async fn reload(
        &mut self,
        myself: &ActorRef<RootSupervisorMsg>,
        new: Settings,
    ) -> ReloadReport {
        if self.stopping {
            return ReloadReport::default();
        }
        let changes = self.devices.replace(&new.devices);
        // Old pollers stop before their successors start: one poller per
        // device id at a time, and a changed device's link is free again.
        for slot in changes.stopped {
            let child = Child::Poller(slot.key);
            self.waiting.remove(&child);
            if let Some(poller) = slot.poller {
                self.ids.remove(&poller.get_id());
                let _ = poller
                    .get_cell()
                    .stop_and_wait(Some("config reload".into()), Some(super::stop::STOP_WAIT))
                    .await;
            }
        }
        self.links.retain_used(self.devices.devices());

        let nats_restarted = new.nats != self.settings.nats;
        if nats_restarted {
            self.stop_child(Child::Monitor).await;
            self.stop_child(Child::Publisher).await;
            // The old session's lease dropped with it: the buffer requeued
            // its batches, and the new Publisher's lease takes them first.
        }
        self.settings = Arc::new(new);
        self.start_missing(myself).await;

        for key in &changes.unchanged {
            if let Some(poller) = self.devices.slot(*key).and_then(|s| s.poller.as_ref()) {
                let _ = poller.cast(DevicePollerMsg::Reloaded);
            }
        }
        ReloadReport {
            added: changes.added,
            removed: changes.removed,
            changed: changes.changed,
            unchanged: changes.unchanged.len(),
            nats_restarted,
        }
    }
}

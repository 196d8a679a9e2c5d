//! The device table: which DevicePoller runs which `[[devices]]` entry.
//!
//! Every entry gets a key when its poller first starts; the key names the
//! poller (`Child::Poller(key)`) for as long as the entry stays unchanged,
//! across restarts and reloads. A reload that changes an entry gives it a new
//! key (a new poller with a fresh restart record); an entry that did not
//! change keeps its key, its status (up flag, last values) and its running poller. The table is
//! in config order (`Refs::pollers`, `/health`).

use std::sync::Arc;

use ractor::ActorRef;

use crate::poller::{DevicePollerMsg, DeviceStatus};
use crate::settings::DeviceSettings;

/// One `[[devices]]` entry and its poller.
#[derive(Debug)]
pub(super) struct DeviceSlot {
    /// Names the poller: `Child::Poller(key)`.
    pub(super) key: usize,
    /// The entry as configured, shared with its poller (a 20-tag entry
    /// is about 6 KiB: one copy per device, not one per holder).
    pub(super) device: Arc<DeviceSettings>,
    /// What its polls showed (up or not, last values); outlives poller
    /// restarts.
    pub(super) status: DeviceStatus,
    /// The running poller, unless (re)starting.
    pub(super) poller: Option<ActorRef<DevicePollerMsg>>,
}

/// What a reload did to the device table.
#[derive(Debug, Default)]
pub(super) struct DeviceChanges {
    /// Entries that are gone or changed: their pollers must stop.
    pub(super) stopped: Vec<DeviceSlot>,
    /// Ids of new entries.
    pub(super) added: Vec<String>,
    /// Ids of entries that are gone.
    pub(super) removed: Vec<String>,
    /// Ids of entries that changed (their pollers restart).
    pub(super) changed: Vec<String>,
    /// Keys of the entries that did not change.
    pub(super) unchanged: Vec<usize>,
}

/// All device entries, in config order.
#[derive(Debug, Default)]
pub(super) struct DeviceTable {
    slots: Vec<DeviceSlot>,
    next_key: usize,
}

impl DeviceTable {
    /// A table for `devices`; `status[i]` is the status of `devices[i]` (a
    /// fresh one when missing).
    pub(super) fn new(devices: &[DeviceSettings], status: &[DeviceStatus]) -> Self {
        let mut table = DeviceTable::default();
        for (i, device) in devices.iter().enumerate() {
            let status = status
                .get(i)
                .cloned()
                .unwrap_or_else(|| DeviceStatus::new(device));
            table.push(device.clone(), status);
        }
        table
    }

    fn push(&mut self, device: DeviceSettings, status: DeviceStatus) {
        self.slots.push(DeviceSlot {
            key: self.next_key,
            device: Arc::new(device),
            status,
            poller: None,
        });
        self.next_key += 1;
    }

    /// The slot of poller `key`.
    pub(super) fn slot(&self, key: usize) -> Option<&DeviceSlot> {
        self.slots.iter().find(|s| s.key == key)
    }

    /// The slot of poller `key`, to set its poller.
    pub(super) fn slot_mut(&mut self, key: usize) -> Option<&mut DeviceSlot> {
        self.slots.iter_mut().find(|s| s.key == key)
    }

    /// Every key, in config order.
    pub(super) fn keys(&self) -> Vec<usize> {
        self.slots.iter().map(|s| s.key).collect()
    }

    /// The entries, in config order.
    pub(super) fn devices(&self) -> impl Iterator<Item = &DeviceSettings> {
        self.slots.iter().map(|s| &*s.device)
    }

    /// The running pollers, in config order.
    pub(super) fn pollers(&self) -> Vec<Option<ActorRef<DevicePollerMsg>>> {
        self.slots.iter().map(|s| s.poller.clone()).collect()
    }

    /// The devices' statuses, in config order.
    pub(super) fn statuses(&self) -> Vec<DeviceStatus> {
        self.slots.iter().map(|s| s.status.clone()).collect()
    }

    /// Makes the table hold `devices`, in their order. An entry equal to
    /// one already here (same id, same settings) keeps its slot; every other
    /// entry gets a new slot without a poller. Entries matched by id.
    pub(super) fn replace(&mut self, devices: &[DeviceSettings]) -> DeviceChanges {
        let mut changes = DeviceChanges::default();
        let mut old = std::mem::take(&mut self.slots);
        for device in devices {
            match old.iter().position(|s| s.device.id == device.id) {
                Some(i) if *old[i].device == *device => {
                    let slot = old.swap_remove(i);
                    changes.unchanged.push(slot.key);
                    self.slots.push(slot);
                }
                Some(i) => {
                    changes.changed.push(device.id.clone());
                    changes.stopped.push(old.swap_remove(i));
                    self.push(device.clone(), DeviceStatus::new(device));
                }
                None => {
                    changes.added.push(device.id.clone());
                    self.push(device.clone(), DeviceStatus::new(device));
                }
            }
        }
        changes.removed = old.iter().map(|s| s.device.id.clone()).collect();
        changes.stopped.extend(old);
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, unit: u8) -> DeviceSettings {
        let text = format!("id = \"{id}\"\naddress = \"127.0.0.1:502\"\nunit = {unit}\n");
        toml::from_str(&text).expect("device")
    }

    #[test]
    fn replace_keeps_unchanged_entries_and_renews_changed_ones() {
        let mut table = DeviceTable::new(&[device("a", 1), device("b", 2), device("c", 3)], &[]);
        let [a, b, c] = [0, 1, 2];
        let changes = table.replace(&[device("c", 3), device("b", 9), device("d", 4)]);
        assert_eq!(changes.unchanged, vec![c]);
        assert_eq!(changes.changed, vec!["b".to_string()]);
        assert_eq!(changes.added, vec!["d".to_string()]);
        assert_eq!(changes.removed, vec!["a".to_string()]);
        let mut stopped: Vec<usize> = changes.stopped.iter().map(|s| s.key).collect();
        stopped.sort_unstable();
        assert_eq!(stopped, vec![a, b]);
        let keys = table.keys();
        assert_eq!(keys[0], c, "config order, unchanged key kept");
        assert!(
            keys[1] > c && keys[2] > keys[1],
            "new keys are never reused"
        );
        let ids: Vec<&str> = table.devices().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "d"]);
    }
}

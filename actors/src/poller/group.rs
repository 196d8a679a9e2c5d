//! Poll groups: the tags of one device that share a poll interval.
//!
//! A tag's interval is its own `poll_interval`, else the device's. Each
//! group is polled on its own schedule with its own request plan: requests
//! coalesce within a group, never across groups, so a slow group never
//! makes a fast one read more. A group is handed around as a
//! `DeviceSettings` holding only its tags, with `poll_interval` set to the
//! group's, so the planner and the reader work on it unchanged.
//!
//! Invariants:
//! - every tag of the device is in exactly one group;
//! - groups are ordered by interval, shortest first (the order in which
//!   groups due at the same moment are polled);
//! - within a group, tags keep their config order (the batch's order).

use std::sync::Arc;
use std::time::Duration;

use crate::settings::DeviceSettings;

/// The poll groups of `device`, shortest interval first. A device whose
/// tags all poll at its own interval is one group: itself.
pub fn poll_groups(device: &DeviceSettings) -> Vec<DeviceSettings> {
    let mut intervals: Vec<Duration> = device.tags.iter().map(|t| t.interval(device)).collect();
    if intervals.is_empty() {
        intervals.push(device.poll_interval);
    }
    intervals.sort_unstable();
    intervals.dedup();
    intervals
        .into_iter()
        .map(|interval| {
            let mut group = device.clone();
            group.poll_interval = interval;
            group.tags = device
                .tags
                .iter()
                .filter(|t| t.interval(device) == interval)
                .cloned()
                .collect();
            group
        })
        .collect()
}

/// `poll_groups` for a poller: a device that is one group of itself is
/// shared, not copied (its settings are the largest thing a poller holds).
pub(crate) fn shared_poll_groups(device: &Arc<DeviceSettings>) -> Vec<Arc<DeviceSettings>> {
    if device
        .tags
        .iter()
        .all(|t| t.interval(device) == device.poll_interval)
    {
        return vec![Arc::clone(device)];
    }
    poll_groups(device).into_iter().map(Arc::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(toml_text: &str) -> DeviceSettings {
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tags_group_by_interval_shortest_first_in_config_order() {
        let d = device(
            "id = \"m\"\naddress = \"127.0.0.1:502\"\npoll_interval = \"1s\"\n\
             [[tags]]\nname = \"energy\"\nregister = \"input\"\naddress = 0\ntype = \"u32\"\npoll_interval = \"1m\"\n\
             [[tags]]\nname = \"v1\"\nregister = \"input\"\naddress = 2\ntype = \"f32\"\npoll_interval = \"250ms\"\n\
             [[tags]]\nname = \"temp\"\nregister = \"input\"\naddress = 4\ntype = \"i16\"\n\
             [[tags]]\nname = \"v2\"\nregister = \"input\"\naddress = 6\ntype = \"f32\"\npoll_interval = \"250ms\"\n\
             [[tags]]\nname = \"pf\"\nregister = \"input\"\naddress = 8\ntype = \"f32\"\npoll_interval = \"1s\"\n",
        );
        let groups = poll_groups(&d);
        let shape: Vec<(u128, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                let names = g.tags.iter().map(|t| t.name.as_str()).collect();
                (g.poll_interval.as_millis(), names)
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (250, vec!["v1", "v2"]),
                (1_000, vec!["temp", "pf"]),
                (60_000, vec!["energy"]),
            ]
        );
    }

    #[test]
    fn device_without_tag_intervals_is_one_group_equal_to_itself() {
        let d = device(
            "id = \"m\"\naddress = \"127.0.0.1:502\"\n\
             [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n",
        );
        assert_eq!(poll_groups(&d), vec![d]);
    }

    #[test]
    fn a_poller_shares_a_one_group_device_and_copies_only_real_groups() {
        let one = Arc::new(device(
            "id = \"m\"\naddress = \"127.0.0.1:502\"\npoll_interval = \"2s\"\n\
             [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\npoll_interval = \"2s\"\n",
        ));
        let groups = shared_poll_groups(&one);
        assert_eq!(groups.len(), 1);
        assert!(Arc::ptr_eq(&groups[0], &one), "the configured entry itself");
        // Every tag at one interval that is not the device's: a group of its own.
        let moved = Arc::new(device(
            "id = \"m\"\naddress = \"127.0.0.1:502\"\npoll_interval = \"1s\"\n\
             [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\npoll_interval = \"5s\"\n",
        ));
        let groups = shared_poll_groups(&moved);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].poll_interval, std::time::Duration::from_secs(5));
        let groups: Vec<DeviceSettings> = groups.iter().map(|g| DeviceSettings::clone(g)).collect();
        assert_eq!(
            groups,
            poll_groups(&moved),
            "the same groups as poll_groups"
        );
    }
}

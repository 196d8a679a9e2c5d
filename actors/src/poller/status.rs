//! What a device's last polls showed, for `/health` and the status page
//! (`GET /`, `GET /devices/<id>`, `GET /status.json`).
//!
//! One [`DeviceStatus`] per `[[devices]]` entry, made from its settings and
//! shared by the poller (which writes it after every poll) and the HTTP
//! server (which reads it per request). It outlives poller restarts, like
//! the device table's slot that holds it. Nothing on this path sends a
//! message: a page view never reaches a mailbox, and a poll never waits for
//! a page view longer than one short lock (never held across `.await`).
//!
//! Each tag keeps its last value (or its last error) with the time of the
//! poll that produced it, whether or not the value was sent (`deadband`
//! holds back unchanged values; the page still shows what the device reads).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::poller::cycle::{PollOutcome, PollResult};
use crate::settings::DeviceSettings;
use crate::Value;

/// A device's shared status (cheap to clone: one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct DeviceStatus(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    id: String,
    up: AtomicBool,
    last: Mutex<LastPolls>,
}

/// A copy of what a device's polls showed (see [`DeviceStatus::snapshot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastPolls {
    /// The `[[devices]].id`.
    pub id: String,
    /// When the last poll started (UTC); `None` before the first one ended.
    pub polled_at: Option<DateTime<Utc>>,
    /// How late the last poll started against its schedule.
    pub lag: Duration,
    /// How long the last poll took.
    pub took: Duration,
    /// The last poll's summary.
    pub result: Option<PollResult>,
    /// The last problem seen (a failed tag's reason), and when: kept after
    /// the device recovers, so the technician sees what happened.
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// Every tag, in config order.
    pub tags: Vec<TagLast>,
}

/// One tag's last reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagLast {
    /// The tag's name.
    pub name: String,
    /// Its configured unit.
    pub unit: Option<String>,
    /// The last value read (`None`: not read yet, or failed last time).
    pub value: Option<Value>,
    /// Why the last read of this tag failed (`None` when it was read).
    pub error: Option<String>,
    /// When the poll that read or failed it started.
    pub at: Option<DateTime<Utc>>,
}

impl DeviceStatus {
    /// A status for `device`: every tag not read yet, the device down.
    pub fn new(device: &DeviceSettings) -> Self {
        let tags = device
            .tags
            .iter()
            .map(|t| TagLast {
                name: t.name.clone(),
                unit: t.unit.clone(),
                ..TagLast::default()
            })
            .collect();
        DeviceStatus(Arc::new(Inner {
            id: device.id.clone(),
            up: AtomicBool::new(false),
            last: Mutex::new(LastPolls {
                id: device.id.clone(),
                tags,
                ..LastPolls::default()
            }),
        }))
    }

    /// The device's `[[devices]].id`.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The last poll got answers.
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Relaxed)
    }

    /// A copy of the device's last polls.
    pub fn snapshot(&self) -> LastPolls {
        self.lock().clone()
    }

    /// Only the summary (no tags): what the page's device table shows.
    pub fn summary(&self) -> LastPolls {
        let last = self.lock();
        LastPolls {
            id: last.id.clone(),
            polled_at: last.polled_at,
            lag: last.lag,
            took: last.took,
            result: last.result,
            last_error: last.last_error.clone(),
            tags: Vec::new(),
        }
    }

    /// Notes one finished group poll (the poller, after every poll).
    pub fn record(&self, ts: DateTime<Utc>, lag: Duration, took: Duration, outcome: &PollOutcome) {
        self.0.up.store(outcome.answered, Ordering::Relaxed);
        let mut last = self.lock();
        last.polled_at = Some(ts);
        last.lag = lag;
        last.took = took;
        last.result = Some(outcome.result);
        if let Some((_, reason)) = outcome.errors.first() {
            last.last_error = Some((ts, reason.clone()));
        }
        // Values and errors come in config order, a subset of the tags:
        // one walk with a cursor finds each.
        let mut cursor = 0;
        for (name, value) in &outcome.values {
            if let Some(tag) = find(&mut last.tags, &mut cursor, name) {
                match &mut tag.value {
                    Some(v) => v.clone_from(value),
                    None => tag.value = Some(value.clone()),
                }
                tag.error = None;
                tag.at = Some(ts);
            }
        }
        let mut cursor = 0;
        for (name, reason) in &outcome.errors {
            if let Some(tag) = find(&mut last.tags, &mut cursor, name) {
                tag.value = None;
                tag.error = Some(reason.clone());
                tag.at = Some(ts);
            }
        }
    }

    /// The lock; a poisoned one still holds valid data (every write above
    /// leaves it consistent), so it is used as it is.
    fn lock(&self) -> MutexGuard<'_, LastPolls> {
        self.0.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The tag named `name`, searched from `cursor` on (then from the start).
fn find<'a>(tags: &'a mut [TagLast], cursor: &mut usize, name: &str) -> Option<&'a mut TagLast> {
    let at = (*cursor..tags.len())
        .chain(0..*cursor)
        .find(|&i| tags[i].name == name)?;
    *cursor = at + 1;
    tags.get_mut(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(values: &[(&str, i64)], errors: &[(&str, &str)], answered: bool) -> PollOutcome {
        PollOutcome {
            values: values
                .iter()
                .map(|(n, v)| (n.to_string(), Value::Int(*v)))
                .collect(),
            errors: errors
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_string()))
                .collect(),
            result: if errors.is_empty() {
                PollResult::Ok
            } else if values.is_empty() {
                PollResult::Timeout
            } else {
                PollResult::Partial
            },
            answered,
            requests: 1,
        }
    }

    #[test]
    fn keeps_each_tags_last_reading_across_groups_and_failures() {
        let device: DeviceSettings = toml::from_str(
            "id = \"meter-7\"\naddress = \"127.0.0.1:502\"\n\
             [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\nunit = \"V\"\n\
             [[tags]]\nname = \"b\"\nregister = \"holding\"\naddress = 1\ntype = \"u16\"\n\
             [[tags]]\nname = \"c\"\nregister = \"holding\"\naddress = 2\ntype = \"u16\"\nunit = \"kWh\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let status = DeviceStatus::new(&device);
        assert!(!status.is_up());
        assert_eq!(status.snapshot().tags[0].unit.as_deref(), Some("V"));

        let t1 = Utc::now();
        let ms = Duration::from_millis;
        status.record(t1, ms(2), ms(5), &outcome(&[("a", 1), ("c", 3)], &[], true));
        // A second group polls only b, and fails.
        let t2 = t1 + chrono::Duration::seconds(1);
        let fail = outcome(&[], &[("b", "timeout")], false);
        status.record(t2, ms(1), ms(500), &fail);

        let s = status.snapshot();
        assert!(!status.is_up());
        assert_eq!(s.polled_at, Some(t2));
        assert_eq!(s.result, Some(PollResult::Timeout));
        assert_eq!(s.last_error, Some((t2, "timeout".to_string())));
        assert_eq!(s.tags[0].value, Some(Value::Int(1)));
        assert_eq!(s.tags[0].at, Some(t1));
        assert_eq!(s.tags[1].value, None);
        assert_eq!(s.tags[1].error.as_deref(), Some("timeout"));
        assert_eq!(s.tags[2].value, Some(Value::Int(3)));

        // b answers again: its error goes, the device's last error stays.
        let t3 = t2 + chrono::Duration::seconds(1);
        status.record(t3, ms(0), ms(4), &outcome(&[("b", 9)], &[], true));
        let s = status.snapshot();
        assert!(status.is_up());
        assert_eq!(s.tags[1].value, Some(Value::Int(9)));
        assert_eq!(s.tags[1].error, None);
        assert_eq!(s.last_error, Some((t2, "timeout".to_string())));
        assert!(status.summary().tags.is_empty());
        assert_eq!(status.summary().id, "meter-7");
    }
}

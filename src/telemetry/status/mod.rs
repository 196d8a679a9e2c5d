//! The status page for the technician at the box: `GET /` (service,
//! NATS, spool, backlog and a table of devices), `GET /devices/<id>` (one
//! device's tags, last value or error each) and `GET /status.json` (the same
//! data for scripts). docs/reference.md §4.
//!
//! Read-only: nothing here changes anything, and it is served on the
//! metrics listener only (127.0.0.1 by default). Every string that came
//! from a config or a device is escaped (the templates in [`page`] escape by
//! default; nothing is written around them). The pages refresh themselves
//! every [`REFRESH_SECONDS`] with a `<meta http-equiv="refresh">`: no
//! JavaScript, no external assets.
//!
//! The header comes from the service's feed ([`Overview`], refreshed twice a
//! second by one task, with a backlog sample every [`HISTORY_EVERY`] for the
//! sparkline); the devices' rows are read from their [`DeviceStatus`] per
//! request. A page view sends no actor a message.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use ingestor_actors::poller::{DeviceStatus, LastPolls};
use serde::Serialize;

use super::http::Health;

pub(crate) mod page;
mod sparkline;

/// How often the pages reload themselves.
pub(crate) const REFRESH_SECONDS: u32 = 5;
/// One backlog sample this often for the sparkline ...
pub(crate) const HISTORY_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// ... over this long.
pub(crate) const HISTORY_SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What the page's header shows, as the service last saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overview {
    /// What `/health` says.
    pub(crate) health: Health,
    /// `[service].id`.
    pub(crate) service_id: String,
    /// When the service started.
    pub(crate) started: Option<DateTime<Utc>>,
    /// `[nats].servers`, without any user or password in them.
    pub(crate) nats_servers: Vec<String>,
    /// The ConnectionMonitor's last connection problem (cleared when connected).
    pub(crate) nats_error: Option<String>,
    /// Batches confirmed by NATS since the start.
    pub(crate) published: u64,
    /// Unpublished batches in memory (ring and awaiting their commit).
    pub(crate) memory_batches: u64,
    /// Unpublished batches in the spool.
    pub(crate) disk_batches: u64,
    /// What the spool occupies on disk.
    pub(crate) disk_bytes: u64,
    /// When the oldest unpublished batch was polled (µs since the epoch).
    pub(crate) oldest_ts_micros: Option<i64>,
    /// The backlog over the last [`HISTORY_SPAN`], oldest first.
    pub(crate) history: BacklogHistory,
}

/// Backlog samples, one per [`HISTORY_EVERY`], over [`HISTORY_SPAN`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BacklogHistory {
    samples: VecDeque<(DateTime<Utc>, u64)>,
}

impl BacklogHistory {
    /// Notes the backlog at `now` if the last sample is [`HISTORY_EVERY`]
    /// old; forgets samples older than [`HISTORY_SPAN`].
    pub(crate) fn note(&mut self, now: DateTime<Utc>, backlog: u64) {
        if self
            .samples
            .back()
            .is_some_and(|(t, _)| now - *t < HISTORY_EVERY)
        {
            return;
        }
        self.samples.push_back((now, backlog));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now - *t > HISTORY_SPAN)
        {
            self.samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub(crate) fn samples(&self) -> impl Iterator<Item = (DateTime<Utc>, u64)> + '_ {
        self.samples.iter().copied()
    }
}

/// Where the status page gets its data.
pub(crate) trait StatusSource: Send + Sync + 'static {
    /// The header's data, as last refreshed.
    fn overview(&self) -> Overview;
    /// Every device's status, in config order.
    fn devices(&self) -> Vec<DeviceStatus>;
}

/// A fixed `/health` value (tests): a header from it, no devices.
impl StatusSource for Health {
    fn overview(&self) -> Overview {
        Overview {
            health: self.clone(),
            ..Overview::default()
        }
    }

    fn devices(&self) -> Vec<DeviceStatus> {
        Vec::new()
    }
}

/// The latest `/health` some task published (tests): a header from it, no
/// devices.
impl StatusSource for tokio::sync::watch::Receiver<Health> {
    fn overview(&self) -> Overview {
        self.borrow().overview()
    }

    fn devices(&self) -> Vec<DeviceStatus> {
        Vec::new()
    }
}

/// `GET /status.json`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusReport {
    service: ServiceReport,
    status: &'static str,
    nats: NatsReport,
    delivery: &'static str,
    spool: &'static str,
    backlog: BacklogReport,
    published: u64,
    devices_up: usize,
    devices: Vec<DeviceReport>,
}

#[derive(Debug, Serialize)]
struct ServiceReport {
    id: String,
    version: &'static str,
    started: Option<String>,
    uptime_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
struct NatsReport {
    state: &'static str,
    servers: Vec<String>,
    last_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct BacklogReport {
    total: u64,
    memory: u64,
    disk: u64,
    disk_bytes: u64,
    oldest_age_seconds: Option<f64>,
    /// `[unix seconds, backlog]`, oldest first, one per 10 s over the last hour.
    history: Vec<(i64, u64)>,
}

/// One device in `/status.json`.
#[derive(Debug, Serialize)]
pub(crate) struct DeviceReport {
    id: String,
    up: bool,
    last_poll: Option<String>,
    result: Option<&'static str>,
    lag_seconds: f64,
    took_seconds: f64,
    last_error: Option<ErrorReport>,
    tags: Vec<TagReport>,
}

#[derive(Debug, Serialize)]
struct ErrorReport {
    at: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct TagReport {
    name: String,
    unit: Option<String>,
    value: Option<ingestor_actors::Value>,
    error: Option<String>,
    at: Option<String>,
}

/// RFC 3339 in UTC, milliseconds.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Overview {
    /// How long the oldest unpublished batch waits, at `now`.
    pub(crate) fn oldest_age(&self, now: DateTime<Utc>) -> Option<f64> {
        self.oldest_ts_micros
            .map(|ts| (now.timestamp_micros() - ts).max(0) as f64 / 1e6)
    }

    /// `/health`'s `status`.
    pub(crate) fn status(&self) -> &'static str {
        self.health.status_str()
    }
}

/// `/status.json` from the header and every device's last polls.
pub(crate) fn report(o: &Overview, devices: &[DeviceStatus], now: DateTime<Utc>) -> StatusReport {
    let devices: Vec<DeviceReport> = devices
        .iter()
        .map(|d| device_report(d.is_up(), &d.snapshot()))
        .collect();
    StatusReport {
        service: ServiceReport {
            id: o.service_id.clone(),
            version: env!("CARGO_PKG_VERSION"),
            started: o.started.map(rfc3339),
            uptime_seconds: o.started.map(|s| (now - s).num_seconds()),
        },
        status: o.status(),
        nats: NatsReport {
            state: o.health.nats_str(),
            servers: o.nats_servers.clone(),
            last_error: o.nats_error.clone(),
        },
        delivery: o.health.delivery_str(),
        spool: o.health.spool.as_str(),
        backlog: BacklogReport {
            total: o.health.backlog,
            memory: o.memory_batches,
            disk: o.disk_batches,
            disk_bytes: o.disk_bytes,
            oldest_age_seconds: o.oldest_age(now),
            history: o
                .history
                .samples()
                .map(|(t, n)| (t.timestamp(), n))
                .collect(),
        },
        published: o.published,
        devices_up: devices.iter().filter(|d| d.up).count(),
        devices,
    }
}

fn device_report(up: bool, last: &LastPolls) -> DeviceReport {
    DeviceReport {
        id: last.id.clone(),
        up,
        last_poll: last.polled_at.map(rfc3339),
        result: last.result.map(|r| r.as_str()),
        lag_seconds: last.lag.as_secs_f64(),
        took_seconds: last.took.as_secs_f64(),
        last_error: last.last_error.as_ref().map(|(at, reason)| ErrorReport {
            at: rfc3339(*at),
            reason: reason.clone(),
        }),
        tags: last
            .tags
            .iter()
            .map(|t| TagReport {
                name: t.name.clone(),
                unit: t.unit.clone(),
                value: t.value.clone(),
                error: t.error.clone(),
                at: t.at.map(rfc3339),
            })
            .collect(),
    }
}

/// A NATS server URL as the page may show it: any `user:password@` or
/// `token@` taken out.
pub(crate) fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let host = match rest.rsplit_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    match scheme {
        Some(s) => format!("{s}://{host}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_lose_their_credentials() {
        assert_eq!(
            without_credentials("nats://ingest:s3cret@10.0.0.5:4222"),
            "nats://10.0.0.5:4222"
        );
        assert_eq!(
            without_credentials("tls://tok@nats.plant:4222"),
            "tls://nats.plant:4222"
        );
        assert_eq!(without_credentials("127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(without_credentials("u:p@host"), "host");
    }

    #[test]
    fn history_keeps_one_sample_per_10s_over_an_hour() {
        let mut h = BacklogHistory::default();
        let t0 = Utc::now();
        for i in 0..(2 * 3600) {
            h.note(t0 + chrono::TimeDelta::seconds(i), i as u64);
        }
        let samples: Vec<_> = h.samples().collect();
        assert_eq!(samples.len(), 361);
        assert_eq!(samples.last().map(|s| s.1), Some(7190));
        assert_eq!(samples.first().map(|s| s.1), Some(7190 - 3600));
    }
}

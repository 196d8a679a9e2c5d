//! A DevicePoller's metric handles (docs/reference.md §4), registered once per
//! device and shared by its poll groups.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::metric_names;
use crate::poller::cycle::{PollOutcome, PollResult};

#[derive(Debug)]
pub(crate) struct PollMetrics {
    up: Gauge,
    pub(crate) lag: Histogram,
    duration: Histogram,
    ok: Counter,
    partial: Counter,
    error: Counter,
    timeout: Counter,
    /// `ingestor_values_suppressed_total{device}`: held back by `deadband`.
    pub(crate) suppressed: Counter,
}

impl PollMetrics {
    pub(crate) fn new(device: &str) -> Self {
        let d = device.to_string();
        let polls = |result: &'static str| metrics::counter!(metric_names::POLLS_TOTAL, "device" => d.clone(), "result" => result);
        PollMetrics {
            up: metrics::gauge!(metric_names::DEVICE_UP, "device" => d.clone()),
            lag: metrics::histogram!(metric_names::POLL_LAG, "device" => d.clone()),
            duration: metrics::histogram!(metric_names::POLL_DURATION, "device" => d.clone()),
            ok: polls("ok"),
            partial: polls("partial"),
            error: polls("error"),
            timeout: polls("timeout"),
            suppressed: metrics::counter!(metric_names::VALUES_SUPPRESSED_TOTAL, "device" => d.clone()),
        }
    }

    /// One finished poll: its duration, result and the device's up state.
    pub(crate) fn record(&self, outcome: &PollOutcome, took: Duration) {
        self.duration.record(took.as_secs_f64());
        match outcome.result {
            PollResult::Ok => &self.ok,
            PollResult::Partial => &self.partial,
            PollResult::Error => &self.error,
            PollResult::Timeout => &self.timeout,
        }
        .increment(1);
        self.up.set(if outcome.answered { 1.0 } else { 0.0 });
    }
}

//! DevicePoller: one actor per `[[devices]]` entry, polling on a deadline
//! schedule and pushing one `Batch` per poll to the BufferActor.
//!
//! # Schedule
//! Poll `n` is due at `first_poll + n·poll_interval`. How late it actually
//! starts is recorded in `ingestor_poll_lag_seconds`. When a poll overruns
//! its slots, the next one starts in the slot the clock is in (late, and
//! counted as lag); the slots in between are skipped, never bunched.
//!
//! Each poll runs in a task of its own that sleeps until the slot, polls and
//! sends the outcome back, so the actor's handlers stay short, no mailbox
//! sits between the timer and the poll, and a slow device never holds up
//! anything but itself. Devices on one link queue on it in arrival order.
//!
//! Every poll makes one batch (`ts` = when it started), also a poll that got
//! no answer at all: then every tag is in `errors` with the reason, so a
//! consumer sees the device's trouble in the stream too.
//!
//! # Back-off
//! After `k` polls in a row without any answer, the next poll waits for the
//! first slot at least `min(backoff_min·2^(k−1), backoff_max)` after the
//! failed poll ended. One answer resets it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{Counter, Gauge, Histogram};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::buffer::BufferInlet;
use crate::poller::cycle::{DeviceReader, PollOutcome, PollResult};
use crate::poller::link::Link;
use crate::settings::DeviceSettings;
use crate::Batch;

/// The DevicePoller actor.
#[derive(Debug, Default)]
pub struct DevicePoller;

/// What a DevicePoller starts from.
#[derive(Debug)]
pub struct DevicePollerArgs {
    /// Its `[[devices]]` entry.
    pub device: DeviceSettings,
    /// Its link (shared with devices at the same address: see
    /// [`Links`](crate::poller::link::Links)).
    pub link: Link,
    /// Where batches go (bounded; holds them while the buffer restarts).
    pub buffer: BufferInlet,
    /// First back-off delay (`[supervision].backoff_min`).
    pub backoff_min: Duration,
    /// Longest back-off delay (`[supervision].backoff_max`).
    pub backoff_max: Duration,
    /// When slot 0 is due. [`spread_start`] spreads devices over the interval.
    pub first_poll: Instant,
    /// Set while the last poll got answers (for `/health`; outlives restarts).
    pub up: Arc<AtomicBool>,
}

/// A start time for `device_id` within the next `interval`, the same for the
/// same id, so that many devices do not all poll in the same millisecond.
pub fn spread_start(device_id: &str, interval: Duration) -> Instant {
    // FNV-1a: stable across runs and platforms.
    let hash = device_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Instant::now() + Duration::from_nanos(hash % nanos)
}

/// Messages of a DevicePoller (sent by its own poll task).
#[derive(Debug)]
pub enum DevicePollerMsg {
    /// A poll finished.
    Done(Box<CycleDone>),
    /// Liveness check (the watchdog): answered at once.
    Ping(ractor::RpcReplyPort<()>),
}

/// A finished poll, with the reader handed back.
#[derive(Debug)]
pub struct CycleDone {
    slot: u64,
    started: Instant,
    ts: DateTime<Utc>,
    reader: DeviceReader,
    outcome: PollOutcome,
}

/// The DevicePoller's state.
#[derive(Debug)]
pub struct DevicePollerState {
    /// `None` while a poll is scheduled or running (its task holds it).
    reader: Option<DeviceReader>,
    device: String,
    buffer: BufferInlet,
    schedule: Schedule,
    backoff_min: Duration,
    backoff_max: Duration,
    failures: u32,
    running: Option<JoinHandle<()>>,
    metrics: PollMetrics,
    up: Arc<AtomicBool>,
}

#[derive(Debug)]
struct PollMetrics {
    up: Gauge,
    lag: Histogram,
    duration: Histogram,
    ok: Counter,
    partial: Counter,
    error: Counter,
    timeout: Counter,
}

impl PollMetrics {
    fn new(device: &str) -> Self {
        let d = device.to_string();
        let polls = |result: &'static str| metrics::counter!("ingestor_polls_total", "device" => d.clone(), "result" => result);
        PollMetrics {
            up: metrics::gauge!("ingestor_device_up", "device" => d.clone()),
            lag: metrics::histogram!("ingestor_poll_lag_seconds", "device" => d.clone()),
            duration: metrics::histogram!("ingestor_poll_duration_seconds", "device" => d.clone()),
            ok: polls("ok"),
            partial: polls("partial"),
            error: polls("error"),
            timeout: polls("timeout"),
        }
    }

    fn count(&self, result: PollResult) {
        match result {
            PollResult::Ok => &self.ok,
            PollResult::Partial => &self.partial,
            PollResult::Error => &self.error,
            PollResult::Timeout => &self.timeout,
        }
        .increment(1);
    }
}

/// Poll slots: slot `n` is due at `first_poll + n·interval`.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    first_poll: Instant,
    interval: Duration,
}

impl Schedule {
    fn slot_time(&self, n: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(n));
        self.first_poll + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The slot the clock is in at `t` (slot 0 before `first_poll`).
    fn slot_at(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.first_poll).as_nanos();
        u64::try_from(since / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// The first slot due at or after `t`.
    fn slot_from(&self, t: Instant) -> u64 {
        let n = self.slot_at(t);
        if self.slot_time(n) < t {
            n + 1
        } else {
            n
        }
    }

    /// The slot to poll after slot `done` finished at `now`: the next one;
    /// when that has passed, the one the clock is in (the ones between are
    /// skipped, not bunched); never one due before `now + backoff`.
    fn next(&self, done: u64, now: Instant, backoff: Duration) -> u64 {
        let next = (done + 1).max(self.slot_at(now));
        if backoff.is_zero() {
            next
        } else {
            next.max(self.slot_from(now + backoff))
        }
    }
}

/// The wait after `failures` polls in a row without an answer.
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    min.saturating_mul(factor).min(max)
}

impl DevicePollerState {
    fn backoff(&self) -> Duration {
        backoff(self.failures, self.backoff_min, self.backoff_max)
    }

    /// Hands the reader to a task that waits for slot `n`, polls, and sends
    /// the outcome back: the actor is not on the path from timer to poll.
    fn schedule(&mut self, myself: &ActorRef<DevicePollerMsg>, n: u64) {
        let Some(mut reader) = self.reader.take() else {
            return; // a poll is running; it schedules the next one
        };
        let at = self.schedule.slot_time(n);
        let lag = self.metrics.lag.clone();
        let me = myself.clone();
        self.running = Some(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let started = Instant::now();
            let ts = Utc::now();
            lag.record(started.saturating_duration_since(at).as_secs_f64());
            let outcome = reader.poll().await;
            let done = CycleDone {
                slot: n,
                started,
                ts,
                reader,
                outcome,
            };
            let _ = me.cast(DevicePollerMsg::Done(Box::new(done)));
        }));
    }
}

impl Actor for DevicePoller {
    type Msg = DevicePollerMsg;
    type State = DevicePollerState;
    type Arguments = DevicePollerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let device = args.device.id.clone();
        let interval = args.device.poll_interval.max(Duration::from_millis(1));
        let mut state = DevicePollerState {
            metrics: PollMetrics::new(&device),
            reader: Some(DeviceReader::new(args.device, args.link)),
            device,
            buffer: args.buffer,
            schedule: Schedule {
                first_poll: args.first_poll,
                interval,
            },
            backoff_min: args.backoff_min,
            backoff_max: args.backoff_max.max(args.backoff_min),
            failures: 0,
            running: None,
            up: args.up,
        };
        let first = state.schedule.slot_from(Instant::now());
        state.schedule(&myself, first);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        crate::fault::hit("poller").await;
        match msg {
            DevicePollerMsg::Ping(reply) => {
                let _ = reply.send(());
            }
            DevicePollerMsg::Done(done) => {
                let CycleDone {
                    slot,
                    started,
                    ts,
                    reader,
                    outcome,
                } = *done;
                state.reader = Some(reader);
                state.running = None;
                let now = Instant::now();
                state
                    .metrics
                    .duration
                    .record(now.saturating_duration_since(started).as_secs_f64());
                state.metrics.count(outcome.result);
                state
                    .metrics
                    .up
                    .set(if outcome.answered { 1.0 } else { 0.0 });
                state.up.store(outcome.answered, Ordering::Relaxed);
                if outcome.answered {
                    state.failures = 0;
                } else {
                    state.failures = state.failures.saturating_add(1);
                    tracing::warn!(device = %state.device, failures = state.failures, backoff = ?state.backoff(), "device did not answer");
                }
                let mut batch = Batch::new(state.device.clone(), ts);
                batch.values = outcome.values;
                batch.errors = outcome.errors;
                state.buffer.push(batch).await;
                let next = state.schedule.next(slot, now, state.backoff());
                if next > slot + 1 {
                    tracing::debug!(device = %state.device, skipped = next - slot - 1, "poll slots skipped");
                }
                state.schedule(&myself, next);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = state.running.take() {
            task.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn on_time_poll_is_followed_by_the_next_slot() {
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        assert_eq!(s.next(3, t0 + ms(3_200), Duration::ZERO), 4);
        assert_eq!(s.slot_time(4), t0 + ms(4_000));
    }

    #[test]
    fn overrunning_poll_skips_missed_slots_instead_of_bunching() {
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        // poll 3 ended at 6.3 s: slots 4 and 5 are gone, slot 6 starts late
        assert_eq!(s.next(3, t0 + ms(6_300), Duration::ZERO), 6);
    }

    #[test]
    fn failing_device_backs_off_growing_up_to_the_max() {
        let (min, max) = (ms(100), ms(30_000));
        let waits: Vec<u64> = (0..12)
            .map(|f| backoff(f, min, max).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [0, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000]
        );
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        // poll 3 ended at 3.5 s with a 6.4 s back-off: first slot at or after 9.9 s
        assert_eq!(s.next(3, t0 + ms(3_500), ms(6_400)), 10);
    }

    #[test]
    fn start_spread_is_stable_and_within_the_interval() {
        let before = Instant::now();
        let a = spread_start("press-01", ms(1000));
        let b = spread_start("press-01", ms(1000));
        assert!(a >= before && a < before + ms(1000));
        assert!(
            b.saturating_duration_since(a) < ms(100),
            "same id, same offset"
        );
    }
}

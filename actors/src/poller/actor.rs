//! DevicePoller: one actor per `[[devices]]` entry, polling each of its
//! poll groups on a deadline schedule and pushing one batch per group
//! poll to the BufferActor, encoded for NATS here, on the poller's own
//! task ([`EncodedBatch`]): nothing downstream decodes it again.
//!
//! # Schedule
//! The device's tags form poll groups by interval (see [`group`]); slot
//! `n` of a group is due at `first_poll + n·interval`, all groups counting
//! from the same `first_poll` (see [`schedule`] for overruns and back-off).
//! How late a poll actually starts is recorded in
//! `ingestor_poll_lag_seconds`.
//!
//! One group poll runs at a time: the groups of a device share its
//! connection and never overlap on it. The next poll is chosen when the
//! last one is done: the group due earliest, and of groups due at the same
//! moment the one with the shorter interval.
//!
//! Each poll runs in a task of its own that sleeps until the slot, polls and
//! sends the outcome back, so the actor's handlers stay short, no mailbox
//! sits between the timer and the poll, and a slow device never holds up
//! anything but itself. Devices on one link queue on it in arrival order.
//!
//! # Writes
//! A device with writable tags and a [`WriteContext`] also serves write
//! requests ([`setpoint::serve`], a task of the poller's, aborted with
//! it). Polls and writes take turns on the device ([`DeviceTurn`]): a
//! poll task takes the turn when its slot has come, a write when it
//! arrives, so a write never overlaps a poll and waits at most for the one
//! running.
//!
//! # Messages
//! [`DevicePollerMsg`] has what others send (`Ping` from the watchdog,
//! `Reloaded` from a reload) and one opaque [`InternalMsg`] for what the
//! poller's own poll tasks send it (a finished group poll, or its panic,
//! which fails the poller: see [`crate::watched`]); only this module can
//! make or match one.
//!
//! # Batches
//! A group poll makes one batch (`ts` = when it started) of the values its
//! [`SendFilter`] lets through (`deadband`, `max_silence`) and every error;
//! a poll that got no answer at all has every tag in `errors`, so a
//! consumer sees the device's trouble in the stream too. A poll with
//! nothing to send makes no batch and uses no seq. Values held back are
//! counted in `ingestor_values_suppressed_total`. After a start, and after
//! [`DevicePollerMsg::Reloaded`], the next poll of every group sends every
//! value.
//!
//! # Back-off
//! After `k` polls in a row without any answer (any group), the next poll
//! of every group waits for its first slot at least
//! `min(backoff_min·2^(k−1), backoff_max)` after the failed poll ended
//! ([`Backoff::after`]`(k)`), and then its own share of that wait (at most
//! one interval, from its id and `k`: [`probe_delay`]), so devices that fail
//! together, say after a network cut, do not probe and reconnect in one
//! burst even when their slots coincide; the probe's lag is counted from
//! that moment. So a silent device is probed once per back-off, by the group due first
//! (the shortest interval), not once per group; the other groups wait until
//! it answers again. One answer resets it.
//!
//! [`group`]: crate::poller::group
//! [`schedule`]: crate::poller::schedule

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::buffer::BufferInlet;
use crate::poller::cycle::{DeviceReader, PollOutcome};
use crate::poller::deadband::SendFilter;
use crate::poller::group::shared_poll_groups;
use crate::poller::link::Link;
use crate::poller::metrics::PollMetrics;
use crate::poller::schedule::{first_due, id_hash, probe_delay, Schedule};
use crate::poller::setpoint::{self, DeviceTurn, WriteContext};
use crate::poller::status::DeviceStatus;
use crate::settings::DeviceSettings;
use crate::watched::{self, TaskPanicked};
use crate::{Batch, EncodedBatch};

/// The DevicePoller actor.
#[derive(Debug, Default)]
pub struct DevicePoller;

/// What a DevicePoller starts from.
#[derive(Debug)]
pub struct DevicePollerArgs {
    /// Its `[[devices]]` entry (shared: the supervisor's table holds it).
    pub device: Arc<DeviceSettings>,
    /// Its link (shared with devices at the same address: see
    /// [`Links`](crate::poller::link::Links)).
    pub link: Link,
    /// Where batches go (bounded; holds them while the buffer restarts).
    pub buffer: BufferInlet,
    /// First back-off delay (`[supervision].backoff_min`).
    pub backoff_min: Duration,
    /// Longest back-off delay (`[supervision].backoff_max`).
    pub backoff_max: Duration,
    /// When slot 0 of every group is due. [`spread_start`](crate::poller::spread_start) spreads devices
    /// over the interval.
    pub first_poll: Instant,
    /// What the last polls showed, up or not (for `/health` and the status
    /// page; outlives restarts).
    pub status: DeviceStatus,
    /// Where write requests come from (`None`: no writes, as for a device
    /// without writable tags).
    pub writes: Option<WriteContext>,
}

/// Messages of a DevicePoller: what others may send it, and its own.
#[derive(Debug)]
pub enum DevicePollerMsg {
    /// Liveness check (the watchdog): answered at once.
    Ping(ractor::RpcReplyPort<()>),
    /// A config reload happened and left this device unchanged: the next
    /// poll of every group sends every value, as after a start.
    Reloaded,
    /// Sent by the poller's own tasks; nothing outside this module can make
    /// or read one.
    Internal(InternalMsg),
}

/// A message a DevicePoller's own tasks send it (opaque outside this module).
#[derive(Debug)]
pub struct InternalMsg(Internal);

/// What a DevicePoller's own tasks tell it.
#[derive(Debug)]
enum Internal {
    /// A group poll finished (sent by its poll task).
    Done(Box<CycleDone>),
    /// The poll task panicked (a bug), taking the group's reader with it:
    /// the poller fails and its supervisor restarts it.
    Panicked(TaskPanicked),
}

/// A finished group poll, with the reader handed back.
#[derive(Debug)]
struct CycleDone {
    group: usize,
    slot: u64,
    started: Instant,
    /// How late it started against its slot.
    lag: Duration,
    ts: DateTime<Utc>,
    reader: DeviceReader,
    outcome: PollOutcome,
}

/// One poll group: its reader, schedule, next slot and send filter.
#[derive(Debug)]
struct Group {
    /// `None` while its poll is scheduled or running (the task holds it).
    reader: Option<DeviceReader>,
    schedule: Schedule,
    next: u64,
    /// How long after slot `next` its poll starts: zero, but for a probe of
    /// a device in back-off ([`probe_delay`]).
    delay: Duration,
    filter: SendFilter,
}

impl Group {
    /// When its next poll starts, and its interval.
    fn due(&self) -> (Instant, Duration) {
        (
            self.schedule.slot_time(self.next) + self.delay,
            self.schedule.interval,
        )
    }
}

/// The DevicePoller's state.
#[derive(Debug)]
pub struct DevicePollerState {
    groups: Vec<Group>,
    /// Its id, shared by every batch it sends.
    device: Arc<str>,
    /// [`id_hash`] of the id: the seed of its back-off share.
    seed: u64,
    buffer: BufferInlet,
    /// `[supervision].backoff_min`/`backoff_max`, the max raised to the min.
    backoff: Backoff,
    failures: u32,
    running: Option<JoinHandle<()>>,
    /// Polls and writes take turns on the device.
    turn: DeviceTurn,
    /// The write request task, for a device with writable tags.
    serving: Option<JoinHandle<()>>,
    metrics: PollMetrics,
    status: DeviceStatus,
}

impl DevicePollerState {
    fn backoff(&self) -> Duration {
        self.backoff.after(self.failures)
    }

    /// Starts the next poll: the group due first (shorter interval first
    /// when due together). Nothing when a poll is already running.
    fn schedule_next(&mut self, myself: &ActorRef<DevicePollerMsg>) {
        if self.running.is_some() {
            return;
        }
        let next = first_due(self.groups.iter().map(Group::due));
        if let Some(g) = next {
            self.schedule(myself, g);
        }
    }

    /// Hands group `g`'s reader to a task that waits for its slot, polls,
    /// and sends the outcome back: the actor is not on the path from timer
    /// to poll.
    fn schedule(&mut self, myself: &ActorRef<DevicePollerMsg>, g: usize) {
        let group = &mut self.groups[g];
        let Some(mut reader) = group.reader.take() else {
            return;
        };
        let n = group.next;
        let at = group.due().0;
        let lag = self.metrics.lag.clone();
        let turn = self.turn.clone();
        let (me, on_panic) = (myself.clone(), myself.clone());
        let panicked = |p| DevicePollerMsg::Internal(InternalMsg(Internal::Panicked(p)));
        let run = async move {
            tokio::time::sleep_until(at).await;
            crate::fault::hit("poller.poll").await;
            // Waits only while a write is being done.
            let _turn = turn.take().await;
            let started = Instant::now();
            let ts = Utc::now();
            let late = started.saturating_duration_since(at);
            lag.record(late.as_secs_f64());
            let outcome = reader.poll().await;
            let done = CycleDone {
                group: g,
                slot: n,
                started,
                lag: late,
                ts,
                reader,
                outcome,
            };
            let done = Internal::Done(Box::new(done));
            let _ = me.cast(DevicePollerMsg::Internal(InternalMsg(done)));
        };
        self.running = Some(watched::spawn("poller", "poll", run, move |p| {
            let _ = on_panic.cast(panicked(p));
        }));
    }

    /// Gives a batch to the buffer: the one place a poller sends one. Waits
    /// (bounded) while the buffer's inlet is full; see [`BufferInlet::push`].
    async fn deliver(&self, batch: Batch) {
        let encoded = EncodedBatch::encode_for(&batch, self.device.clone());
        self.buffer.push(encoded).await;
    }

    /// Records a finished group poll and schedules the group's next slot;
    /// returns the batch of what is due to be sent, if anything is.
    fn done(&mut self, done: CycleDone) -> Option<Batch> {
        let CycleDone {
            group: g,
            slot,
            started,
            lag,
            ts,
            reader,
            outcome,
        } = done;
        let now = Instant::now();
        let took = now.saturating_duration_since(started);
        self.metrics.record(&outcome, took);
        self.status.record(ts, lag, took, &outcome);
        if outcome.answered {
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            tracing::warn!(device = %self.device, failures = self.failures, backoff = ?self.backoff(), "device did not answer");
        }
        let backoff = self.backoff();
        let group = self.groups.get_mut(g)?;
        group.reader = Some(reader);
        let at = group.schedule.slot_time(slot);
        let due = group.filter.apply(at, outcome.values, outcome.errors);
        self.metrics.suppressed.increment(due.suppressed);
        let next = group.schedule.next(slot, now, backoff);
        if next > slot + 1 {
            tracing::debug!(device = %self.device, skipped = next - slot - 1, "poll slots skipped");
        }
        group.next = next;
        for other in &mut self.groups {
            if !backoff.is_zero() {
                other.next = other.next.max(other.schedule.slot_from(now + backoff));
            }
            let interval = other.schedule.interval;
            other.delay = probe_delay(self.seed, self.failures, backoff, interval);
        }
        if due.values.is_empty() && due.errors.is_empty() {
            return None;
        }
        let mut batch = Batch::new(&*self.device, ts);
        batch.values = due.values;
        batch.errors = due.errors;
        Some(batch)
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
        let device: Arc<str> = Arc::from(args.device.id.as_str());
        let now = Instant::now();
        let groups = shared_poll_groups(&args.device)
            .into_iter()
            .map(|settings| {
                let schedule = Schedule {
                    first_poll: args.first_poll,
                    interval: settings.poll_interval.max(Duration::from_millis(1)),
                };
                Group {
                    next: schedule.slot_from(now),
                    delay: Duration::ZERO,
                    schedule,
                    filter: SendFilter::new(&settings.tags),
                    reader: Some(DeviceReader::new(settings, args.link.clone())),
                }
            })
            .collect();
        let mut state = DevicePollerState {
            metrics: PollMetrics::new(&device),
            seed: id_hash(&device),
            groups,
            device,
            buffer: args.buffer,
            backoff: Backoff {
                min: args.backoff_min,
                max: args.backoff_max.max(args.backoff_min),
            },
            failures: 0,
            running: None,
            status: args.status,
            turn: DeviceTurn::default(),
            serving: None,
        };
        if let (Some(ctx), true) = (args.writes, args.device.has_writable_tags()) {
            let serve = setpoint::serve(
                ctx,
                DeviceSettings::clone(&args.device),
                args.link.clone(),
                state.turn.clone(),
                state.buffer.clone(),
            );
            let on_panic = myself.clone();
            state.serving = Some(watched::spawn("poller", "writes", serve, move |p| {
                let _ = on_panic.cast(DevicePollerMsg::Internal(InternalMsg(Internal::Panicked(
                    p,
                ))));
            }));
        }
        state.schedule_next(&myself);
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
            DevicePollerMsg::Reloaded => {
                for group in &mut state.groups {
                    group.filter.reset();
                }
                tracing::debug!(device = %state.device, "config reloaded: next polls send every value");
            }
            DevicePollerMsg::Internal(InternalMsg(Internal::Done(done))) => {
                state.running = None;
                if let Some(batch) = state.done(*done) {
                    state.deliver(batch).await;
                }
                state.schedule_next(&myself);
            }
            DevicePollerMsg::Internal(InternalMsg(Internal::Panicked(panicked))) => {
                tracing::error!(device = %state.device, error = %panicked, "device poll task panicked; restarting its poller");
                return Err(panicked.into());
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
        if let Some(task) = state.serving.take() {
            task.abort();
        }
        Ok(())
    }
}

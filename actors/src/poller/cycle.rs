//! One poll cycle of one device: every planned read, decoded into values
//! and per-tag errors. Used by the DevicePoller each cycle and by
//! `ingestor poll` once.
//!
//! Trouble stays where it is:
//! - exception 0x02 or 0x03 (illegal address or value) on a merged read →
//!   the block is read tag by tag; tags that fail alone get the exception as
//!   their error and the plan reads them alone from then on (see `plan`);
//!   if none fails alone, the hole between them is planned around; if all
//!   fail alone, the plan stays. Other exceptions (0x04 device failure, 0x0B
//!   gateway target not answering, ...) say nothing about addresses: they
//!   are the error of every tag of that read, and the plan stays;
//! - exception 0x06 (busy) → asked again up to `busy_retries` times, after
//!   10 ms, 20 ms, ...;
//! - timeout or transport error → asked again up to `retries` times; if it
//!   still fails, the rest of the cycle is abandoned (the device is not
//!   answering) and every unread tag carries that error.

use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;

use crate::metric_names;
use crate::poller::decode::{decode_bit, decode_registers};
use crate::poller::link::{Link, LinkError, ReadRequest, RegisterData, RequestTiming};
use crate::poller::plan::{function_name, plan, PlanHints, PlannedRead};
use crate::settings::{DeviceSettings, RegisterKind};
use crate::Value;

/// How a poll went, the `result` label of `ingestor_polls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollResult {
    /// Every tag read.
    Ok,
    /// Some tags read, some failed.
    Partial,
    /// No tag read, and the device answered or could not be reached.
    Error,
    /// No tag read because the device did not answer in time.
    Timeout,
}

impl PollResult {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PollResult::Ok => "ok",
            PollResult::Partial => "partial",
            PollResult::Error => "error",
            PollResult::Timeout => "timeout",
        }
    }
}

/// What one cycle produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOutcome {
    /// Tag name → value, in config order.
    pub values: Vec<(String, Value)>,
    /// Tag name → reason, in config order.
    pub errors: Vec<(String, String)>,
    /// The summary.
    pub result: PollResult,
    /// The device sent at least one answer (data or exception; a gateway's
    /// 0x0A/0x0B "target did not respond" does not count).
    pub answered: bool,
    /// Requests sent, retries included.
    pub requests: u32,
}

/// Reads one device's tags over its link, remembering what exceptions taught.
#[derive(Debug)]
pub struct DeviceReader {
    device: Arc<DeviceSettings>,
    link: Link,
    timing: RequestTiming,
    hints: PlanHints,
    plan: Vec<PlannedRead>,
    /// `ingestor_modbus_requests_total` per function (holding, input, coil, discrete).
    requests_total: [Counter; 4],
}

type TagResults = Vec<Option<Result<Value, String>>>;

impl DeviceReader {
    /// A reader for `device` on `link` (its own settings, or shared).
    pub fn new(device: impl Into<Arc<DeviceSettings>>, link: Link) -> Self {
        let device = device.into();
        let hints = PlanHints::default();
        let plan = plan(&device, &hints);
        let timing = RequestTiming::of(&device);
        let counter = |kind| metrics::counter!(metric_names::MODBUS_REQUESTS_TOTAL, "device" => device.id.clone(), "function" => function_name(kind));
        let requests_total = [
            counter(RegisterKind::Holding),
            counter(RegisterKind::Input),
            counter(RegisterKind::Coil),
            counter(RegisterKind::Discrete),
        ];
        DeviceReader {
            device,
            link,
            timing,
            hints,
            plan,
            requests_total,
        }
    }

    /// The device's settings.
    pub fn device(&self) -> &DeviceSettings {
        &self.device
    }

    /// The reads the next cycle makes.
    pub fn plan(&self) -> &[PlannedRead] {
        &self.plan
    }

    /// Reads every tag once.
    pub async fn poll(&mut self) -> PollOutcome {
        let mut results: TagResults = vec![None; self.device.tags.len()];
        let mut abandoned: Option<LinkError> = None;
        let mut answered = false;
        let mut requests = 0;
        let mut learned = false;
        // Taken for the cycle, not cloned (a clone per poll is an
        // allocation per planned read); put back, or re-planned, below.
        let reads = std::mem::take(&mut self.plan);
        for read in &reads {
            if let Some(e) = &abandoned {
                fail(&mut results, &read.tags, e);
                continue;
            }
            match self
                .request(read.kind, read.start, read.count, &mut requests)
                .await
            {
                Ok(data) => {
                    answered = true;
                    self.decode_into(read, &data, &mut results);
                }
                Err(e @ LinkError::Exception(0x02 | 0x03)) if read.tags.len() > 1 => {
                    answered = true;
                    tracing::info!(device = %self.device.id, start = read.start, error = %e, "exception on a merged read, reading its tags one by one");
                    if let Some(e) = self.split(read, &mut results, &mut requests).await {
                        abandoned = Some(e);
                    }
                    learned = true;
                }
                Err(e @ LinkError::Exception(code)) => {
                    // 0x0A/0x0B come from a gateway: the device itself is silent.
                    answered |= !matches!(code, 0x0A | 0x0B);
                    fail(&mut results, &read.tags, &e);
                }
                Err(e) => {
                    fail(&mut results, &read.tags, &e);
                    abandoned = Some(e);
                }
            }
        }
        self.plan = if learned {
            plan(&self.device, &self.hints)
        } else {
            reads
        };
        self.outcome(results, abandoned, answered, requests)
    }

    /// Reads each tag of a failed merged block alone; returns a transport
    /// error that ended the attempt, if any.
    async fn split(
        &mut self,
        read: &PlannedRead,
        results: &mut TagResults,
        requests: &mut u32,
    ) -> Option<LinkError> {
        let mut failed = Vec::new();
        for (n, &i) in read.tags.iter().enumerate() {
            let tag = &self.device.tags[i];
            let (kind, start, count) = (tag.register, tag.address, tag.span());
            match self.request(kind, start, count, requests).await {
                Ok(data) => {
                    let single = PlannedRead {
                        kind,
                        start,
                        count,
                        tags: vec![i],
                    };
                    self.decode_into(&single, &data, results);
                }
                Err(e @ LinkError::Exception(_)) => {
                    results[i] = Some(Err(e.to_string()));
                    failed.push(i);
                }
                Err(e) => {
                    fail(results, &read.tags[n..], &e);
                    return Some(e);
                }
            }
        }
        if failed.len() == read.tags.len() {
            // Nothing reads, alone or together: no address to plan around.
            return None;
        }
        for &i in &failed {
            let tag = self.device.tags[i].clone();
            self.hints.isolate(i, &tag);
        }
        if failed.is_empty() {
            // Every tag reads alone: the bad address is in a hole between them.
            for a in u32::from(read.start)..u32::from(read.start) + u32::from(read.count) {
                let covered = read.tags.iter().any(|&i| {
                    let t = &self.device.tags[i];
                    (u32::from(t.address)..u32::from(t.address) + u32::from(t.span())).contains(&a)
                });
                if let (false, Ok(a)) = (covered, u16::try_from(a)) {
                    self.hints.forbidden.insert((read.kind, a));
                }
            }
        }
        None
    }

    /// One read with `retries` (transport trouble) and `busy_retries` (0x06).
    async fn request(
        &self,
        kind: RegisterKind,
        start: u16,
        count: u16,
        requests: &mut u32,
    ) -> Result<RegisterData, LinkError> {
        let req = ReadRequest {
            unit: self.device.unit,
            kind,
            start,
            count,
        };
        let (mut tries, mut busy) = (0, 0);
        loop {
            *requests += 1;
            let counter = match kind {
                RegisterKind::Holding => &self.requests_total[0],
                RegisterKind::Input => &self.requests_total[1],
                RegisterKind::Coil => &self.requests_total[2],
                RegisterKind::Discrete => &self.requests_total[3],
            };
            counter.increment(1);
            match self.link.read(req, self.timing).await {
                Err(LinkError::Exception(code)) => {
                    metrics::counter!(metric_names::MODBUS_EXCEPTIONS_TOTAL, "device" => self.device.id.clone(), "code" => format!("0x{code:02x}"))
                        .increment(1);
                    if code == 0x06 && busy < self.device.busy_retries {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(10) * busy).await;
                        continue;
                    }
                    return Err(LinkError::Exception(code));
                }
                Err(e) if e.is_transport() && tries < self.device.retries => {
                    tries += 1;
                    tracing::debug!(device = %self.device.id, error = %e, try_ = tries, "retrying request");
                }
                other => return other,
            }
        }
    }

    fn decode_into(&self, read: &PlannedRead, data: &RegisterData, results: &mut TagResults) {
        for &i in &read.tags {
            let tag = &self.device.tags[i];
            let at = usize::from(tag.address.saturating_sub(read.start));
            let value = match data {
                RegisterData::Bits(bits) => match bits.get(at) {
                    Some(&b) => Ok(decode_bit(b)),
                    None => Err(format!("response too short: no bit {}", tag.address)),
                },
                RegisterData::Words(words) => {
                    decode_registers(tag, words.get(at..).unwrap_or(&[])).map_err(|e| e.to_string())
                }
            };
            results[i] = Some(value);
        }
    }

    fn outcome(
        &self,
        results: TagResults,
        abandoned: Option<LinkError>,
        answered: bool,
        requests: u32,
    ) -> PollOutcome {
        let mut values = Vec::with_capacity(results.len());
        let mut errors = Vec::new();
        for (tag, result) in self.device.tags.iter().zip(results) {
            match result {
                Some(Ok(v)) => values.push((tag.name.clone(), v)),
                Some(Err(e)) => errors.push((tag.name.clone(), e)),
                None => errors.push((tag.name.clone(), "not read".into())),
            }
        }
        let result = match (errors.is_empty(), values.is_empty(), abandoned) {
            (true, _, _) => PollResult::Ok,
            (false, false, _) => PollResult::Partial,
            (false, true, Some(LinkError::Timeout(_))) => PollResult::Timeout,
            (false, true, _) => PollResult::Error,
        };
        PollOutcome {
            values,
            errors,
            result,
            answered,
            requests,
        }
    }
}

fn fail(results: &mut TagResults, tags: &[usize], error: &LinkError) {
    for &i in tags {
        results[i] = Some(Err(error.to_string()));
    }
}

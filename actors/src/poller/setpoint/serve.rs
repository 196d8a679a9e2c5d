//! NATS request/reply for one device's writable tags.
//!
//! The DevicePoller of a device with writable tags runs [`serve`]: it
//! follows the connection state and, on every connection, subscribes to
//! `<writes.subject_prefix>.<service.id>.<device>` (core NATS, outside the
//! stream: JetStream neither stores nor answers a request). Requests are
//! answered one at a time, in arrival order. Each one's audit records go
//! into the buffer before its reply is sent, so a requester that got a
//! reply can count on the record reaching the stream. Who may publish on
//! the subject is the NATS server's business (subject permissions).

use async_nats::Client;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    audit_event, check_request, execute_all, parse_request, reply_json, DeviceTurn, Outcome,
    RateLimit,
};
use crate::buffer::BufferInlet;
use crate::metric_names;
use crate::monitor::{ConnectionState, Follower, LinkEvent};
use crate::poller::link::Link;
use crate::settings::{DeviceSettings, WriteSettings};
use crate::EncodedBatch;

/// What a DevicePoller needs to serve writes.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// `[writes]`.
    pub settings: WriteSettings,
    /// `[service] id`: part of the subject.
    pub service_id: String,
    /// The connection state (the ConnectionMonitor's watch).
    pub connection: watch::Receiver<ConnectionState>,
}

/// One device's write path: its settings, connection, turn and rate
/// limiter. [`serve`] runs one per device with writable tags; tests drive
/// one directly.
#[derive(Debug)]
pub struct WritePath {
    /// The device (its tags decide what may be written).
    pub device: DeviceSettings,
    /// `[writes]`.
    pub settings: WriteSettings,
    /// The device's link.
    pub link: Link,
    /// The device's turn, shared with its polls.
    pub turn: DeviceTurn,
    /// One write per tag per `rate_per_tag`.
    pub limiter: RateLimit,
}

impl WritePath {
    /// The write path of `device` on `link`, taking turns with the polls
    /// that hold `turn`.
    pub fn new(
        device: DeviceSettings,
        settings: WriteSettings,
        link: Link,
        turn: DeviceTurn,
    ) -> Self {
        WritePath {
            limiter: RateLimit::new(settings.rate_per_tag),
            device,
            settings,
            link,
            turn,
        }
    }

    /// Answers one request body: checks, writes, read back. Returns the
    /// audit records, the reply and the `result` of `ingestor_writes_total`.
    pub async fn answer(
        &mut self,
        payload: &[u8],
        reply_to: Option<&str>,
    ) -> (Vec<EncodedBatch>, Vec<u8>, &'static str) {
        let (device, settings) = (&self.device, &self.settings);
        let ts = Utc::now();
        let (pairs, single, outcome) = match parse_request(payload) {
            Err(refusal) => (Vec::new(), true, Outcome::Refused(refusal)),
            Ok(asked) => {
                let limiter = &mut self.limiter;
                let checked = check_request(device, settings, &asked.pairs)
                    .and_then(|writes| limiter.admit(&writes, Instant::now()).map(|()| writes));
                let outcome = match checked {
                    Err(refusal) => Outcome::Refused(refusal),
                    Ok(writes) => {
                        let results =
                            execute_all(&self.link, device, &self.turn, &writes, settings.timeout)
                                .await;
                        Outcome::Done(writes.into_iter().zip(results).collect())
                    }
                };
                (asked.pairs, asked.single, outcome)
            }
        };
        let result = outcome.result();
        match outcome.refusal() {
            None => {
                tracing::info!(device = %device.id, reply_to, request = %String::from_utf8_lossy(payload), "write done and read back")
            }
            Some(r) => {
                tracing::warn!(device = %device.id, reply_to, code = r.code.as_str(), error = %r.error, "write refused")
            }
        }
        let records = audit_event(&device.id, reply_to, &pairs, &outcome, ts);
        (records, reply_json(&outcome, single, ts), result)
    }
}

/// Serves write requests for `device` until the task is aborted (with its
/// poller) or the connection watch closes.
pub async fn serve(
    ctx: WriteContext,
    device: DeviceSettings,
    link: Link,
    turn: DeviceTurn,
    buffer: BufferInlet,
) {
    let subject = ctx.settings.subject(&ctx.service_id, &device.id);
    for code in super::WriteCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(["ok"])
    {
        metrics::counter!(metric_names::WRITES_TOTAL, "device" => device.id.clone(), "result" => code).increment(0);
    }
    let mut server = Server {
        path: WritePath::new(device, ctx.settings, link, turn),
        buffer,
    };
    let mut follower = Follower::new(ctx.connection);
    let mut events = follower.events();
    let mut client: Option<Client> = None;
    loop {
        for event in events.drain(..) {
            match event {
                LinkEvent::Connected(c) => client = Some(c),
                LinkEvent::Disconnected => client = None,
                LinkEvent::Rejected(_) => {}
            }
        }
        let Some(c) = client.clone() else {
            match follower.changed().await {
                Some(next) => events = next,
                None => return,
            }
            continue;
        };
        let mut requests = match c.subscribe(subject.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(device = %server.path.device.id, subject, error = %e, "cannot subscribe to the write subject");
                client = None;
                continue;
            }
        };
        tracing::info!(device = %server.path.device.id, subject, "serving writes");
        events = loop {
            tokio::select! {
                message = requests.next() => match message {
                    Some(m) => server.handle(&c, m).await,
                    None => {
                        client = None;
                        break Vec::new();
                    }
                },
                next = follower.changed() => match next {
                    Some(next) => break next,
                    None => return,
                },
            }
        };
    }
}

/// A write path and where its audit records go.
#[derive(Debug)]
struct Server {
    path: WritePath,
    buffer: BufferInlet,
}

impl Server {
    async fn handle(&mut self, client: &Client, message: async_nats::Message) {
        let reply_to = message.reply.as_ref().map(|s| s.to_string());
        let (records, reply, result) = self
            .path
            .answer(&message.payload, reply_to.as_deref())
            .await;
        metrics::counter!(metric_names::WRITES_TOTAL, "device" => self.path.device.id.clone(), "result" => result).increment(1);
        for record in records {
            self.buffer.push(record).await;
        }
        if let Some(to) = reply_to {
            if let Err(e) = client.publish(to, reply.into()).await {
                tracing::warn!(device = %self.path.device.id, error = %e, "write reply not sent");
            }
        }
    }
}

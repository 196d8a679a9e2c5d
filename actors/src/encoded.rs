//! `EncodedBatch`: a batch as it leaves the poller, encoded once for NATS.
//!
//! A poller turns its `Batch` into the JSON payload of docs/reference.md §3
//! right away, on its own task; from there on the buffer's ring and the
//! publisher only move bytes, and the spool stores the body compactly
//! (record format 3) and gives back the same bytes. Nothing downstream of
//! the poller deserializes a batch again.
//!
//! The payload starts with `seq`, which the buffer assigns on acceptance, so
//! what is kept is the *body*: the payload without its opening `{"seq":N,`.
//! [`EncodedBatch::payload`] puts the two together, byte for byte what
//! [`Batch::to_json`] gives for the same batch.
//!
//! Cloning one is two reference counts (the device id is shared by every
//! batch of a device, the body is `Bytes`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};

use crate::batch::BatchBody;
use crate::{Batch, Value};

/// The device id of gap events: `<prefix>.<service.id>._gaps`. Device ids
/// of the config may not start with `_` (the service's own subjects).
pub const GAPS_DEVICE: &str = "_gaps";

/// The device id of write audit records: `<prefix>.<service.id>._writes`.
pub const WRITES_DEVICE: &str = "_writes";

/// The part of every payload before the seq's digits.
const SEQ_OPEN: &[u8] = b"{\"seq\":";

/// A batch encoded for NATS: `seq`, device, poll time and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// As in [`Batch::seq`]: zero until the buffer accepts it.
    pub seq: u64,
    device: Arc<str>,
    ts_micros: i64,
    body: Bytes,
}

/// Why stored bytes are not the body of a payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a batch payload body: {0}")]
pub struct BodyError(&'static str);

impl EncodedBatch {
    /// Encodes `batch` (its `seq` is kept) with the device id it names.
    pub fn encode(batch: &Batch) -> EncodedBatch {
        EncodedBatch::encode_for(batch, Arc::from(batch.device.as_str()))
    }

    /// Encodes `batch` for `device` (the poller's shared copy of
    /// `batch.device`, so a batch costs no allocation for its device id).
    pub fn encode_for(batch: &Batch, device: Arc<str>) -> EncodedBatch {
        // `{"device":...}` with the brace dropped: the body. Serializing
        // strings and numbers into memory cannot fail.
        let mut json = Vec::with_capacity(96 + 32 * batch.values.len());
        let _ = serde_json::to_writer(&mut json, &BatchBody(batch));
        let body = Bytes::from(json).slice(1..);
        EncodedBatch {
            seq: batch.seq,
            device,
            ts_micros: batch.ts_micros,
            body,
        }
    }

    /// A gap event (docs/reference.md §3): seqs `from..=to` are missing
    /// for `reason`, `count` of them. It travels like a batch of the
    /// service's own device [`GAPS_DEVICE`], so it is published on
    /// `<prefix>.<service.id>._gaps`; its payload is
    /// `{"seq":S,"device":"_gaps","ts":"…","gap":{"from":N,"to":M,"reason":"…","count":K}}`.
    pub fn gap_event(
        ts: DateTime<Utc>,
        from: u64,
        to: u64,
        reason: &'static str,
        count: u64,
    ) -> EncodedBatch {
        // Every part is a number, an RFC 3339 time or one of the fixed
        // reasons: nothing to escape.
        let text = format!(
            r#"{{"device":"{GAPS_DEVICE}","ts":"{}","gap":{{"from":{from},"to":{to},"reason":"{reason}","count":{count}}}}}"#,
            crate::batch::rfc3339(ts)
        );
        let body = Bytes::from(text.into_bytes()).slice(1..);
        EncodedBatch {
            seq: 0,
            device: Arc::from(GAPS_DEVICE),
            ts_micros: ts.timestamp_micros(),
            body,
        }
    }

    /// A write audit record (docs/reference.md §3): one write request, or
    /// one tag of it, done or refused. It travels like a gap event, as a
    /// batch of the service's own device [`WRITES_DEVICE`], published on
    /// `<prefix>.<service.id>._writes`; its payload is
    /// `{"seq":S,"device":"_writes","ts":"…","write":{…}}`.
    pub fn write_event(ts: DateTime<Utc>, write: &serde_json::Value) -> EncodedBatch {
        // By hand, so that "device" comes first (the body always starts
        // with it: `from_parts`).
        let mut json = format!(
            r#"{{"device":"{WRITES_DEVICE}","ts":"{}","write":"#,
            crate::batch::rfc3339(ts)
        )
        .into_bytes();
        let _ = serde_json::to_writer(&mut json, write);
        json.push(b'}');
        let body = Bytes::from(json).slice(1..);
        EncodedBatch {
            seq: 0,
            device: Arc::from(WRITES_DEVICE),
            ts_micros: ts.timestamp_micros(),
            body,
        }
    }

    /// Whether this is one of the service's own messages (a gap event, a
    /// write record), not a device's batch.
    pub fn is_service_event(&self) -> bool {
        self.device.starts_with('_')
    }

    /// Puts stored parts back together (the spool's record formats 2 and 3).
    pub fn from_parts(
        seq: u64,
        device: Arc<str>,
        ts_micros: i64,
        body: Bytes,
    ) -> Result<EncodedBatch, BodyError> {
        if !body.starts_with(b"\"device\":") {
            return Err(BodyError("does not start with the device"));
        }
        if !body.ends_with(b"}") {
            return Err(BodyError("does not end with a brace"));
        }
        Ok(EncodedBatch {
            seq,
            device,
            ts_micros,
            body,
        })
    }

    /// The `[[devices]].id` that produced it.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The device id, shared.
    pub fn device_arc(&self) -> &Arc<str> {
        &self.device
    }

    /// When the poll started: microseconds since the Unix epoch, UTC.
    pub fn ts_micros(&self) -> i64 {
        self.ts_micros
    }

    /// The poll start as a UTC time.
    pub fn ts(&self) -> DateTime<Utc> {
        crate::batch::utc(self.ts_micros)
    }

    /// `ts` as RFC 3339 with microseconds, as published.
    pub fn ts_rfc3339(&self) -> String {
        crate::batch::rfc3339(self.ts())
    }

    /// The payload without its opening `{"seq":N,`.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The NATS payload of docs/reference.md §3, with this batch's seq.
    pub fn payload(&self) -> Bytes {
        let mut digits = itoa::Buffer::new();
        let seq = digits.format(self.seq).as_bytes();
        let mut out = BytesMut::with_capacity(SEQ_OPEN.len() + seq.len() + 1 + self.body.len());
        out.extend_from_slice(SEQ_OPEN);
        out.extend_from_slice(seq);
        out.extend_from_slice(b",");
        out.extend_from_slice(&self.body);
        out.freeze()
    }

    /// The `Nats-Msg-Id` header value: `<service.id>-<seq>`.
    pub fn msg_id(&self, service_id: &str) -> String {
        crate::batch::msg_id(service_id, self.seq)
    }

    /// Reads the payload back into a `Batch` (for tools and tests; the
    /// pipeline never does). JSON does not keep the variant of a number:
    /// one with a fraction or exponent reads as `Float`, a negative whole
    /// number as `Int`, any other whole number as `UInt`.
    pub fn decode(&self) -> Result<Batch, serde_json::Error> {
        use serde::de::Error as _;
        let json: Payload = serde_json::from_slice(&self.payload())?;
        let mut values = Vec::new();
        for (name, v) in json.values.0 {
            let value = match v {
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::String(s) => Value::Str(s),
                serde_json::Value::Number(n) if n.is_f64() => {
                    Value::Float(n.as_f64().unwrap_or_default())
                }
                serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => Value::UInt(u),
                    (None, Some(i)) => Value::Int(i),
                    _ => return Err(serde_json::Error::custom("number out of range")),
                },
                other => return Err(serde_json::Error::custom(format!("value {other}"))),
            };
            values.push((name, value));
        }
        let errors = json
            .errors
            .0
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        Ok(Batch {
            seq: self.seq,
            device: self.device.to_string(),
            ts_micros: self.ts_micros,
            values,
            errors,
        })
    }
}

/// The maps of a payload, in the order they were written (tag order).
#[derive(serde::Deserialize)]
struct Payload {
    #[serde(default)]
    values: Pairs,
    #[serde(default)]
    errors: Pairs,
}

#[derive(Default)]
struct Pairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of tag names")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl From<&Batch> for EncodedBatch {
    fn from(batch: &Batch) -> EncodedBatch {
        EncodedBatch::encode(batch)
    }
}

impl From<Batch> for EncodedBatch {
    fn from(batch: Batch) -> EncodedBatch {
        EncodedBatch::encode(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        let ts = DateTime::parse_from_rfc3339("2026-11-27T10:20:29.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut b = Batch::new("press-01", ts);
        b.seq = 1042;
        b.values.push(("oil_temp".into(), Value::Float(71.0)));
        b.values.push(("count".into(), Value::UInt(u64::MAX)));
        b.values.push(("delta".into(), Value::Int(-7)));
        b.values.push(("running".into(), Value::Bool(true)));
        b.values
            .push(("recipe".into(), Value::Str("PX-\"200\"".into())));
        b.errors.push(("pressure".into(), "timeout".into()));
        b
    }

    #[test]
    fn payload_is_byte_for_byte_the_batch_json_for_any_seq() {
        let mut b = sample();
        let mut e = EncodedBatch::encode(&b);
        assert_eq!(&e.payload()[..], &b.to_json()[..]);
        for seq in [0, 1, 9, 10, 99_999, u64::MAX] {
            b.seq = seq;
            e.seq = seq;
            assert_eq!(&e.payload()[..], &b.to_json()[..], "seq {seq}");
            assert_eq!(e.msg_id("ipc"), b.msg_id("ipc"));
        }
        assert_eq!(e.device(), "press-01");
        assert_eq!(e.ts(), b.ts());
    }

    #[test]
    fn decode_gives_the_batch_back_up_to_json_number_kinds() {
        let b = sample();
        assert_eq!(EncodedBatch::encode(&b).decode().unwrap(), b);
    }

    #[test]
    fn from_parts_refuses_bytes_that_are_not_a_body() {
        let e = EncodedBatch::encode(&sample());
        let back = EncodedBatch::from_parts(
            e.seq,
            e.device_arc().clone(),
            e.ts_micros(),
            e.body().clone(),
        );
        assert_eq!(back, Ok(e.clone()));
        let bad = EncodedBatch::from_parts(1, "d".into(), 0, Bytes::from_static(b"{\"x\":1}"));
        assert!(bad.is_err());
        let cut = e.body().slice(..20);
        assert!(EncodedBatch::from_parts(1, "d".into(), 0, cut).is_err());
    }

    #[test]
    fn a_write_record_is_a_service_event_that_survives_the_spool() {
        let ts = crate::batch::utc(1_764_000_000_123_456);
        let write = serde_json::json!({"device": "press-01", "tag": "sp", "requested": 7, "value": 7, "result": "ok", "reply_to": null});
        let mut e = EncodedBatch::write_event(ts, &write);
        e.seq = 42;
        assert!(e.is_service_event());
        assert_eq!(e.device(), WRITES_DEVICE);
        let payload: serde_json::Value = serde_json::from_slice(&e.payload()).expect("JSON");
        assert_eq!(payload["seq"], 42);
        assert_eq!(payload["device"], "_writes");
        assert_eq!(payload["ts"], "2025-11-24T16:00:00.123456Z");
        assert_eq!(payload["write"], write);
        let back =
            EncodedBatch::from_parts(42, e.device_arc().clone(), e.ts_micros(), e.body().clone());
        assert_eq!(back, Ok(e));
    }
}

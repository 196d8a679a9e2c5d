//! `Batch`: the readings of one device poll, the unit that flows from a
//! DevicePoller through the buffer to NATS (docs/reference.md §3).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// One decoded tag value, after `scale` and `offset`.
///
/// Persisted in spool records: do not reorder or remove variants, only append.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Value {
    /// `bool` tags (coils, discrete inputs, or one bit of a register).
    Bool(bool),
    /// Signed integers, unscaled.
    Int(i64),
    /// Unsigned integers, unscaled.
    UInt(u64),
    /// Floats, and every integer with a `scale` or `offset`.
    Float(f64),
    /// `string` tags, trailing NULs and spaces removed.
    Str(String),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(t) => s.serialize_str(t),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(t) => write!(f, "{t:?}"),
        }
    }
}

/// The readings of one device poll.
///
/// Persisted in spool records: do not reorder or remove fields (see
/// `buffer::record` for the versioned envelope).
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Batch {
    /// Per installation, from 1, assigned by the buffer on acceptance, never reused.
    /// Zero until the buffer accepts the batch.
    pub seq: u64,
    /// The `[[devices]].id` that produced it.
    pub device: String,
    /// When the poll started: microseconds since the Unix epoch, UTC.
    pub ts_micros: i64,
    /// Tag name -> value, in the tag order of the config.
    pub values: Vec<(String, Value)>,
    /// Tag name -> reason, for the tags that failed this poll.
    pub errors: Vec<(String, String)>,
}

impl Batch {
    /// A batch not yet accepted by the buffer (`seq` = 0).
    pub fn new(device: impl Into<String>, ts: DateTime<Utc>) -> Self {
        Batch {
            seq: 0,
            device: device.into(),
            ts_micros: ts.timestamp_micros(),
            values: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The poll start as a UTC time.
    pub fn ts(&self) -> DateTime<Utc> {
        utc(self.ts_micros)
    }

    /// `ts` as RFC 3339 with microseconds, as published.
    pub fn ts_rfc3339(&self) -> String {
        rfc3339(self.ts())
    }

    /// The NATS payload of docs/reference.md §3: UTF-8 JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and maps into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `Nats-Msg-Id` header value: `<service.id>-<seq>`.
    pub fn msg_id(&self, service_id: &str) -> String {
        msg_id(service_id, self.seq)
    }
}

/// The `Nats-Msg-Id` of batch `seq` from `service_id`: `<service.id>-<seq>`
/// (what the publisher sends and what it recognises when reading back).
pub fn msg_id(service_id: &str, seq: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let seq = digits.format(seq);
    let mut id = String::with_capacity(service_id.len() + 1 + seq.len());
    id.push_str(service_id);
    id.push('-');
    id.push_str(seq);
    id
}

/// A poll time from microseconds since the Unix epoch.
pub(crate) fn utc(ts_micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ts_micros).unwrap_or_default()
}

/// A poll time as published: RFC 3339, microseconds, `Z`.
pub(crate) fn rfc3339(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

struct PairsAsMap<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for PairsAsMap<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `device`, `ts`, `values` and `errors`: every payload field after `seq`.
fn serialize_fields<M: SerializeMap>(b: &Batch, map: &mut M) -> Result<(), M::Error> {
    map.serialize_entry("device", &b.device)?;
    map.serialize_entry("ts", &b.ts_rfc3339())?;
    // Non-finite floats never reach a batch (the decoder reports them as
    // tag errors); serde_json would write them as null.
    map.serialize_entry("values", &PairsAsMap(&b.values))?;
    if !b.errors.is_empty() {
        map.serialize_entry("errors", &PairsAsMap(&b.errors))?;
    }
    Ok(())
}

fn field_count(b: &Batch) -> usize {
    if b.errors.is_empty() {
        3
    } else {
        4
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1 + field_count(self)))?;
        map.serialize_entry("seq", &self.seq)?;
        serialize_fields(self, &mut map)?;
        map.end()
    }
}

/// A batch's payload without `seq` (see `EncodedBatch`).
pub(crate) struct BatchBody<'a>(pub(crate) &'a Batch);

impl Serialize for BatchBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(field_count(self.0)))?;
        serialize_fields(self.0, &mut map)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_matches_contract_shape() {
        let ts = DateTime::parse_from_rfc3339("2026-11-27T10:20:29.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut b = Batch::new("press-01", ts);
        b.seq = 1042;
        b.values.push(("oil_temp".into(), Value::Float(71.3)));
        b.values.push(("running".into(), Value::Bool(true)));
        b.values
            .push(("recipe".into(), Value::Str("PX-200".into())));
        b.errors.push((
            "pressure".into(),
            "exception 0x02 illegal data address".into(),
        ));
        let json = String::from_utf8(b.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"seq":1042,"device":"press-01","ts":"2026-11-27T10:20:29.123456Z","values":{"oil_temp":71.3,"running":true,"recipe":"PX-200"},"errors":{"pressure":"exception 0x02 illegal data address"}}"#
        );
        assert_eq!(b.msg_id("line1-ipc"), "line1-ipc-1042");
    }

    #[test]
    fn errors_key_absent_when_all_tags_read() {
        let mut b = Batch::new("m", Utc::now());
        b.values.push(("n".into(), Value::UInt(u64::MAX)));
        let v: serde_json::Value = serde_json::from_slice(&b.to_json()).unwrap();
        assert!(v.get("errors").is_none());
        assert_eq!(v["values"]["n"].as_u64(), Some(u64::MAX));
    }
}

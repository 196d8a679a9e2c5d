//! What a write request is answered with, and what it leaves in the
//! stream (docs/reference.md §3).
//!
//! Reply, to the requester: `{"ok":true,"tag":"…","value":<read back>,"ts":"…"}`
//! (`{"ok":true,"values":{"tag":<read back>,…},"ts":"…"}` for the
//! `values` form), or `{"ok":false,"code":"…","error":"…","tag":"…"}`
//! (`tag` when the refusal is about one; `value` with what the device
//! holds after a `mismatch`; `written` with the tags done before a
//! failure in the `values` form).
//!
//! Audit, through the buffer: one record per tag of the request, in the
//! order given (one with `"tag":null` when the request named none):
//! `{"seq":S,"device":"_writes","ts":"…","write":{"device":"…","tag":"…",
//! "requested":<as asked>,"value":<read back or null>,"result":"ok"|<code>,
//! "error":"…" (refusals only),"reply_to":"…"|null}}`.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value as Json};

use super::{CheckedWrite, Refusal};
use crate::{EncodedBatch, Value};

pub use crate::encoded::WRITES_DEVICE;

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Refused before anything was written (form, checks, rate).
    Refused(Refusal),
    /// Written, in order: one result per tag.
    Done(Vec<(CheckedWrite, Result<Value, Refusal>)>),
}

impl Outcome {
    /// The first refusal, if any.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Outcome::Refused(r) => Some(r),
            Outcome::Done(results) => results.iter().find_map(|(_, r)| r.as_ref().err()),
        }
    }

    /// `ok`, or the code of the first refusal: the `result` of
    /// `ingestor_writes_total`.
    pub fn result(&self) -> &'static str {
        self.refusal().map_or("ok", |r| r.code.as_str())
    }
}

fn refusal_json(r: &Refusal) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("ok".into(), Json::Bool(false));
    m.insert("code".into(), r.code.as_str().into());
    m.insert("error".into(), r.error.clone().into());
    if let Some(tag) = &r.tag {
        m.insert("tag".into(), tag.clone().into());
    }
    if let Some(v) = &r.value {
        m.insert("value".into(), json!(v));
    }
    m
}

/// The reply to the requester; `single` for the `{"tag","value"}` form.
pub fn reply_json(outcome: &Outcome, single: bool, ts: DateTime<Utc>) -> Vec<u8> {
    let ts = crate::batch::rfc3339(ts);
    let reply = match outcome {
        Outcome::Refused(r) => Json::Object(refusal_json(r)),
        Outcome::Done(results) => match outcome.refusal() {
            Some(r) => {
                let mut m = refusal_json(r);
                let written: Map<String, Json> = results
                    .iter()
                    .filter_map(|(w, r)| Some((w.tag.name.clone(), json!(r.as_ref().ok()?))))
                    .collect();
                if !single && !written.is_empty() {
                    m.insert("written".into(), Json::Object(written));
                }
                Json::Object(m)
            }
            None if single => {
                let (w, v) = &results[0];
                json!({"ok": true, "tag": w.tag.name, "value": v.as_ref().ok(), "ts": ts})
            }
            None => {
                let values: Map<String, Json> = results
                    .iter()
                    .map(|(w, v)| (w.tag.name.clone(), json!(v.as_ref().ok())))
                    .collect();
                json!({"ok": true, "values": values, "ts": ts})
            }
        },
    };
    serde_json::to_vec(&reply).unwrap_or_default()
}

/// The audit records of one request on `device`: `pairs` as asked.
pub fn audit_event(
    device: &str,
    reply_to: Option<&str>,
    pairs: &[(String, Json)],
    outcome: &Outcome,
    ts: DateTime<Utc>,
) -> Vec<EncodedBatch> {
    let record = |tag: Option<&str>, requested: Option<&Json>, result: Result<&Value, &Refusal>| {
        let mut m = Map::new();
        m.insert("device".into(), device.into());
        m.insert("tag".into(), tag.map_or(Json::Null, Json::from));
        m.insert("requested".into(), requested.cloned().unwrap_or(Json::Null));
        let (value, code, error) = match result {
            Ok(v) => (json!(v), "ok", None),
            Err(r) => (
                r.value.as_ref().map_or(Json::Null, |v| json!(v)),
                r.code.as_str(),
                Some(&r.error),
            ),
        };
        m.insert("value".into(), value);
        m.insert("result".into(), code.into());
        if let Some(e) = error {
            m.insert("error".into(), e.clone().into());
        }
        m.insert("reply_to".into(), reply_to.map_or(Json::Null, Json::from));
        EncodedBatch::write_event(ts, &Json::Object(m))
    };
    match outcome {
        Outcome::Refused(r) if pairs.is_empty() => vec![record(None, None, Err(r))],
        Outcome::Refused(r) => pairs
            .iter()
            .map(|(tag, requested)| {
                // The tag refused keeps its reason; the others were not written because of it.
                let own = r.tag.as_deref() == Some(tag.as_str()) || r.tag.is_none();
                let mut why = r.clone();
                if !own {
                    why.error = format!(
                        "not written: {} was refused",
                        r.tag.as_deref().unwrap_or("the request")
                    );
                    why.value = None;
                }
                record(Some(tag), Some(requested), Err(&why))
            })
            .collect(),
        Outcome::Done(results) => results
            .iter()
            .map(|(w, r)| record(Some(&w.tag.name), Some(&w.requested), r.as_ref()))
            .collect(),
    }
}

//! A write request checked against the config, before anything is sent
//! (the order of the checks is in the module doc of [`setpoint`](super)).

use std::collections::HashMap;
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::{Refusal, WriteCode};
use crate::poller::encode::{encode_setpoint, EngineeringValue, SetpointError};
use crate::settings::{DeviceSettings, RegisterKind, TagSettings, TagType, WriteSettings};

/// What goes on the wire for one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// A coil: on or off (function 5).
    Coil(bool),
    /// One bit of a holding register (function 22).
    Bit {
        /// 0..=15.
        bit: u8,
        /// Set or clear.
        on: bool,
    },
    /// Holding registers from the tag's address (function 6 or 16).
    Words(Vec<u16>),
}

/// One tag's write, checked: the tag, what was asked, what to send.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedWrite {
    /// The tag as configured.
    pub tag: TagSettings,
    /// The value as the request gave it (for the reply and the audit).
    pub requested: Json,
    /// What goes on the wire.
    pub wire: Wire,
}

/// A request body as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    /// Tag and value, in the order given.
    pub pairs: Vec<(String, Json)>,
    /// The `{"tag","value"}` form (else `{"values":{…}}`).
    pub single: bool,
}

/// The tags and values of a request body, in the order given:
/// `{"tag":"…","value":…}` or `{"values":{"tag":value,…}}`.
pub fn parse_request(payload: &[u8]) -> Result<Asked, Refusal> {
    const FORMS: &str =
        r#"expected {"tag":"<name>","value":<value>} or {"values":{"<name>":<value>,…}}"#;
    let bad = |why: String| Refusal::new(WriteCode::BadRequest, None, format!("{why}; {FORMS}"));
    let body: Body = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let (pairs, single) = match body {
        Body {
            tag: Some(tag),
            value: Some(value),
            values: None,
        } => (vec![(tag, value)], true),
        Body {
            tag: None,
            value: None,
            values: Some(Ordered(pairs)),
        } if !pairs.is_empty() => (pairs, false),
        _ => return Err(bad("neither form".into())),
    };
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(bad(format!("{name:?} twice")));
        }
    }
    Ok(Asked { pairs, single })
}

/// A request body of either form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    tag: Option<String>,
    value: Option<Json>,
    values: Option<Ordered>,
}

/// A JSON object's entries in the order written (serde_json's own map
/// sorts them).
struct Ordered(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of tag names and values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Json>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Checks every `(tag, value)` of a request on `device` (not the rate:
/// [`RateLimit`]); the first refusal refuses the whole request.
pub fn check_request(
    device: &DeviceSettings,
    writes: &WriteSettings,
    pairs: &[(String, Json)],
) -> Result<Vec<CheckedWrite>, Refusal> {
    if !writes.enabled {
        return Err(Refusal::new(
            WriteCode::Disabled,
            pairs.first().map(|(name, _)| name.as_str()),
            "writes are turned off: set `[writes] enabled = true` in the config",
        ));
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let Some(tag) = device.tags.iter().find(|t| &t.name == name) else {
            return Err(Refusal::new(
                WriteCode::NotWritable,
                Some(name),
                format!("device {:?} has no tag {name:?}", device.id),
            ));
        };
        out.push(CheckedWrite {
            wire: wire_of(tag, value)?,
            tag: tag.clone(),
            requested: value.clone(),
        });
    }
    Ok(out)
}

/// Whether the tag may be written at all, then the JSON type
/// (`bad_request`), then its range: what goes on the wire.
pub fn wire_of(tag: &TagSettings, value: &Json) -> Result<Wire, Refusal> {
    let name = tag.name.as_str();
    let refuse = |code, why: String| Refusal::new(code, Some(name), why);
    if !tag.writable || !matches!(tag.register, RegisterKind::Holding | RegisterKind::Coil) {
        return Err(refuse(
            WriteCode::NotWritable,
            format!("{name} is not writable (it needs `writable = true` in the config)"),
        ));
    }
    let engineering = match (tag.kind, value) {
        (TagType::Bool, Json::Bool(b)) => EngineeringValue::Bool(*b),
        (TagType::String, Json::String(s)) => EngineeringValue::Text(s.clone()),
        (kind, Json::Number(n)) if kind.is_numeric() => {
            EngineeringValue::Number(n.as_f64().unwrap_or(f64::NAN))
        }
        (kind, _) => {
            let wanted = match kind {
                TagType::Bool => "true or false",
                TagType::String => "a JSON string",
                _ => "a JSON number",
            };
            return Err(refuse(
                WriteCode::BadRequest,
                format!("{name} takes {wanted}, not {value}"),
            ));
        }
    };
    if let EngineeringValue::Number(x) = engineering {
        let (min, max) = (tag.min.unwrap_or(f64::NAN), tag.max.unwrap_or(f64::NAN));
        // NaN bounds (a config without them cannot pass `check`) refuse all.
        if !(x >= min && x <= max) {
            return Err(refuse(
                WriteCode::OutOfRange,
                format!("{x} is outside {name}'s {min}..={max}"),
            ));
        }
    }
    match (tag.register, &engineering) {
        (RegisterKind::Coil, EngineeringValue::Bool(on)) => Ok(Wire::Coil(*on)),
        (_, EngineeringValue::Bool(on)) => Ok(Wire::Bit {
            bit: tag.bit.unwrap_or(0),
            on: *on,
        }),
        _ => encode_setpoint(tag, &engineering)
            .map(Wire::Words)
            .map_err(|e| match e {
                SetpointError::WrongType(why) => refuse(WriteCode::BadRequest, why),
                SetpointError::NotRepresentable(why) => refuse(WriteCode::OutOfRange, why),
            }),
    }
}

/// At most one write per tag per `rate_per_tag` (one limiter per device).
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: HashMap<String, Instant>,
}

impl RateLimit {
    /// One write per tag per `every`.
    pub fn new(every: Duration) -> Self {
        RateLimit {
            every,
            last: HashMap::new(),
        }
    }

    /// `rate` for the first tag written too recently; otherwise every tag
    /// is marked as written now.
    pub fn admit(&mut self, writes: &[CheckedWrite], now: Instant) -> Result<(), Refusal> {
        for w in writes {
            if let Some(last) = self.last.get(&w.tag.name) {
                let since = now.saturating_duration_since(*last);
                if since < self.every {
                    return Err(Refusal::new(
                        WriteCode::Rate,
                        Some(&w.tag.name),
                        format!(
                            "{} was written {} ms ago; at most one write per {} ms (`rate_per_tag`)",
                            w.tag.name,
                            since.as_millis(),
                            self.every.as_millis()
                        ),
                    ));
                }
            }
        }
        for w in writes {
            self.last.insert(w.tag.name.clone(), now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(payload: &str) -> Option<WriteCode> {
        parse_request(payload.as_bytes()).err().map(|r| r.code)
    }

    #[test]
    fn both_forms_parse_in_the_order_written() {
        let one = parse_request(br#"{"tag":"sp","value":21.5}"#).expect("single");
        assert!(one.single);
        assert_eq!(one.pairs, vec![("sp".to_owned(), serde_json::json!(21.5))]);
        let many = parse_request(br#"{"values":{"z":1,"a":true,"m":"x"}}"#).expect("values");
        assert!(!many.single);
        let names: Vec<&str> = many.pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["z", "a", "m"]);
    }

    #[test]
    fn anything_else_is_a_bad_request() {
        for payload in [
            "",
            "not json",
            "[1,2]",
            r#"{"tag":"sp"}"#,
            r#"{"value":1}"#,
            r#"{"tag":1,"value":1}"#,
            r#"{"tag":"sp","value":1,"values":{"a":1}}"#,
            r#"{"values":{}}"#,
            r#"{"values":[1]}"#,
            r#"{"values":{"a":1,"a":2}}"#,
            r#"{"tag":"sp","value":1,"force":true}"#,
        ] {
            assert_eq!(code(payload), Some(WriteCode::BadRequest), "{payload}");
        }
    }

    #[test]
    fn a_rate_refusal_marks_nothing_and_the_limit_is_per_tag() {
        let tag = |name: &str| CheckedWrite {
            tag: TagSettings {
                name: name.into(),
                ..TagSettings::bare(RegisterKind::Holding, 0, TagType::U16, Default::default())
            },
            requested: serde_json::json!(1),
            wire: Wire::Words(vec![1]),
        };
        let mut limit = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(limit.admit(&[tag("a")], t0).is_ok());
        let refused = limit.admit(&[tag("b"), tag("a")], t0 + Duration::from_millis(500));
        assert_eq!(
            refused.map_err(|r| (r.code, r.tag)),
            Err((WriteCode::Rate, Some("a".into())))
        );
        // b was not marked by the refused request; a is free again after 1 s.
        assert!(limit
            .admit(&[tag("b")], t0 + Duration::from_millis(600))
            .is_ok());
        assert!(limit
            .admit(&[tag("a")], t0 + Duration::from_secs(1))
            .is_ok());
    }
}

//! Report by exception: `deadband` and `max_silence` decide which of a
//! poll's values go into its batch.
//!
//! A tag with neither key is sent every poll. A tag with either one is
//! sent when:
//! - nothing was sent for it since the poller started or was told of a
//!   config reload ([`SendFilter::reset`]): the first poll sends everything;
//! - it changed type or error state (value ↔ error, or another kind of
//!   value);
//! - numeric with `deadband`: it moved at least `deadband` (scaled units)
//!   from the last value *sent* (not the last one read, so a slow drift is
//!   sent once it adds up); `deadband = 0` sends every change;
//! - otherwise (non-numeric, or no `deadband`): it differs from the last
//!   value sent;
//! - `max_silence` has passed since it was last sent (the heartbeat).
//!
//! Errors are always sent: a tag's trouble is never held back.
//!
//! Time is the poll's *slot* time (when it was due, not when it started),
//! so a heartbeat of `max_silence = 10 × poll_interval` comes every tenth
//! poll, not every eleventh when a poll starts a millisecond late.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::settings::TagSettings;
use crate::Value;

#[derive(Debug, Clone, Copy)]
struct Rule {
    deadband: Option<f64>,
    max_silence: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Last {
    Value(Value),
    Error,
}

#[derive(Debug, Clone)]
struct Sent {
    last: Last,
    at: Instant,
}

/// Which values of a poll are due, per tag, remembering what was sent.
#[derive(Debug, Default)]
pub struct SendFilter {
    rules: HashMap<String, Rule>,
    sent: HashMap<String, Sent>,
}

/// What a poll sends after the filter, and how many values it held back.
#[derive(Debug, Default, PartialEq)]
pub struct Due {
    /// Tag name → value, in the poll's order.
    pub values: Vec<(String, Value)>,
    /// Tag name → reason (all of them).
    pub errors: Vec<(String, String)>,
    /// Values held back by `deadband`/`max_silence`.
    pub suppressed: u64,
}

impl SendFilter {
    /// A filter for `tags`; only tags with `deadband` or `max_silence` are
    /// ever held back.
    pub fn new(tags: &[TagSettings]) -> Self {
        let rules = tags
            .iter()
            .filter(|t| t.deadband.is_some() || t.max_silence.is_some())
            .map(|t| {
                let rule = Rule {
                    deadband: t.deadband.filter(|_| t.kind.is_numeric()),
                    max_silence: t.max_silence,
                };
                (t.name.clone(), rule)
            })
            .collect();
        SendFilter {
            rules,
            sent: HashMap::new(),
        }
    }

    /// Forgets what was sent: the next poll sends every value (after a
    /// start or a config reload).
    pub fn reset(&mut self) {
        self.sent.clear();
    }

    /// The values and errors of the poll due at `at` that go into its batch.
    pub fn apply(
        &mut self,
        at: Instant,
        values: Vec<(String, Value)>,
        errors: Vec<(String, String)>,
    ) -> Due {
        let mut due = Due {
            values: Vec::with_capacity(values.len()),
            errors,
            suppressed: 0,
        };
        for (name, _) in &due.errors {
            if self.rules.contains_key(name) {
                self.sent.insert(
                    name.clone(),
                    Sent {
                        last: Last::Error,
                        at,
                    },
                );
            }
        }
        for (name, value) in values {
            let Some(rule) = self.rules.get(&name) else {
                due.values.push((name, value));
                continue;
            };
            let send = match self.sent.get(&name) {
                None => true,
                Some(sent) => rule.is_due(sent, &value, at),
            };
            if send {
                let last = Last::Value(value.clone());
                self.sent.insert(name.clone(), Sent { last, at });
                due.values.push((name, value));
            } else {
                due.suppressed += 1;
            }
        }
        due
    }
}

impl Rule {
    fn is_due(&self, sent: &Sent, value: &Value, at: Instant) -> bool {
        if self
            .max_silence
            .is_some_and(|s| at.saturating_duration_since(sent.at) >= s)
        {
            return true;
        }
        let Last::Value(last) = &sent.last else {
            return true; // error → value
        };
        if std::mem::discriminant(last) != std::mem::discriminant(value) {
            return true;
        }
        match (self.deadband, number(last), number(value)) {
            (Some(band), Some(a), Some(b)) => a != b && (b - a).abs() >= band,
            _ => last != value,
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match *v {
        Value::Int(i) => Some(i as f64),
        Value::UInt(u) => Some(u as f64),
        Value::Float(f) => Some(f),
        Value::Bool(_) | Value::Str(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, kind: &str, extra: &str) -> TagSettings {
        let text = format!(
            "name = \"{name}\"\nregister = \"holding\"\naddress = 0\ntype = \"{kind}\"\n{extra}"
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sent_floats(f: &mut SendFilter, t0: Instant, steps: &[(u64, f64)]) -> Vec<f64> {
        let mut out = Vec::new();
        for &(at, x) in steps {
            let due = f.apply(t0 + ms(at), vec![("p".into(), Value::Float(x))], vec![]);
            for (_, v) in due.values {
                if let Value::Float(x) = v {
                    out.push(x);
                }
            }
        }
        out
    }

    #[test]
    fn deadband_measures_from_the_last_value_sent_not_the_last_read() {
        let mut f = SendFilter::new(&[tag("p", "f32", "deadband = 1.0")]);
        let t0 = Instant::now();
        // A slow drift of 0.4 per poll: sent when it adds up to 1.0.
        let steps: Vec<(u64, f64)> = (0..8).map(|i| (i * 100, 10.0 + 0.4 * i as f64)).collect();
        let got = sent_floats(&mut f, t0, &steps);
        let want = [10.0, 10.0 + 0.4 * 3.0, 10.0 + 0.4 * 6.0];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?}");
        }
    }

    #[test]
    fn heartbeat_sends_an_unchanged_value_at_max_silence() {
        let mut f = SendFilter::new(&[tag("p", "f32", "deadband = 5.0\nmax_silence = \"1s\"")]);
        let t0 = Instant::now();
        let steps: Vec<(u64, f64)> = (0..=25).map(|i| (i * 100, 1.0)).collect();
        let mut sent_at = Vec::new();
        for (at, x) in steps {
            let due = f.apply(t0 + ms(at), vec![("p".into(), Value::Float(x))], vec![]);
            if !due.values.is_empty() {
                sent_at.push(at);
            }
        }
        assert_eq!(sent_at, vec![0, 1_000, 2_000]);
    }

    #[test]
    fn error_state_and_type_changes_are_sent_and_errors_always() {
        let mut f = SendFilter::new(&[tag("p", "u16", "deadband = 100.0")]);
        let t0 = Instant::now();
        let v = |x| vec![("p".to_string(), Value::UInt(x))];
        let e = vec![("p".to_string(), "timeout".to_string())];
        assert_eq!(f.apply(t0, v(1), vec![]).values.len(), 1);
        assert_eq!(f.apply(t0, v(2), vec![]).suppressed, 1);
        assert_eq!(f.apply(t0, vec![], e.clone()).errors, e);
        assert_eq!(f.apply(t0, vec![], e.clone()).errors, e);
        assert_eq!(f.apply(t0, v(2), vec![]).values, v(2), "error → value");
        let float = vec![("p".to_string(), Value::Float(2.0))];
        assert_eq!(f.apply(t0, float.clone(), vec![]).values, float);
    }

    #[test]
    fn non_numeric_with_max_silence_is_sent_on_change_and_heartbeat() {
        let mut f = SendFilter::new(&[tag("b", "bool", "bit = 0\nmax_silence = \"1s\"")]);
        let t0 = Instant::now();
        let b = |x| vec![("b".to_string(), Value::Bool(x))];
        let mut sent = Vec::new();
        for (at, x) in [
            (0, true),
            (100, true),
            (200, false),
            (300, false),
            (1_200, false),
        ] {
            if !f.apply(t0 + ms(at), b(x), vec![]).values.is_empty() {
                sent.push(at);
            }
        }
        assert_eq!(sent, vec![0, 200, 1_200]);
    }

    #[test]
    fn reset_sends_everything_again_and_plain_tags_are_never_held() {
        let mut f = SendFilter::new(&[tag("p", "f64", "deadband = 10.0"), tag("q", "f64", "")]);
        let t0 = Instant::now();
        let both = || {
            vec![
                ("p".to_string(), Value::Float(1.0)),
                ("q".to_string(), Value::Float(1.0)),
            ]
        };
        assert_eq!(f.apply(t0, both(), vec![]).values.len(), 2);
        let due = f.apply(t0 + ms(100), both(), vec![]);
        assert_eq!((due.values.len(), due.suppressed), (1, 1));
        f.reset();
        assert_eq!(f.apply(t0 + ms(200), both(), vec![]).values.len(), 2);
    }
}

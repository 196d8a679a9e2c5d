//! Rules for setpoints: `writable`, `min`, `max` of a tag, and `[writes]`.

use ingestor_actors::poller::encode::engineering_range;
use ingestor_actors::settings::{RegisterKind, TagSettings, WriteSettings};

use super::{positive, quoted};
use crate::config::error::{ConfigError, KeyPath, Problem};
use crate::config::parse::Parsed;

/// A tag's `writable`, `min` and `max`.
pub(super) fn tag(t: &TagSettings, path: &KeyPath, out: &mut Vec<Problem>) {
    if t.writable && !matches!(t.register, RegisterKind::Holding | RegisterKind::Coil) {
        let what = match t.register {
            RegisterKind::Input => "input registers",
            _ => "discrete inputs",
        };
        out.push(Problem::invalid(
            path.key("writable"),
            "true",
            format!(
                "{what} are read-only in Modbus: only holding registers and coils can be writable"
            ),
        ));
    }
    let bounds = [("min", t.min), ("max", t.max)];
    if !t.writable || !t.kind.is_numeric() {
        for (key, v) in bounds {
            let Some(v) = v else { continue };
            let allowed = if t.writable {
                "`min`/`max` only for numeric types (bool and string have no range)"
            } else {
                "`min`/`max` only with `writable = true` (they bound what a write may set)"
            };
            out.push(Problem::invalid(path.key(key), v, allowed));
        }
        return;
    }
    for (key, v) in bounds {
        match v {
            None => out.push(Problem::new(
                path.key(key),
                ConfigError::Missing(
                    "a writable numeric tag needs `min` and `max`: the range a write may set, in engineering units (after scale/offset)".into(),
                ),
            )),
            Some(v) if !v.is_finite() => out.push(Problem::invalid(path.key(key), v, "a finite number")),
            Some(v) => {
                if let Some((lo, hi)) = engineering_range(t) {
                    if v < lo || v > hi {
                        out.push(Problem::invalid(
                            path.key(key),
                            v,
                            format!("within what the tag's type can hold after scale/offset: {lo}..={hi}"),
                        ));
                    }
                }
            }
        }
    }
    if let (Some(min), Some(max)) = (t.min, t.max) {
        if min >= max {
            out.push(Problem::invalid(
                path.key("min"),
                min,
                format!("less than max ({max})"),
            ));
        }
    }
}

/// `[writes]`, and its subjects against the stream's.
pub(super) fn writes(parsed: &Parsed, out: &mut Vec<Problem>) {
    let Some(w) = &parsed.writes else { return };
    let path = KeyPath::root().key("writes");
    positive(w.rate_per_tag, path.key("rate_per_tag"), out);
    positive(w.timeout, path.key("timeout"), out);
    if !ingestor_actors::nats::is_subject(&w.subject_prefix) {
        out.push(Problem::invalid(
            path.key("subject_prefix"),
            quoted(&w.subject_prefix),
            "dot-separated NATS tokens without spaces, '*' or '>', like \"setpoint\"",
        ));
        return;
    }
    let (Some(nats), Some(service)) = (&parsed.nats, &parsed.service) else {
        return;
    };
    let devices = parsed
        .devices
        .iter()
        .filter_map(|d| d.device.as_ref())
        .map(|d| d.id.as_str());
    if let Some(device) = overlap(w, &service.id, &nats.subject_prefix, devices) {
        out.push(Problem::invalid(
            path.key("subject_prefix"),
            quoted(&w.subject_prefix),
            format!(
                "a prefix outside the stream's subjects \"{}.>\" (nats.subject_prefix): write requests on \"{}\" \
                 would be stored by JetStream and answered with its ack; the default \"setpoint\" is outside",
                nats.subject_prefix,
                w.subject(&service.id, device),
            ),
        ));
    }
}

/// The first device whose write subject the stream's `<prefix>.>` covers
/// (any device id when `devices` is empty: `"x"`).
fn overlap<'a>(
    w: &WriteSettings,
    service_id: &str,
    stream_prefix: &str,
    devices: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let stream: Vec<&str> = stream_prefix.split('.').collect();
    let covered = |device: &str| {
        let subject = w.subject(service_id, device);
        let tokens: Vec<&str> = subject.split('.').collect();
        tokens.len() > stream.len() && tokens[..stream.len()] == stream[..]
    };
    let mut devices = devices.peekable();
    if devices.peek().is_none() {
        return covered("x").then_some("x");
    }
    devices.find(|d| covered(d))
}

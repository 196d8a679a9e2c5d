//! Rules for `[[devices]]` and their `[[devices.tags]]`.

use std::collections::HashMap;
use std::time::Duration;

use ingestor_actors::settings::{has_port, DeviceSettings, Framing, TagSettings, TagType};

use super::tls::device_tls;
use super::{is_id, positive, quoted, shown, ID_CHARS};
use crate::config::error::{ConfigError, KeyPath, Problem};
use crate::config::parse::ParsedDevice;

/// Most registers one read may ask for (Modbus spec, functions 3 and 4).
const MAX_REGISTERS: u16 = 125;
/// Most bits one read may ask for (Modbus spec, functions 1 and 2).
const MAX_BITS: u16 = 2000;
/// Highest unit id a Modbus slave may have (248..=255 are reserved).
const MAX_UNIT: u8 = 247;
/// Serial settings; on a TCP device they are a mistake.
const SERIAL_KEYS: [&str; 4] = ["baud_rate", "parity", "data_bits", "stop_bits"];

/// Every device and tag rule, plus unique device ids.
pub(super) fn devices(devices: &[ParsedDevice], out: &mut Vec<Problem>) {
    let mut ids: HashMap<&str, KeyPath> = HashMap::new();
    for parsed in devices {
        let path = KeyPath::root().key("devices").index(parsed.index);
        if let Some(d) = &parsed.device {
            device(d, parsed, &path, out);
            if let Some(first) = ids.get(d.id.as_str()) {
                out.push(Problem::new(
                    path.key("id"),
                    ConfigError::Duplicate {
                        value: quoted(&d.id),
                        first: first.clone(),
                        what: "device ids",
                    },
                ));
            } else {
                ids.insert(&d.id, path.key("id"));
            }
        }
        tags(parsed, &path, out);
    }
}

fn device(d: &DeviceSettings, parsed: &ParsedDevice, path: &KeyPath, out: &mut Vec<Problem>) {
    if !is_id(&d.id) {
        out.push(Problem::invalid(path.key("id"), quoted(&d.id), ID_CHARS));
    } else if d.id.starts_with('_') {
        out.push(Problem::invalid(
            path.key("id"),
            quoted(&d.id),
            "an id not starting with '_': that prefix is reserved for the service's own subjects \
             (<prefix>.<service.id>._gaps, ._writes)",
        ));
    }
    match (&d.address, &d.serial) {
        (Some(_), Some(_)) => out.push(Problem::invalid(
            path.key("serial"),
            "`serial` together with `address`",
            "either `address` (Modbus TCP) or `serial` (RTU on a serial port), not both",
        )),
        (None, None) => out.push(Problem::new(
            path.key("address"),
            ConfigError::Missing(
                "a device needs `address = \"host:port\"` (Modbus TCP) or `serial = \"/dev/ttyUSB0\"` (RTU)".into(),
            ),
        )),
        (Some(address), None) => {
            if d.tls && !has_port(address) {
                if !is_host(address) {
                    let allowed = "host or host:port (port 802 when left out with tls = true), like \"plc.local\" or \"192.168.10.21:802\"";
                    out.push(Problem::invalid(path.key("address"), quoted(address), allowed));
                }
            } else if !is_host_port(address) {
                let allowed = "host:port, like \"192.168.10.21:502\" or \"[fd00::21]:502\"";
                out.push(Problem::invalid(path.key("address"), quoted(address), allowed));
            }
            for key in SERIAL_KEYS.iter().filter(|k| parsed.keys.iter().any(|p| p == *k)) {
                out.push(Problem::invalid(
                    path.key(key),
                    format!("`{key}` on a Modbus TCP device"),
                    "serial settings only with `serial = \"/dev/...\"`",
                ));
            }
        }
        (None, Some(serial)) => serial_settings(d, serial, parsed, path, out),
    }
    device_tls(d, path, out);
    if d.unit > MAX_UNIT {
        out.push(Problem::invalid(
            path.key("unit"),
            d.unit,
            "a Modbus unit id 0..=247",
        ));
    }
    positive(d.poll_interval, path.key("poll_interval"), out);
    positive(d.timeout, path.key("timeout"), out);
    let reads_registers = parsed.tags.iter().any(|(_, t)| !t.register.is_bits());
    let cap = if reads_registers {
        MAX_REGISTERS
    } else {
        MAX_BITS
    };
    if d.max_registers_per_request == 0 || d.max_registers_per_request > cap {
        let allowed = if reads_registers {
            "1..=125 (the Modbus limit for holding/input registers; 2000 only for coil/discrete-only devices)"
        } else {
            "1..=2000 bits for a device with only coil/discrete tags"
        };
        out.push(Problem::invalid(
            path.key("max_registers_per_request"),
            d.max_registers_per_request,
            allowed,
        ));
    }
    if parsed.tags_given == 0 {
        out.push(Problem::new(
            path.key("tags"),
            ConfigError::Missing("a device needs at least one [[devices.tags]]".into()),
        ));
    }
}

fn serial_settings(
    d: &DeviceSettings,
    serial: &str,
    parsed: &ParsedDevice,
    path: &KeyPath,
    out: &mut Vec<Problem>,
) {
    if serial.trim().is_empty() {
        out.push(Problem::invalid(
            path.key("serial"),
            quoted(serial),
            "a serial port path, like \"/dev/ttyUSB0\"",
        ));
    }
    if d.framing == Framing::Tcp && parsed.keys.iter().any(|k| k == "framing") {
        out.push(Problem::invalid(
            path.key("framing"),
            quoted("tcp"),
            "a serial device speaks RTU; `framing` is for TCP addresses (leave it out)",
        ));
    }
    if !(300..=4_000_000).contains(&d.baud_rate) {
        out.push(Problem::invalid(
            path.key("baud_rate"),
            d.baud_rate,
            "300..=4000000, like 9600 or 19200",
        ));
    }
    if !(5..=8).contains(&d.data_bits) {
        out.push(Problem::invalid(
            path.key("data_bits"),
            d.data_bits,
            "5, 6, 7 or 8",
        ));
    }
    if !(1..=2).contains(&d.stop_bits) {
        out.push(Problem::invalid(
            path.key("stop_bits"),
            d.stop_bits,
            "1 or 2",
        ));
    }
}

/// `host:port` with a non-empty host and a port 1..=65535 (no DNS lookup).
fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

/// A host without a port: a name, an IPv4 address or a bracketed IPv6
/// address (`[fd00::21]`), no whitespace.
fn is_host(s: &str) -> bool {
    let bracketed = s.len() > 2 && s.starts_with('[') && s.ends_with(']');
    !s.is_empty() && !s.contains(char::is_whitespace) && (bracketed || !s.contains(':'))
}

/// `[A-Za-z0-9_]+`: tag names (they become JSON keys and metric labels).
fn is_tag_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn tags(parsed: &ParsedDevice, path: &KeyPath, out: &mut Vec<Problem>) {
    let mut names: HashMap<&str, KeyPath> = HashMap::new();
    let per_request = parsed.device.as_ref().map(|d| d.max_registers_per_request);
    let device_interval = parsed.device.as_ref().map(|d| d.poll_interval);
    for (index, t) in &parsed.tags {
        let tag_path = path.key("tags").index(*index);
        tag(t, per_request, &tag_path, out);
        reporting(t, device_interval, &tag_path, out);
        super::writes::tag(t, &tag_path, out);
        if let Some(first) = names.get(t.name.as_str()) {
            out.push(Problem::new(
                tag_path.key("name"),
                ConfigError::Duplicate {
                    value: quoted(&t.name),
                    first: first.clone(),
                    what: "tag names within a device",
                },
            ));
        } else {
            names.insert(&t.name, tag_path.key("name"));
        }
    }
}

fn type_name(kind: TagType) -> String {
    format!("{kind:?}").to_lowercase()
}

fn tag(t: &TagSettings, per_request: Option<u16>, path: &KeyPath, out: &mut Vec<Problem>) {
    if !is_tag_name(&t.name) {
        out.push(Problem::invalid(
            path.key("name"),
            quoted(&t.name),
            "letters A-Z a-z, digits 0-9 and '_' only",
        ));
    }
    let kind = quoted(&type_name(t.kind));
    if t.register.is_bits() && t.kind != TagType::Bool {
        out.push(Problem::invalid(
            path.key("type"),
            &kind,
            "coils and discrete inputs are single bits: type = \"bool\"",
        ));
    }
    bit_and_length(t, &kind, path, out);
    if !t.register.is_bits() {
        register_range(t, per_request, path, out);
    }
    for (key, value) in [("scale", t.scale), ("offset", t.offset)] {
        let Some(v) = value else { continue };
        if matches!(t.kind, TagType::Bool | TagType::String) {
            out.push(Problem::invalid(
                path.key(key),
                v,
                format!("numeric types only, not type = {kind}"),
            ));
        } else if !v.is_finite() {
            out.push(Problem::invalid(path.key(key), v, "a finite number"));
        }
    }
}

fn bit_and_length(t: &TagSettings, kind: &str, path: &KeyPath, out: &mut Vec<Problem>) {
    match t.bit {
        Some(bit) if t.register.is_bits() => out.push(Problem::invalid(
            path.key("bit"),
            bit,
            "`bit` picks a bit of a holding/input register; a coil/discrete input is one bit already",
        )),
        Some(bit) if t.kind != TagType::Bool => {
            out.push(Problem::invalid(path.key("bit"), bit, format!("`bit` only with type = \"bool\", not {kind}")))
        }
        Some(bit) if bit > 15 => out.push(Problem::invalid(path.key("bit"), bit, "0..=15 (bit 0 is the least significant)")),
        None if t.kind == TagType::Bool && !t.register.is_bits() => out.push(Problem::new(
            path.key("bit"),
            ConfigError::Missing("a bool from a holding/input register needs `bit = 0..=15`".into()),
        )),
        _ => {}
    }
    match (t.kind, t.length) {
        (TagType::String, None) => out.push(Problem::new(
            path.key("length"),
            ConfigError::Missing(
                "type = \"string\" needs `length` (registers, two characters each)".into(),
            ),
        )),
        (TagType::String, Some(0)) => out.push(Problem::invalid(
            path.key("length"),
            0,
            "1 or more registers",
        )),
        (TagType::String, Some(_)) | (_, None) => {}
        (_, Some(n)) => out.push(Problem::invalid(
            path.key("length"),
            n,
            format!("`length` only with type = \"string\", not {kind}"),
        )),
    }
}

/// The tag's registers must lie within 0..=65535 and fit in one request.
fn register_range(
    t: &TagSettings,
    per_request: Option<u16>,
    path: &KeyPath,
    out: &mut Vec<Problem>,
) {
    let span = u32::from(t.span());
    if u32::from(t.address) + span > 65_536 {
        let last_start = 65_536 - span;
        out.push(Problem::invalid(
            path.key("address"),
            t.address,
            format!(
                "a {}-register value must start at 0..={last_start} to end within 65535",
                span
            ),
        ));
    }
    if let Some(cap) = per_request.filter(|cap| span > u32::from(*cap)) {
        let key = if t.kind == TagType::String {
            "length"
        } else {
            "type"
        };
        out.push(Problem::invalid(
            path.key(key),
            format!("a {span}-register value"),
            format!("at most max_registers_per_request = {cap} registers, so it can be read in one request"),
        ));
    }
}

/// `poll_interval`, `deadband` and `max_silence` of one tag: an interval
/// longer than zero, a deadband ≥ 0 on numbers only, a heartbeat no shorter
/// than the tag's interval (the device's when the device did not parse:
/// then only the tag's own is checked).
fn reporting(
    t: &TagSettings,
    device_interval: Option<Duration>,
    path: &KeyPath,
    out: &mut Vec<Problem>,
) {
    if let Some(interval) = t.poll_interval {
        positive(interval, path.key("poll_interval"), out);
    }
    if let Some(band) = t.deadband {
        if !t.kind.is_numeric() {
            let kind = quoted(&type_name(t.kind));
            out.push(Problem::invalid(
                path.key("deadband"),
                band,
                format!("numeric types only, not type = {kind}; use `max_silence` alone to send a {kind} on change"),
            ));
        } else if !band.is_finite() || band < 0.0 {
            out.push(Problem::invalid(
                path.key("deadband"),
                band,
                "a finite number ≥ 0 in the tag's scaled units (0 sends every change)",
            ));
        }
    }
    let interval = t.poll_interval.or(device_interval);
    if let (Some(silence), Some(interval)) = (t.max_silence, interval) {
        if silence < interval {
            out.push(Problem::invalid(
                path.key("max_silence"),
                shown(silence),
                format!("at least the tag's poll interval, {}", shown(interval)),
            ));
        }
    }
}

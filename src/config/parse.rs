//! From TOML text to the schema types, collecting every type error.
//!
//! serde stops at the first error, so the document is parsed once into a
//! spanned tree (`toml::de::DeTable`, whose spans give line numbers) and then
//! deserialized piece by piece: each section, each device, each tag on its
//! own. When a piece fails, the key under the error is reported, removed, and
//! the piece is tried again, so one piece yields all its problems, and the
//! pieces that do parse are still validated afterwards.

use std::ops::Range;

use ingestor_actors::settings::{
    BufferSettings, DeviceSettings, MetricsSettings, NatsSettings, ServiceSettings, Settings,
    SupervisionSettings, TagSettings, WriteSettings,
};
use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{ConfigError, KeyPath, KeySegment, Problem};

/// The top-level keys of docs/reference.md §2.
const SECTIONS: [&str; 7] = [
    "service",
    "nats",
    "buffer",
    "metrics",
    "supervision",
    "devices",
    "writes",
];

/// Keys without a default, per piece: all of them are reported when
/// absent (serde alone would name only the first).
const SERVICE_REQUIRED: &[&str] = &["id"];
const DEVICE_REQUIRED: &[&str] = &["id"];
const TAG_REQUIRED: &[&str] = &["name", "register", "address", "type"];

/// Whatever parsed; `None` where a piece had errors (already reported).
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) service: Option<ServiceSettings>,
    pub(super) nats: Option<NatsSettings>,
    pub(super) buffer: Option<BufferSettings>,
    pub(super) metrics: Option<MetricsSettings>,
    pub(super) supervision: Option<SupervisionSettings>,
    pub(super) devices: Vec<ParsedDevice>,
    pub(super) writes: Option<WriteSettings>,
}

/// One `[[devices]]` entry, its tags parsed one by one.
#[derive(Debug)]
pub(super) struct ParsedDevice {
    /// Position in the `devices` array.
    pub(super) index: usize,
    /// The device's own keys (its `tags` are in [`ParsedDevice::tags`]).
    pub(super) device: Option<DeviceSettings>,
    /// Keys written in the file for this device (to spot serial settings on a TCP device).
    pub(super) keys: Vec<String>,
    /// The tags that parsed, with their index in `tags`.
    pub(super) tags: Vec<(usize, TagSettings)>,
    /// How many tags the file gives, parsed or not.
    pub(super) tags_given: usize,
}

impl Parsed {
    /// The whole `Settings`, when every piece parsed.
    pub(super) fn into_settings(self) -> Option<Settings> {
        let mut devices = Vec::with_capacity(self.devices.len());
        for d in self.devices {
            let mut device = d.device?;
            if d.tags.len() != d.tags_given {
                return None;
            }
            device.tags = d.tags.into_iter().map(|(_, t)| t).collect();
            devices.push(device);
        }
        Some(Settings {
            service: self.service?,
            nats: self.nats?,
            buffer: self.buffer?,
            metrics: self.metrics?,
            supervision: self.supervision?,
            devices,
            writes: self.writes?,
        })
    }
}

/// Parses TOML text into a spanned tree; `Err` lists every syntax error.
pub(super) fn parse_toml(text: &str) -> Result<Spanned<DeTable<'_>>, Vec<Problem>> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(doc);
    }
    Err(errors
        .into_iter()
        .map(|e| Problem {
            path: KeyPath::root(),
            line: e.span().map(|s| line_at(text, s.start)),
            error: ConfigError::Syntax(e.message().trim().to_owned()),
        })
        .collect())
}

/// Deserializes every piece of the document, reporting into `problems`.
pub(super) fn parse_sections(doc: &DeTable<'_>, problems: &mut Vec<Problem>) -> Parsed {
    let root = KeyPath::root();
    for (key, _) in doc.iter() {
        if !SECTIONS.contains(&key.get_ref().as_ref()) {
            let allowed = SECTIONS.map(|s| format!("`{s}`")).join(", ");
            let message = format!(
                "unknown field `{}`, expected one of {allowed}",
                key.get_ref()
            );
            problems.push(Problem::new(
                root.key(key.get_ref()),
                ConfigError::Schema(message),
            ));
        }
    }
    let service = match doc.get("service") {
        Some(v) => from_value(v, &root.key("service"), SERVICE_REQUIRED, problems),
        None => {
            problems.push(Problem::new(
                root.key("service"),
                ConfigError::Missing("this key is required".into()),
            ));
            None
        }
    };
    Parsed {
        service,
        nats: section_or_default(doc, "nats", problems),
        buffer: section_or_default(doc, "buffer", problems),
        metrics: section_or_default(doc, "metrics", problems),
        supervision: section_or_default(doc, "supervision", problems),
        devices: devices(doc, problems),
        writes: section_or_default(doc, "writes", problems),
    }
}

fn section_or_default<T: DeserializeOwned + Default>(
    doc: &DeTable<'_>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match doc.get(key) {
        Some(v) => from_value(v, &KeyPath::root().key(key), &[], problems),
        None => Some(T::default()),
    }
}

fn devices(doc: &DeTable<'_>, problems: &mut Vec<Problem>) -> Vec<ParsedDevice> {
    let path = KeyPath::root().key("devices");
    let Some(value) = doc.get("devices") else {
        return Vec::new();
    };
    let DeValue::Array(entries) = value.get_ref() else {
        problems.push(not_an_array(path, value, "[[devices]]"));
        return Vec::new();
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| device(i, entry, &path.index(i), problems))
        .collect()
}

fn device(
    index: usize,
    entry: &Spanned<DeValue<'_>>,
    path: &KeyPath,
    problems: &mut Vec<Problem>,
) -> ParsedDevice {
    let mut parsed = ParsedDevice {
        index,
        device: None,
        keys: Vec::new(),
        tags: Vec::new(),
        tags_given: 0,
    };
    let DeValue::Table(table) = entry.get_ref() else {
        parsed.device = from_value(entry, path, DEVICE_REQUIRED, problems);
        return parsed;
    };
    parsed.keys = table.keys().map(|k| k.get_ref().to_string()).collect();
    let mut own = table.clone();
    let tags = own.remove("tags");
    let own = Spanned::new(entry.span(), DeValue::Table(own));
    parsed.device = from_value(&own, path, DEVICE_REQUIRED, problems);
    if let Some(tags) = tags {
        device_tags(&tags, &path.key("tags"), &mut parsed, problems);
    }
    parsed
}

/// Each `[[devices.tags]]` of one device, parsed on its own.
fn device_tags(
    tags: &Spanned<DeValue<'_>>,
    path: &KeyPath,
    parsed: &mut ParsedDevice,
    problems: &mut Vec<Problem>,
) {
    let DeValue::Array(tags) = tags.get_ref() else {
        parsed.tags_given = 1;
        problems.push(not_an_array(path.clone(), tags, "[[devices.tags]]"));
        return;
    };
    parsed.tags_given = tags.len();
    for (i, tag) in tags.iter().enumerate() {
        if let Some(t) = from_value::<TagSettings>(tag, &path.index(i), TAG_REQUIRED, problems) {
            parsed.tags.push((i, t));
        }
    }
}

fn not_an_array(path: KeyPath, value: &Spanned<DeValue<'_>>, form: &str) -> Problem {
    let found = value.get_ref().type_str();
    Problem::new(
        path,
        ConfigError::Schema(format!(
            "invalid type: {found}, expected an array of tables ({form})"
        )),
    )
}

/// Deserializes `value` as `T`, reporting every error: after each error the
/// key it is under is dropped and deserialization tried again. Absent
/// `required` keys are all reported up front.
fn from_value<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    path: &KeyPath,
    required: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut value = value.clone();
    let mut dropped: Vec<String> = Vec::new();
    if let DeValue::Table(table) = value.get_ref() {
        for key in required.iter().filter(|k| !table.contains_key(**k)) {
            problems.push(Problem::new(
                path.key(key),
                ConfigError::Missing("this key is required".into()),
            ));
            dropped.push((*key).to_owned());
        }
    }
    loop {
        let deserializer = ValueDeserializer::from(value.clone());
        let err = match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(parsed) => return Some(parsed),
            Err(err) => err,
        };
        let at = join(path, err.path());
        let message = err.inner().message().to_owned();
        if let Some(field) = missing_field(&message) {
            // A key dropped for a bad value is missing now: already reported.
            if !dropped.iter().any(|d| d == field) {
                problems.push(Problem::new(
                    at.key(field),
                    ConfigError::Missing("this key is required".into()),
                ));
            }
            return None;
        }
        let message = readable(&message, at.last_key());
        problems.push(Problem::new(at, ConfigError::Schema(message)));
        let first_key = match err.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => return None,
        };
        let removed = match value.get_mut() {
            DeValue::Table(table) => table.remove(first_key.as_str()).is_some(),
            _ => false,
        };
        if !removed {
            return None;
        }
        dropped.push(first_key);
    }
}

/// `path` followed by the steps serde_path_to_error recorded.
fn join(path: &KeyPath, inner: &serde_path_to_error::Path) -> KeyPath {
    let mut out = path.clone();
    for segment in inner.iter() {
        out = match segment {
            serde_path_to_error::Segment::Seq { index } => out.index(*index),
            serde_path_to_error::Segment::Map { key } => out.key(key),
            serde_path_to_error::Segment::Enum { variant } => out.key(variant),
            serde_path_to_error::Segment::Unknown => out,
        };
    }
    out
}

/// The field name of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Small integers whose rule is narrower than their type (u8): a value that
/// does not even fit the type is told the rule, not 0..=255.
const NARROW: [(&str, &str); 4] = [
    ("unit", "a Modbus unit id 0..=247"),
    ("bit", "a bit number 0..=15"),
    ("data_bits", "5, 6, 7 or 8"),
    ("stop_bits", "1 or 2"),
];

/// serde's message with Rust type names replaced by what a user may write
/// at `key`.
fn readable(message: &str, key: Option<&str>) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_suffix("expected u8") {
        if let Some((_, rule)) = NARROW.iter().find(|(k, _)| Some(*k) == key) {
            return format!("{rest}expected {rule}");
        }
    }
    const RANGES: [(&str, &str); 7] = [
        (
            "expected a duration",
            "expected a duration like \"250ms\", \"1s\" or \"5m\"",
        ),
        (
            "expected parsable string",
            "expected a size like \"512MiB\" or \"2GiB\"",
        ),
        ("expected u8", "expected an integer 0..=255"),
        ("expected u16", "expected an integer 0..=65535"),
        ("expected u32", "expected an integer 0..=4294967295"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
    ];
    let mut out = message.to_owned();
    for (rust, user) in RANGES {
        if out.ends_with(rust) {
            out.truncate(out.len() - rust.len());
            out.push_str(user);
        }
    }
    out
}

/// The 1-based line of the key at `path`, or of the nearest table around it.
pub(super) fn line_of(doc: &Spanned<DeTable<'_>>, text: &str, path: &KeyPath) -> Option<usize> {
    let mut span: Option<Range<usize>> = None;
    let mut current: Option<&DeValue<'_>> = None;
    for segment in path.segments() {
        let next = match (segment, current) {
            (KeySegment::Key(k), None) => doc
                .get_ref()
                .get_key_value(k.as_str())
                .map(|(k, v)| (k.span(), v)),
            (KeySegment::Key(k), Some(DeValue::Table(t))) => {
                t.get_key_value(k.as_str()).map(|(k, v)| (k.span(), v))
            }
            (KeySegment::Index(i), Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((at, value)) = next else { break };
        span = Some(at);
        current = Some(value.get_ref());
    }
    span.map(|s| line_at(text, s.start))
}

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

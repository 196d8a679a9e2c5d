//! The largest message a poll group can make, for `ingestor check`'s
//! warning against what NATS takes (`max_payload`, the stream's
//! `max_msg_size`): a batch over it is set aside, never published.
//!
//! An upper bound, not an estimate: every tag at its longest (a number at
//! 24 characters, a string of `length` registers with every byte escaped
//! as `\u00XX`) or failed with a long reason, whichever is longer, plus the
//! headers.

use crate::settings::{DeviceSettings, TagType};

/// The longest JSON number a value can print as (`-1.7976931348623157e308`).
const NUMBER: usize = 24;
/// The longest reason a failed tag carries, with room to spare.
const REASON: usize = 96;
/// `Nats-Msg-Id`, `Ingestor-Seq`, `Ingestor-Installation` and the framing.
const HEADERS: usize = 256;

/// The most bytes (headers included) one batch of `group` (a poll group,
/// `group::poll_groups`) can take on the wire.
pub fn largest_batch_bytes(group: &DeviceSettings) -> usize {
    let quoted = |s: &str| serde_json::to_string(s).map_or(s.len() * 6 + 2, |q| q.len());
    // {"seq":<20 digits>,"device":"…","ts":"2026-11-27T10:20:29.123456Z","values":{},"errors":{}}
    let frame = r#"{"seq":18446744073709551615,"device":,"ts":"2026-11-27T10:20:29.123456Z","values":{},"errors":{}}"#;
    let tags: usize = group
        .tags
        .iter()
        .map(|t| {
            let value = match t.kind {
                TagType::Bool => 5,
                TagType::String => usize::from(t.kind.registers(t.length)) * 2 * 6 + 2,
                _ => NUMBER,
            };
            // "name":value, — in values or, failed, in errors.
            quoted(&t.name) + 2 + value.max(REASON + 2)
        })
        .sum();
    HEADERS + frame.len() + quoted(&group.id) + tags
}

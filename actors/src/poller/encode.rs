//! Tag values → register words: what the simulator serves so that a poller
//! configured the same way reads the value back (the inverse of
//! [`decode`](crate::poller::decode), with the same orders and scaling).

use crate::poller::decode::reorder;
use crate::settings::{RegisterKind, TagSettings, TagType, WordOrder};

/// What the simulator (or a test) wants a tag to read as, before scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineeringValue {
    /// For `bool` tags.
    Bool(bool),
    /// For every numeric type: the value after `scale` and `offset`.
    Number(f64),
    /// For `string` tags.
    Text(String),
}

/// The register words that make `tag` read back as `value` (numbers are
/// unscaled, rounded to the type and clamped to its range). For `bool` tags
/// with a `bit`, only that bit is set; coils and discrete inputs use the
/// first word's lowest bit (`!= 0`).
pub fn encode(tag: &TagSettings, value: &EngineeringValue) -> Vec<u16> {
    let n = usize::from(tag.kind.registers(tag.length));
    if tag.register == RegisterKind::Coil || tag.register == RegisterKind::Discrete {
        return vec![u16::from(matches!(value, EngineeringValue::Bool(true)))];
    }
    let number = match value {
        EngineeringValue::Bool(b) => f64::from(u8::from(*b)),
        EngineeringValue::Number(x) => *x,
        EngineeringValue::Text(_) => 0.0,
    };
    let raw = (number - tag.offset.unwrap_or(0.0)) / tag.scale.unwrap_or(1.0);
    let bits: u64 = match tag.kind {
        TagType::Bool => {
            let on = number != 0.0;
            return vec![match tag.bit {
                Some(bit) => u16::from(on) << (bit & 15),
                None => u16::from(on),
            }];
        }
        TagType::String => {
            let text = match value {
                EngineeringValue::Text(t) => t.clone(),
                _ => String::new(),
            };
            return encode_string(&text, n, tag.order);
        }
        TagType::U16 => raw.round().clamp(0.0, f64::from(u16::MAX)) as u64,
        TagType::I16 => {
            (raw.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16 as u16).into()
        }
        TagType::U32 => raw.round().clamp(0.0, f64::from(u32::MAX)) as u64,
        TagType::I32 => {
            (raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32).into()
        }
        TagType::U64 => raw.round().max(0.0) as u64,
        TagType::I64 => raw.round() as i64 as u64,
        TagType::F32 => (raw as f32).to_bits().into(),
        TagType::F64 => raw.to_bits(),
    };
    encode_bits(bits, n, tag.order)
}

/// `n` registers holding the low `16·n` bits of `bits` in `order`.
pub fn encode_bits(bits: u64, n: usize, order: WordOrder) -> Vec<u16> {
    let be = bits.to_be_bytes();
    let value_bytes = be[8 - 2 * n.min(4)..].to_vec();
    reorder(value_bytes, order)
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect()
}

fn encode_string(text: &str, n: usize, order: WordOrder) -> Vec<u16> {
    let swap = matches!(order, WordOrder::BADC | WordOrder::DCBA);
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(2 * n, 0);
    bytes
        .chunks_exact(2)
        .map(|w| {
            if swap {
                u16::from_le_bytes([w[0], w[1]])
            } else {
                u16::from_be_bytes([w[0], w[1]])
            }
        })
        .collect()
}

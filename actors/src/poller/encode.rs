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

/// Why a setpoint cannot be put into a tag's registers exactly.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetpointError {
    /// The value has the wrong JSON type for the tag (a number for a
    /// `bool`, text for a number...).
    #[error("{0}")]
    WrongType(String),
    /// The value does not fit the registers: beyond the type's range, not
    /// a whole step of `scale`, or a string longer than `length` registers.
    #[error("{0}")]
    NotRepresentable(String),
}

/// The range of raw (unscaled) values an integer type holds; `None` for
/// floats, `bool` and `string`.
pub fn raw_range(kind: TagType) -> Option<(f64, f64)> {
    Some(match kind {
        TagType::U16 => (0.0, f64::from(u16::MAX)),
        TagType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        TagType::U32 => (0.0, f64::from(u32::MAX)),
        TagType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        // f64 cannot tell the top integers apart; stay below 2^63 / 2^64.
        TagType::U64 => (0.0, 18_446_744_073_709_549_568.0),
        TagType::I64 => (-9_223_372_036_854_774_784.0, 9_223_372_036_854_774_784.0),
        _ => return None,
    })
}

/// The engineering-unit range (after `scale` and `offset`) a tag's type
/// can hold; `None` when the type has no integer range.
pub fn engineering_range(tag: &TagSettings) -> Option<(f64, f64)> {
    let (lo, hi) = raw_range(tag.kind)?;
    let (scale, offset) = (tag.scale.unwrap_or(1.0), tag.offset.unwrap_or(0.0));
    let (a, b) = (lo * scale + offset, hi * scale + offset);
    Some((a.min(b), a.max(b)))
}

/// The register words a write of `value` puts into a register tag
/// (holding registers, not a `bit`): exactly what
/// [`decode_registers`](crate::poller::decode::decode_registers) reads back
/// as `value`, or why no words do. Unlike [`encode`] (for the simulator)
/// nothing is clamped: a value the registers cannot hold is refused.
pub fn encode_setpoint(
    tag: &TagSettings,
    value: &EngineeringValue,
) -> Result<Vec<u16>, SetpointError> {
    let n = usize::from(tag.kind.registers(tag.length));
    match (tag.kind, value) {
        (TagType::String, EngineeringValue::Text(text)) => {
            if text.len() > 2 * n {
                return Err(SetpointError::NotRepresentable(format!(
                    "{} bytes do not fit {n} registers ({} characters at most)",
                    text.len(),
                    2 * n
                )));
            }
            Ok(encode_string(text, n, tag.order))
        }
        (TagType::String, _) => Err(SetpointError::WrongType(
            "a string tag takes a JSON string".into(),
        )),
        (TagType::Bool, _) => Err(SetpointError::WrongType(
            "a bit of a register is written with write_bit, not as words".into(),
        )),
        (kind, EngineeringValue::Number(x)) => {
            if !x.is_finite() {
                return Err(SetpointError::NotRepresentable(format!(
                    "{x} is not a finite number"
                )));
            }
            let raw = (x - tag.offset.unwrap_or(0.0)) / tag.scale.unwrap_or(1.0);
            let bits = match kind {
                TagType::F32 => {
                    let f = raw as f32;
                    if !f.is_finite() {
                        return Err(SetpointError::NotRepresentable(format!(
                            "{x} is beyond the range of an f32"
                        )));
                    }
                    u64::from(f.to_bits())
                }
                TagType::F64 => raw.to_bits(),
                _ => whole_raw(tag, *x, raw)?,
            };
            Ok(encode_bits(bits, n, tag.order))
        }
        (_, _) => Err(SetpointError::WrongType(
            "a numeric tag takes a JSON number".into(),
        )),
    }
}

/// The raw integer of an integer tag, as its two's complement bits.
fn whole_raw(tag: &TagSettings, x: f64, raw: f64) -> Result<u64, SetpointError> {
    let step = tag.scale.unwrap_or(1.0).abs();
    let whole = raw.round();
    if (raw - whole).abs() > 1e-6 * whole.abs().max(1.0) {
        return Err(SetpointError::NotRepresentable(format!(
            "{x} is not a whole step of the tag's resolution ({step})"
        )));
    }
    let (lo, hi) = raw_range(tag.kind).unwrap_or((0.0, 0.0));
    if whole < lo || whole > hi {
        return Err(SetpointError::NotRepresentable(format!(
            "{x} needs the raw value {whole}, beyond a {:?}'s {lo}..={hi}",
            tag.kind
        )));
    }
    Ok(match tag.kind {
        TagType::I16 => u64::from(whole as i16 as u16),
        TagType::I32 => u64::from(whole as i32 as u32),
        TagType::I64 => whole as i64 as u64,
        _ => whole as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::decode::decode_registers;
    use crate::Value;

    const ORDERS: [WordOrder; 4] = [
        WordOrder::ABCD,
        WordOrder::DCBA,
        WordOrder::BADC,
        WordOrder::CDAB,
    ];

    fn tag(kind: TagType, order: WordOrder) -> TagSettings {
        TagSettings {
            length: Some(4),
            writable: true,
            ..TagSettings::bare(RegisterKind::Holding, 10, kind, order)
        }
    }

    fn number(v: &Value) -> f64 {
        match v {
            Value::Int(i) => *i as f64,
            Value::UInt(u) => *u as f64,
            Value::Float(f) => *f,
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn every_numeric_type_and_order_reads_back_what_was_written() {
        let cases = [
            (TagType::U16, vec![0.0, 1.0, 65_535.0]),
            (TagType::I16, vec![-32_768.0, -1.0, 32_767.0]),
            (TagType::U32, vec![0.0, 123_456_789.0, 4_294_967_295.0]),
            (TagType::I32, vec![-2_147_483_648.0, -7.0, 2_147_483_647.0]),
            (TagType::U64, vec![0.0, 1e15]),
            (TagType::I64, vec![-1_234_567_890_123.0, 42.0]),
            (TagType::F32, vec![-1.5, 0.0, 100.7, 3.25e10]),
            (TagType::F64, vec![-2.75e10, 0.1, 1e-300]),
        ];
        for (kind, values) in cases {
            for order in ORDERS {
                let t = tag(kind, order);
                for x in &values {
                    let words =
                        encode_setpoint(&t, &EngineeringValue::Number(*x)).expect("encodes");
                    let back = decode_registers(&t, &words).expect("decodes");
                    assert_eq!(number(&back), *x, "{kind:?} {order:?} {x}");
                }
            }
        }
    }

    #[test]
    fn scale_and_offset_are_undone_exactly() {
        for order in ORDERS {
            let mut t = tag(TagType::I16, order);
            t.scale = Some(0.1);
            t.offset = Some(-40.0);
            let words = encode_setpoint(&t, &EngineeringValue::Number(-41.0)).expect("encodes");
            assert_eq!(decode_registers(&t, &words), Ok(Value::Float(-41.0)));
            let mut t = tag(TagType::U32, order);
            t.scale = Some(0.01);
            let words = encode_setpoint(&t, &EngineeringValue::Number(21.37)).expect("encodes");
            assert_eq!(decode_registers(&t, &words), Ok(Value::Float(21.37)));
        }
    }

    #[test]
    fn strings_round_trip_in_both_byte_orders_and_too_long_is_refused() {
        for order in ORDERS {
            let t = tag(TagType::String, order);
            let words =
                encode_setpoint(&t, &EngineeringValue::Text("PX-200".into())).expect("encodes");
            assert_eq!(
                decode_registers(&t, &words),
                Ok(Value::Str("PX-200".into()))
            );
            assert!(matches!(
                encode_setpoint(&t, &EngineeringValue::Text("NINECHARS".into())),
                Err(SetpointError::NotRepresentable(_))
            ));
        }
    }

    #[test]
    fn values_the_registers_cannot_hold_are_refused_not_clamped() {
        let t = tag(TagType::U16, WordOrder::ABCD);
        for x in [-1.0, 65_536.0, 1.5, f64::NAN] {
            assert!(
                matches!(
                    encode_setpoint(&t, &EngineeringValue::Number(x)),
                    Err(SetpointError::NotRepresentable(_))
                ),
                "{x}"
            );
        }
        let mut scaled = tag(TagType::I16, WordOrder::ABCD);
        scaled.scale = Some(0.1);
        assert!(encode_setpoint(&scaled, &EngineeringValue::Number(21.37)).is_err());
        assert!(encode_setpoint(&scaled, &EngineeringValue::Number(21.4)).is_ok());
        let f = tag(TagType::F32, WordOrder::ABCD);
        assert!(encode_setpoint(&f, &EngineeringValue::Number(1e39)).is_err());
        assert!(matches!(
            encode_setpoint(&t, &EngineeringValue::Text("7".into())),
            Err(SetpointError::WrongType(_))
        ));
    }

    #[test]
    fn engineering_range_follows_scale_and_offset() {
        let mut t = tag(TagType::I16, WordOrder::ABCD);
        t.scale = Some(-0.5);
        t.offset = Some(10.0);
        assert_eq!(engineering_range(&t), Some((-16_373.5, 16_394.0)));
        assert_eq!(engineering_range(&tag(TagType::F32, WordOrder::ABCD)), None);
    }
}

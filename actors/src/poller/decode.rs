//! Registers → tag values; the way back (`encode`, for the simulator) is in
//! [`encode`](crate::poller::encode), re-exported here.
//!
//! # Orders
//! Vendor manuals name the bytes of a value A (most significant) to D (or H
//! for 64-bit values) and say in which order they arrive. The register words
//! arrive in address order, each word high byte first on the wire, so the
//! received byte stream is `w0.hi w0.lo w1.hi w1.lo ...`. For a value of
//! `n` registers:
//! - `ABCD`: the stream is the value, most significant byte first.
//! - `DCBA`: the stream is the value, least significant byte first.
//! - `BADC`: the bytes within each word are swapped; words most significant first.
//! - `CDAB`: words least significant first ("word swap"); bytes within a word
//!   most significant first. For 64-bit values all four words are reversed
//!   (`GHEFCDAB`).
//!
//! For one-register types, `DCBA` and `BADC` swap the two bytes; `ABCD` and
//! `CDAB` leave them alone. For `string` the order only says the byte order
//! within each register (`BADC`/`DCBA`: low byte first); the characters
//! always run in address order.
//!
//! # Scale
//! `value = raw * scale + offset`. A tag with neither reads as an integer
//! (`Int`/`UInt`) or, for `f32`/`f64`, a `Float`; with either, a `Float`.
//! NaN or infinity, from the device or after scaling, is an error for that
//! tag, never a published number. An `f32` is published as its shortest
//! decimal (`100.7`, not `100.69999694824219`), and scales like 0.1 divide
//! by 10 so that `3 × 0.1` reads `0.3`.

use thiserror::Error;

use crate::settings::{TagSettings, TagType, WordOrder};
use crate::Value;

pub use crate::poller::encode::{encode, encode_bits, EngineeringValue};

/// Why one tag's registers did not make a value.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    /// The device sent NaN or infinity (or scaling overflowed). Retrying only
    /// helps if the device stops sending it; check `type` and `order`.
    #[error("not a finite number ({0})")]
    NotFinite(f64),
    /// The response held fewer registers than the tag needs (a device bug).
    #[error("response too short: needed {needed} registers, got {got}")]
    Short {
        /// Registers the tag spans.
        needed: usize,
        /// Registers available in the response.
        got: usize,
    },
}

/// Decodes a coil or discrete input.
pub fn decode_bit(bit: bool) -> Value {
    Value::Bool(bit)
}

/// Decodes one tag from its registers (`words` starts at the tag's address).
pub fn decode_registers(tag: &TagSettings, words: &[u16]) -> Result<Value, DecodeError> {
    let needed = usize::from(tag.kind.registers(tag.length));
    let Some(words) = words.get(..needed) else {
        return Err(DecodeError::Short {
            needed,
            got: words.len(),
        });
    };
    match tag.kind {
        TagType::Bool => Ok(Value::Bool(match tag.bit {
            Some(bit) => words[0] >> (bit & 15) & 1 == 1,
            None => words[0] != 0,
        })),
        TagType::String => Ok(Value::Str(decode_string(words, tag.order))),
        TagType::U16 => scaled(tag, Raw::U(u64::from(be_u16(words, tag.order)))),
        TagType::I16 => scaled(tag, Raw::I(i64::from(be_u16(words, tag.order) as i16))),
        TagType::U32 => scaled(tag, Raw::U(be_u64(words, tag.order))),
        TagType::I32 => scaled(
            tag,
            Raw::I(i64::from(be_u64(words, tag.order) as u32 as i32)),
        ),
        TagType::U64 => scaled(tag, Raw::U(be_u64(words, tag.order))),
        TagType::I64 => scaled(tag, Raw::I(be_u64(words, tag.order) as i64)),
        TagType::F32 => scaled(
            tag,
            Raw::F(widen(f32::from_bits(be_u64(words, tag.order) as u32))),
        ),
        TagType::F64 => scaled(tag, Raw::F(f64::from_bits(be_u64(words, tag.order)))),
    }
}

enum Raw {
    U(u64),
    I(i64),
    F(f64),
}

fn scaled(tag: &TagSettings, raw: Raw) -> Result<Value, DecodeError> {
    let value = match (tag.scale, tag.offset, raw) {
        (None, None, Raw::U(u)) => return Ok(Value::UInt(u)),
        (None, None, Raw::I(i)) => return Ok(Value::Int(i)),
        (scale, offset, raw) => {
            let x = match raw {
                Raw::U(u) => u as f64,
                Raw::I(i) => i as f64,
                Raw::F(f) => f,
            };
            apply_scale(x, scale.unwrap_or(1.0)) + offset.unwrap_or(0.0)
        }
    };
    if value.is_finite() {
        Ok(Value::Float(value))
    } else {
        Err(DecodeError::NotFinite(value))
    }
}

/// An f32 as the f64 with the same shortest decimal form (`100.7f32` →
/// `100.7`, not `100.69999694824219`): what the device meant, and what a
/// consumer expects to see in JSON.
fn widen(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// `x * scale`, dividing instead for scales like 0.1 or 0.001 so that
/// `3 * 0.1` reads `0.3`, not `0.30000000000000004`.
fn apply_scale(x: f64, scale: f64) -> f64 {
    let inverse = 1.0 / scale;
    if scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
        x / inverse.round()
    } else {
        x * scale
    }
}

/// The bytes of a value as they arrive, rearranged most significant first.
fn be_bytes(words: &[u16], order: WordOrder) -> Vec<u8> {
    let wire: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    reorder(wire, order)
}

/// The permutation is its own inverse for every order, so encode uses it too.
pub(crate) fn reorder(mut bytes: Vec<u8>, order: WordOrder) -> Vec<u8> {
    match order {
        WordOrder::ABCD => {}
        WordOrder::DCBA => bytes.reverse(),
        WordOrder::BADC => bytes.chunks_exact_mut(2).for_each(|w| w.swap(0, 1)),
        WordOrder::CDAB => {
            let mut words: Vec<[u8; 2]> = bytes.chunks_exact(2).map(|w| [w[0], w[1]]).collect();
            words.reverse();
            bytes = words.concat();
        }
    }
    bytes
}

fn be_u16(words: &[u16], order: WordOrder) -> u16 {
    be_u64(words, order) as u16
}

/// Up to four registers as an unsigned number, most significant byte first.
fn be_u64(words: &[u16], order: WordOrder) -> u64 {
    be_bytes(words, order)
        .into_iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(b))
}

fn decode_string(words: &[u16], order: WordOrder) -> String {
    let swap = matches!(order, WordOrder::BADC | WordOrder::DCBA);
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| {
            if swap {
                w.to_le_bytes()
            } else {
                w.to_be_bytes()
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RegisterKind;

    fn tag(kind: TagType, order: WordOrder) -> TagSettings {
        TagSettings {
            name: "t".into(),
            length: Some(8),
            ..TagSettings::bare(RegisterKind::Holding, 0, kind, order)
        }
    }

    #[test]
    fn u32_123456789_in_every_order_matches_vendor_words() {
        let cases = [
            (WordOrder::ABCD, [0x075B, 0xCD15]),
            (WordOrder::CDAB, [0xCD15, 0x075B]),
            (WordOrder::BADC, [0x5B07, 0x15CD]),
            (WordOrder::DCBA, [0x15CD, 0x5B07]),
        ];
        for (order, words) in cases {
            let t = tag(TagType::U32, order);
            assert_eq!(
                decode_registers(&t, &words),
                Ok(Value::UInt(123_456_789)),
                "{order:?}"
            );
            assert_eq!(
                encode(&t, &EngineeringValue::Number(123_456_789.0)),
                words,
                "{order:?}"
            );
        }
    }

    #[test]
    fn f32_minus_1_5_in_every_order_matches_vendor_words() {
        // -1.5f32 = 0xBFC00000
        let cases = [
            (WordOrder::ABCD, [0xBFC0, 0x0000]),
            (WordOrder::CDAB, [0x0000, 0xBFC0]),
            (WordOrder::BADC, [0xC0BF, 0x0000]),
            (WordOrder::DCBA, [0x0000, 0xC0BF]),
        ];
        for (order, words) in cases {
            let t = tag(TagType::F32, order);
            assert_eq!(
                decode_registers(&t, &words),
                Ok(Value::Float(-1.5)),
                "{order:?}"
            );
        }
    }

    #[test]
    fn i64_and_f64_round_trip_in_every_order() {
        for order in [
            WordOrder::ABCD,
            WordOrder::DCBA,
            WordOrder::BADC,
            WordOrder::CDAB,
        ] {
            let t = tag(TagType::I64, order);
            let w = encode(&t, &EngineeringValue::Number(-1_234_567_890_123.0));
            assert_eq!(decode_registers(&t, &w), Ok(Value::Int(-1_234_567_890_123)));
            let t = tag(TagType::F64, order);
            let w = encode(&t, &EngineeringValue::Number(-2.75e10));
            assert_eq!(decode_registers(&t, &w), Ok(Value::Float(-2.75e10)));
        }
    }

    #[test]
    fn u64_cdab_reverses_all_four_words() {
        let t = tag(TagType::U64, WordOrder::CDAB);
        let v = decode_registers(&t, &[0x0708, 0x0506, 0x0304, 0x0102]);
        assert_eq!(v, Ok(Value::UInt(0x0102_0304_0506_0708)));
    }

    #[test]
    fn string_with_trailing_nuls_is_trimmed() {
        let t = tag(TagType::String, WordOrder::ABCD);
        let words = [0x5058, 0x2D32, 0x3030, 0x0000, 0, 0, 0, 0]; // "PX-200"
        assert_eq!(
            decode_registers(&t, &words),
            Ok(Value::Str("PX-200".into()))
        );
        let swapped = tag(TagType::String, WordOrder::BADC);
        assert_eq!(
            decode_registers(&swapped, &[0x5850, 0x322D, 0x3030, 0x0020, 0, 0, 0, 0]),
            Ok(Value::Str("PX-200".into()))
        );
    }

    #[test]
    fn nan_and_infinity_are_tag_errors() {
        let t = tag(TagType::F32, WordOrder::ABCD);
        assert!(matches!(
            decode_registers(&t, &[0x7FC0, 0]),
            Err(DecodeError::NotFinite(_))
        ));
        assert!(matches!(
            decode_registers(&t, &[0x7F80, 0]),
            Err(DecodeError::NotFinite(_))
        ));
    }

    #[test]
    fn scale_and_offset_make_a_float() {
        let mut t = tag(TagType::I16, WordOrder::ABCD);
        t.scale = Some(0.1);
        t.offset = Some(-40.0);
        assert_eq!(decode_registers(&t, &[0xFFF6]), Ok(Value::Float(-41.0))); // -10 * 0.1 - 40
    }

    #[test]
    fn f32_and_decimal_scales_read_as_their_shortest_decimal() {
        let t = tag(TagType::F32, WordOrder::ABCD);
        let w = encode(&t, &EngineeringValue::Number(100.7));
        assert_eq!(decode_registers(&t, &w), Ok(Value::Float(100.7)));
        let mut t = tag(TagType::U16, WordOrder::ABCD);
        t.scale = Some(0.1);
        assert_eq!(decode_registers(&t, &[3]), Ok(Value::Float(0.3)));
    }

    #[test]
    fn bit_of_a_register_reads_one_bit() {
        let mut t = tag(TagType::Bool, WordOrder::ABCD);
        t.bit = Some(3);
        assert_eq!(decode_registers(&t, &[0b1000]), Ok(Value::Bool(true)));
        assert_eq!(decode_registers(&t, &[0b0111]), Ok(Value::Bool(false)));
    }

    #[test]
    fn too_few_registers_is_an_error_not_a_panic() {
        let t = tag(TagType::F64, WordOrder::ABCD);
        assert_eq!(
            decode_registers(&t, &[1, 2]),
            Err(DecodeError::Short { needed: 4, got: 2 })
        );
    }
}

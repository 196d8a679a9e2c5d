//! The body of a version-3 record: the payload body split into what a
//! device's batches repeat (the *skeleton*: keys, units, strings, the
//! device id) and what changes every poll (its numbers and its `ts`).
//!
//! Records stay self-contained (each decodes alone: quarantining or
//! deleting one never affects another). The density comes from fjall's
//! lz4 blocks: consecutive records of a device carry byte-identical
//! skeletons, which lz4 stores as one back-reference, and each number is
//! a few bytes of binary instead of its digits between repeated keys.
//!
//! Layout, FROZEN (a build that reads it exists; a later one writes it):
//! ```text
//! skeleton length S, u32 little-endian
//! skeleton (S bytes): the body with
//!   - every JSON number outside a string replaced by the byte 0x00,
//!   - at most one `ts` text, the `T` in `"ts":"T"` when T is what
//!     `ts_micros` gives as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes),
//!     replaced by the byte 0x01
//!   (neither byte occurs in a JSON text: control characters are escaped)
//! the numbers, one per 0x00 in skeleton order, each a LEB128 u64 `v`:
//!   bit 0       the number is negative (a leading `-`)
//!   bits 1..6   f, its fraction digits (0..=30); f = 31: the number's text
//!               follows as a LEB128 length and that many bytes
//!   bits 6..    m, its digits (integer and fraction part) as an integer;
//!               the text is m in decimal, zero-padded to f + 1 digits,
//!               with a `.` before the last f of them when f > 0
//! nothing after the last number
//! ```
//! A number takes the short form when its text is
//! `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 17 digits in all (so
//! m < 2^58) and at most 30 of them after the point; anything else (an
//! exponent, 18 or more digits) is stored as its text.

use std::cell::Cell;
use std::sync::LazyLock;

use integer_encoding::VarInt;
use memchr::memmem::Finder;

use super::RecordError;

/// Marks a number in the skeleton.
const NUMBER: u8 = 0x00;
/// Marks the `ts` text in the skeleton.
const TS: u8 = 0x01;
/// `f` of a number stored as its text.
const RAW: u64 = 31;
/// Digits a short-form number may have (10^17 < 2^58).
const MAX_DIGITS: u32 = 17;
/// The length of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
const TS_LEN: usize = 27;
const DAY_MICROS: i64 = 86_400_000_000;

thread_local! {
    /// The `YYYY-MM-DDT` of the day last formatted on this thread: a
    /// spool's batches come day by day.
    static DAY: Cell<(i64, [u8; 11])> = const { Cell::new((i64::MIN, [0; 11])) };
}

/// The `ts` text of `ts_micros` in the frozen form, `None` outside the
/// years 0000–9999. The payload's `ts` (chrono's RFC 3339 with
/// microseconds and `Z`) is this text for every poll time.
fn ts_text(ts_micros: i64) -> Option<[u8; TS_LEN]> {
    let (day, micros) = (
        ts_micros.div_euclid(DAY_MICROS),
        ts_micros.rem_euclid(DAY_MICROS),
    );
    let (cached, mut date) = DAY.get();
    if cached != day {
        let text = chrono::DateTime::from_timestamp(day.checked_mul(86_400)?, 0)?
            .format("%Y-%m-%dT")
            .to_string();
        date = text.as_bytes().try_into().ok()?;
        DAY.set((day, date));
    }
    let mut out = [0u8; TS_LEN];
    out[..11].copy_from_slice(&date);
    let secs = micros / 1_000_000;
    let two = |out: &mut [u8], at: usize, v: i64| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 11, secs / 3600);
    out[13] = b':';
    two(&mut out, 14, secs / 60 % 60);
    out[16] = b':';
    two(&mut out, 17, secs % 60);
    out[19] = b'.';
    let mut frac = micros % 1_000_000;
    for at in (20..26).rev() {
        out[at] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out[26] = b'Z';
    Some(out)
}

static TS_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"ts\":\""));

/// Appends the version-3 form of `body` to `out`. `false` (and `out` as it
/// was) when the body holds a byte the skeleton reserves: the caller
/// writes another version.
pub(super) fn write(body: &[u8], ts_micros: i64, out: &mut Vec<u8>) -> bool {
    if memchr::memchr2(NUMBER, TS, body).is_some() {
        return false;
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    // The opening quote of the ts text, if the text is there as expected.
    let ts_quote = TS_KEY.find(body).map(|at| at + 5).filter(|&q| {
        let text = &body[q + 1..];
        ts_text(ts_micros).is_some_and(|t| text.starts_with(&t) && text.get(TS_LEN) == Some(&b'"'))
    });
    let mut numbers = Vec::with_capacity(64);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' if Some(i) == ts_quote => {
                out.extend_from_slice(&[b'"', TS, b'"']);
                i += TS_LEN + 2;
            }
            b'"' => {
                let end = string_end(body, i + 1);
                out.extend_from_slice(&body[i..end]);
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = body[i..]
                    .iter()
                    .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(body.len(), |n| i + n);
                out.push(NUMBER);
                put_number(&body[i..end], &mut numbers);
                i = end;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let Ok(len) = u32::try_from(out.len() - start - 4) else {
        out.truncate(start);
        return false;
    };
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&numbers);
    true
}

/// Where the string whose text starts at `from` ends: one past its
/// closing quote (the body's end if it has none).
fn string_end(body: &[u8], mut from: usize) -> usize {
    while let Some(k) = memchr::memchr2(b'"', b'\\', &body[from..]) {
        if body[from + k] == b'"' {
            return from + k + 1;
        }
        from += k + 2;
        if from >= body.len() {
            break;
        }
    }
    body.len()
}

/// Appends one number (its text) in either form.
fn put_number(text: &[u8], out: &mut Vec<u8>) {
    match short_form(text) {
        Some(v) => put_var(v, out),
        None => {
            put_var(RAW << 1, out);
            put_var(text.len() as u64, out);
            out.extend_from_slice(text);
        }
    }
}

/// Appends `v` as LEB128.
fn put_var(v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// `v` of a number text of the short-form grammar.
fn short_form(text: &[u8]) -> Option<u64> {
    let (neg, rest) = match text.split_first() {
        Some((b'-', rest)) => (1, rest),
        _ => (0, text),
    };
    let (mut m, mut digits, mut point) = (0u64, 0u32, None);
    for &c in rest {
        match c {
            b'0'..=b'9' if digits < MAX_DIGITS => {
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
            }
            b'.' if point.is_none() && digits > 0 => point = Some(digits),
            _ => return None,
        }
    }
    let frac = match point {
        Some(p) if p == digits => return None,
        Some(p) => digits - p,
        None => 0,
    };
    let int = digits - frac;
    if int == 0 || (int > 1 && rest[0] == b'0') || u64::from(frac) >= RAW {
        return None;
    }
    Some(m << 6 | u64::from(frac) << 1 | neg)
}

/// The body of a version-3 record (`rest` is everything after the device
/// id).
pub(super) fn read(rest: &[u8], ts_micros: i64) -> Result<Vec<u8>, RecordError> {
    let bad = |what: &str| RecordError::Archive(format!("compact body: {what}"));
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Err(bad("no skeleton length"));
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("skeleton does not fit"));
    }
    let (skeleton, mut numbers) = rest.split_at(len);
    let mut out = Vec::with_capacity(skeleton.len() + TS_LEN + 4 * numbers.len() + 32);
    let mut ts = ts_text(ts_micros);
    let mut last = 0;
    for at in memchr::memchr2_iter(NUMBER, TS, skeleton) {
        out.extend_from_slice(&skeleton[last..at]);
        last = at + 1;
        if skeleton[at] == TS {
            // At most one: the text is taken.
            out.extend_from_slice(&ts.take().ok_or_else(|| bad("ts mark"))?);
            continue;
        }
        let (v, n) = u64::decode_var(numbers).ok_or_else(|| bad("numbers end early"))?;
        numbers = &numbers[n..];
        let (neg, f, m) = (v & 1 == 1, ((v >> 1) & 31) as usize, v >> 6);
        if f == RAW as usize {
            let (len, n) = u64::decode_var(numbers).ok_or_else(|| bad("number text length"))?;
            numbers = &numbers[n..];
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= numbers.len())
                .ok_or_else(|| bad("number text does not fit"))?;
            out.extend_from_slice(&numbers[..len]);
            numbers = &numbers[len..];
            continue;
        }
        if neg {
            out.push(b'-');
        }
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(m).as_bytes();
        if f == 0 {
            out.extend_from_slice(digits);
        } else if digits.len() > f {
            let (int, frac) = digits.split_at(digits.len() - f);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + f - digits.len(), b'0');
            out.extend_from_slice(digits);
        }
    }
    out.extend_from_slice(&skeleton[last..]);
    if !numbers.is_empty() {
        return Err(bad("bytes after the last number"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(body: &[u8], ts: i64) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(write(body, ts, &mut out));
        let back = read(&out, ts).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(body)
        );
        out
    }

    #[test]
    fn every_number_text_comes_back_as_written() {
        for n in [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "12.3",
            "0.05",
            "-0.0",
            "0.000",
            "100.50",
            "65535",
            "-32768",
            "12.300000190734863",
            "99999999999999999",
            "18446744073709551615",
            "-9223372036854775808",
            "1e5",
            "1.5E-7",
            "0.0000000000000000000000000000001",
            "1234567890.1234567",
            "00",
            "-",
            "1.",
            ".5",
            "1-2",
        ] {
            let body = format!(r#""device":"d","values":{{"x":{n},"y":[{n},{n}]}}}}"#);
            roundtrip(body.as_bytes(), 0);
        }
    }

    #[test]
    fn strings_keep_their_digits_and_escapes() {
        let ts = 1_796_399_879_123_456;
        let text = String::from_utf8(ts_text(ts).unwrap().to_vec()).unwrap();
        let body = format!(
            r#""device":"m-01","ts":"{text}","values":{{"s":"a\"1,2\\","n":-3.25}},"errors":{{"p":"exception 0x02"}}}}"#
        );
        let body = body.as_bytes();
        let out = roundtrip(body, ts);
        // The ts text went into the mark, the numbers out of the skeleton.
        assert!(
            out.len() < body.len() - 20,
            "{} of {}",
            out.len(),
            body.len()
        );
        // Another ts: the text is not there as expected and stays.
        roundtrip(body, ts + 1);
    }

    proptest::proptest! {
        #[test]
        fn the_ts_text_is_the_payloads(ts in -62_167_219_200_000_000i64..253_402_300_800_000_000) {
            let chrono = crate::batch::rfc3339(crate::batch::utc(ts));
            proptest::prop_assert_eq!(ts_text(ts).map(|t| t.to_vec()), Some(chrono.into_bytes()));
        }
    }

    #[test]
    fn a_body_with_reserved_bytes_is_left_to_another_version() {
        let mut out = vec![9];
        assert!(!write(b"\"device\":\"a\0\"}", 0, &mut out));
        assert_eq!(out, [9]);
    }

    #[test]
    fn damaged_numbers_are_errors_not_panics() {
        let mut good = Vec::new();
        assert!(write(
            br#""device":"d","values":{"a":1.5,"b":"x"}}"#,
            0,
            &mut good
        ));
        for cut in 0..good.len() {
            let _ = read(&good[..cut], 0);
        }
        let mut longer = good.clone();
        longer.push(1);
        assert!(read(&longer, 0).is_err());
        for i in 0..good.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= x;
                let _ = read(&bad, 0);
            }
        }
    }
}

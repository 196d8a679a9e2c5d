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
//! Layout, FROZEN (spools in this format exist):
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

// The writer and the reader, beside what they share (below).
mod read;
mod write;

pub(super) use read::read;
pub(super) use write::{write, ROOM};

use std::cell::Cell;

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

/// Bytes past the end a short copy may write (the destination has them).
const SLACK: usize = 32;

/// Copies `src[from..to]` to `dst[w..]` and says where it ends. A short
/// run is moved as `SLACK` bytes at once when both sides have them (the
/// bytes past its end are overwritten later or cut off): payload runs are
/// a key or two long, and a call to `memcpy` per run costs more than the
/// copy.
#[inline]
fn copy(dst: &mut [u8], w: usize, src: &[u8], from: usize, to: usize) -> usize {
    let n = to - from;
    if n <= SLACK && from + SLACK <= src.len() && w + SLACK <= dst.len() {
        dst[w..w + SLACK].copy_from_slice(&src[from..from + SLACK]);
    } else {
        dst[w..w + n].copy_from_slice(&src[from..to]);
    }
    w + n
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
    fn a_huge_batch_reads_back_and_so_does_a_small_one_after_it() {
        // 50 000 tags: the reader's room goes past what it keeps.
        let tags: Vec<String> = (0..50_000).map(|i| format!(r#""t{i}":{i}.5"#)).collect();
        let body = format!(r#""device":"d","values":{{{}}}}}"#, tags.join(","));
        roundtrip(body.as_bytes(), 0);
        roundtrip(br#""device":"d","values":{"a":-1}}"#, 0);
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

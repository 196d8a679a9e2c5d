//! The version-3 reader: the skeleton with the numbers and the ts put back.

use std::cell::RefCell;

use integer_encoding::VarInt;

use super::{copy, ts_text, NUMBER, RAW, SLACK, TS, TS_LEN};
use crate::buffer::record::RecordError;

/// The body of a version-3 record (`rest` is everything after the device
/// id).
pub(in crate::buffer::record) fn read(rest: &[u8], ts_micros: i64) -> Result<Vec<u8>, RecordError> {
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Err(bad("no skeleton length"));
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("skeleton does not fit"));
    }
    let (skeleton, mut numbers) = rest.split_at(len);
    let mut ts = ts_text(ts_micros);
    TEXT.with_borrow_mut(|out| {
        // Room for the body (each number's text is at most its stored
        // bytes or `MAX_TEXT`) and the slack of the short copies.
        let bound = skeleton.len() + TS_LEN + MAX_TEXT * numbers.len() + SLACK;
        if out.len() < bound {
            out.resize(bound, 0);
        }
        let (mut last, mut w) = (0, 0);
        for at in memchr::memchr2_iter(NUMBER, TS, skeleton) {
            w = copy(out, w, skeleton, last, at);
            last = at + 1;
            if skeleton[at] == TS {
                // At most one: the text is taken.
                let text = ts.take().ok_or_else(|| bad("ts mark"))?;
                out[w..w + TS_LEN].copy_from_slice(&text);
                w += TS_LEN;
                continue;
            }
            let (number, n) = next_number(numbers)?;
            numbers = &numbers[n..];
            w = match number {
                Number::Short { neg, f, m } => put_text(out, w, neg, f, m),
                Number::Raw(text) => copy(out, w, text, 0, text.len()),
            };
        }
        w = copy(out, w, skeleton, last, skeleton.len());
        let body = out[..w].to_vec();
        if out.len() > MAX_KEPT {
            // One huge batch does not keep its room for good.
            *out = Vec::new();
        }
        if !numbers.is_empty() {
            return Err(bad("bytes after the last number"));
        }
        Ok(body)
    })
}

thread_local! {
    /// The body being read, sized for the largest yet (then copied out at
    /// its length).
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most room [`TEXT`] keeps between reads.
const MAX_KEPT: usize = 1 << 20;

/// The longest text of a short-form number: `-0.` and 30 digits.
const MAX_TEXT: usize = 33;

/// Two decimal digits of every number below 100. Digits are written here
/// in place, not by `itoa` and then copied: that copy (a `memcpy` per
/// number) made a batch's read about 130 ns slower (`BENCH_ONLY=codec`).
static PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

fn bad(what: &str) -> RecordError {
    RecordError::Archive(format!("compact body: {what}"))
}

/// One stored number.
enum Number<'a> {
    /// `m`, `f` fraction digits, a `-` if `neg`.
    Short { neg: bool, f: usize, m: u64 },
    /// Stored as its text.
    Raw(&'a [u8]),
}

/// The number at the start of `numbers` and the bytes it takes.
fn next_number(numbers: &[u8]) -> Result<(Number<'_>, usize), RecordError> {
    let (v, n) = u64::decode_var(numbers).ok_or_else(|| bad("numbers end early"))?;
    let f = ((v >> 1) & 31) as usize;
    if f != RAW as usize {
        let number = Number::Short {
            neg: v & 1 == 1,
            f,
            m: v >> 6,
        };
        return Ok((number, n));
    }
    let rest = &numbers[n..];
    let (len, k) = u64::decode_var(rest).ok_or_else(|| bad("number text length"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= rest.len() - k)
        .ok_or_else(|| bad("number text does not fit"))?;
    Ok((Number::Raw(&rest[k..k + len]), n + k + len))
}

/// Writes a short-form number's text at `out[w..]` (which has `SLACK`
/// bytes past it) and says where it ends: its digits, zero-padded to
/// `f + 1`, a `.` before the last `f`, a `-` first when `neg`.
fn put_text(out: &mut [u8], mut w: usize, neg: bool, f: usize, mut m: u64) -> usize {
    // The digits end at `digits[32]`, zeros before them, room after them
    // for a fixed-size copy.
    let mut digits = [b'0'; 64];
    let mut at = 32;
    while m >= 100 {
        let pair = (m % 100) as usize * 2;
        m /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if m >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[m as usize * 2..m as usize * 2 + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + m as u8;
    }
    let all = (32 - at).max(f + 1);
    if neg {
        out[w] = b'-';
        w += 1;
    }
    // The integer part, then the point and the fraction, each one move.
    out[w..w + 32].copy_from_slice(&digits[32 - all..64 - all]);
    w += all - f;
    if f > 0 {
        out[w] = b'.';
        out[w + 1..w + 33].copy_from_slice(&digits[32 - f..64 - f]);
        w += f + 1;
    }
    w
}

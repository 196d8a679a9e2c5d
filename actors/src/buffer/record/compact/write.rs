//! The version-3 writer: the skeleton walk (module doc of `compact`).

use std::cell::RefCell;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::{copy, ts_text, MAX_DIGITS, NUMBER, RAW, SLACK, TS, TS_LEN};

/// What [`write`] needs in `out` beyond the body's length.
pub(in crate::buffer::record) const ROOM: usize = 4 + SLACK;

static TS_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"ts\":\""));

/// What a body byte starts, for the skeleton walk: most bytes are copied
/// in runs, and only these stop it.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const DIGIT: u8 = 2;
static CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    class[b'"' as usize] = QUOTE;
    class[b'-' as usize] = DIGIT;
    let mut d = b'0';
    while d <= b'9' {
        class[d as usize] = DIGIT;
        d += 1;
    }
    class
};

thread_local! {
    /// The numbers of the record being written (they follow the skeleton,
    /// whose length is known only at its end).
    static NUMBERS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends the version-3 form of `body` to `out`. `false` (and `out` as it
/// was) when the body holds a byte the skeleton reserves: the caller
/// writes another version.
pub(in crate::buffer::record) fn write(body: &[u8], ts_micros: i64, out: &mut Vec<u8>) -> bool {
    if memchr::memchr2(NUMBER, TS, body).is_some() {
        return false;
    }
    let start = out.len();
    // The opening quote of the ts text, if the text is there as expected.
    let ts_quote = TS_KEY.find(body).map(|at| at + 5).filter(|&q| {
        let text = &body[q + 1..];
        ts_text(ts_micros).is_some_and(|t| text.starts_with(&t) && text.get(TS_LEN) == Some(&b'"'))
    });
    // The skeleton is never longer than the body; the slack lets a short
    // run go over in one fixed-size move.
    let skeleton = start + 4;
    out.resize(skeleton + body.len() + SLACK, 0);
    NUMBERS.with_borrow_mut(|numbers| {
        numbers.clear();
        // `body[run..i]` is skeleton not yet copied; `out[..w]` is written.
        let (mut run, mut i, mut w) = (0, 0, skeleton);
        while i < body.len() {
            match CLASS[usize::from(body[i])] {
                PLAIN => i += 1,
                QUOTE if Some(i) == ts_quote => {
                    w = copy(out, w, body, run, i + 1);
                    out[w] = TS;
                    w += 1;
                    // The closing quote starts the next run.
                    run = i + 1 + TS_LEN;
                    i = run + 1;
                }
                QUOTE => i = string_end(body, i + 1),
                _ => {
                    w = copy(out, w, body, run, i);
                    out[w] = NUMBER;
                    w += 1;
                    let end = put_number(body, i, numbers);
                    run = end;
                    i = end;
                }
            }
        }
        w = copy(out, w, body, run, body.len());
        out.truncate(w);
        let Ok(len) = u32::try_from(w - skeleton) else {
            out.truncate(start);
            return false;
        };
        out[start..skeleton].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(numbers);
        true
    })
}

/// Where the string whose text starts at `from` ends: one past its
/// closing quote (the body's end if it has none). Payload strings are
/// short (keys, units, ids): a plain walk beats a vector search here.
fn string_end(body: &[u8], mut from: usize) -> usize {
    while let Some(&c) = body.get(from) {
        match c {
            b'"' => return from + 1,
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
    body.len()
}

/// Where the number token starting at `from` ends (anything JSON allows
/// in a number, so an exponent stays in its token).
fn number_end(body: &[u8], mut from: usize) -> usize {
    while let Some(c) = body.get(from) {
        if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            break;
        }
        from += 1;
    }
    from
}

/// Appends the number whose text starts at `body[at]`, in either form,
/// and says where its text ends. The short form is read in the same pass
/// that finds the end (one unpredictable branch per number, not three).
fn put_number(body: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    let neg = body[at] == b'-';
    let first = at + usize::from(neg);
    let (mut m, mut i, mut point) = (0u64, first, None);
    while let Some(&c) = body.get(i) {
        let digit = c.wrapping_sub(b'0');
        if digit < 10 {
            m = m.wrapping_mul(10).wrapping_add(u64::from(digit));
        } else if c == b'.' && point.is_none() {
            point = Some(i);
        } else {
            break;
        }
        i += 1;
    }
    let end = number_end(body, i);
    if end == i {
        if let Some(v) = short_form(&body[first..i], point.map(|p| p - first), m) {
            put_var(v << 1 | u64::from(neg), out);
            return end;
        }
    }
    put_var(RAW << 1, out);
    put_var((end - at) as u64, out);
    out.extend_from_slice(&body[at..end]);
    end
}

/// Appends `v` as LEB128 (as `integer-encoding` reads it; written here
/// byte by byte, since its writer goes through a buffer and a copy, which
/// made a batch's write about 25 ns slower: `BENCH_ONLY=codec`).
fn put_var(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `m << 5 | f` (all of `v` but the sign bit) of a number's text without
/// its sign, when the text is of the short-form grammar: `m` is its digits
/// as read (meaningless past 17 of them), `point` where its `.` is.
fn short_form(text: &[u8], point: Option<usize>, m: u64) -> Option<u64> {
    let digits = text.len() - usize::from(point.is_some());
    let int = point.unwrap_or(text.len());
    let frac = digits - int;
    let fits = digits as u32 <= MAX_DIGITS && (frac as u64) < RAW;
    let grammar = int > 0 && (point.is_none() || frac > 0) && (int == 1 || text[0] != b'0');
    (fits && grammar).then_some(m << 5 | (frac as u64))
}

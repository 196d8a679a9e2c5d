//! The spool record: one batch as stored in fjall.
//!
//! The key is the batch's `seq`, 8 bytes big-endian, so key order is seq order.
//! Every record starts with a format version and a CRC-32 (IEEE,
//! little-endian) of everything after the first five bytes.
//!
//! Format version 3, written by this build — FROZEN: as version 2, with
//! the body stored compactly ([`compact`]: what a device's batches repeat,
//! apart from the numbers and the time each poll changes, stored in
//! binary), read back to the body byte for byte. In lz4 blocks it takes
//! 30 % of version 2 on disk (`cargo bench --bench capacity`: 43.3 bytes
//! per batch of 20 `f32` tags in the tables, against 144.4); its codec
//! costs about 350 ns a batch to write (on the buffer's async front while
//! pushes are written through, `store/disk_thread.rs`) and 400 to read
//! (on the disk thread), against 100 and 145 for version 2
//! (`BENCH_ONLY=codec cargo bench --bench buffer`).
//! ```text
//! byte 0        format version (3)
//! bytes 1..5    CRC-32 of bytes 5..
//! bytes 5..13   ts_micros, i64 little-endian
//! bytes 13..17  device id length D, u32 little-endian
//! bytes 17..    device id (UTF-8, D bytes), then the compact body
//! ```
//!
//! Format version 2 — FROZEN: the batch as it goes to NATS (see
//! [`EncodedBatch`]), handed out as read, never decoded. Written by the
//! builds before format 3, and by this one for a body the compact form
//! cannot hold (one with a byte 0x00 or 0x01 in it, which JSON escapes:
//! none that a poller encodes).
//! ```text
//! byte 0        format version (2)
//! bytes 1..5    CRC-32 of bytes 5..
//! bytes 5..13   ts_micros, i64 little-endian
//! bytes 13..17  device id length D, u32 little-endian
//! bytes 17..    device id (UTF-8, D bytes), then the payload body
//!               (the JSON payload without its opening `{"seq":N,`)
//! ```
//!
//! Format version 1 — FROZEN: spools on installed sites hold it, and they
//! are still read (decoded and encoded for NATS on the way out):
//! ```text
//! byte 0      format version (1)
//! bytes 1..5  CRC-32 of bytes 5..
//! bytes 5..   rkyv 0.8 archive of `Batch` (do not reorder or remove its fields)
//! ```
//! Never change the meaning of any of them; add a version beside them instead.

mod compact;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::{Batch, EncodedBatch};

/// The record format this build writes.
pub const FORMAT_VERSION: u8 = V3;
/// The payload body as published (builds before format 3).
const V2: u8 = 2;
/// The compact body, written.
const V3: u8 = 3;
/// The rkyv format of earlier builds, still read.
const V1: u8 = 1;
/// Version and CRC.
const HEADER: usize = 5;
/// Versions 2 and 3: header, ts, device length.
const V2_FIXED: usize = HEADER + 8 + 4;

/// Why a stored record could not be read back. Retrying does not help: the
/// record is set aside (quarantined) and counted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than a header: truncated write or foreign data.
    #[error("record of {0} bytes is shorter than its header")]
    Truncated(usize),
    /// Written by a format this build does not know (a newer ingestor?).
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// The bytes changed after they were written (disk or filesystem damage).
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes found.
        computed: u32,
    },
    /// The checksum matched but the content does not validate.
    #[error("archive does not validate: {0}")]
    Archive(String),
    /// The key is not an 8-byte seq.
    #[error("key of {0} bytes is not a seq")]
    BadKey(usize),
}

/// The fjall key of a seq.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq of a fjall key.
pub fn seq_of(key: &[u8]) -> Result<u64, RecordError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| RecordError::BadKey(key.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Device ids seen while reading, shared by every batch of a device (a
/// read costs no allocation for its device id).
#[derive(Debug, Default)]
pub struct Devices(HashMap<Box<str>, Arc<str>>);

impl Devices {
    /// More distinct ids than this and the table starts over (a spool
    /// holding that many devices is not a plant floor).
    const MAX: usize = 65_536;

    fn get(&mut self, id: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(id) {
            return shared.clone();
        }
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        let shared: Arc<str> = Arc::from(id);
        self.0.insert(id.into(), shared.clone());
        shared
    }
}

/// Writes a batch as a record of this build's format (version 3).
pub fn encode(batch: &EncodedBatch) -> Vec<u8> {
    encode_v3(batch)
}

/// Writes a batch as a version-3 record (version 2 for a body the compact
/// form cannot hold).
pub fn encode_v3(batch: &EncodedBatch) -> Vec<u8> {
    let device = batch.device().as_bytes();
    let body = batch.body();
    // The compact body is written with room for the body and the slack
    // of its short copies, then cut to its length (about the body's).
    let mut out = Vec::with_capacity(V2_FIXED + device.len() + body.len() + compact::ROOM);
    fixed_part(&mut out, V3, batch);
    if !compact::write(body, batch.ts_micros(), &mut out) {
        return encode_v2(batch);
    }
    seal(out)
}

/// Writes a batch as a version-2 record.
pub fn encode_v2(batch: &EncodedBatch) -> Vec<u8> {
    let body = batch.body();
    let mut out = Vec::with_capacity(V2_FIXED + batch.device().len() + body.len());
    fixed_part(&mut out, V2, batch);
    out.extend_from_slice(body);
    seal(out)
}

/// Version, room for the CRC, ts and device id (versions 2 and 3).
fn fixed_part(out: &mut Vec<u8>, version: u8, batch: &EncodedBatch) {
    let device = batch.device().as_bytes();
    out.push(version);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&batch.ts_micros().to_le_bytes());
    // A device id is a config string: never near 4 GiB.
    out.extend_from_slice(
        &u32::try_from(device.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(device);
}

/// Writes the CRC of everything after the header into the header.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out[HEADER..]);
    out[1..HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Writes a batch as a version-1 record, as builds before format 2 did
/// (kept so tests can make the spools installed sites have).
pub fn encode_v1(batch: &Batch) -> Vec<u8> {
    // Serializing owned strings and numbers into memory has no failure path;
    // an error here would be a bug in rkyv, reported as an empty archive that
    // then fails its own validation on read rather than a panic now.
    // Sized for a typical batch up front: growing from empty reallocates ~7 times.
    let writer = AlignedVec::<16>::with_capacity(64 + 32 * batch.values.len());
    let archive =
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(batch, writer).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + archive.len());
    out.push(V1);
    out.extend_from_slice(&crc32fast::hash(&archive).to_le_bytes());
    out.extend_from_slice(&archive);
    out
}

/// Reads a record back (any version), verifying version, checksum and
/// content. The batch's `seq` is 0: it is the key's.
pub fn decode(bytes: &[u8]) -> Result<EncodedBatch, RecordError> {
    decode_shared(&Bytes::copy_from_slice(bytes), &mut Devices::default())
}

/// As [`decode`], for bytes already shared (the batch's body is a slice of
/// them, not a copy), sharing device ids through `devices`.
pub fn decode_shared(bytes: &Bytes, devices: &mut Devices) -> Result<EncodedBatch, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Truncated(bytes.len()));
    }
    let (head, body) = bytes.split_at(HEADER);
    if !matches!(head[0], V1 | V2 | V3) {
        return Err(RecordError::UnknownVersion(head[0]));
    }
    let stored = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    if head[0] == V1 {
        let batch = decode_v1_archive(body)?;
        let device = devices.get(&batch.device);
        return Ok(EncodedBatch::encode_for(&batch, device));
    }
    if bytes.len() < V2_FIXED {
        return Err(RecordError::Truncated(bytes.len()));
    }
    let mut ts = [0; 8];
    ts.copy_from_slice(&bytes[HEADER..HEADER + 8]);
    let mut len = [0; 4];
    len.copy_from_slice(&bytes[HEADER + 8..V2_FIXED]);
    let len = u32::from_le_bytes(len) as usize;
    let rest = &bytes[V2_FIXED..];
    if rest.len() < len {
        return Err(RecordError::Archive(format!(
            "device id of {len} bytes does not fit"
        )));
    }
    let device = std::str::from_utf8(&rest[..len])
        .map_err(|e| RecordError::Archive(format!("device id: {e}")))?;
    let ts = i64::from_le_bytes(ts);
    let body = match head[0] {
        V2 => bytes.slice(V2_FIXED + len..),
        _ => Bytes::from(compact::read(&rest[len..], ts)?),
    };
    EncodedBatch::from_parts(0, devices.get(device), ts, body)
        .map_err(|e| RecordError::Archive(e.to_string()))
}

/// A version-1 record's archive, validated.
fn decode_v1_archive(archive: &[u8]) -> Result<Batch, RecordError> {
    // fjall hands out bytes with no alignment promise; rkyv needs 16.
    let mut aligned = AlignedVec::<16>::with_capacity(archive.len());
    aligned.extend_from_slice(archive);
    rkyv::from_bytes::<Batch, rancor::Error>(&aligned)
        .map_err(|e| RecordError::Archive(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use proptest::prelude::*;

    fn sample() -> Batch {
        let mut b = Batch::new("press-01", chrono::Utc::now());
        b.seq = 42;
        b.values.push(("t".into(), Value::Float(1.5)));
        b.values.push(("s".into(), Value::Str("PX".into())));
        b.errors.push(("p".into(), "timeout".into()));
        b
    }

    #[test]
    fn record_roundtrips_in_every_version() {
        let b = sample();
        for rec in [
            encode_v3(&EncodedBatch::encode(&b)),
            encode_v2(&EncodedBatch::encode(&b)),
        ] {
            let mut back = decode(&rec).unwrap();
            back.seq = b.seq;
            assert_eq!(back, EncodedBatch::encode(&b));
        }
        let mut old = decode(&encode_v1(&b)).unwrap();
        old.seq = b.seq;
        assert_eq!(&old.payload()[..], &b.to_json()[..]);
    }

    #[test]
    fn record_with_flipped_byte_is_rejected_not_misread() {
        let b = sample();
        let e = EncodedBatch::encode(&b);
        for good in [encode_v3(&e), encode_v2(&e), encode_v1(&b)] {
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x5a;
                assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
            }
            assert_eq!(decode(&good[..3]), Err(RecordError::Truncated(3)));
            for cut in HEADER..good.len() {
                assert!(decode(&good[..cut]).is_err(), "cut at {cut} went unnoticed");
            }
        }
    }

    #[test]
    fn a_record_with_a_good_crc_but_a_lying_length_is_refused() {
        let e = EncodedBatch::encode(&sample());
        for mut rec in [encode_v3(&e), encode_v2(&e)] {
            rec[HEADER + 8..V2_FIXED].copy_from_slice(&u32::MAX.to_le_bytes());
            let crc = crc32fast::hash(&rec[HEADER..]);
            rec[1..HEADER].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(decode(&rec), Err(RecordError::Archive(_))));
        }
    }

    #[test]
    fn a_version_3_record_is_a_fraction_of_its_payload() {
        let e = EncodedBatch::encode(&sample());
        let (v3, v2) = (encode_v3(&e).len(), encode_v2(&e).len());
        assert_eq!(encode_v3(&e)[0], V3);
        // The ts text (27 bytes) leaves the record, a length (4) joins it.
        assert!(v3 + 20 < v2, "version 3 {v3} bytes, version 2 {v2}");
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<f64>().prop_map(Value::Float),
            (-1e6f64..1e6).prop_map(Value::Float),
            any::<f32>().prop_map(|x| Value::Float(f64::from(x))),
            ".{0,12}".prop_map(Value::Str),
        ]
    }

    proptest! {
        /// Whatever a batch holds, its version-3 record publishes exactly
        /// the payload it was written with.
        #[test]
        fn any_batch_reads_back_byte_for_byte(
            device in "[a-z0-9_.-]{1,16}",
            ts in any::<i64>(),
            near in 1_700_000_000_000_000i64..1_900_000_000_000_000,
            values in proptest::collection::vec((".{0,8}", any_value()), 0..24),
            errors in proptest::collection::vec((".{0,8}", ".{0,20}"), 0..3),
        ) {
            for ts in [ts, near] {
                let mut b = Batch::new(device.clone(), chrono::Utc::now());
                b.ts_micros = ts;
                b.values = values.clone();
                b.errors = errors.clone();
                let e = EncodedBatch::encode(&b);
                let rec = encode_v3(&e);
                prop_assert_eq!(rec[0], V3);
                let back = decode(&rec).unwrap();
                let (got, want) = (back.payload(), e.payload());
                prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
                prop_assert_eq!(back, e);
            }
        }
    }

    #[test]
    fn key_order_is_seq_order() {
        assert!(key(255) < key(256));
        assert_eq!(seq_of(&key(1 << 40)).unwrap(), 1 << 40);
        assert!(seq_of(b"abc").is_err());
    }
}

//! The spool record: one batch as stored in fjall.
//!
//! The key is the batch's `seq`, 8 bytes big-endian, so key order is seq order.
//! Every record starts with a format version and a CRC-32 (IEEE,
//! little-endian) of everything after the first five bytes.
//!
//! Format version 2, written by this build: the batch as it goes to NATS
//! (see [`EncodedBatch`]), so a drained record is handed out, never decoded.
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
//! Never change the meaning of either; add a version beside them instead.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::{Batch, EncodedBatch};

/// The record format this build writes.
pub const FORMAT_VERSION: u8 = 2;
/// The rkyv format of earlier builds, still read.
const V1: u8 = 1;
/// Version and CRC.
const HEADER: usize = 5;
/// Version 2: header, ts, device length.
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

/// Writes a batch as a version-2 record.
pub fn encode(batch: &EncodedBatch) -> Vec<u8> {
    let device = batch.device().as_bytes();
    let body = batch.body();
    let mut out = Vec::with_capacity(V2_FIXED + device.len() + body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&batch.ts_micros().to_le_bytes());
    // A device id is a config string: never near 4 GiB.
    out.extend_from_slice(
        &u32::try_from(device.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(device);
    out.extend_from_slice(body);
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

/// Reads a record back (either version), verifying version, checksum and
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
    if head[0] != FORMAT_VERSION && head[0] != V1 {
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
    EncodedBatch::from_parts(
        0,
        devices.get(device),
        i64::from_le_bytes(ts),
        bytes.slice(V2_FIXED + len..),
    )
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

    fn sample() -> Batch {
        let mut b = Batch::new("press-01", chrono::Utc::now());
        b.seq = 42;
        b.values.push(("t".into(), Value::Float(1.5)));
        b.values.push(("s".into(), Value::Str("PX".into())));
        b.errors.push(("p".into(), "timeout".into()));
        b
    }

    #[test]
    fn record_roundtrips_in_both_versions() {
        let b = sample();
        let mut back = decode(&encode(&EncodedBatch::encode(&b))).unwrap();
        back.seq = b.seq;
        assert_eq!(back, EncodedBatch::encode(&b));
        let mut old = decode(&encode_v1(&b)).unwrap();
        old.seq = b.seq;
        assert_eq!(&old.payload()[..], &b.to_json()[..]);
    }

    #[test]
    fn record_with_flipped_byte_is_rejected_not_misread() {
        let b = sample();
        for good in [encode(&EncodedBatch::encode(&b)), encode_v1(&b)] {
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
        let mut rec = encode(&EncodedBatch::encode(&sample()));
        rec[HEADER + 8..V2_FIXED].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&rec[HEADER..]);
        rec[1..HEADER].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode(&rec), Err(RecordError::Archive(_))));
    }

    #[test]
    fn key_order_is_seq_order() {
        assert!(key(255) < key(256));
        assert_eq!(seq_of(&key(1 << 40)).unwrap(), 1 << 40);
        assert!(seq_of(b"abc").is_err());
    }
}

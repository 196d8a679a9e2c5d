//! The spool record: one `Batch` as stored in fjall.
//!
//! Format version 1 — FROZEN: existing spools on installed sites hold it.
//! Never change the meaning of these bytes; add version 2 beside it instead.
//!
//! ```text
//! byte 0      format version (1)
//! bytes 1..5  CRC-32 (IEEE, little-endian) of bytes 5..
//! bytes 5..   rkyv 0.8 archive of `Batch` (do not reorder or remove its fields)
//! ```
//! The key is the batch's `seq`, 8 bytes big-endian, so key order is seq order.

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::Batch;

/// The record format this build writes.
pub const FORMAT_VERSION: u8 = 1;
const HEADER: usize = 5;

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
    /// The checksum matched but the archive does not validate.
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

/// Serializes a batch into a version-1 record.
pub fn encode(batch: &Batch) -> Vec<u8> {
    // Serializing owned strings and numbers into memory has no failure path;
    // an error here would be a bug in rkyv, reported as an empty archive that
    // then fails its own validation on read rather than a panic now.
    // Sized for a typical batch up front: growing from empty reallocates ~7 times.
    let writer = AlignedVec::<16>::with_capacity(64 + 32 * batch.values.len());
    let archive =
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(batch, writer).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + archive.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&crc32fast::hash(&archive).to_le_bytes());
    out.extend_from_slice(&archive);
    out
}

/// Reads a record back, verifying version, checksum and archive.
pub fn decode(bytes: &[u8]) -> Result<Batch, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Truncated(bytes.len()));
    }
    let (head, body) = bytes.split_at(HEADER);
    if head[0] != FORMAT_VERSION {
        return Err(RecordError::UnknownVersion(head[0]));
    }
    let stored = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    // fjall hands out bytes with no alignment promise; rkyv needs 16.
    let mut aligned = AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
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
    fn record_roundtrips() {
        let b = sample();
        assert_eq!(decode(&encode(&b)).unwrap(), b);
    }

    #[test]
    fn record_with_flipped_byte_is_rejected_not_misread() {
        let b = sample();
        let good = encode(&b);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        assert_eq!(decode(&good[..3]), Err(RecordError::Truncated(3)));
    }

    #[test]
    fn key_order_is_seq_order() {
        assert!(key(255) < key(256));
        assert_eq!(seq_of(&key(1 << 40)).unwrap(), 1 << 40);
        assert!(seq_of(b"abc").is_err());
    }
}

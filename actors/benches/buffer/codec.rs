//! The record codec alone: the part of our cost the bare baseline does not have.

use std::time::Instant;

use ingestor_actors::buffer::record;
use ingestor_actors::{Batch, EncodedBatch};

use super::{batch, poll_batch};

/// Passes over the batches; each figure is the fastest pass (a pass that
/// first touches fresh memory, or shares the cores with fjall's flush
/// threads, measures those instead of the codec).
const PASSES: usize = 5;

/// Nanoseconds per batch since `start`, for `n` batches.
fn ns_per_batch(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Nanoseconds per batch to encode and to decode a record, in the format
/// this build writes and in format 2 (the payload as published), and to
/// encode a batch's payload (done by its poller, before the buffer sees it).
pub struct Codec {
    encode: f64,
    decode: f64,
    encode_v2: f64,
    decode_v2: f64,
    payload: f64,
}

impl Codec {
    pub fn measure(n: usize) -> Codec {
        let polled: Vec<Batch> = (0..n as u64).map(poll_batch).collect();
        let mut payload = f64::MAX;
        let mut batches = Vec::new();
        for _ in 0..PASSES {
            let start = Instant::now();
            batches = polled.iter().map(EncodedBatch::encode).collect();
            payload = payload.min(ns_per_batch(start, n));
        }
        let (encode, decode) = Self::format(&batches, record::encode);
        let (encode_v2, decode_v2) = Self::format(&batches, record::encode_v2);
        Codec {
            encode,
            decode,
            encode_v2,
            decode_v2,
            payload,
        }
    }

    /// Fastest encode and decode pass of one format.
    fn format(batches: &[EncodedBatch], encode: fn(&EncodedBatch) -> Vec<u8>) -> (f64, f64) {
        let n = batches.len();
        let (mut enc, mut dec) = (f64::MAX, f64::MAX);
        let mut records: Vec<Vec<u8>> = Vec::with_capacity(batches.len());
        for _ in 0..PASSES {
            records.clear();
            let start = Instant::now();
            records.extend(batches.iter().map(encode));
            enc = enc.min(ns_per_batch(start, n));
            let start = Instant::now();
            for r in &records {
                std::hint::black_box(record::decode(r).expect("decode"));
            }
            dec = dec.min(ns_per_batch(start, n));
        }
        (enc, dec)
    }

    pub fn print(&self) {
        println!(
            "record codec ns/batch: encode {:.0}, decode {:.0} (record {} bytes, format {}); format 2: encode {:.0}, decode {:.0} ({} bytes); payload encode in the poller {:.0}",
            self.encode,
            self.decode,
            record::encode(&batch(1)).len(),
            record::FORMAT_VERSION,
            self.encode_v2,
            self.decode_v2,
            record::encode_v2(&batch(1)).len(),
            self.payload
        );
    }
}

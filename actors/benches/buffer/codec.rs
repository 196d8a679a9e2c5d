//! The record codec alone: the part of our cost the bare baseline does not have.

use std::time::Instant;

use ingestor_actors::buffer::record;
use ingestor_actors::{Batch, EncodedBatch};

use super::{batch, poll_batch};

/// Nanoseconds per batch to encode and to decode a record, and to encode a
/// batch's payload (done by its poller, before the buffer sees it).
pub struct Codec {
    encode: f64,
    decode: f64,
    payload: f64,
}

impl Codec {
    pub fn measure(n: usize) -> Codec {
        let polled: Vec<Batch> = (0..n as u64).map(poll_batch).collect();
        let start = Instant::now();
        let batches: Vec<EncodedBatch> = polled.iter().map(EncodedBatch::encode).collect();
        let payload = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        let records: Vec<Vec<u8>> = batches.iter().map(record::encode).collect();
        let encode = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for r in &records {
            std::hint::black_box(record::decode(r).expect("decode"));
        }
        let decode = start.elapsed().as_nanos() as f64 / n as f64;
        Codec {
            encode,
            decode,
            payload,
        }
    }

    pub fn print(&self) {
        println!(
            "record codec ns/batch: encode {:.0}, decode {:.0} (record {} bytes); payload encode in the poller {:.0}",
            self.encode,
            self.decode,
            record::encode(&batch(1)).len(),
            self.payload
        );
    }
}

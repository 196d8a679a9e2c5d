//! Spools of tens of MiB filled as during an outage, and the reclaim goal.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use ingestor_actors::buffer::space::allocated_bytes;
use ingestor_actors::settings::PersistMode;
use ingestor_actors::{Batch, Value};

use super::{batch, open, settings};

pub const MIB: u64 = 1 << 20;

/// A batch of 20 tags (a ~500-byte record, as from a real device).
pub fn wide(n: u64) -> Batch {
    let mut b = batch(n);
    for t in 0..20 {
        b.values
            .push((format!("tag_{t:02}"), Value::Float(n as f64 + f64::from(t))));
    }
    b
}

pub fn spool_bytes(data_dir: &Path) -> u64 {
    allocated_bytes(&data_dir.join("spool")).expect("du of the spool")
}

/// The goal: max(8 MiB, 2 % of the peak).
pub fn limit(peak: u64) -> u64 {
    (peak / 50).max(8 * MIB)
}

/// `n` batches written to disk as during an outage (`persist =
/// "disconnect"`, groups of 500), stopped cleanly; returns the peak
/// allocated size seen.
pub fn fill(data_dir: &Path, n: u64) -> u64 {
    let mut store = open(data_dir, settings(1_000, PersistMode::Disconnect));
    store.set_deliverable(false).unwrap();
    let mut peak = 0;
    for i in 1..=n {
        store.push(wide(i)).unwrap();
        if i.is_multiple_of(500) {
            store.commit().unwrap();
            peak = peak.max(spool_bytes(data_dir));
        }
    }
    store.close().unwrap();
    peak.max(spool_bytes(data_dir))
}

//! The bare-fjall side of the buffer benchmark: the same records written
//! and drained by fjall alone, with no buffer around it.

use std::path::Path;
use std::time::Instant;

use fjall::{Database, KeyspaceCreateOptions, PersistMode as FjallPersist};

use super::GROUP;

/// A fjall database with the spool's `batches` options.
pub fn bare_db(dir: &Path) -> (Database, fjall::Keyspace) {
    let db = Database::builder(dir)
        .cache_size(8 << 20)
        .open()
        .expect("fjall");
    let ks = db
        .keyspace("batches", || {
            KeyspaceCreateOptions::default().max_memtable_size(8 << 20)
        })
        .expect("ks");
    (db, ks)
}

/// Batches/s inserting the same serialized bytes into bare fjall.
pub fn bare_write(dir: &Path, n: usize, records: &[Vec<u8>]) -> f64 {
    let (db, ks) = bare_db(dir);
    let start = Instant::now();
    let mut seq = 0u64;
    while (seq as usize) < n {
        let mut wb = db.batch().durability(Some(FjallPersist::SyncData));
        for rec in records.iter().take(n - seq as usize) {
            seq += 1;
            wb.insert(&ks, seq.to_be_bytes(), rec.as_slice());
        }
        wb.commit().expect("commit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Batches/s for a bare fjall range read + delete from a remembered cursor
/// (`n` records of `rec`, written first).
pub fn bare_drain(dir: &Path, n: usize, rec: &[u8]) -> (f64, f64, f64) {
    let (db, ks) = bare_db(dir);
    for chunk in (1..=n as u64).collect::<Vec<_>>().chunks(GROUP) {
        let mut wb = db.batch();
        for seq in chunk {
            wb.insert(&ks, seq.to_be_bytes(), rec);
        }
        wb.commit().expect("commit");
    }
    let start = Instant::now();
    let mut cursor = 1u64;
    let mut done = 0usize;
    let tenth = (n / 10).max(1);
    let (mut first, mut last_start) = (0.0, None);
    while done < n {
        let items: Vec<_> = ks
            .range(cursor.to_be_bytes()..)
            .take(GROUP)
            .map(|g| g.into_inner().expect("read"))
            .collect();
        let mut wb = db.batch();
        for (k, _v) in &items {
            wb.remove(&ks, k.clone());
        }
        wb.commit().expect("delete");
        done += items.len();
        cursor += items.len() as u64;
        if first == 0.0 && done >= tenth {
            first = done as f64 / start.elapsed().as_secs_f64();
        }
        if last_start.is_none() && done >= n - tenth {
            last_start = Some((Instant::now(), done));
        }
    }
    let total = n as f64 / start.elapsed().as_secs_f64();
    let (t, d) = last_start.unwrap_or((start, 0));
    let last = (n - d) as f64 / t.elapsed().as_secs_f64().max(1e-9);
    (total, first, last)
}

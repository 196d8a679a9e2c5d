//! Spools made for tests: a backlog written by the real `Store` and closed
//! cleanly, and the damage a bad flash cell does to a table file.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use ingestor_actors::buffer::Store;
use ingestor_actors::settings::BufferSettings;
use ingestor_actors::Batch;

/// Pushes `make(1..=n)` into the spool under `data` and closes it cleanly
/// (everything beyond `memory_batches` and then the ring goes to disk).
pub fn prefill(data: &Path, memory_batches: usize, n: u64, make: impl Fn(u64) -> Batch) {
    let settings = BufferSettings {
        memory_batches,
        ..Default::default()
    };
    let (mut store, _) = Store::open(data, settings).unwrap();
    for i in 1..=n {
        store.push(make(i)).unwrap();
    }
    store.close().unwrap();
}

/// Overwrites 4 KiB in the middle of the biggest table file under
/// `spool_dir`, as a flash cell gone bad does; returns that file.
pub fn damage_biggest_table(spool_dir: &Path) -> PathBuf {
    let table = files_under(spool_dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "tables"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a table file");
    let mut bytes = std::fs::read(&table).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 4096].fill(0x5a);
    std::fs::write(&table, bytes).unwrap();
    table
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

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

/// Pushes `make(1..=n)` with `persist = "always"` (every batch synced into
/// the journal) and drops the store without closing it, as a power cut
/// does: the newest batches are in the journal only.
pub fn prefill_crashed(data: &Path, n: u64, make: impl Fn(u64) -> Batch) {
    let settings = BufferSettings {
        memory_batches: 10,
        persist: ingestor_actors::settings::PersistMode::Always,
        ..Default::default()
    };
    let (mut store, _) = Store::open(data, settings).unwrap();
    for i in 1..=n {
        store.push(make(i)).unwrap();
        if i % 50 == 0 {
            store.commit().unwrap();
        }
    }
    store.commit().unwrap();
    drop(store);
}

/// The newest journal of a spool and the length of its written part
/// (fjall pre-allocates the file: the rest is zeros).
pub fn journal(spool_dir: &Path) -> (PathBuf, usize) {
    let path = std::fs::read_dir(spool_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .max()
        .expect("a journal");
    let bytes = std::fs::read(&path).unwrap();
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    (path, used)
}

/// Cuts the journal at `permille` of its written part, as a power cut
/// during a write leaves it.
pub fn cut_journal(spool_dir: &Path, permille: usize) {
    let (path, used) = journal(spool_dir);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len((used * permille / 1000) as u64).unwrap();
}

/// Overwrites `len` bytes at `permille` of the journal's written part (a
/// flash cell gone bad); returns the file's name.
pub fn garble_journal(spool_dir: &Path, permille: usize, len: usize) -> PathBuf {
    let (path, used) = journal(spool_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = used * permille / 1000;
    bytes[at..at + len].fill(0x5a);
    std::fs::write(&path, bytes).unwrap();
    path
}

//! What one file holds that was written and not yet synced: the part a
//! power cut takes away.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Unsynced writes of one file, oldest first (a later one wins where
/// they overlap). Appends to the end of the newest run are merged into it.
#[derive(Debug, Default)]
pub struct Unsynced {
    runs: Vec<(u64, Vec<u8>)>,
}

impl Unsynced {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Remembers `data` written at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some((start, bytes)) = self.runs.last_mut() {
            if *start + bytes.len() as u64 == offset {
                bytes.extend_from_slice(data);
                return;
            }
        }
        self.runs.push((offset, data.to_vec()));
    }

    /// End of the furthest unsynced byte (0: nothing).
    pub fn end(&self) -> u64 {
        self.runs
            .iter()
            .map(|(o, b)| o + b.len() as u64)
            .max()
            .unwrap_or(0)
    }

    /// A truncation (metadata, durable at once) cuts unsynced data past `size`.
    pub fn truncate(&mut self, size: u64) {
        self.runs.retain_mut(|(o, b)| {
            if *o >= size {
                return false;
            }
            b.truncate((size - *o) as usize);
            true
        });
    }

    /// Lays the unsynced bytes over `buf`, which holds the file from `offset`.
    pub fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        for (o, b) in &self.runs {
            let (lo, hi) = ((*o).max(offset), (o + b.len() as u64).min(end));
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&b[(lo - o) as usize..(hi - o) as usize]);
            }
        }
    }

    /// A torn cut: each unsynced write is kept with odds 1/2, a kept one
    /// cut to a random prefix with odds 1/4; the rest is lost.
    pub fn persist_some(&self, file: &File, pick: &mut impl FnMut(u64) -> u64) {
        for (o, b) in &self.runs {
            if pick(2) == 0 {
                continue;
            }
            let len = match pick(4) {
                0 => pick(b.len() as u64) as usize,
                _ => b.len(),
            };
            let _ = file.write_all_at(&b[..len], *o);
        }
    }

    /// fsync: everything goes to the backing file, in order.
    pub fn write_through(&mut self, file: &File) -> std::io::Result<()> {
        for (o, b) in &self.runs {
            file.write_all_at(b, *o)?;
        }
        self.runs.clear();
        Ok(())
    }
}

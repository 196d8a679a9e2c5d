//! Giving the space of published batches back to the filesystem.
//!
//! Deleting a record writes a tombstone: the record's bytes stay in its
//! table and in fjall's journal (one file for all keyspaces, rotated only
//! past 64 MB). Measured before this existed: a 31 MiB backlog drained and
//! compacted still took 33 MiB — the replaced tables were kept by fjall's
//! version history, the journal kept everything written since its start.
//! Once the spool is empty, two steps give it back:
//!
//! 1. [`Compactor::run`] (its own thread, no store lock): flush `batches`'
//!    memtable and major-compact it, so tombstones and the records they
//!    cover leave the tree.
//! 2. [`Spool::reclaim_flush_step`] then [`Spool::reclaim_finish`] (the
//!    buffer's ticks, on the disk thread, a bounded step each): one write
//!    to `meta` and a flush of every keyspace, not waited for, a step per
//!    tick until one finds the earlier flushes done; that last step
//!    flushes, waiting, what came in since (at most 1 MiB: the newest
//!    batches, always there under steady polling). The flush moves
//!    fjall's GC watermark past the compaction, so the table files it
//!    replaced are deleted (and fully flushed sealed journals with them).
//!    Then the database is closed and, with every keyspace flushed, the
//!    journal holds nothing a table does not: it is truncated to zero
//!    length (fjall itself truncates a journal to its last valid entry when
//!    it recovers one) and the database reopened.
//!
//! **Crash safety.** The truncation starts only after every memtable was
//! flushed (fjall fsyncs tables and versions), the journal synced, the
//! database dropped and fjall's own lock file taken by us (proof no handle
//! is left). A crash before it replays a journal whose entries are all in
//! tables (fjall skips them); a crash after it opens on an empty journal;
//! either way fjall takes its sequence counter from the tables. `meta` (seq
//! reservation, `acked`, counters) and `quarantine` are flushed, never
//! rewritten: nothing is lost, nothing comes back.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use fjall::{Keyspace, PersistMode};

use super::{Spool, SpoolError};
use crate::buffer::error::counted;

/// How long the offline `reclaim` waits for fjall's flushes before giving
/// up (the buffer's stepped reclaim waits as many ticks, never blocking).
const FLUSH_WAIT: Duration = Duration::from_secs(10);
/// Memtable bytes the last step flushes waiting: what came in since the
/// step before (under steady polling in `persist = "always"` there always
/// is some: the newest batches). A bounded flush of a few ms.
const LAST_FLUSH_BYTES: u64 = 1 << 20;

/// Reclaims the space of deleted records (step 1 above): rotate the
/// memtable, major compaction. Holds a keyspace handle: drop it before the
/// spool is closed.
pub struct Compactor(Keyspace);

impl Compactor {
    /// Blocks for as long as the compaction takes (about 1.4 s after 1 M records).
    pub fn run(&self) -> Result<(), SpoolError> {
        // Failpoint: a slow flash card (`sleep(ms)`) under the compaction.
        fail::fail_point!("spool::compaction");
        self.0
            .rotate_memtable_and_wait()
            .map_err(counted("compact"))?;
        self.0.major_compact().map_err(counted("compact"))?;
        Ok(())
    }
}

impl Spool {
    /// A handle for compacting away tombstones off the caller's thread.
    pub fn compactor(&self) -> Option<Compactor> {
        self.h.as_ref().map(|h| Compactor(h.batches.clone()))
    }

    /// Step 2 above in one go (blocking, for offline use): flush every
    /// keyspace, close, truncate the journal, reopen. The buffer runs the
    /// same steps one tick at a time ([`Spool::reclaim_flush_step`], then
    /// [`Spool::reclaim_finish`]) so it never waits on a flush. Call it while
    /// no [`Compactor`] is alive. On an error after the close the spool
    /// stays closed (`is_open` false) and `reopen` is retried.
    pub fn reclaim(&mut self) -> Result<(), SpoolError> {
        let since = Instant::now();
        let mut first = true;
        while !self.reclaim_flush_step(first)? {
            first = false;
            if since.elapsed() > FLUSH_WAIT {
                return Err(counted("compact")(fjall::Error::Io(std::io::Error::other(
                    "fjall's flush queue did not empty",
                ))));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.reclaim_finish()
    }

    /// One bounded step of step 2's flush: the `first` writes `meta` (so
    /// its memtable is not empty and its rotation runs fjall's version GC
    /// over every keyspace); every call rotates each keyspace's memtable
    /// without waiting for the flush (an empty one is not rotated). A later
    /// call that finds the earlier flushes done and at most
    /// [`LAST_FLUSH_BYTES`] in the memtables (written since: writes do not
    /// stop for a reclaim) flushes those waiting, the last step. `true`
    /// once every keyspace is in tables: [`Spool::reclaim_finish`] may run.
    pub fn reclaim_flush_step(&mut self, first: bool) -> Result<bool, SpoolError> {
        if first {
            fail::fail_point!("spool::reclaim", |a| Err(counted("compact")(
                crate::buffer::error::injected(a)
            )));
            let h = self.h()?;
            let mut wb = h.db.batch().durability(Some(PersistMode::Buffer));
            self.put_counters(&mut wb, self.live_count, self.live_bytes)?;
            wb.commit().map_err(counted("compact"))?;
        }
        let h = self.h()?;
        let keyspaces = [&h.meta, &h.quarantine, &h.batches];
        let flushing = h.db.outstanding_flushes() > 0
            || keyspaces.iter().any(|ks| ks.sealed_memtable_count() > 0);
        if !first && !flushing && h.db.write_buffer_size() <= LAST_FLUSH_BYTES {
            for ks in keyspaces {
                ks.rotate_memtable_and_wait().map_err(counted("compact"))?;
            }
            return Ok(true);
        }
        let mut busy = flushing;
        for ks in keyspaces {
            busy |= ks.rotate_memtable().map_err(counted("compact"))?;
        }
        Ok(!busy)
    }

    /// Step 2's end, once [`Spool::reclaim_flush_step`] said everything is
    /// in tables: sync, close, truncate the journal, reopen (tens of ms).
    pub fn reclaim_finish(&mut self) -> Result<(), SpoolError> {
        self.h()?
            .db
            .persist(PersistMode::SyncAll)
            .map_err(counted("compact"))?;
        // Close: fjall's own lock is released once every handle is dropped.
        self.h = None;
        truncate_closed(&self.dir)?;
        self.reopen()
    }
}

/// The closed database's journal truncated, with a failpoint (a crash
/// stand-in) on either side of it.
fn truncate_closed(dir: &Path) -> Result<(), SpoolError> {
    fail::fail_point!("spool::reclaim_closed", |a| Err(counted("compact")(
        crate::buffer::error::injected(a)
    )));
    truncate_journals(dir)?;
    fail::fail_point!("spool::reclaim_truncated", |a| Err(counted("compact")(
        crate::buffer::error::injected(a)
    )));
    Ok(())
}

/// With the database closed and every keyspace flushed: the newest journal
/// is truncated to zero length, older (sealed) ones removed, the directory
/// synced. Refuses (an error, nothing touched) while fjall's lock is held.
fn truncate_journals(dir: &Path) -> Result<(), SpoolError> {
    let io = |source| SpoolError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    let lock = File::open(dir.join("lock")).map_err(io)?;
    if lock.try_lock().is_err() {
        return Err(io(std::io::Error::other(
            "fjall's lock is still held: not truncating its journal",
        )));
    }
    let mut journals: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .collect();
    journals.sort();
    let Some((_, active)) = journals.pop() else {
        return Ok(());
    };
    for (_, sealed) in journals {
        std::fs::remove_file(&sealed).map_err(io)?;
    }
    let file = OpenOptions::new().write(true).open(&active).map_err(io)?;
    file.set_len(0).map_err(io)?;
    file.sync_all().map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

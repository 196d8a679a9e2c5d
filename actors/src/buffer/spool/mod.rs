//! The disk tier: a fjall database under `<data_dir>/spool`.
//!
//! Keyspaces: `batches` (seq big-endian -> record), `meta` (counters and the
//! seq reservation), `quarantine` (unreadable records, set aside, never deleted).
//! All calls block on disk I/O: call them from a blocking thread.

use std::fs::File;
use std::path::{Path, PathBuf};

use fjall::{Keyspace, PersistMode};

mod handles;
mod journal;
mod read;
mod reclaim;
mod seq;

pub use reclaim::Compactor;
pub use seq::OpenReport;

use handles::Handles;

use super::error::counted;
pub use super::error::SpoolError;
use super::record::{self, RecordError};
use crate::EncodedBatch;

const META_RESERVED: &str = "seq_reserved";
const META_CLEAN_NEXT: &str = "seq_next_clean";
const META_ACKED: &str = "acked";
const META_COUNT: &str = "live_count";
const META_BYTES: &str = "live_bytes";

/// One record read back from disk.
#[derive(Debug)]
pub enum Read {
    /// A good batch and its record size.
    Batch(EncodedBatch, u32),
    /// A record that could not be read; already moved to quarantine.
    Quarantined(u64, RecordError),
    /// Seqs `first..=last` lie in a block fjall cannot read (checksum
    /// mismatch): stepped over, left in place, deleted with the next ack.
    Damaged(u64, u64),
}

/// The fjall database of one data dir.
pub struct Spool {
    h: Option<Handles>,
    dir: PathBuf,
    /// Offline inspection: unreadable records are reported, not moved.
    read_only: bool,
    _lock: File,
    live_count: u64,
    live_bytes: u64,
    acked: u64,
    reserved: u64,
    /// Device ids of the records read, shared.
    devices: record::Devices,
}

fn meta_u64(meta: &Keyspace, key: &str) -> Result<Option<u64>, SpoolError> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(&*v).ok())
        .map(u64::from_be_bytes))
}

impl Spool {
    /// Opens (or creates) `<data_dir>/spool`, taking the data dir's lock.
    pub fn open(data_dir: &Path) -> Result<(Spool, OpenReport), SpoolError> {
        let io = |source| SpoolError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let lock = File::create(data_dir.join("ingestor.lock")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked(data_dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let dir = data_dir.join("spool");
        let (h, set_aside) = journal::open_or_set_aside(&dir)?;
        let meta = &h.meta;
        let acked = meta_u64(meta, META_ACKED)?.unwrap_or(0);
        let mut spool = Spool {
            live_count: meta_u64(meta, META_COUNT)?.unwrap_or(0),
            live_bytes: meta_u64(meta, META_BYTES)?.unwrap_or(0),
            reserved: meta_u64(meta, META_RESERVED)?.unwrap_or(0),
            acked,
            h: Some(h),
            dir,
            read_only: false,
            _lock: lock,
            devices: record::Devices::default(),
        };
        let mut report = spool.recover_seq()?;
        if set_aside > 0 {
            spool.account_journal_loss(&report)?;
            report.journals_set_aside = set_aside;
        }
        Ok((spool, report))
    }

    fn h(&self) -> Result<&Handles, SpoolError> {
        self.h.as_ref().ok_or(SpoolError::Reopening)
    }

    /// Closes the database and opens it again: after fjall poisoned it (a
    /// failed flush or fsync) nothing is written in place, but what it had
    /// on disk is still there. The counters are re-read from `meta`.
    pub fn reopen(&mut self) -> Result<(), SpoolError> {
        // fjall's own lock is released only once every handle is dropped.
        self.h = None;
        let h = Handles::open(&self.dir).map_err(counted("open"))?;
        self.live_count = meta_u64(&h.meta, META_COUNT)?.unwrap_or(0);
        self.live_bytes = meta_u64(&h.meta, META_BYTES)?.unwrap_or(0);
        self.acked = meta_u64(&h.meta, META_ACKED)?.unwrap_or(0);
        // The file copy may be ahead of `meta` (a reservation made on a full
        // disk): never go back below what was reserved.
        self.reserved = meta_u64(&h.meta, META_RESERVED)?
            .unwrap_or(0)
            .max(self.reserved);
        self.h = Some(h);
        Ok(())
    }

    /// Offline inspection (`spool stats`): reads report unreadable records
    /// but do not move them to quarantine.
    pub fn set_read_only(&mut self) {
        self.read_only = true;
    }

    /// Whether the database is open (not waiting for a reopen).
    pub fn is_open(&self) -> bool {
        self.h.is_some()
    }

    /// The spool's directory (`<data_dir>/spool`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends records (ascending seq, all newer than what is on disk) in one
    /// write batch; `sync` waits for fdatasync.
    pub fn append(&mut self, records: &[(u64, Vec<u8>)], sync: bool) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        fail::fail_point!("spool::write", |a| Err(counted("write")(
            crate::buffer::error::injected(a)
        )));
        let mode = if sync {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        };
        let mut wb = self.h()?.db.batch().durability(Some(mode));
        let mut bytes = 0u64;
        for (seq, rec) in records {
            bytes += rec.len() as u64;
            wb.insert(&self.h()?.batches, record::key(*seq), rec.as_slice());
        }
        let (count, total) = (
            self.live_count + records.len() as u64,
            self.live_bytes + bytes,
        );
        self.put_counters(&mut wb, count, total)?;
        wb.commit()
            .map_err(counted(if sync { "sync" } else { "write" }))?;
        self.live_count = count;
        self.live_bytes = total;
        Ok(())
    }

    /// Writes records again after a failed sync (the reopen), synced: each
    /// is inserted whether or not the reopened database has it (what it
    /// shows may not be on disk), and counted as live only if it was
    /// missing; one moved to quarantine since is left there. Returns how
    /// many were missing.
    pub fn rewrite(&mut self, records: &[(u64, Vec<u8>)]) -> Result<usize, SpoolError> {
        if records.is_empty() {
            return Ok(0);
        }
        fail::fail_point!("spool::write", |a| Err(counted("write")(
            crate::buffer::error::injected(a)
        )));
        let h = self.h()?;
        let mut wb = h.db.batch().durability(Some(PersistMode::SyncData));
        let (mut count, mut total, mut missing) = (self.live_count, self.live_bytes, 0);
        for (seq, rec) in records {
            let key = record::key(*seq);
            if h.quarantine.contains_key(key).map_err(counted("read"))? {
                // Set aside (and counted) since: never brought back.
                continue;
            }
            if !h.batches.contains_key(key).map_err(counted("read"))? {
                count += 1;
                total += rec.len() as u64;
                missing += 1;
            }
            wb.insert(&h.batches, key, rec.as_slice());
        }
        self.put_counters(&mut wb, count, total)?;
        wb.commit().map_err(counted("sync"))?;
        self.live_count = count;
        self.live_bytes = total;
        Ok(missing)
    }

    /// Writes the live counters into `wb`, so they change in the same write
    /// batch as the records they count.
    fn put_counters(
        &self,
        wb: &mut fjall::OwnedWriteBatch,
        count: u64,
        bytes: u64,
    ) -> Result<(), SpoolError> {
        wb.insert(&self.h()?.meta, META_COUNT, count.to_be_bytes());
        wb.insert(&self.h()?.meta, META_BYTES, bytes.to_be_bytes());
        Ok(())
    }

    /// Deletes the given records (seq, size) and moves the acknowledged
    /// cursor to `acked` in the same write batch.
    pub fn delete(&mut self, records: &[(u64, u32)], acked: Option<u64>) -> Result<(), SpoolError> {
        if records.is_empty() && acked.is_none_or(|a| a <= self.acked) {
            return Ok(());
        }
        fail::fail_point!("spool::delete", |a| Err(counted("delete")(
            crate::buffer::error::injected(a)
        )));
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::Buffer));
        let mut bytes = 0u64;
        for (seq, size) in records {
            bytes += u64::from(*size);
            wb.remove(&self.h()?.batches, record::key(*seq));
        }
        let count = self.live_count.saturating_sub(records.len() as u64);
        let total = self.live_bytes.saturating_sub(bytes);
        self.put_counters(&mut wb, count, total)?;
        let acked = acked.unwrap_or(self.acked).max(self.acked);
        wb.insert(&self.h()?.meta, META_ACKED, acked.to_be_bytes());
        wb.commit().map_err(counted("delete"))?;
        self.live_count = count;
        self.live_bytes = total;
        self.acked = acked;
        Ok(())
    }

    /// Flushes the journal to disk (fdatasync).
    pub fn sync(&self) -> Result<(), SpoolError> {
        fail::fail_point!("spool::sync", |a| Err(counted("sync")(
            crate::buffer::error::injected(a)
        )));
        self.h()?
            .db
            .persist(PersistMode::SyncData)
            .map_err(counted("sync"))
    }

    /// Records that the run stopped cleanly at `next_seq`, synced. The
    /// memtables are flushed to tables, so the next start does not replay
    /// (and hold in memory) what the journal holds, and a journal set aside
    /// later loses nothing of this run.
    pub fn close(&mut self, next_seq: u64) -> Result<(), SpoolError> {
        self.h()?
            .batches
            .rotate_memtable_and_wait()
            .map_err(counted("write"))?;
        // `meta` to a table too: after a clean stop the journal holds
        // nothing the tables lack, so one set aside costs nothing.
        self.meta_to_table(|wb, meta| wb.insert(meta, META_CLEAN_NEXT, next_seq.to_be_bytes()))
    }

    /// Writes `change` to `meta`, synced, then flushes `meta` to a table, so
    /// the change no longer depends on the journal.
    fn meta_to_table(
        &self,
        change: impl FnOnce(&mut fjall::OwnedWriteBatch, &Keyspace),
    ) -> Result<(), SpoolError> {
        let h = self.h()?;
        let mut wb = h.db.batch().durability(Some(PersistMode::SyncAll));
        change(&mut wb, &h.meta);
        wb.commit().map_err(counted("sync"))?;
        h.meta.rotate_memtable_and_wait().map_err(counted("sync"))?;
        Ok(())
    }

    /// Batches on disk.
    pub fn live_count(&self) -> u64 {
        self.live_count
    }

    /// Bytes of the records on disk (tombstones of published ones not counted).
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The highest acknowledged seq.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The newest seq on disk.
    pub fn newest_seq(&self) -> Result<Option<u64>, SpoolError> {
        match self.h()?.batches.last_key_value() {
            None => Ok(None),
            Some(g) => Ok(record::seq_of(&g.key().map_err(counted("read"))?).ok()),
        }
    }

    /// The oldest record on disk above the acknowledged cursor.
    pub fn oldest(&mut self) -> Result<Option<Read>, SpoolError> {
        let newest = self.newest_seq()?.unwrap_or(self.acked);
        Ok(self.read_after(self.acked, 1, newest)?.into_iter().next())
    }

    /// The newest readable record on disk.
    pub fn newest(&self) -> Result<Option<EncodedBatch>, SpoolError> {
        match self.h()?.batches.last_key_value() {
            None => Ok(None),
            Some(g) => {
                let (k, v) = g.into_inner().map_err(counted("read"))?;
                Ok(record::decode(&v).ok().map(|mut b| {
                    b.seq = record::seq_of(&k).unwrap_or(0);
                    b
                }))
            }
        }
    }

    /// Records set aside so far.
    pub fn quarantined(&self) -> Result<usize, SpoolError> {
        self.h()?.quarantine.len().map_err(counted("read"))
    }

    /// Bytes the database takes on disk, tombstones included.
    pub fn disk_space(&self) -> u64 {
        self.h
            .as_ref()
            .and_then(|h| h.db.disk_space().ok())
            .unwrap_or(0)
    }

    /// Test and repair access: the raw keyspace of records.
    pub fn raw_batches(&self) -> Result<&Keyspace, SpoolError> {
        Ok(&self.h()?.batches)
    }

    /// Sets the live counters to zero: called once everything on disk up to
    /// the newest record was acknowledged (damaged records, whose sizes were
    /// unknown, leave the counters off until then).
    pub fn reset_counters(&mut self) -> Result<(), SpoolError> {
        if self.live_count == 0 && self.live_bytes == 0 {
            return Ok(());
        }
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::Buffer));
        self.put_counters(&mut wb, 0, 0)?;
        wb.commit().map_err(counted("delete"))?;
        self.live_count = 0;
        self.live_bytes = 0;
        Ok(())
    }
}

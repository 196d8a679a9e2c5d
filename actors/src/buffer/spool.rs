//! The disk tier: a fjall database under `<data_dir>/spool`.
//!
//! Keyspaces: `batches` (seq big-endian -> record), `meta` (counters and the
//! seq reservation), `quarantine` (unreadable records, set aside, never deleted).
//! All calls block on disk I/O: call them from a blocking thread.

use std::fs::File;
use std::path::{Path, PathBuf};

use fjall::config::{FilterPolicy, PinningPolicy};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::record::{self, RecordError};
use crate::Batch;

const META_RESERVED: &str = "seq_reserved";
const META_CLEAN_NEXT: &str = "seq_next_clean";
const META_ACKED: &str = "acked";
const META_COUNT: &str = "live_count";
const META_BYTES: &str = "live_bytes";

/// What went wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Another ingestor holds the data dir. Retrying only helps once it exits.
    #[error(
        "{0} is in use by another ingestor process (only one may open it); stop that one first"
    )]
    Locked(PathBuf),
    /// The data dir could not be created or locked (permissions, missing mount).
    #[error("cannot use data dir {path}: {source}")]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// fjall failed: disk full, I/O error, or a failed fsync (which poisons
    /// the database: the process must restart, retrying in place is unsafe).
    #[error("spool storage error: {0}")]
    Storage(#[from] fjall::Error),
    /// The spool was closed; nothing more is accepted.
    #[error("the buffer is closed")]
    Closed,
}

/// One record read back from disk.
#[derive(Debug)]
pub enum Read {
    /// A good batch and its record size.
    Batch(Batch, u32),
    /// A record that could not be read; already moved to quarantine.
    Quarantined(u64, RecordError),
}

/// What `open` found about the previous run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The next seq to hand out.
    pub next_seq: u64,
    /// Seqs possibly handed out by a run that did not stop cleanly, skipped
    /// so they are never reused.
    pub skipped: Option<(u64, u64)>,
}

/// The fjall database of one data dir.
pub struct Spool {
    db: Database,
    batches: Keyspace,
    meta: Keyspace,
    quarantine: Keyspace,
    _lock: File,
    live_count: u64,
    live_bytes: u64,
    acked: u64,
    reserved: u64,
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
        let db = Database::builder(data_dir.join("spool"))
            .cache_size(8 << 20)
            .open()?;
        // Records are only ever range-read: no bloom filters, and no index or
        // filter blocks pinned in memory, so RSS does not grow with the backlog.
        let opts = || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(8 << 20)
                .filter_policy(FilterPolicy::disabled())
                .filter_block_pinning_policy(PinningPolicy::disabled())
                .index_block_pinning_policy(PinningPolicy::disabled())
        };
        let batches = db.keyspace("batches", opts)?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let quarantine = db.keyspace("quarantine", KeyspaceCreateOptions::default)?;
        let acked = meta_u64(&meta, META_ACKED)?.unwrap_or(0);
        let mut spool = Spool {
            live_count: meta_u64(&meta, META_COUNT)?.unwrap_or(0),
            live_bytes: meta_u64(&meta, META_BYTES)?.unwrap_or(0),
            reserved: meta_u64(&meta, META_RESERVED)?.unwrap_or(0),
            acked,
            db,
            batches,
            meta,
            quarantine,
            _lock: lock,
        };
        let report = spool.recover_seq()?;
        Ok((spool, report))
    }

    /// Where seq continues: exactly after a clean stop; past the whole
    /// reservation after a crash.
    fn recover_seq(&mut self) -> Result<OpenReport, SpoolError> {
        let newest = self.newest_seq()?.unwrap_or(0).max(self.acked);
        let clean = meta_u64(&self.meta, META_CLEAN_NEXT)?;
        let report = match clean {
            Some(next) => OpenReport {
                next_seq: next.max(newest + 1),
                skipped: None,
            },
            None if self.reserved == 0 => OpenReport {
                next_seq: newest + 1,
                skipped: None,
            },
            None => {
                let next = self.reserved.max(newest) + 1;
                let skipped = (newest + 1 < next).then_some((newest + 1, next - 1));
                OpenReport {
                    next_seq: next,
                    skipped,
                }
            }
        };
        Ok(report)
    }

    /// Marks the spool as in use by a running service: from here on a crash
    /// must not look like a clean stop. Offline tools do not call this.
    pub fn begin_run(&mut self) -> Result<(), SpoolError> {
        if meta_u64(&self.meta, META_CLEAN_NEXT)?.is_some() {
            let mut wb = self.db.batch().durability(Some(PersistMode::SyncAll));
            wb.remove(&self.meta, META_CLEAN_NEXT);
            wb.commit()?;
        }
        Ok(())
    }

    /// Makes sure every seq up to `upto` is covered by a synced reservation.
    pub fn reserve(&mut self, upto: u64) -> Result<(), SpoolError> {
        if upto <= self.reserved {
            return Ok(());
        }
        let mut wb = self.db.batch().durability(Some(PersistMode::SyncAll));
        wb.insert(&self.meta, META_RESERVED, upto.to_be_bytes());
        wb.commit()?;
        self.reserved = upto;
        Ok(())
    }

    /// The highest reserved seq.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Appends records (ascending seq, all newer than what is on disk) in one
    /// write batch; `sync` waits for fdatasync.
    pub fn append(&mut self, records: &[(u64, Vec<u8>)], sync: bool) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let mode = if sync {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        };
        let mut wb = self.db.batch().durability(Some(mode));
        let mut bytes = 0u64;
        for (seq, rec) in records {
            bytes += rec.len() as u64;
            wb.insert(&self.batches, record::key(*seq), rec.as_slice());
        }
        let (count, total) = (
            self.live_count + records.len() as u64,
            self.live_bytes + bytes,
        );
        self.put_counters(&mut wb, count, total);
        wb.commit()?;
        self.live_count = count;
        self.live_bytes = total;
        Ok(())
    }

    /// Reads up to `max` records with seq > `after`, ascending. Unreadable
    /// ones are moved to quarantine on the way and reported, not returned.
    pub fn read_after(&mut self, after: u64, max: usize) -> Result<Vec<Read>, SpoolError> {
        let mut out = Vec::with_capacity(max.min(4096));
        let mut bad = Vec::new();
        let start = record::key(after.saturating_add(1));
        for guard in self.batches.range(start..).take(max) {
            let (k, v) = guard.into_inner()?;
            match record::seq_of(&k).and_then(|seq| Ok((seq, record::decode(&v)?))) {
                Ok((seq, mut batch)) => {
                    batch.seq = seq;
                    out.push(Read::Batch(batch, v.len() as u32));
                }
                Err(e) => bad.push((k, v, e)),
            }
        }
        for (k, v, e) in bad {
            let seq = record::seq_of(&k).unwrap_or(0);
            self.set_aside(&k, &v)?;
            out.push(Read::Quarantined(seq, e));
        }
        Ok(out)
    }

    fn set_aside(&mut self, key: &[u8], value: &[u8]) -> Result<(), SpoolError> {
        let mut wb = self.db.batch().durability(Some(PersistMode::SyncData));
        wb.insert(&self.quarantine, key, value);
        wb.remove(&self.batches, key);
        let count = self.live_count.saturating_sub(1);
        let bytes = self.live_bytes.saturating_sub(value.len() as u64);
        self.put_counters(&mut wb, count, bytes);
        wb.commit()?;
        self.live_count = count;
        self.live_bytes = bytes;
        Ok(())
    }

    /// Writes the live counters into `wb`, so they change in the same write
    /// batch as the records they count.
    fn put_counters(&self, wb: &mut fjall::OwnedWriteBatch, count: u64, bytes: u64) {
        wb.insert(&self.meta, META_COUNT, count.to_be_bytes());
        wb.insert(&self.meta, META_BYTES, bytes.to_be_bytes());
    }

    /// Deletes the given records (seq, size) and moves the acknowledged
    /// cursor to `acked` in the same write batch.
    pub fn delete(&mut self, records: &[(u64, u32)], acked: Option<u64>) -> Result<(), SpoolError> {
        if records.is_empty() && acked.is_none_or(|a| a <= self.acked) {
            return Ok(());
        }
        let mut wb = self.db.batch().durability(Some(PersistMode::Buffer));
        let mut bytes = 0u64;
        for (seq, size) in records {
            bytes += u64::from(*size);
            wb.remove(&self.batches, record::key(*seq));
        }
        let count = self.live_count.saturating_sub(records.len() as u64);
        let total = self.live_bytes.saturating_sub(bytes);
        self.put_counters(&mut wb, count, total);
        let acked = acked.unwrap_or(self.acked).max(self.acked);
        wb.insert(&self.meta, META_ACKED, acked.to_be_bytes());
        wb.commit()?;
        self.live_count = count;
        self.live_bytes = total;
        self.acked = acked;
        Ok(())
    }

    /// The oldest records with seq > `after` (seq, size) until `bytes` are covered.
    pub fn oldest_after(&self, after: u64, bytes: u64) -> Result<Vec<(u64, u32)>, SpoolError> {
        let mut out = Vec::new();
        let mut covered = 0u64;
        for guard in self.batches.range(record::key(after.saturating_add(1))..) {
            if covered >= bytes {
                break;
            }
            let (k, v) = guard.into_inner()?;
            covered += v.len() as u64;
            out.push((record::seq_of(&k).unwrap_or(0), v.len() as u32));
        }
        Ok(out)
    }

    /// Flushes the journal to disk (fdatasync).
    pub fn sync(&self) -> Result<(), SpoolError> {
        Ok(self.db.persist(PersistMode::SyncData)?)
    }

    /// Records that the run stopped cleanly at `next_seq`, synced. The
    /// memtable is flushed to a table first, so the next start does not
    /// replay (and hold in memory) what the journal holds.
    pub fn close(&mut self, next_seq: u64) -> Result<(), SpoolError> {
        self.batches.rotate_memtable_and_wait()?;
        let mut wb = self.db.batch().durability(Some(PersistMode::SyncAll));
        wb.insert(&self.meta, META_CLEAN_NEXT, next_seq.to_be_bytes());
        wb.commit()?;
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
        match self.batches.last_key_value() {
            None => Ok(None),
            Some(g) => Ok(record::seq_of(&g.key()?).ok()),
        }
    }

    /// The oldest record on disk above the acknowledged cursor.
    pub fn oldest(&mut self) -> Result<Option<Read>, SpoolError> {
        Ok(self.read_after(self.acked, 1)?.into_iter().next())
    }

    /// The newest readable record on disk.
    pub fn newest(&self) -> Result<Option<Batch>, SpoolError> {
        match self.batches.last_key_value() {
            None => Ok(None),
            Some(g) => {
                let (k, v) = g.into_inner()?;
                Ok(record::decode(&v).ok().map(|mut b| {
                    b.seq = record::seq_of(&k).unwrap_or(0);
                    b
                }))
            }
        }
    }

    /// Records set aside so far.
    pub fn quarantined(&self) -> Result<usize, SpoolError> {
        Ok(self.quarantine.len()?)
    }

    /// Bytes the database takes on disk, tombstones included.
    pub fn disk_space(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// A handle for compacting away tombstones off the caller's thread.
    pub fn compactor(&self) -> Compactor {
        Compactor(self.batches.clone())
    }

    /// Test and repair access: the raw keyspace of records.
    pub fn raw_batches(&self) -> &Keyspace {
        &self.batches
    }
}

/// Reclaims the space of deleted records (rotate memtable, major compaction).
pub struct Compactor(Keyspace);

impl Compactor {
    /// Blocks for as long as the compaction takes (about 1.4 s after 1 M records).
    pub fn run(&self) -> Result<(), SpoolError> {
        self.0.rotate_memtable_and_wait()?;
        self.0.major_compact()?;
        Ok(())
    }
}

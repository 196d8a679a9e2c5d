//! Opening the spool's fjall database, with the tuning its records need.

use std::path::Path;

use fjall::config::{BlockSizePolicy, CompressionPolicy, FilterPolicy, PinningPolicy};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions};

/// Data block size of `batches` (bytes, before compression).
const DATA_BLOCK: u32 = 32 * 1024;

/// The open fjall database and its keyspaces (dropped to reopen).
pub(super) struct Handles {
    pub(super) db: Database,
    pub(super) batches: Keyspace,
    pub(super) meta: Keyspace,
    pub(super) quarantine: Keyspace,
}

impl Handles {
    pub(super) fn open(dir: &Path) -> Result<Handles, fjall::Error> {
        // Journals at most 64 MiB together (fjall's least; its default is
        // 512): a sealed journal lives until every keyspace flushed what it
        // holds, and `meta`'s counters are in each, so at the default a
        // 1 M-batch outage kept 226 MiB of records a second time,
        // uncompressed, beside their tables; now 66 (`cargo bench --bench
        // capacity` prints the journal's peak).
        let db = Database::builder(dir)
            .cache_size(8 << 20)
            .max_journaling_size(64 << 20)
            .open()?;
        // Records are only ever range-read: no bloom filters, and no index or
        // filter blocks pinned in memory, so RSS does not grow with the backlog.
        // Data blocks of 32 KiB, lz4 on every level (fjall's default leaves
        // levels 0 and 1, where an outage backlog lives, uncompressed):
        // consecutive records repeat their keys, units and device ids, so a
        // block holds about 2.7x the records (`cargo bench --bench capacity`).
        // Both are kept per keyspace when it is created: a spool made by an
        // earlier build keeps its own and reads as before.
        let opts = || {
            KeyspaceCreateOptions::default()
                .max_memtable_size(8 << 20)
                .filter_policy(FilterPolicy::disabled())
                .filter_block_pinning_policy(PinningPolicy::disabled())
                .index_block_pinning_policy(PinningPolicy::disabled())
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK))
        };
        Ok(Handles {
            batches: db.keyspace("batches", opts)?,
            meta: db.keyspace("meta", KeyspaceCreateOptions::default)?,
            quarantine: db.keyspace("quarantine", KeyspaceCreateOptions::default)?,
            db,
        })
    }
}

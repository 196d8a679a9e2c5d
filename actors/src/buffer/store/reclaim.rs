//! An emptied spool gives its space back (`spool/reclaim.rs` has the steps
//! and why they are crash-safe).
//!
//! Trigger: an ack that leaves at most [`DRAINED_AT_MOST`] records on disk
//! after enough deletes (`COMPACT_AFTER_DELETES` records, or more than
//! `COMPACT_ABOVE_BYTES` allocated, or any after the spool was full) starts
//! the compaction on a thread of its own; the buffer's ticks after it
//! finished flush (a non-waiting step per tick, the last one flushing at
//! most 1 MiB of what came in since), then truncate the journal and reopen
//! (`reclaim_if_due`): no tick ever waits on the compaction or on a big
//! flush. Goal: within 60 s of the drain the spool occupies at most
//! max(8 MiB, 2 % of its peak).
//!
//! "Drained" allows a few records: in `persist = "always"` every poll is
//! on disk until its ack, so under steady polling the spool is never
//! empty, neither at an ack nor at a tick. Records written during the
//! reclaim are flushed to tables before the journal is truncated, so they
//! are kept like any other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Store;
use crate::buffer::error::SpoolState;

/// Deleted records after which an emptied spool is compacted...
const COMPACT_AFTER_DELETES: u64 = 10_000;
/// ...or, after any delete, allocated bytes above which it is.
const COMPACT_ABOVE_BYTES: u64 = 4 << 20;
/// Records on disk a spool may still hold and count as drained (the
/// newest polls; more is a backlog again, and its drain reclaims).
const DRAINED_AT_MOST: u64 = 1024;
/// How long the stepped reclaim waits (a step per tick) for fjall's
/// flushes before calling it off.
const FLUSH_PATIENCE: Duration = Duration::from_secs(60);

/// The reclaim's state: deletes counted since the last compaction, the
/// compaction thread, and the stepped flush that follows it.
#[derive(Debug, Default)]
pub(super) struct Reclaim {
    /// Records deleted since the last compaction.
    deletes: u64,
    /// Set while the compaction thread runs (it clears it).
    compacting: Arc<AtomicBool>,
    /// The compaction thread, joined before the database is closed or
    /// reopened (it holds a handle on it: fjall refuses a second open).
    compaction: Option<JoinHandle<()>>,
    /// A compaction of the emptied spool was started: the ticks finish
    /// the reclaim once it is done.
    due: bool,
    /// The reclaim's flush started then (a step per tick).
    flushing_since: Option<Instant>,
}

impl Reclaim {
    /// `n` more records deleted (by an ack).
    pub(super) fn deleted(&mut self, n: u64) {
        self.deletes += n;
    }

    /// Whether the compaction thread still holds the database.
    pub(super) fn is_compacting(&self) -> bool {
        self.compacting.load(Ordering::Acquire)
    }
}

impl Drop for Store {
    /// The database closes when the store is dropped: not while a
    /// compaction thread still holds it (a reopen right after would find
    /// it locked).
    fn drop(&mut self) {
        self.wait_for_compaction();
    }
}

impl Store {
    /// Called after every ack (and a reopen): starts the compaction of an
    /// emptied spool.
    pub(super) fn compact_if_drained(&mut self) {
        let n = self.reclaim.deletes;
        let enough = n >= COMPACT_AFTER_DELETES
            || (n > 0
                && (self.health.state() == SpoolState::Full
                    || self.space.allocated() > COMPACT_ABOVE_BYTES));
        // A reclaim already under way (compacted, its flush steps due) goes
        // first: under steady acks (`persist = "always"`) a new compaction
        // after every emptying ack kept the ticks from ever stepping it.
        if self.spool.live_count() > DRAINED_AT_MOST || !enough || self.reclaim.due {
            return;
        }
        // A database to reopen (and a failed sync's records to write again)
        // goes first: a compaction holds the database, and until the reopen
        // `take` hands out nothing. The reopen starts it (`spill`).
        if self.health.needs_reopen() || self.rewrite_due() {
            return;
        }
        if self.reclaim.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        self.reclaim.deletes = 0;
        let Some(compactor) = self.spool.compactor() else {
            self.reclaim.compacting.store(false, Ordering::Release);
            return;
        };
        let flag = self.reclaim.compacting.clone();
        let spawned = std::thread::Builder::new()
            .name("spool-compact".into())
            .spawn(move || {
                if let Err(e) = compactor.run() {
                    tracing::warn!(error = %e, "compacting the emptied spool failed; space is reclaimed after the next drain");
                }
                // The reclaim closes the database: no handle may outlive the flag.
                drop(compactor);
                flag.store(false, Ordering::Release);
            });
        match spawned {
            Ok(thread) => {
                self.reclaim.compaction = Some(thread);
                self.reclaim.due = true;
            }
            Err(_) => self.reclaim.compacting.store(false, Ordering::Release),
        }
    }

    /// Waits for a compaction thread still running (it holds the database
    /// open): before the spool is closed, reopened or dropped.
    pub(super) fn wait_for_compaction(&mut self) {
        if let Some(thread) = self.reclaim.compaction.take() {
            let _ = thread.join();
        }
    }

    /// From the buffer's tick (on the disk thread), one bounded step per
    /// tick: once the compaction has finished and the spool is still
    /// drained, rotates every keyspace's memtable (never waiting for the
    /// flush, so the buffer always answers), and on a later tick that
    /// finds those flushes done, flushes what came in since (at most
    /// 1 MiB, waiting), truncates the journal and reopens, then measures
    /// again. A backlog on disk meanwhile (more than [`DRAINED_AT_MOST`]
    /// records), or flushes that take longer than [`FLUSH_PATIENCE`], call
    /// it off (tried again after the next drain). A failure before the close only logs; one after it
    /// leaves the spool closed, and the tick reopens it
    /// (`SpoolState::Error` until then, batches stay in memory).
    pub fn reclaim_if_due(&mut self) {
        if !self.reclaim.due || self.reclaim.is_compacting() {
            return;
        }
        if self.lifecycle.is_closed()
            || !self.health.is_ok()
            || self.spool.live_count() > DRAINED_AT_MOST
        {
            return self.call_off_reclaim();
        }
        let first = self.reclaim.flushing_since.is_none();
        let since = *self.reclaim.flushing_since.get_or_insert_with(Instant::now);
        match self.spool.reclaim_flush_step(first) {
            Ok(true) => {}
            Ok(false) if since.elapsed() < FLUSH_PATIENCE => return,
            Ok(false) => {
                tracing::warn!(
                    waited_s = since.elapsed().as_secs(),
                    "the drained spool's flushes did not finish; its space is given back after the next drain"
                );
                return self.call_off_reclaim();
            }
            Err(e) => {
                tracing::warn!(error = %e, "giving the drained spool's space back failed; tried again after the next drain");
                return self.call_off_reclaim();
            }
        }
        self.call_off_reclaim();
        let before = self.space.allocated();
        let started = Instant::now();
        let result = self.spool.reclaim_finish();
        self.space.refresh(self.spool.dir());
        self.publish_gauges();
        match result {
            Ok(()) => tracing::info!(
                before_bytes = before,
                after_bytes = self.space.allocated(),
                took_ms = started.elapsed().as_millis() as u64,
                "spool drained: space given back"
            ),
            Err(e) if self.spool.is_open() => {
                tracing::warn!(error = %e, "giving the drained spool's space back failed; tried again after the next drain");
            }
            Err(e) => self.enter_degraded(&e),
        }
    }

    /// The reclaim is over (done, or called off until the next drain).
    fn call_off_reclaim(&mut self) {
        self.reclaim.due = false;
        self.reclaim.flushing_since = None;
    }
}

//! `Store`: the ring, delivery, disk health and the spool, as one
//! synchronous object.
//!
//! It lives on its disk thread (`disk_thread`), its one owner: the
//! BufferActor sends it jobs; the supervisor keeps the `SharedStore` handle
//! so a restarted actor finds the ring exactly as it was, and may only
//! close through a `StoreControl`. Its parts, each a type of its own:
//! [`ring::Ring`] (memory, pending, the drop policy),
//! [`delivery::Delivery`] (cursors, in flight, leases),
//! [`health::DiskHealth`] (whether the spool takes writes), the
//! [`Spool`] (fjall), and [`lifecycle::Lifecycle`] (open or closed).
//! Writing to disk, the full/error state and its recovery are in `spill`.

mod delivery;
mod disk_thread;
mod gaps;
mod health;
mod lifecycle;
mod reclaim;
mod ring;
mod seqs;
mod set_aside;
mod spill;
mod tickets;
mod unsynced;

use std::sync::Arc;

use metrics::{counter, gauge};

use super::error::{CloseError, SpoolState};
use super::space::Space;
use super::spool::{OpenReport, Read, Spool, SpoolError};
use crate::metric_names;
use crate::settings::{BufferSettings, PersistMode};
use crate::EncodedBatch;

/// Damaged seq ranges longer than this are left on disk (not deleted by
/// the ack that passes them) rather than listed one by one.
const MAX_DAMAGED_DELETE: u64 = 1 << 20;

pub use disk_thread::{CloseReport, DiskThreadGone, SharedStore, StoreControl};
pub use set_aside::SetAsideReason;
pub use spill::Committed;

/// What the buffer holds right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Batches in the memory ring.
    pub memory_batches: u64,
    /// Batches accepted and waiting for their group commit to disk.
    pub pending: u64,
    /// Batches in the spool.
    pub disk_batches: u64,
    /// What the spool occupies on disk: allocated bytes of all its files,
    /// as `ingestor_buffer_disk_bytes` shows it (`space`).
    pub disk_bytes: u64,
    /// Batches taken by the publisher and not yet acknowledged.
    pub in_flight: u64,
    /// Next seq to be handed out.
    pub next_seq: u64,
    /// Whether the spool takes writes (`/health`'s `"spool"`).
    pub spool: SpoolState,
    /// When the oldest unpublished batch was polled (µs since the epoch),
    /// as the last tick found it (`ingestor_buffer_oldest_age_seconds`).
    pub oldest_ts_micros: Option<i64>,
}

/// The buffer: ring (newest batches) over spool (oldest batches).
pub struct Store {
    settings: BufferSettings,
    /// The memory tier: ring, pending, drop policy (`ring`).
    ring: ring::Ring,
    spool: Spool,
    next_seq: u64,
    /// Cursors, in-flight records, leases (`delivery`).
    delivery: delivery::Delivery,
    /// Newest seq written to disk (0: none).
    disk_newest: u64,
    /// The Publisher says batches are being confirmed (`set_deliverable`).
    deliverable: bool,
    /// Written to OS buffers since the last sync (the tick syncs).
    dirty: bool,
    /// Open (and the seq reservation's state) or closed (`lifecycle`).
    lifecycle: lifecycle::Lifecycle,
    /// Whether disk writes are possible, and what gets them back (`health`).
    health: health::DiskHealth,
    /// The emptied spool's space given back, in steps (`reclaim`).
    reclaim: reclaim::Reclaim,
    /// Records written since the last good sync (`unsynced`).
    unsynced: unsynced::Unsynced,
    /// What each inlet's tickets got (`tickets`).
    tickets: tickets::Tickets,
    /// Gaps noted since the last tick, to become events (`gaps`).
    gaps: gaps::Gaps,
    /// The spool's size on disk and its filesystem's free space.
    space: Space,
    /// Batches set aside (`set_aside`): what the cursor steps over.
    aside: set_aside::Aside,
}

impl Store {
    /// Opens the spool under `data_dir` and recovers where seq continues.
    pub fn open(
        data_dir: &std::path::Path,
        settings: BufferSettings,
    ) -> Result<(Store, OpenReport), SpoolError> {
        let (mut spool, report) = Spool::open(data_dir)?;
        spool.begin_run()?;
        if let Some((from, to)) = report.skipped {
            tracing::warn!(
                from, to,
                "the previous run did not stop cleanly: seqs {from}..={to} may have been handed out \
                 and are skipped so none is reused; batches accepted before the crash are kept"
            );
        }
        let acked = spool.acked();
        let disk_newest = spool.newest_seq()?.unwrap_or(0);
        let space = Space::measure(spool.dir());
        let mut store = Store {
            ring: ring::Ring::new(&settings),
            settings,
            spool,
            next_seq: report.next_seq,
            delivery: delivery::Delivery::from_acked(acked),
            disk_newest,
            deliverable: false,
            dirty: false,
            lifecycle: Default::default(),
            health: health::DiskHealth::Ok,
            reclaim: Default::default(),
            unsynced: Default::default(),
            tickets: Default::default(),
            gaps: Default::default(),
            space,
            aside: Default::default(),
        };
        if let Some((from, to)) = report.skipped {
            store.gaps.note(from, to, gaps::GapReason::Crash);
        }
        store.publish_gauges();
        Ok((store, report))
    }

    /// Hands the store to its disk thread, its one owner from here on
    /// (`disk_thread`); the handle goes to the supervisor and each actor.
    /// Fails only when the OS refuses a new thread.
    pub fn shared(self) -> std::io::Result<SharedStore> {
        SharedStore::start(self)
    }

    /// Whether a push waits in `pending` for a commit (written through).
    pub(super) fn writes_through(&self) -> bool {
        if !self.health.is_ok() {
            return false;
        }
        match self.settings.persist {
            PersistMode::Always => true,
            // Also while a disk backlog drains (the ring is empty then):
            // polls made meanwhile wait behind it on disk, not in memory,
            // however long the drain takes.
            PersistMode::Disconnect => {
                !self.deliverable || (self.ring.is_empty() && self.spool.live_count() > 0)
            }
            PersistMode::Overflow => false,
        }
    }

    /// Accepts a batch: assigns its seq. In write-through modes it waits in
    /// `pending` until `commit` (and counts in `ingestor_batches_total`
    /// only then: in `always` once synced); otherwise it is in the ring on
    /// return.
    pub fn push(&mut self, batch: impl Into<EncodedBatch>) -> Result<u64, SpoolError> {
        self.push_prepared(batch.into(), None)
    }

    /// `push` of a batch whose spool record the async front may have
    /// encoded already (`disk_thread`: off the disk thread).
    pub(in crate::buffer) fn push_prepared(
        &mut self,
        mut batch: EncodedBatch,
        record: Option<Vec<u8>>,
    ) -> Result<u64, SpoolError> {
        if self.lifecycle.is_closed() {
            return Err(SpoolError::Closed);
        }
        let seq = self.next_seq;
        self.reserve_ahead(seq)?;
        self.next_seq += 1;
        batch.seq = seq;
        if self.writes_through() {
            // Counted as accepted by `commit`, once written (and synced).
            self.ring.add_pending(batch, record);
        } else {
            // Pending batches are older than this one: disk first.
            self.commit()?;
            self.ring.accept(batch);
            self.spill_overflow();
            self.enforce_memory_cap();
            self.publish_gauges();
        }
        Ok(seq)
    }

    /// Every in-flight batch goes out again, first.
    pub fn nack(&mut self) {
        self.delivery.requeue();
    }

    /// Batches are being confirmed (`true`) or not, as the Publisher says;
    /// in `persist = "disconnect"` a stall moves the ring to disk at once
    /// and writes every later batch through until confirmations flow.
    pub fn set_deliverable(&mut self, confirming: bool) -> Result<(), SpoolError> {
        let was = self.writes_through();
        self.deliverable = confirming;
        if was && !self.writes_through() {
            self.commit()?;
        }
        if !was && self.writes_through() {
            self.flush_ring();
        }
        self.publish_gauges();
        Ok(())
    }

    fn flush_ring(&mut self) {
        self.spill_oldest(self.ring.len());
    }

    /// Periodic: bounds the power-loss window of unsynced disk writes. A
    /// failed sync poisons fjall: the spool is reopened by `retry`.
    pub fn sync_if_dirty(&mut self) -> Result<(), SpoolError> {
        if self.dirty && self.health.is_ok() {
            if let Err(e) = self.spool.sync() {
                self.note_sync_failed();
                self.enter_degraded(&e);
                return Ok(());
            }
            self.dirty = false;
            self.note_synced();
        }
        Ok(())
    }

    /// Ring and pending to disk, synced, clean stop recorded. Pushes are
    /// refused from here on. Idempotent (a second call repeats the first
    /// one's verdict). An error names what could not be saved.
    pub fn close(&mut self) -> Result<(), SpoolError> {
        if let lifecycle::Lifecycle::Closed { unsaved } = &self.lifecycle {
            return match unsaved {
                None => Ok(()),
                Some(why) => Err(SpoolError::CloseFailed(why.clone())),
            };
        }
        // A full or failed spool gets a last chance (space may be back).
        // Unlike the tick it waits for a compaction holding the database,
        // so a due reopen happens and writes a failed sync's records again.
        if self.health.needs_reopen() {
            self.wait_for_compaction();
        }
        self.refresh_and_retry();
        self.save_set_aside(true);
        self.commit()?;
        // What `commit` could not write is in the ring now: oldest first,
        // as much as fits.
        self.save_ring_what_fits();
        let unsaved = self.ring.len() + self.ring.pending_len() + self.unsynced_lost();
        let synced = self
            .spool
            .sync()
            .and_then(|()| self.spool.close(self.next_seq));
        self.nack();
        self.lifecycle = lifecycle::Lifecycle::Closed { unsaved: None };
        self.dirty = false;
        self.publish_gauges();
        let why = match (synced, unsaved) {
            (Ok(()), 0) => return Ok(()),
            (Ok(()), batches) => CloseError::Unsaved {
                batches,
                spool: self.health.state(),
            },
            (Err(e), 0) => CloseError::SyncFailed(Arc::new(e)),
            (Err(e), batches) => CloseError::SyncFailedAndUnsaved {
                error: Arc::new(e),
                batches,
            },
        };
        if unsaved > 0 {
            counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error")
                .increment(unsaved as u64);
        }
        self.lifecycle = lifecycle::Lifecycle::Closed {
            unsaved: Some(why.clone()),
        };
        Err(SpoolError::CloseFailed(why))
    }

    /// Counts for stats, health and the status line.
    pub fn stats(&self) -> BufferStats {
        BufferStats {
            memory_batches: self.ring.len() as u64,
            pending: self.ring.pending_len() as u64,
            disk_batches: self.spool.live_count(),
            disk_bytes: self.space.allocated(),
            in_flight: self.delivery.in_flight(),
            next_seq: self.next_seq,
            spool: self.health.state(),
            oldest_ts_micros: None,
        }
    }

    /// Time of the oldest unpublished batch (reads one disk record at most).
    pub fn oldest_ts_micros(&mut self) -> Result<Option<i64>, SpoolError> {
        if self.spool.live_count() > 0 {
            if let Some(Read::Batch(b, _)) = self.spool.oldest()? {
                return Ok(Some(b.ts_micros()));
            }
        }
        Ok(self.ring.oldest_batch().map(|b| b.ts_micros()))
    }

    /// The spool, for offline inspection.
    pub fn spool(&mut self) -> &mut Spool {
        &mut self.spool
    }

    fn publish_gauges(&self) {
        gauge!(metric_names::BUFFER_BATCHES, "tier" => "memory").set(self.ring.len() as f64);
        gauge!(metric_names::BUFFER_BATCHES, "tier" => "disk").set(self.spool.live_count() as f64);
        gauge!(metric_names::BUFFER_DISK_BYTES).set(self.space.allocated() as f64);
    }
}

impl Store {
    /// Accepted batches waiting for a commit.
    pub fn pending_len(&self) -> usize {
        self.ring.pending_len()
    }

    /// Whether accepted batches wait for a commit.
    pub fn has_pending(&self) -> bool {
        self.ring.pending_len() > 0
    }

    /// Whether the store was closed (pushes are refused).
    pub(in crate::buffer) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }
}

//! `Store`: the ring, the spool and the cursors, as one synchronous object.
//!
//! The BufferActor drives it from blocking threads; the supervisor keeps the
//! `SharedStore` so a restarted actor finds the ring exactly as it was.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metrics::{counter, gauge};

use super::record;
use super::spool::{OpenReport, Read, Spool, SpoolError};
use crate::settings::{BufferSettings, PersistMode, WhenDiskFull};
use crate::Batch;

/// Seqs reserved (and synced) ahead of what is handed out.
const RESERVE_BLOCK: u64 = 65_536;
/// Deleted records after which an emptied spool is compacted.
const COMPACT_AFTER_DELETES: u64 = 10_000;

/// The store as the supervisor keeps it and hands it to each BufferActor.
pub type SharedStore = Arc<Mutex<Store>>;

/// Locks a shared store; a panic in an earlier holder does not make the data
/// unreachable (every operation leaves the store consistent between fjall calls).
pub fn lock(store: &SharedStore) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What became of a pushed batch.
pub type Accepted = (u64, Result<(), String>);

/// The buffer: ring (newest batches) over spool (oldest batches).
pub struct Store {
    settings: BufferSettings,
    ring: VecDeque<Batch>,
    spool: Spool,
    /// Batches accepted but not yet written through to disk (group commit).
    pending: Vec<Batch>,
    next_seq: u64,
    /// Highest seq handed to the publisher.
    taken: u64,
    /// Highest seq the publisher confirmed.
    acked: u64,
    /// In-flight batches that live on disk: (seq, record size).
    in_flight_disk: VecDeque<(u64, u32)>,
    /// Newest seq written to disk (0: none).
    disk_newest: u64,
    connected: bool,
    dirty: bool,
    closed: bool,
    deletes_since_compact: u64,
    compacting: Arc<AtomicBool>,
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
        let store = Store {
            ring: VecDeque::with_capacity(settings.memory_batches.min(1 << 16)),
            settings,
            spool,
            pending: Vec::new(),
            next_seq: report.next_seq,
            taken: acked,
            acked,
            in_flight_disk: VecDeque::new(),
            disk_newest,
            connected: false,
            dirty: false,
            closed: false,
            deletes_since_compact: 0,
            compacting: Arc::new(AtomicBool::new(false)),
        };
        store.publish_gauges();
        Ok((store, report))
    }

    /// Wraps the store for sharing between supervisor and actor.
    pub fn shared(self) -> SharedStore {
        Arc::new(Mutex::new(self))
    }

    fn writes_through(&self) -> bool {
        match self.settings.persist {
            PersistMode::Always => true,
            PersistMode::Disconnect => !self.connected,
            PersistMode::Overflow => false,
        }
    }

    /// Accepts a batch: assigns its seq. In write-through modes it waits in
    /// `pending` until `commit`; otherwise it is in the ring on return.
    pub fn push(&mut self, mut batch: Batch) -> Result<u64, SpoolError> {
        if self.closed {
            return Err(SpoolError::Closed);
        }
        let seq = self.next_seq;
        if seq > self.spool.reserved() {
            self.spool.reserve(seq + RESERVE_BLOCK - 1)?;
        }
        self.next_seq += 1;
        batch.seq = seq;
        counter!("ingestor_batches_total").increment(1);
        if self.writes_through() {
            self.pending.push(batch);
        } else {
            // Pending batches are older than this one: disk first.
            self.commit()?;
            self.ring.push_back(batch);
            self.spill_overflow()?;
            self.publish_gauges();
        }
        Ok(seq)
    }

    /// Writes pending batches to disk in one write batch (synced in
    /// `persist = "always"`), and says what became of each.
    pub fn commit(&mut self) -> Result<Vec<Accepted>, SpoolError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let batches = std::mem::take(&mut self.pending);
        let sync = self.settings.persist == PersistMode::Always;
        let seqs: Vec<u64> = batches.iter().map(|b| b.seq).collect();
        let dropped = self.write_to_disk(batches, sync)?;
        self.publish_gauges();
        Ok(seqs
            .into_iter()
            .map(|s| {
                let fate = match dropped.contains(&s) {
                    true => Err("dropped: spool full (when_disk_full = drop_newest)".to_string()),
                    false => Ok(()),
                };
                (s, fate)
            })
            .collect())
    }

    /// Moves the oldest part of a full ring to disk, many batches per write.
    fn spill_overflow(&mut self) -> Result<(), SpoolError> {
        let cap = self.settings.memory_batches.max(1);
        if self.ring.len() <= cap {
            return Ok(());
        }
        let chunk = (cap / 8).clamp(1, 4096).max(self.ring.len() - cap);
        self.spill_oldest(chunk)
    }

    /// Moves the `n` oldest ring batches to disk in one write, counted as spilled.
    fn spill_oldest(&mut self, n: usize) -> Result<(), SpoolError> {
        let moving: Vec<Batch> = self.ring.drain(..n).collect();
        let moved = moving.len() as u64;
        let dropped = self.write_to_disk(moving, false)?;
        counter!("ingestor_buffer_spilled_total").increment(moved - dropped.len() as u64);
        Ok(())
    }

    /// Writes batches (all newer than the disk's, older than the ring's) to
    /// disk under `disk_max`; returns the seqs dropped by `drop_newest`.
    fn write_to_disk(&mut self, batches: Vec<Batch>, sync: bool) -> Result<Vec<u64>, SpoolError> {
        let mut records: Vec<(u64, Vec<u8>)> =
            batches.iter().map(|b| (b.seq, record::encode(b))).collect();
        let incoming: u64 = records.iter().map(|(_, r)| r.len() as u64).sum();
        let limit = self.settings.disk_max.as_u64();
        let mut excess = (self.spool.live_bytes() + incoming).saturating_sub(limit);
        if excess > 0 && self.settings.when_disk_full == WhenDiskFull::DropOldest {
            let victims = self.spool.oldest_after(self.taken, excess)?;
            let freed: u64 = victims.iter().map(|(_, s)| u64::from(*s)).sum();
            self.spool.delete(&victims, None)?;
            counter!("ingestor_buffer_dropped_total", "reason" => "disk_full_oldest")
                .increment(victims.len() as u64);
            excess = excess.saturating_sub(freed);
        }
        // drop_newest, or nothing old enough left to drop: refuse the newest.
        let mut dropped = Vec::new();
        while excess > 0 {
            let Some((seq, rec)) = records.pop() else {
                break;
            };
            excess = excess.saturating_sub(rec.len() as u64);
            dropped.push(seq);
        }
        if !dropped.is_empty() {
            counter!("ingestor_buffer_dropped_total", "reason" => "disk_full_newest")
                .increment(dropped.len() as u64);
        }
        self.spool.append(&records, sync)?;
        for (seq, rec) in &records {
            if *seq <= self.taken {
                // Taken from the ring, now on disk: its ack deletes it there.
                self.in_flight_disk.push_back((*seq, rec.len() as u32));
            }
        }
        if let Some((seq, _)) = records.last() {
            self.disk_newest = self.disk_newest.max(*seq);
            self.dirty = !sync;
        }
        Ok(dropped)
    }

    /// Up to `max` oldest batches not in flight, ascending seq: disk, then ring.
    pub fn take(&mut self, max: usize) -> Result<Vec<Batch>, SpoolError> {
        let mut out = Vec::new();
        if self.taken < self.disk_newest && max > 0 {
            let reads = self.spool.read_after(self.taken, max)?;
            let exhausted = reads.len() < max;
            for read in reads {
                match read {
                    Read::Batch(batch, size) => {
                        self.taken = batch.seq;
                        self.in_flight_disk.push_back((batch.seq, size));
                        out.push(batch);
                    }
                    Read::Quarantined(seq, reason) => {
                        counter!("ingestor_buffer_corrupt_total").increment(1);
                        tracing::error!(seq, %reason, "unreadable spool record set aside in quarantine; not published");
                    }
                }
            }
            if exhausted {
                // Nothing left on disk above the cursor (the rest was set aside).
                self.taken = self.taken.max(self.disk_newest);
            }
        }
        let start = self.ring.partition_point(|b| b.seq <= self.taken);
        let room = max.saturating_sub(out.len());
        out.extend(self.ring.range(start..).take(room).cloned());
        if let Some(last) = out.last() {
            self.taken = self.taken.max(last.seq);
        }
        Ok(out)
    }

    /// Forgets a take whose batches never reached the publisher.
    pub fn untake(&mut self, back_to: u64) {
        self.taken = back_to.max(self.acked);
        while self
            .in_flight_disk
            .back()
            .is_some_and(|(s, _)| *s > self.taken)
        {
            self.in_flight_disk.pop_back();
        }
    }

    /// The highest seq handed out to the publisher.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Deletes everything up to `seq` (confirmed by NATS) from ring and disk.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.taken);
        if seq <= self.acked {
            return Ok(());
        }
        let mut gone = Vec::new();
        while self.in_flight_disk.front().is_some_and(|(s, _)| *s <= seq) {
            gone.extend(self.in_flight_disk.pop_front());
        }
        while self.ring.front().is_some_and(|b| b.seq <= seq) {
            self.ring.pop_front();
        }
        if !gone.is_empty() {
            self.spool.delete(&gone, Some(seq))?;
            self.deletes_since_compact += gone.len() as u64;
        }
        self.acked = seq;
        self.compact_if_drained();
        self.publish_gauges();
        Ok(())
    }

    /// Every in-flight batch goes out again, first.
    pub fn nack(&mut self) {
        self.taken = self.acked;
        self.in_flight_disk.clear();
    }

    /// NATS went up or down; in `persist = "disconnect"` going down moves the
    /// ring to disk.
    pub fn set_connected(&mut self, up: bool) -> Result<(), SpoolError> {
        let was = self.writes_through();
        self.connected = up;
        if was && !self.writes_through() {
            self.commit()?;
        }
        if !was && self.writes_through() {
            self.flush_ring()?;
        }
        self.publish_gauges();
        Ok(())
    }

    fn flush_ring(&mut self) -> Result<(), SpoolError> {
        self.spill_oldest(self.ring.len())
    }

    /// Periodic: bounds the power-loss window of unsynced disk writes.
    pub fn sync_if_dirty(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            self.spool.sync()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Ring and pending to disk, synced, clean stop recorded. Pushes are
    /// refused from here on. Idempotent.
    pub fn close(&mut self) -> Result<(), SpoolError> {
        if self.closed {
            return Ok(());
        }
        self.commit()?;
        self.flush_ring()?;
        self.spool.sync()?;
        self.spool.close(self.next_seq)?;
        self.nack();
        self.closed = true;
        self.dirty = false;
        self.publish_gauges();
        Ok(())
    }

    fn compact_if_drained(&mut self) {
        if self.spool.live_count() > 0 || self.deletes_since_compact < COMPACT_AFTER_DELETES {
            return;
        }
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        self.deletes_since_compact = 0;
        let compactor = self.spool.compactor();
        let flag = self.compacting.clone();
        let spawned = std::thread::Builder::new().name("spool-compact".into()).spawn(move || {
            if let Err(e) = compactor.run() {
                tracing::warn!(error = %e, "compacting the emptied spool failed; space is reclaimed later");
            }
            flag.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.compacting.store(false, Ordering::Release);
        }
    }

    /// Counts for stats, health and the status line.
    pub fn stats(&self) -> super::BufferStats {
        super::BufferStats {
            memory_batches: self.ring.len() as u64,
            pending: self.pending.len() as u64,
            disk_batches: self.spool.live_count(),
            disk_bytes: self.spool.live_bytes(),
            in_flight: self.taken - self.acked,
            next_seq: self.next_seq,
        }
    }

    /// Time of the oldest unpublished batch (reads one disk record at most).
    pub fn oldest_ts_micros(&mut self) -> Result<Option<i64>, SpoolError> {
        if self.spool.live_count() > 0 {
            if let Some(Read::Batch(b, _)) = self.spool.oldest()? {
                return Ok(Some(b.ts_micros));
            }
        }
        Ok(self
            .ring
            .front()
            .or(self.pending.first())
            .map(|b| b.ts_micros))
    }

    /// The spool, for offline inspection.
    pub fn spool(&mut self) -> &mut Spool {
        &mut self.spool
    }

    fn publish_gauges(&self) {
        gauge!("ingestor_buffer_batches", "tier" => "memory").set(self.ring.len() as f64);
        gauge!("ingestor_buffer_batches", "tier" => "disk").set(self.spool.live_count() as f64);
        gauge!("ingestor_buffer_disk_bytes").set(self.spool.live_bytes() as f64);
    }
}

impl Store {
    /// Whether the next push stays in memory (no reservation, spill or write).
    pub fn push_is_memory_only(&self) -> bool {
        !self.closed
            && self.next_seq <= self.spool.reserved()
            && (self.writes_through()
                || (self.pending.is_empty() && self.ring.len() < self.settings.memory_batches))
    }

    /// Accepted batches waiting for a commit.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether accepted batches wait for a commit.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

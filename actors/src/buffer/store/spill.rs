//! Writing to disk, and what happens when the disk says no.
//!
//! *Write first, forget second*: a batch leaves the ring or `pending` only
//! after the write holding it succeeded. A write that fails (or would pass
//! `disk_max` / `disk_min_free`) leaves every batch where it was and puts
//! the store into `SpoolState::Full` or `Error`: from then on batches stay
//! in memory, the newest `memory_batches` of them, and `when_disk_full`
//! applies to the rest (counted by reason). Once a second the buffer's tick
//! measures again and retries (`refresh_and_retry`); a poisoned database
//! is reopened first.

use super::Store;
use crate::buffer::error::{CommitError, SpoolError, SpoolState};
use crate::buffer::record;
use crate::buffer::space::NoRoom;
use crate::settings::PersistMode;

/// What a group commit did with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The batch's seq.
    pub seq: u64,
    /// `Ok`: on disk, or in the ring when the spool could not take it
    /// (accepted in memory); `Err`: dropped by `when_disk_full`.
    pub result: Result<(), CommitError>,
}

impl Store {
    /// Writes pending batches to disk in one write batch (synced in
    /// `persist = "always"`), and says what became of each. If the spool
    /// cannot take them they move to the ring (and count as accepted in
    /// memory); those the ring cannot hold are dropped by `when_disk_full`.
    pub fn commit(&mut self) -> Result<Vec<Committed>, SpoolError> {
        if self.ring.pending_len() == 0 {
            return Ok(Vec::new());
        }
        let sync = self.settings.persist == PersistMode::Always;
        let records = self.ring.pending_records();
        let seqs: Vec<u64> = records.iter().map(|(s, _)| *s).collect();
        let dropped = match self.write_records(records, sync) {
            Ok(()) => {
                // Accepted now: on disk (synced in `always`).
                self.ring.committed();
                Vec::new()
            }
            Err(e) => {
                self.enter_degraded(&e);
                self.enforce_memory_cap()
            }
        };
        self.publish_gauges();
        let why = CommitError::Dropped(self.settings.when_disk_full);
        Ok(seqs
            .into_iter()
            .map(|seq| Committed {
                seq,
                result: match dropped.contains(&seq) {
                    true => Err(why),
                    false => Ok(()),
                },
            })
            .collect())
    }

    /// Moves the oldest part of a full ring to disk, many batches per write.
    pub(super) fn spill_overflow(&mut self) {
        if !self.health.is_ok() {
            return;
        }
        if let Some(chunk) = self.ring.overflow() {
            self.spill_oldest(chunk);
        }
    }

    /// Moves the `n` oldest ring batches to disk in one write, counted as
    /// spilled; they leave the ring only once written.
    pub(super) fn spill_oldest(&mut self, n: usize) {
        if let Err(e) = self.write_oldest(n, true) {
            self.enter_degraded(&e);
        }
    }

    /// Writes the `n` oldest ring batches in one write (only while the
    /// spool is `Ok` when `checked`; the stop's save writes whatever the
    /// state); on success they leave the ring, counted as spilled.
    fn write_oldest(&mut self, n: usize, checked: bool) -> Result<(), SpoolError> {
        let n = n.min(self.ring.len());
        if n == 0 {
            return Ok(());
        }
        let records: Vec<(u64, Vec<u8>)> = self
            .ring
            .oldest(n)
            .map(|b| (b.seq, record::encode(b)))
            .collect();
        match checked {
            true => self.write_records(records, false)?,
            false => self.write_within_caps(records, false)?,
        }
        self.ring.spilled(n);
        Ok(())
    }

    /// Appends records (all newer than the disk's, older than the ring's)
    /// if the spool is writable and they fit under `disk_max` and above
    /// `disk_min_free`.
    fn write_records(
        &mut self,
        records: Vec<(u64, Vec<u8>)>,
        sync: bool,
    ) -> Result<(), SpoolError> {
        if !self.health.is_ok() {
            return Err(SpoolError::Full(NoRoom::NotWritable(self.health.state())));
        }
        self.write_within_caps(records, sync)
    }

    /// `write_records` without the state check: what the caps allow is
    /// written, whatever the last write did (the stop's last try).
    fn write_within_caps(
        &mut self,
        records: Vec<(u64, Vec<u8>)>,
        sync: bool,
    ) -> Result<(), SpoolError> {
        let incoming: u64 = records.iter().map(|(_, r)| r.len() as u64).sum();
        self.space
            .room_for(incoming, &self.settings)
            .map_err(SpoolError::Full)?;
        self.spool.append(&records, sync)?;
        self.space.note_written(incoming);
        for (seq, rec) in &records {
            if *seq <= self.delivery.taken {
                // Taken from the ring, now on disk: its ack deletes it there.
                self.delivery.on_disk(*seq, rec.len() as u32);
            }
        }
        if let Some((seq, _)) = records.last() {
            self.disk_newest = self.disk_newest.max(*seq);
            self.dirty = !sync;
        }
        match sync {
            // fdatasync covers every earlier write too.
            true => self.note_synced(),
            false => self.note_unsynced(records),
        }
        Ok(())
    }

    /// The stop's save: the ring to disk, oldest first, as much of it as
    /// fits. One write when everything fits; when a write is refused for
    /// room (`disk_max`, `disk_min_free`, ENOSPC), halves the chunk and
    /// goes on with what is left, so the oldest batches that fit are kept
    /// even when the whole ring is not. ENOSPC poisons fjall: the database
    /// is reopened before the next, smaller try. Stops at the first error
    /// that is not about room, or when not one more batch fits.
    pub(super) fn save_ring_what_fits(&mut self) {
        let mut chunk = self.ring.len();
        while !self.ring.is_empty() && chunk > 0 {
            match self.write_oldest(chunk, false) {
                Ok(()) => {}
                Err(e) if e.is_full() || e.is_poisoned() => {
                    self.enter_degraded(&e);
                    chunk /= 2;
                    if chunk > 0 && (e.is_poisoned() || !matches!(e, SpoolError::Full(_))) {
                        // fjall may have poisoned itself on ENOSPC.
                        self.wait_for_compaction();
                        if self.reopen_after_failure().is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    self.enter_degraded(&e);
                    return;
                }
            }
        }
    }

    /// The spool could not take a write: batches stay in memory from now on
    /// (`health` has the transitions). Logs once on entering the state (and
    /// when it turns from full to error).
    pub(super) fn enter_degraded(&mut self, e: &SpoolError) {
        let Some(health) = self.health.after(e) else {
            return;
        };
        let was = std::mem::replace(&mut self.health, health).state();
        let state = health.state();
        if was == state {
            return;
        }
        tracing::error!(
            spool = state.as_str(),
            error = %e,
            memory_batches = self.settings.memory_batches,
            when_disk_full = ?self.settings.when_disk_full,
            "spool {}: new batches stay in memory (the newest memory_batches of them; \
             when_disk_full applies beyond); retried every second",
            state.as_str()
        );
        // Accepted batches waiting for a write-through are the newest: they
        // join the ring's end, accepted in memory from now on.
        self.ring.pending_to_memory();
        self.publish_gauges();
    }

    /// While the spool is not writable: keeps the ring's batches not in
    /// flight at `memory_batches` by `when_disk_full` (the ring's drop
    /// policy; batches in flight leave with their ack); returns the seqs
    /// dropped, each noted as a gap.
    pub(super) fn enforce_memory_cap(&mut self) -> Vec<u64> {
        if self.health.is_ok() {
            return Vec::new();
        }
        let (dropped, reason) = self.ring.enforce_cap(self.delivery.taken);
        self.gaps.note_each(&dropped, reason);
        dropped
    }

    /// Once a second (from the buffer's tick, on a blocking thread):
    /// measures the spool's disk use and free space and, if the spool was
    /// full or failed and has room again, reopens it if fjall poisoned it and
    /// goes back to writing (logging one line). Ring batches beyond
    /// `memory_batches` (or all of them in a write-through mode) go to disk.
    pub fn refresh_and_retry(&mut self) {
        // A failed seq reservation is tried again by the next push.
        self.lifecycle.set_reserve_failed(false);
        self.space.refresh(self.spool.dir());
        self.publish_gauges();
        if self.health.is_ok() || self.lifecycle.is_closed() {
            return;
        }
        if self.health.needs_reopen() || !self.spool.is_open() {
            if self.reclaim.is_compacting() {
                // The compaction holds the database: reopened on a later
                // tick, never waited for here.
                return;
            }
            self.wait_for_compaction();
            if let Err(e) = self.reopen_after_failure() {
                tracing::debug!(error = %e, "reopening the spool failed; retried in a second");
                return;
            }
            tracing::info!("spool reopened after a storage failure");
            // A drained spool's compaction waited for the reopen.
            self.compact_if_drained();
        }
        if !self.space.has_room_again(&self.settings) {
            return;
        }
        let was = std::mem::take(&mut self.health).state();
        if self.writes_through() {
            self.flush_ring();
        } else {
            self.spill_overflow();
        }
        if self.health.is_ok() {
            tracing::info!(
                was = was.as_str(),
                memory = self.ring.len(),
                "spool writable again: batches go to disk as `persist` says"
            );
        }
        self.publish_gauges();
    }

    /// Reopens a poisoned or closed database, writes again what a failed
    /// sync held (`unsynced`), and takes the newest record on disk from
    /// it: what fjall had accepted is there again (its journal replayed);
    /// cursors and in-flight records are unchanged. The caller has made
    /// sure no compaction thread holds the database.
    fn reopen_after_failure(&mut self) -> Result<(), SpoolError> {
        self.spool.reopen()?;
        self.rewrite_unsynced().inspect_err(|e| {
            tracing::warn!(error = %e, "writing the records of the failed sync again failed; retried in a second");
        })?;
        self.health = self.health.reopened();
        if let Ok(Some(newest)) = self.spool.newest_seq() {
            self.disk_newest = self.disk_newest.max(newest);
        }
        Ok(())
    }

    /// Whether the spool takes writes (`Ok`), is full, or failed.
    pub fn spool_state(&self) -> SpoolState {
        self.health.state()
    }
}

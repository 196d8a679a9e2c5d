//! The publisher's side: Take hands out the oldest batches not in flight
//! (disk, then ring), Ack deletes what NATS confirmed.

use metrics::counter;

use crate::buffer::spool::{Read, SpoolError};
use crate::buffer::store::gaps::GapReason;
use crate::buffer::store::{Store, MAX_DAMAGED_DELETE};
use crate::metric_names;
use crate::EncodedBatch;

impl Store {
    /// Up to `max` oldest batches not in flight, ascending seq: disk, then
    /// ring. The ring is reached only once every disk record up to
    /// `disk_newest` was handed out or set aside (so `taken` never steps
    /// over unread disk records). A read that fails (not damage, which is
    /// stepped over) hands out nothing; the next take tries again, and a
    /// record that keeps failing is set aside (`set_aside`).
    pub fn take(&mut self, max: usize) -> Result<Vec<EncodedBatch>, SpoolError> {
        let mut out = Vec::new();
        if self.rewrite_due() {
            // Records of a failed sync wait for their rewrite: handing out
            // disk records now would step over them (`unsynced`).
            return Ok(out);
        }
        self.skip_set_aside();
        if self.delivery.taken < self.disk_newest && max > 0 {
            let reads = match self
                .spool
                .read_after(self.delivery.taken, max, self.disk_newest)
            {
                Ok(reads) => {
                    self.read_worked();
                    reads
                }
                // Failing again and again: set aside (`set_aside`), read on.
                Err(e) if self.read_failed(&e) => return self.take(max),
                Err(_) => return Ok(out),
            };
            let short = reads.len() < max;
            for read in reads {
                self.note_read(read, &mut out);
            }
            // Short, and no record left above: the rest was set aside. (A
            // read cut short by an I/O error leaves records above.)
            if short && !self.spool.has_record_after(self.delivery.taken) {
                // Nothing left on disk above the cursor (the rest was set aside).
                self.delivery.taken = self.delivery.taken.max(self.disk_newest);
            }
            if self.delivery.taken < self.disk_newest {
                return Ok(out);
            }
        }
        let room = max.saturating_sub(out.len());
        out.extend(self.ring.after(self.delivery.taken, room).cloned());
        if let Some(last) = out.last() {
            self.delivery.taken = self.delivery.taken.max(last.seq);
        }
        Ok(out)
    }

    /// One record read from disk: handed out, or counted as set aside.
    fn note_read(&mut self, read: Read, out: &mut Vec<EncodedBatch>) {
        match read {
            Read::Batch(batch, size) => {
                self.delivery.taken = self.delivery.taken.max(batch.seq);
                self.delivery.on_disk(batch.seq, size);
                out.push(batch);
            }
            Read::Quarantined(seq, reason) => {
                self.delivery.taken = self.delivery.taken.max(seq);
                self.gaps.note(seq, seq, GapReason::Corrupt);
                counter!(metric_names::BUFFER_CORRUPT_TOTAL).increment(1);
                tracing::error!(seq, %reason, "unreadable spool record set aside in quarantine; not published");
            }
            Read::Damaged(first, last) => {
                self.delivery.taken = self.delivery.taken.max(last);
                let n = last - first + 1;
                counter!(metric_names::BUFFER_CORRUPT_TOTAL).increment(n);
                self.gaps.note(first, last, GapReason::Corrupt);
                tracing::error!(first, last, "spool block failed its checksum: seqs {first}..={last} are unreadable, skipped and not published");
                // Deleted with the ack that passes them (size unknown: 0).
                if n <= MAX_DAMAGED_DELETE {
                    self.delivery
                        .in_flight_disk
                        .extend((first..=last).map(|s| (s, 0)));
                }
            }
        }
    }

    /// Forgets a take whose batches never reached the publisher.
    pub fn untake(&mut self, back_to: u64) {
        self.delivery.taken = back_to.max(self.delivery.acked);
        while self
            .delivery
            .in_flight_disk
            .back()
            .is_some_and(|(s, _)| *s > self.delivery.taken)
        {
            self.delivery.in_flight_disk.pop_back();
        }
    }

    /// The highest seq handed out to the publisher.
    pub fn taken(&self) -> u64 {
        self.delivery.taken
    }

    /// Deletes everything up to `seq` (confirmed by NATS) from ring and
    /// disk. Confirmed ring batches leave memory at once (no disk involved,
    /// so a later drop by `when_disk_full` can never count a batch NATS
    /// has). If the disk delete fails nothing else moves: the next ack
    /// deletes these records with its own (and a restart may publish them
    /// again, which JetStream de-duplicates).
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.delivery.taken);
        if seq <= self.delivery.acked {
            return Ok(());
        }
        self.ring.confirmed(seq);
        let n = self
            .delivery
            .in_flight_disk
            .iter()
            .take_while(|(s, _)| *s <= seq)
            .count();
        if n > 0 {
            let gone: Vec<(u64, u32)> = self.delivery.in_flight_disk.range(..n).copied().collect();
            if let Err(e) = self.spool.delete(&gone, Some(seq)) {
                tracing::warn!(error = %e, seq, "deleting published batches from the spool failed; retried with the next ack");
                self.enter_degraded(&e);
                return Ok(());
            }
            self.delivery.in_flight_disk.drain(..n);
            self.reclaim.deleted(n as u64);
            // Synced by the next tick: a power cut costs at most its acks.
            self.dirty = true;
        }
        self.delivery.acked = seq;
        if seq >= self.disk_newest && self.spool.live_count() > 0 {
            // Everything on disk is published: counts of damaged records
            // (sizes unknown) are set right here.
            if let Err(e) = self.spool.reset_counters() {
                tracing::debug!(error = %e, "resetting the spool counters failed");
            }
        }
        self.compact_if_drained();
        self.publish_gauges();
        Ok(())
    }
}

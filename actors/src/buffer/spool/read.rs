//! Reading records back: good ones handed out, bad ones set aside, damaged
//! blocks stepped over.

use fjall::PersistMode;

use super::{record, Read, Spool};
use crate::buffer::error::{counted, SpoolError};

impl Spool {
    /// Reads up to `max` records with seq > `after`, ascending. Unreadable
    /// records are moved to quarantine on the way and reported, not
    /// returned; a damaged block (fjall checksum) is stepped over and the
    /// seqs it covers reported as `Read::Damaged`. `newest` bounds the search.
    pub fn read_after(
        &mut self,
        after: u64,
        max: usize,
        newest: u64,
    ) -> Result<Vec<Read>, SpoolError> {
        let mut out = Vec::with_capacity(max.min(4096));
        let mut bad = Vec::new();
        fail::fail_point!("spool::read", |a| Err(counted("read")(
            crate::buffer::error::injected(a)
        )));
        let mut from = after.saturating_add(1);
        let mut wanted = max;
        'blocks: while wanted > 0 {
            let h = self.h.as_ref().ok_or(SpoolError::Reopening)?;
            for guard in h.batches.range(record::key(from)..).take(wanted) {
                let item = guard
                    .into_inner()
                    .map_err(counted("read"))
                    .and_then(|(k, v)| injected_unreadable(&k).map(|()| (k, v)));
                match item {
                    Ok((k, v)) => {
                        wanted -= 1;
                        let decoded = record::seq_of(&k).and_then(|seq| {
                            // fjall's values are `Bytes`: the batch keeps a slice, no copy.
                            let shared = bytes::Bytes::from(v.clone());
                            Ok((seq, record::decode_shared(&shared, &mut self.devices)?))
                        });
                        match decoded {
                            Ok((seq, mut batch)) => {
                                from = seq.saturating_add(1);
                                batch.seq = seq;
                                out.push(Read::Batch(batch, v.len() as u32));
                            }
                            Err(e) => {
                                from = record::seq_of(&k).unwrap_or(from).saturating_add(1);
                                bad.push((k, v, e));
                            }
                        }
                    }
                    Err(e) => {
                        if !e.is_damage() || from > newest {
                            if out.is_empty() && bad.is_empty() {
                                return Err(e);
                            }
                            break 'blocks;
                        }
                        let next = self.next_readable(from, newest);
                        out.push(Read::Damaged(from, next - 1));
                        wanted -= 1;
                        from = next;
                        continue 'blocks;
                    }
                }
            }
            break;
        }
        for (k, v, e) in bad {
            let seq = record::seq_of(&k).unwrap_or(0);
            if !self.read_only {
                self.set_aside(&k, &v)?;
            }
            out.push(Read::Quarantined(seq, e));
        }
        Ok(out)
    }

    /// The smallest seq in (`damaged`, `newest` + 1] from which a range read
    /// starts without an error (binary search: a seek into the damaged
    /// block fails, one past it does not).
    fn next_readable(&self, damaged: u64, newest: u64) -> u64 {
        let readable = |s: u64| match &self.h {
            None => true,
            Some(h) => h.batches.range(record::key(s)..).next().is_none_or(|g| {
                g.into_inner()
                    .is_ok_and(|(k, _)| injected_unreadable(&k).is_ok())
            }),
        };
        let (mut lo, mut hi) = (damaged.saturating_add(1), newest.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if readable(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        hi
    }

    /// Whether any record, readable or not, lies above `seq` (`true` while
    /// the database is being reopened: nothing is known).
    pub fn has_record_after(&self, seq: u64) -> bool {
        match &self.h {
            None => true,
            Some(h) => h
                .batches
                .range(record::key(seq.saturating_add(1))..)
                .next()
                .is_some(),
        }
    }

    /// Where reading can go on after records that keep failing to read
    /// (an I/O error): the smallest seq past `failing` (the first seq
    /// whose read fails) from which a range read works, at most
    /// `newest + 1`.
    pub fn readable_after(&self, failing: u64, newest: u64) -> u64 {
        self.next_readable(failing, newest)
    }

    /// Moves the record of `seq` to quarantine, if it is on disk: `false`
    /// when there is none. An error (its read fails) leaves it in place.
    pub fn quarantine_on_disk(&mut self, seq: u64) -> Result<bool, SpoolError> {
        let key = record::key(seq);
        let Some(value) = self.h()?.batches.get(key).map_err(counted("read"))? else {
            return Ok(false);
        };
        injected_unreadable(&key)?;
        self.set_aside(&key, &value)?;
        Ok(true)
    }

    /// Writes `record` (a batch that was only in memory) to quarantine, synced.
    pub fn quarantine_record(&mut self, seq: u64, record: &[u8]) -> Result<(), SpoolError> {
        fail::fail_point!("spool::write", |a| Err(counted("write")(
            crate::buffer::error::injected(a)
        )));
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::SyncData));
        wb.insert(&self.h()?.quarantine, record::key(seq), record);
        wb.commit().map_err(counted("write"))
    }

    fn set_aside(&mut self, key: &[u8], value: &[u8]) -> Result<(), SpoolError> {
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::SyncData));
        wb.insert(&self.h()?.quarantine, key, value);
        wb.remove(&self.h()?.batches, key);
        let count = self.live_count.saturating_sub(1);
        let bytes = self.live_bytes.saturating_sub(value.len() as u64);
        self.put_counters(&mut wb, count, bytes)?;
        wb.commit().map_err(counted("write"))?;
        self.live_count = count;
        self.live_bytes = bytes;
        Ok(())
    }
}

/// Test hook (failpoint `spool::unreadable`, armed as `return(SEQ)`): the
/// record of that seq fails to read with an I/O error, every time, as one
/// on a bad sector does. Without the `failpoints` feature: nothing.
fn injected_unreadable(key: &[u8]) -> Result<(), SpoolError> {
    fail::fail_point!("spool::unreadable", |arg: Option<String>| {
        let bad = arg.and_then(|a| a.parse::<u64>().ok());
        match record::seq_of(key) {
            Ok(seq) if Some(seq) == bad => Err(counted("read")(crate::buffer::error::injected(
                Some("unreadable sector".into()),
            ))),
            _ => Ok(()),
        }
    });
    let _ = key;
    Ok(())
}

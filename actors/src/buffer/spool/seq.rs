//! Where `seq` continues: the synced reservation and the clean-stop mark.

use fjall::PersistMode;

use super::{meta_u64, Spool, META_CLEAN_NEXT, META_RESERVED};
use crate::buffer::error::{counted, SpoolError};

/// What `open` found about the previous run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The next seq to hand out.
    pub next_seq: u64,
    /// Seqs possibly handed out by a run that did not stop cleanly, skipped
    /// so they are never reused.
    pub skipped: Option<(u64, u64)>,
    /// Journals fjall could not replay, set aside by this open (`journal`).
    pub journals_set_aside: usize,
}

impl Spool {
    /// Where seq continues: exactly after a clean stop; past the whole
    /// reservation after a crash.
    pub(super) fn recover_seq(&mut self) -> Result<OpenReport, SpoolError> {
        // The copy outside fjall survives a journal set aside as damaged.
        self.reserved = self.reserved.max(self.reserved_copy());
        let newest = self.newest_seq()?.unwrap_or(0).max(self.acked);
        let clean = meta_u64(&self.h()?.meta, META_CLEAN_NEXT)?;
        let report = match clean {
            Some(next) => OpenReport {
                next_seq: next.max(newest + 1),
                skipped: None,
                journals_set_aside: 0,
            },
            None if self.reserved == 0 => OpenReport {
                next_seq: newest + 1,
                skipped: None,
                journals_set_aside: 0,
            },
            None => {
                let next = self.reserved.max(newest) + 1;
                let skipped = (newest + 1 < next).then_some((newest + 1, next - 1));
                OpenReport {
                    next_seq: next,
                    skipped,
                    journals_set_aside: 0,
                }
            }
        };
        Ok(report)
    }

    /// Marks the spool as in use by a running service: from here on a crash
    /// must not look like a clean stop. Offline tools do not call this.
    /// Also lays out `<data_dir>/seq_reserved` at its full length, so a
    /// later reservation is written in place and needs no new block on a
    /// full disk (`reserve`).
    pub fn begin_run(&mut self) -> Result<(), SpoolError> {
        if meta_u64(&self.h()?.meta, META_CLEAN_NEXT)?.is_some() {
            // The removal to a table too: `close` put the mark in one, and
            // a journal set aside after a crash must not bring it back
            // (the next start would then reuse this run's seqs).
            self.meta_to_table(|wb, meta| wb.remove(meta, META_CLEAN_NEXT))?;
        }
        if let Err(e) = self.write_reserved_copy(self.reserved) {
            // The reservation still lives in `meta`; only the full-disk
            // headroom is missing until a write here succeeds.
            tracing::warn!(error = %e, "cannot lay out the seq reservation file; retried with the next reservation");
        }
        Ok(())
    }

    /// Makes sure every seq up to `upto` is covered by a synced reservation.
    ///
    /// The reservation is written twice: first in place into
    /// `<data_dir>/seq_reserved` (a file of fixed length laid out at the
    /// start, so the write needs no new block and succeeds on a full disk),
    /// fdatasync'ed; then into `meta`. Once the file write is synced the
    /// seqs are reserved ([`Spool::reserved`] moves), even if the `meta`
    /// write then fails (that error is returned: fjall may be poisoned and
    /// want a reopen). A start takes the larger of the two.
    pub fn reserve(&mut self, upto: u64) -> Result<(), SpoolError> {
        if upto <= self.reserved {
            return Ok(());
        }
        fail::fail_point!("spool::reserve", |a| Err(counted("sync")(
            crate::buffer::error::injected(a)
        )));
        self.write_reserved_copy(upto)?;
        self.reserved = upto;
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::SyncAll));
        wb.insert(&self.h()?.meta, META_RESERVED, upto.to_be_bytes());
        wb.commit().map_err(counted("sync"))?;
        Ok(())
    }

    /// `<data_dir>/seq_reserved`: the reservation again, outside fjall, so
    /// that a journal set aside as damaged (taking `meta` with it) can never
    /// make a seq be handed out twice, and so that a reservation can be
    /// made on a full disk.
    fn reserved_copy_path(&self) -> Option<std::path::PathBuf> {
        self.dir.parent().map(|d| d.join("seq_reserved"))
    }

    fn reserved_copy(&self) -> u64 {
        self.reserved_copy_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Writes `upto` over the file's first bytes, fixed width (20 digits
    /// and a newline: the longest u64, so nothing of an earlier value is
    /// left behind), and syncs it. One write of 21 bytes at offset 0 lies
    /// in one sector: it lands whole or not at all.
    fn write_reserved_copy(&self, upto: u64) -> Result<(), SpoolError> {
        use std::os::unix::fs::FileExt;
        let Some(path) = self.reserved_copy_path() else {
            return Ok(());
        };
        let io = |source| SpoolError::DataDir {
            path: path.clone(),
            source,
        };
        let write = || -> std::io::Result<()> {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            f.write_all_at(format!("{upto:020}\n").as_bytes(), 0)?;
            f.sync_data()
        };
        write().map_err(io)
    }

    /// The highest reserved seq.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

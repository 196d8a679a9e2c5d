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
    pub fn begin_run(&mut self) -> Result<(), SpoolError> {
        if meta_u64(&self.h()?.meta, META_CLEAN_NEXT)?.is_some() {
            // The removal to a table too: `close` put the mark in one, and
            // a journal set aside after a crash must not bring it back
            // (the next start would then reuse this run's seqs).
            self.meta_to_table(|wb, meta| wb.remove(meta, META_CLEAN_NEXT))?;
        }
        Ok(())
    }

    /// Makes sure every seq up to `upto` is covered by a synced reservation.
    pub fn reserve(&mut self, upto: u64) -> Result<(), SpoolError> {
        if upto <= self.reserved {
            return Ok(());
        }
        let mut wb = self.h()?.db.batch().durability(Some(PersistMode::SyncAll));
        wb.insert(&self.h()?.meta, META_RESERVED, upto.to_be_bytes());
        wb.commit().map_err(counted("sync"))?;
        self.reserved = upto;
        self.write_reserved_copy(upto)?;
        Ok(())
    }

    /// `<data_dir>/seq_reserved`: the reservation again, outside fjall, so
    /// that a journal set aside as damaged (taking `meta` with it) can never
    /// make a seq be handed out twice.
    fn reserved_copy_path(&self) -> Option<std::path::PathBuf> {
        self.dir.parent().map(|d| d.join("seq_reserved"))
    }

    fn reserved_copy(&self) -> u64 {
        self.reserved_copy_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    fn write_reserved_copy(&self, upto: u64) -> Result<(), SpoolError> {
        let Some(path) = self.reserved_copy_path() else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        let io = |source| SpoolError::DataDir {
            path: path.clone(),
            source,
        };
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, format!("{upto}\n").as_bytes())?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(io)
    }

    /// The highest reserved seq.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

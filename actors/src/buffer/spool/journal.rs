//! A journal fjall cannot replay: set aside so the spool opens, and what
//! it took with it logged.
//!
//! fjall itself drops a torn or garbled journal tail silently at replay
//! (it truncates the file to its last valid batch) or refuses the journal
//! (checksum mismatch, or a panic): then it is set aside here.
//!
//! Invariants:
//! - a start never fails forever over a garbled journal: it is renamed to
//!   `*.jnl.damaged` (kept, never read again) and the open retried;
//! - after a clean stop the journal holds nothing the tables lack (`close`
//!   flushes both memtables, `begin_run` flushes the removal of the clean
//!   mark), so losing it (set aside or cut by fjall) loses no batch, no
//!   acknowledgement and no clean mark: seq continues without a gap;
//! - after a crash the seqs a lost journal held cannot be known: they lie
//!   between the newest record that survived (or `acked`) and the
//!   reservation, mixed with the ring the crash lost and seqs never handed
//!   out. That range is logged (with the crash's skipped range), and not
//!   counted in `ingestor_buffer_corrupt_total`, which counts batches, never
//!   a guess; the set-aside itself is counted in
//!   `ingestor_spool_errors_total{op="open"}`. Seqs between survivors and a
//!   clean mark are never counted either: only `when_disk_full` or a failed
//!   close leave them, and those count them as dropped already.

use std::path::{Path, PathBuf};

use metrics::counter;

use super::{meta_u64, Handles, OpenReport, Spool, META_CLEAN_NEXT};
use crate::buffer::error::{counted, SpoolError};
use crate::metric_names;

/// Opens the database; a journal fjall cannot replay (garbled by a power
/// cut or a bad flash cell: fjall errors out or even panics on it) is
/// renamed to `*.jnl.damaged` and the open retried, newest journal first.
/// Returns the handles and how many journals were set aside.
pub(super) fn open_or_set_aside(dir: &Path) -> Result<(Handles, usize), SpoolError> {
    let mut set_aside = 0;
    loop {
        let tried = std::panic::catch_unwind(|| Handles::open(dir));
        let why = match tried {
            Ok(Ok(h)) => return Ok((h, set_aside)),
            Ok(Err(e)) => {
                let e = counted("open")(e);
                if !e.is_damage() {
                    return Err(e);
                }
                e.to_string()
            }
            Err(_) => "fjall panicked replaying it".to_string(),
        };
        let Some(journal) = newest_journal(dir) else {
            return Err(SpoolError::Storage(fjall::Error::Unrecoverable));
        };
        let aside = journal.with_extension("jnl.damaged");
        tracing::error!(journal = %journal.display(), %why,
            "the spool's journal cannot be replayed: set aside as {}; batches it held that were not yet in a table are lost", aside.display());
        counter!(metric_names::SPOOL_ERRORS_TOTAL, "op" => "open").increment(1);
        std::fs::rename(&journal, &aside).map_err(|source| SpoolError::DataDir {
            path: journal.clone(),
            source,
        })?;
        set_aside += 1;
    }
}

/// The newest `*.jnl` file of a spool directory.
fn newest_journal(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .max_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
}

impl Spool {
    /// After a journal was set aside: says what it cost (module doc).
    pub(super) fn account_journal_loss(&mut self, report: &OpenReport) -> Result<(), SpoolError> {
        let floor = self.newest_seq()?.unwrap_or(0).max(self.acked);
        if meta_u64(&self.h()?.meta, META_CLEAN_NEXT)?.is_some() {
            tracing::warn!(
                "the journal set aside held nothing the tables lack (the last stop was clean): \
                 no batch lost"
            );
            return Ok(());
        }
        let to = report.next_seq.saturating_sub(1);
        if to > floor {
            let from = floor + 1;
            tracing::error!(
                from,
                to,
                "the previous run did not stop cleanly and its journal was set aside: of seqs \
                 {from}..={to}, those it held are lost, those in memory were lost with the crash, \
                 the rest were never handed out; how many of each cannot be known, so none is \
                 counted in ingestor_buffer_corrupt_total"
            );
        }
        Ok(())
    }
}

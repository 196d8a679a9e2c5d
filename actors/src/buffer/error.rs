//! What can go wrong with the spool, and what the buffer makes of it.
//!
//! A spool error never loses a batch and never restarts the actor in a loop:
//! the batch stays where it was (ring or pending), the buffer goes into a
//! [`SpoolState`] other than `Ok`, and a periodic retry brings it back.

use std::path::PathBuf;

use crate::metric_names;
use metrics::counter;

/// What went wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Another ingestor holds the data dir. Retrying only helps once it exits.
    #[error(
        "{0} is in use by another ingestor process (only one may open it); stop that one first"
    )]
    Locked(PathBuf),
    /// The data dir could not be created or locked (permissions, missing mount).
    #[error("cannot use data dir {path}: {source}")]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// fjall failed: disk full, I/O error, a checksum mismatch, or a failed
    /// fsync (which poisons the database: it is closed and reopened before
    /// the next write, never written to again in place).
    #[error("spool storage error: {0}")]
    Storage(#[from] fjall::Error),
    /// The spool (or its filesystem) is at `disk_max` or `disk_min_free`:
    /// batches stay in memory until space returns. Retrying helps once NATS
    /// drains the backlog or something else frees space.
    #[error("spool full: {0}")]
    Full(String),
    /// The database is closed for a reopen after a failure; retried every second.
    #[error("the spool is being reopened after a storage failure")]
    Reopening,
    /// Closing could not save everything: the message says what was lost.
    /// The process exits 1 with it.
    #[error("closing the buffer failed: {0}")]
    CloseFailed(String),
    /// The spool was closed; nothing more is accepted.
    #[error("the buffer is closed")]
    Closed,
}

impl SpoolError {
    /// Whether the filesystem ran out of space (ENOSPC / EDQUOT) somewhere
    /// in the chain of causes, or a cap was reached.
    pub fn is_full(&self) -> bool {
        if matches!(self, SpoolError::Full(_)) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::StorageFull
                    || io.kind() == std::io::ErrorKind::QuotaExceeded
                {
                    return true;
                }
            }
            cause = e.source();
        }
        false
    }

    /// Whether fjall refuses all writes until the database is reopened.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, SpoolError::Storage(fjall::Error::Poisoned))
    }

    /// Whether a read met damaged data (a checksum or format failure of a
    /// block), as opposed to an I/O failure that may go away.
    pub fn is_damage(&self) -> bool {
        use fjall::Error as F;
        match self {
            SpoolError::Storage(F::Storage(e)) => !matches!(e, fjall::LsmError::Io(_)),
            SpoolError::Storage(
                F::Decompress(_) | F::InvalidTrailer | F::InvalidTag(_) | F::JournalRecovery(_),
            ) => true,
            _ => false,
        }
    }
}

/// Counts an I/O error of the spool in `ingestor_spool_errors_total{op}`
/// (op = open, write, sync, read, delete, compact) and passes it on.
pub(crate) fn counted(op: &'static str) -> impl Fn(fjall::Error) -> SpoolError {
    move |e| {
        counter!(metric_names::SPOOL_ERRORS_TOTAL, "op" => op).increment(1);
        SpoolError::Storage(e)
    }
}

/// How the disk tier is doing, as `/health` shows it (`"spool"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpoolState {
    /// Batches go to disk as the persist mode says.
    #[default]
    Ok,
    /// `disk_max`, `disk_min_free` or the filesystem itself reached: the
    /// newest batches stay in memory, `when_disk_full` applies beyond.
    Full,
    /// The spool failed (I/O error, poisoned database): as `Full`, and the
    /// database is reopened before it is written again.
    Error,
}

impl SpoolState {
    /// `"ok"`, `"full"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpoolState::Ok => "ok",
            SpoolState::Full => "full",
            SpoolState::Error => "error",
        }
    }
}

/// The error an armed failpoint injects (tests only): `return(enospc)`
/// is the filesystem being full, any other argument a plain I/O error.
#[cfg(feature = "failpoints")]
pub(crate) fn injected(arg: Option<String>) -> fjall::Error {
    let io = match arg.as_deref() {
        Some("enospc") => std::io::Error::from_raw_os_error(28),
        Some(other) => std::io::Error::other(format!("failpoint: {other}")),
        None => std::io::Error::other("failpoint"),
    };
    fjall::Error::Io(io)
}

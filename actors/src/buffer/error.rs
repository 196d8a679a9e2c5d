//! What can go wrong with the spool, and what the buffer makes of it.
//!
//! A spool error never loses a batch and never restarts the actor in a loop:
//! the batch stays where it was (ring or pending), the buffer goes into a
//! [`SpoolState`] other than `Ok`, and a periodic retry brings it back.
//!
//! Replies carry [`PushError`] (per pushed batch) and [`CommitError`] (per
//! batch of a group commit); a failed close carries [`CloseError`]. They
//! are `Clone` (a reply may go to several waiters, a close verdict is
//! repeated), so where they hold a [`SpoolError`] (fjall and I/O errors
//! are not `Clone`) it is behind an `Arc`: shared, not flattened to text,
//! so its kind (`is_full`, `is_poisoned`) and causes stay readable.

use std::path::PathBuf;
use std::sync::Arc;

use super::space::NoRoom;
use crate::metric_names;
use crate::settings::WhenDiskFull;
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
    Full(NoRoom),
    /// The database is closed for a reopen after a failure; retried every second.
    #[error("the spool is being reopened after a storage failure")]
    Reopening,
    /// Closing could not save everything: it says what was lost. The
    /// process exits 1 with it; a repeated close returns it again.
    #[error("closing the buffer failed: {0}")]
    CloseFailed(CloseError),
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

/// Why a pushed batch was not kept: the error of `BufferMsg::Push`'s reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushError {
    /// The buffer is closed: the service is stopping. Nothing more is
    /// accepted; retrying does not help.
    #[error("the buffer is closed")]
    Closed,
    /// No seq could be handed out: the synced seq reservation could not be
    /// written. The batch is dropped, counted as
    /// `dropped{reason="storage_error"}`. Retrying helps once the spool
    /// takes writes again (the next push tries the reservation again).
    #[error(transparent)]
    NoSeq(Arc<SpoolError>),
    /// Accepted with a seq, then not kept by its group commit.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The inlet sent this batch again after a buffer restart, and it had
    /// been accepted before, longer ago than the buffer remembers answers
    /// (`store/tickets.rs`): it is in the buffer once, under its first
    /// seq. Nothing to retry.
    #[error("already accepted before the buffer restarted")]
    AlreadyAccepted,
}

impl From<SpoolError> for PushError {
    /// What a refused `Store::push` means for the pusher.
    fn from(e: SpoolError) -> PushError {
        match e {
            SpoolError::Closed => PushError::Closed,
            e => PushError::NoSeq(Arc::new(e)),
        }
    }
}

/// What a group commit did not keep (per batch: `Committed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Neither the spool nor the ring had room, and `when_disk_full` (the
    /// policy it holds) dropped the batch, counted as
    /// `dropped{reason="disk_full_newest"|"disk_full_oldest"}`. The batch is
    /// gone; room comes back as NATS drains the backlog, not by retrying.
    #[error("dropped: spool and memory full (when_disk_full = {})", policy(*.0))]
    Dropped(WhenDiskFull),
}

fn policy(when: WhenDiskFull) -> &'static str {
    match when {
        WhenDiskFull::DropNewest => "drop_newest",
        WhenDiskFull::DropOldest => "drop_oldest",
    }
}

/// What a close could not save (in `SpoolError::CloseFailed`). Every one is
/// final: the process exits 1 with it; retrying does not help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloseError {
    /// The spool (full or failed) could not take the batches still in
    /// memory: they are lost, counted as `dropped{reason="storage_error"}`.
    #[error("{batches} batches in memory could not be written to the spool ({}) and are lost", .spool.as_str())]
    Unsaved {
        /// Batches lost.
        batches: usize,
        /// Why the spool took no writes.
        spool: SpoolState,
    },
    /// Everything was written, but the final sync (or the clean-stop
    /// record) failed: the last writes may not survive a power loss, and
    /// the next start may count the run as a crash (seq jumps ahead).
    #[error("syncing the spool failed: {0}")]
    SyncFailed(Arc<SpoolError>),
    /// Both of the above.
    #[error("syncing the spool failed ({error}); {batches} batches in memory could not be written and are lost")]
    SyncFailedAndUnsaved {
        /// The failed sync.
        error: Arc<SpoolError>,
        /// Batches lost.
        batches: usize,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytesize::ByteSize;

    /// The texts users see in logs and on stderr are those of the `String`
    /// errors these enums replaced.
    #[test]
    fn typed_errors_read_as_the_texts_they_replaced() {
        let said = |e: &dyn std::error::Error| e.to_string();
        assert_eq!(
            said(&PushError::from(SpoolError::Closed)),
            "the buffer is closed"
        );
        assert_eq!(
            said(&PushError::from(CommitError::Dropped(
                WhenDiskFull::DropNewest
            ))),
            "dropped: spool and memory full (when_disk_full = drop_newest)"
        );
        assert_eq!(
            said(&CommitError::Dropped(WhenDiskFull::DropOldest)),
            "dropped: spool and memory full (when_disk_full = drop_oldest)"
        );
        assert_eq!(
            said(&SpoolError::CloseFailed(CloseError::Unsaved {
                batches: 3,
                spool: SpoolState::Full
            })),
            "closing the buffer failed: 3 batches in memory could not be written to the spool \
             (full) and are lost"
        );
        let sync = Arc::new(SpoolError::Reopening);
        assert_eq!(
            said(&CloseError::SyncFailed(sync.clone())),
            "syncing the spool failed: the spool is being reopened after a storage failure"
        );
        assert_eq!(
            said(&CloseError::SyncFailedAndUnsaved {
                error: sync,
                batches: 2
            }),
            "syncing the spool failed (the spool is being reopened after a storage failure); \
             2 batches in memory could not be written and are lost"
        );
        assert_eq!(
            said(&SpoolError::Full(NoRoom::NotWritable(SpoolState::Error))),
            "spool full: spool error"
        );
        assert_eq!(
            said(&NoRoom::DiskMax {
                after: ByteSize::b(2048),
                disk_max: ByteSize::kib(1)
            }),
            format!(
                "the spool would occupy {} on disk, over disk_max {}",
                ByteSize::b(2048),
                ByteSize::kib(1)
            )
        );
        assert_eq!(
            said(&NoRoom::MinFree {
                free: ByteSize::b(10),
                disk_min_free: ByteSize::mib(256)
            }),
            format!(
                "its filesystem has {} free, disk_min_free is {}",
                ByteSize::b(10),
                ByteSize::mib(256)
            )
        );
    }
}

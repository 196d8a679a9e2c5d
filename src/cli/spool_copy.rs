//! A private copy of a data dir's spool, for `spool stats`.
//!
//! fjall has no read-only open: opening a database replays (and may
//! truncate) its journal, creates a new one, and `Spool::open` renames a
//! journal it cannot replay to `*.jnl.damaged` and writes the seq
//! reservation. `spool stats` promises to change nothing, and operators run
//! it with sudo (a root-owned file left behind keeps the service from its
//! own spool), so it opens a copy made in the temp dir (`TMPDIR`) instead.
//!
//! The data dir is only read: `<data_dir>/ingestor.lock` is opened for
//! reading (never created) and locked shared for the time of the copy, so a
//! running service (which holds it exclusively) makes stats refuse, and a
//! service starting meanwhile waits no longer than the copy. The copy costs
//! a read of the whole spool and its size in temp space; it is removed when
//! stats ends.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The copy, deleted on drop.
pub(crate) struct SpoolCopy {
    dir: tempfile::TempDir,
}

impl SpoolCopy {
    /// The data dir to open: holds `spool/` and `seq_reserved` as copied.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Why no copy was made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    /// A service (or another tool) holds the data dir.
    #[error(
        "{0} is in use by another ingestor process (only one may open it); stop that one first"
    )]
    Locked(PathBuf),
    /// Reading the spool or writing the copy failed.
    #[error("cannot copy {from} into {to} for a read-only look: {source} (TMPDIR chooses where the copy goes; it needs room for the whole spool)")]
    Io {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

/// Copies `<data_dir>/spool` and `<data_dir>/seq_reserved`; `None` when
/// there is no spool at all.
pub(crate) fn copy(data_dir: &Path) -> Result<Option<SpoolCopy>, CopyError> {
    let spool = data_dir.join("spool");
    if !spool.is_dir() {
        return Ok(None);
    }
    let tmp = std::env::temp_dir();
    let failed = |from: &Path, to: &Path| {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        move |source| CopyError::Io { from, to, source }
    };
    let _lock = lock_shared(data_dir)?;
    let dir = tempfile::Builder::new()
        .prefix("ingestor-spool-stats-")
        .tempdir_in(&tmp)
        .map_err(failed(data_dir, &tmp))?;
    copy_tree(&spool, &dir.path().join("spool"))?;
    let reserved = data_dir.join("seq_reserved");
    if reserved.is_file() {
        let to = dir.path().join("seq_reserved");
        std::fs::copy(&reserved, &to).map_err(failed(&reserved, &to))?;
    }
    Ok(Some(SpoolCopy { dir }))
}

/// The data dir's lock, shared, if a lock file exists (it is never created
/// here); `Locked` while a service holds it.
fn lock_shared(data_dir: &Path) -> Result<Option<File>, CopyError> {
    let path = data_dir.join("ingestor.lock");
    let io = |source| CopyError::Io {
        from: path.clone(),
        to: path.clone(),
        source,
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(CopyError::Locked(data_dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Copies the files and directories under `from` into `to` (created).
fn copy_tree(from: &Path, to: &Path) -> Result<(), CopyError> {
    let failed = |source| CopyError::Io {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    std::fs::create_dir(to).map_err(failed)?;
    for entry in std::fs::read_dir(from).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(failed)?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|source| CopyError::Io {
                from: src.clone(),
                to: dst.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

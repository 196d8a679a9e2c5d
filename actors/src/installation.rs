//! The installation identity: a random id created with the spool and kept
//! in `<data_dir>/installation` (docs/reference.md §3 and §5).
//!
//! `[service] id` names a place on the stream (`<prefix>.<service.id>.>`);
//! the installation names the `data_dir` whose seq counter numbers the
//! batches there. Every message carries it (`Ingestor-Installation`), so two
//! PCs left on one `service.id`, or a spool restored from an old copy, are
//! told apart before their `Nats-Msg-Id`s collide (`publisher::conflict`).
//!
//! # The file
//! One line: the id (32 lowercase hex digits, a random UUID v4 without
//! dashes) and a newline. Written once, atomically (a temporary file,
//! fsync, rename, fsync of the directory), and only read afterwards: it
//! survives restarts and upgrades, and moves with `data_dir` to another PC.
//! A new `data_dir` is a new installation. Offline tools (`spool stats`)
//! only read it ([`Installation::read`]); the service creates it
//! ([`Installation::open_or_create`]), right after the spool.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file's name inside `data_dir`.
pub const FILE_NAME: &str = "installation";

/// The name of the header every message carries.
pub const HEADER: &str = "Ingestor-Installation";

/// An installation id: `[A-Za-z0-9-]{1,64}` (created as 32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Installation(Arc<str>);

/// Why the installation file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    /// Reading, writing or syncing the file failed (permissions, disk).
    /// Retrying helps only once the cause is fixed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or its directory).
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file holds something that is not an installation id (damaged,
    /// or edited by hand). Restore it from a backup of `data_dir`; deleting
    /// it makes this `data_dir` a new installation.
    #[error(
        "{path} does not hold an installation id ({found:?}): restore it from a backup of \
         the data_dir, or delete it to make this data_dir a new installation"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What it holds (cut short).
        found: String,
    },
}

impl Installation {
    /// Parses an id as found in the file, a header or the config
    /// (`[service] replaces`): `[A-Za-z0-9-]{1,64}`.
    pub fn parse(text: &str) -> Option<Installation> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Installation(Arc::from(text)))
    }

    /// A new random id: 32 hex digits (UUID v4, no dashes).
    pub fn generate() -> Installation {
        Installation(Arc::from(uuid::Uuid::new_v4().simple().to_string()))
    }

    /// The id as sent in the header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path of the file in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// Reads `<data_dir>/installation`; `None` when there is none yet.
    /// Never creates anything (blocking file I/O).
    pub fn read(data_dir: &Path) -> Result<Option<Installation>, InstallationError> {
        let path = Installation::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match Installation::parse(text.trim_end_matches(['\n', '\r'])) {
                    Some(id) => Ok(Some(id)),
                    None => Err(InstallationError::Damaged {
                        path,
                        found: text.chars().take(80).collect(),
                    }),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(InstallationError::Io { path, source }),
        }
    }

    /// Reads `<data_dir>/installation`, creating it with a new id when
    /// there is none (blocking file I/O: call it off the async workers).
    /// Returns the id and whether it was created now.
    pub fn open_or_create(data_dir: &Path) -> Result<(Installation, bool), InstallationError> {
        if let Some(id) = Installation::read(data_dir)? {
            return Ok((id, false));
        }
        let id = Installation::generate();
        write_atomically(data_dir, &id)?;
        Ok((id, true))
    }
}

/// Temporary file, fsync, rename over the final name, fsync of the
/// directory: after a crash the file is either absent or complete.
fn write_atomically(data_dir: &Path, id: &Installation) -> Result<(), InstallationError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallationError::Io { path, source }
    };
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let path = Installation::path(data_dir);
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(format!("{id}\n").as_bytes())
        .map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io(data_dir))?;
    Ok(())
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Installation::read(dir.path()).unwrap().is_none());
        let (first, created) = Installation::open_or_create(dir.path()).unwrap();
        assert!(created);
        assert_eq!(first.as_str().len(), 32);
        let (again, created) = Installation::open_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again, first);
        assert!(!dir.path().join("installation.tmp").exists());
        let other = tempfile::tempdir().unwrap();
        assert_ne!(Installation::open_or_create(other.path()).unwrap().0, first);
    }

    #[test]
    fn a_damaged_file_is_an_error_never_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "not an id!\n").unwrap();
        let err = Installation::open_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("restore it"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "not an id!\n"
        );
    }
}

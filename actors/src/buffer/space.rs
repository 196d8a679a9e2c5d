//! What the spool occupies on disk and what its filesystem has left.
//!
//! `disk_max` and `ingestor_buffer_disk_bytes` mean *allocated* bytes of
//! every file under `<data_dir>/spool` (journals, tables, tombstones: what
//! `du` shows, `st_blocks × 512`, not the apparent size — fjall's journal is
//! a sparse 64 MiB file). Walking the directory costs a few syscalls per
//! file, so it is done once a second on a blocking thread (the buffer's
//! tick), and between two walks the bytes written are added to the last
//! measurement.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bytesize::ByteSize;

use super::error::SpoolState;
use crate::settings::BufferSettings;

/// Room a full spool must have again before it is written to (so it does
/// not flap between full and writable on every batch).
const HYSTERESIS: u64 = 64 << 10;

/// Why the spool takes no write now (`SpoolError::Full`). Every one puts
/// the store in `SpoolState::Full`: batches stay in memory, and the tick
/// measures again every second, so it passes once NATS drains the backlog
/// or something else frees space; retrying sooner does not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoom {
    /// The write would make the spool occupy more than `disk_max`.
    #[error("the spool would occupy {after} on disk, over disk_max {disk_max}")]
    DiskMax {
        /// What the spool would occupy with the write.
        after: ByteSize,
        /// The cap.
        disk_max: ByteSize,
    },
    /// The write would leave its filesystem less than `disk_min_free`.
    #[error("its filesystem has {free} free, disk_min_free is {disk_min_free}")]
    MinFree {
        /// Free space of the filesystem, as last measured.
        free: ByteSize,
        /// The floor.
        disk_min_free: ByteSize,
    },
    /// The spool is full or failed already: no write is tried until the
    /// tick finds room again (and reopens a failed database).
    #[error("spool {}", .0.as_str())]
    NotWritable(SpoolState),
}

/// The last measurement plus what was written since.
#[derive(Debug, Clone, Default)]
pub(crate) struct Space {
    allocated: u64,
    free: u64,
    written_since: u64,
}

/// Allocated bytes of every file under `dir` (not following symlinks).
pub fn allocated_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            // A file fjall removed between read_dir and stat is simply gone.
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Space {
    /// Measures `dir` now (blocking: a directory walk and a statvfs).
    pub(crate) fn measure(dir: &Path) -> Space {
        let mut space = Space {
            free: u64::MAX,
            ..Space::default()
        };
        space.refresh(dir);
        space
    }

    /// Measures again; a failed measurement keeps the previous numbers.
    pub(crate) fn refresh(&mut self, dir: &Path) {
        match (allocated_bytes(dir), free_bytes(dir)) {
            (Ok(allocated), Ok(free)) => {
                *self = Space {
                    allocated,
                    free,
                    written_since: 0,
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(dir = %dir.display(), error = %e, "measuring the spool's disk use failed; keeping the last numbers");
            }
        }
    }

    /// `bytes` more were written since the last measurement.
    pub(crate) fn note_written(&mut self, bytes: u64) {
        self.written_since = self.written_since.saturating_add(bytes);
    }

    /// Allocated bytes of the spool, as best known.
    pub(crate) fn allocated(&self) -> u64 {
        self.allocated.saturating_add(self.written_since)
    }

    /// Free bytes of its filesystem, as best known.
    pub(crate) fn free(&self) -> u64 {
        self.free.saturating_sub(self.written_since)
    }

    /// Whether `incoming` more bytes fit under `disk_max` and above
    /// `disk_min_free`; if not, why not.
    pub(crate) fn room_for(&self, incoming: u64, s: &BufferSettings) -> Result<(), NoRoom> {
        let after = self.allocated().saturating_add(incoming);
        if after > s.disk_max.as_u64() {
            return Err(NoRoom::DiskMax {
                after: ByteSize::b(after),
                disk_max: s.disk_max,
            });
        }
        let floor = s.disk_min_free.as_u64().saturating_add(incoming);
        if self.free() < floor {
            return Err(NoRoom::MinFree {
                free: ByteSize::b(self.free()),
                disk_min_free: s.disk_min_free,
            });
        }
        Ok(())
    }

    /// Whether a full spool has room again (with some margin).
    pub(crate) fn has_room_again(&self, s: &BufferSettings) -> bool {
        self.room_for(HYSTERESIS.min(s.disk_max.as_u64() / 16), s)
            .is_ok()
    }
}

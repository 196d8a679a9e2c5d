//! `[buffer]`: the memory ring, when batches go to disk, and the spool's limits.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// When batches are written to disk. See `buffer` for what each survives.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PersistMode {
    /// Disk only when the ring is full (fewest disk writes).
    #[default]
    Overflow,
    /// Also everything while NATS is unreachable.
    Disconnect,
    /// Every batch on disk (synced) before it counts as accepted.
    Always,
}

/// What to drop when the spool reaches `disk_max`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenDiskFull {
    /// Delete the oldest batches on disk to make room.
    #[default]
    DropOldest,
    /// Refuse the batches that do not fit.
    DropNewest,
}

/// `[buffer]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSettings {
    /// Batches the in-memory ring holds.
    pub memory_batches: usize,
    /// `overflow`, `disconnect` or `always`.
    pub persist: PersistMode,
    /// The most the spool may occupy on disk, all its files included.
    pub disk_max: ByteSize,
    /// Free space the spool always leaves on its filesystem.
    pub disk_min_free: ByteSize,
    /// `drop_oldest` or `drop_newest`.
    pub when_disk_full: WhenDiskFull,
}

impl Default for BufferSettings {
    fn default() -> Self {
        BufferSettings {
            memory_batches: 10_000,
            persist: PersistMode::Overflow,
            disk_max: ByteSize::gib(1),
            disk_min_free: ByteSize::mib(256),
            when_disk_full: WhenDiskFull::DropOldest,
        }
    }
}

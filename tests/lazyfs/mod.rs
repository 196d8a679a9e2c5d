//! LazyFS-style power cuts for tests (the model of LazyFS, the tool Jepsen
//! uses): a FUSE filesystem, served from this test process with `fuser`,
//! that passes through to a backing directory but keeps every file's
//! written data in memory until fsync/fdatasync writes it through. A *cut*
//! unmounts it, dropping everything unsynced, and mounts a fresh one over
//! the same backing directory: what a disk holds after the power returns.
//!
//! Simplifications, as LazyFS's default model: metadata (create, rename,
//! unlink, truncate, mkdir) is durable at once; only file data waits for a
//! sync. Files are opened `direct_io`, so the kernel's page cache cannot
//! hand out data a cut took away.
//!
//! Needs root (or fusermount3) and `/dev/fuse`. Outside CI a test without
//! them is skipped with a message; under `CI=true` it fails instead.
#![allow(dead_code, unreachable_pub)]

mod fs;
mod overlay;
mod state;

use std::path::{Path, PathBuf};

pub use fs::LazyFs;
pub use state::UnsyncedData;

/// A mounted LazyFS over `<root>/backing`, at `<root>/mnt`.
pub struct LazyMount {
    backing: PathBuf,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
    unsynced: Option<UnsyncedData>,
}

impl LazyMount {
    /// Mounts under `root`; `None` (with the reason printed) where FUSE
    /// cannot be used outside CI. Under `CI=true` a failure panics.
    pub fn mount_or_skip(root: &Path, test: &str) -> Option<LazyMount> {
        let why_not = if !Path::new("/dev/fuse").exists() {
            Some("no /dev/fuse".to_string())
        } else if !rustix::process::geteuid().is_root() && which("fusermount3").is_none() {
            Some("not root and no fusermount3".to_string())
        } else {
            None
        };
        let result = match why_not {
            Some(why) => Err(why),
            None => LazyMount::mount(root),
        };
        match result {
            Ok(m) => Some(m),
            Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("{test}: the power-cut filesystem is required under CI=true: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED {test}: cannot mount the LazyFS power-cut filesystem ({why}); runs as root with /dev/fuse (CI)");
                None
            }
        }
    }

    fn mount(root: &Path) -> Result<LazyMount, String> {
        let backing = root.join("backing");
        let mountpoint = root.join("mnt");
        for d in [&backing, &mountpoint] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let mut m = LazyMount {
            backing,
            mountpoint,
            session: None,
            unsynced: None,
        };
        m.session = Some(m.spawn()?);
        Ok(m)
    }

    fn spawn(&mut self) -> Result<fuser::BackgroundSession, String> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("lazyfs".into())];
        let fs = LazyFs::new(&self.backing);
        self.unsynced = Some(fs.unsynced_data());
        fuser::spawn_mount(fs, &self.mountpoint, &config)
            .map_err(|e| format!("mounting at {}: {e}", self.mountpoint.display()))
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// What a disk holds: the synced data (for looking, not for writing).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Power cut and power back: every byte not synced is gone. Stop every
    /// process using the mount first (a cut of a running writer is a
    /// `kill -9` first, as the power would do it).
    pub fn cut(&mut self) {
        self.remount();
    }

    /// A torn power cut: of the unsynced writes a random part reaches the
    /// disk, in no particular order, some cut short (`pick(n)`: a number in
    /// `0..n`); the rest is gone. What a disk that reorders and tears
    /// writes may leave.
    pub fn cut_torn(&mut self, pick: impl FnMut(u64) -> u64) {
        if let Some(u) = &self.unsynced {
            u.persist_some(pick);
        }
        self.remount();
    }

    /// The next fsync of a file with unsynced data fails with EIO and
    /// drops that data (`UnsyncedData::fail_next_sync`).
    pub fn fail_next_sync(&self) {
        if let Some(u) = &self.unsynced {
            u.fail_next_sync();
        }
    }

    fn remount(&mut self) {
        if let Err(e) = self.unmount() {
            panic!("unmounting the LazyFS for a cut (a file still open on it?): {e}");
        }
        self.session = Some(self.spawn().expect("mounting the LazyFS again after a cut"));
    }

    /// Unmounts; one still in use (a test that failed midway) is detached
    /// instead, so that no dead mount is left behind, and the error returned.
    fn unmount(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        session.umount_and_join().inspect_err(|_| {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        })
    }
}

impl Drop for LazyMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.exists())
}

//! A small real filesystem for storage-fault tests: a tmpfs mounted for
//! the test (needs root), and a filler that uses up its last free byte.
//! Shared by the actor tests (`buffer_rig`) and the service tests
//! (`tests/service_disk_full.rs` includes this file by path).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`"16m"`) on `dir`. Outside CI a test that
    /// cannot mount (not root) says so and gets `None` (it skips); under
    /// `CI=true` it must mount.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(dir.to_path_buf()));
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to mount a tmpfs (run as root)"
        );
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (not root?); this storage-fault test needs one"
        );
        None
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with one file until not a byte is left;
/// remove the file to give the space back.
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x42u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let mut small = vec![0x42u8; 4096];
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    path
}

//! The model's state: which path each inode has, the open files, and
//! every file's unsynced data; the operations the FUSE side calls.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo};

use super::overlay::Unsynced;

pub(super) type Io<T> = Result<T, Errno>;

pub(super) struct Handle {
    pub(super) ino: u64,
    pub(super) file: File,
    pub(super) append: bool,
}

pub(super) struct State {
    pub(super) backing: PathBuf,
    pub(super) paths: HashMap<u64, PathBuf>,
    pub(super) inos: HashMap<PathBuf, u64>,
    pub(super) next_ino: u64,
    pub(super) handles: HashMap<u64, Handle>,
    pub(super) next_fh: u64,
    pub(super) unsynced: HashMap<u64, Unsynced>,
    /// fsyncs still to fail (`UnsyncedData::fail_next_sync`).
    pub(super) failing_syncs: u32,
}

/// A handle on a mounted LazyFs's unsynced data, for a torn cut.
#[derive(Clone)]
pub struct UnsyncedData(pub(super) Arc<Mutex<State>>);

impl UnsyncedData {
    /// A torn cut (what a disk that reorders writes may leave): of each
    /// file's unsynced writes, oldest first, each is kept or not at random
    /// (`pick(n)` in `0..n`), and a kept one may be cut short. Written to
    /// the backing directory; the rest is dropped with the mount.
    pub fn persist_some(&self, mut pick: impl FnMut(u64) -> u64) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let unsynced = std::mem::take(&mut state.unsynced);
        for (ino, u) in unsynced {
            let Some(rel) = state.paths.get(&ino) else {
                continue; // unlinked: nothing a disk would show
            };
            let Ok(file) = OpenOptions::new().write(true).open(state.backing.join(rel)) else {
                continue;
            };
            u.persist_some(&file, &mut pick);
        }
    }

    /// The next fsync/fdatasync of a file with unsynced data fails with
    /// EIO, and that data is gone: what Linux does when writeback fails
    /// (the dirty pages are dropped, a later fsync succeeds with them
    /// lost). Nothing else changes: the mount stays, the file stays open.
    pub fn fail_next_sync(&self) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.failing_syncs += 1;
    }
}

pub(super) fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}

impl State {
    pub(super) fn new(backing: &Path) -> State {
        let mut paths = HashMap::new();
        let mut inos = HashMap::new();
        paths.insert(INodeNo::ROOT.0, PathBuf::new());
        inos.insert(PathBuf::new(), INodeNo::ROOT.0);
        State {
            backing: backing.to_path_buf(),
            paths,
            inos,
            next_ino: 2,
            handles: HashMap::new(),
            next_fh: 1,
            unsynced: HashMap::new(),
            failing_syncs: 0,
        }
    }

    pub(super) fn rel(&self, ino: u64) -> Io<PathBuf> {
        self.paths.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    pub(super) fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    pub(super) fn ino_of(&mut self, rel: &Path) -> u64 {
        if let Some(ino) = self.inos.get(rel) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inos.insert(rel.to_path_buf(), ino);
        self.paths.insert(ino, rel.to_path_buf());
        ino
    }

    pub(super) fn child(&self, parent: INodeNo, name: &OsStr) -> Io<PathBuf> {
        Ok(self.rel(parent.0)?.join(name))
    }

    pub(super) fn meta(&self, ino: u64, fh: Option<FileHandle>) -> Io<Metadata> {
        if let Some(h) = fh.and_then(|fh| self.handles.get(&fh.0)) {
            return h.file.metadata().map_err(io);
        }
        match std::fs::symlink_metadata(self.full(&self.rel(ino)?)) {
            Ok(m) => Ok(m),
            Err(e) => match self.handles.values().find(|h| h.ino == ino) {
                Some(h) => h.file.metadata().map_err(io),
                None => Err(io(e)),
            },
        }
    }

    pub(super) fn attr(&self, ino: u64, m: &Metadata) -> FileAttr {
        let end = self.unsynced.get(&ino).map_or(0, Unsynced::end);
        let time = |s: i64, ns: i64| UNIX_EPOCH + Duration::new(s.max(0) as u64, ns as u32);
        FileAttr {
            ino: INodeNo(ino),
            size: m.len().max(end),
            blocks: m.blocks(),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: SystemTime::UNIX_EPOCH,
            kind: if m.is_dir() {
                FileType::Directory
            } else if m.file_type().is_symlink() {
                FileType::Symlink
            } else {
                FileType::RegularFile
            },
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    pub(super) fn entry(&mut self, rel: &Path) -> Io<FileAttr> {
        let m = std::fs::symlink_metadata(self.full(rel)).map_err(io)?;
        let ino = self.ino_of(rel);
        Ok(self.attr(ino, &m))
    }

    pub(super) fn open_handle(&mut self, ino: u64, file: File, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let append = flags & libc_o::APPEND != 0;
        self.handles.insert(fh, Handle { ino, file, append });
        fh
    }

    pub(super) fn truncate(&mut self, ino: u64, fh: Option<FileHandle>, size: u64) -> Io<()> {
        match fh.and_then(|fh| self.handles.get(&fh.0)) {
            Some(h) => h.file.set_len(size).map_err(io)?,
            None => OpenOptions::new()
                .write(true)
                .open(self.full(&self.rel(ino)?))
                .and_then(|f| f.set_len(size))
                .map_err(io)?,
        }
        if let Some(u) = self.unsynced.get_mut(&ino) {
            u.truncate(size);
        }
        Ok(())
    }

    pub(super) fn read(&self, fh: u64, offset: u64, size: u32) -> Io<Vec<u8>> {
        let h = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        let disk_len = h.file.metadata().map_err(io)?.len();
        let unsynced = self.unsynced.get(&h.ino);
        let len = disk_len.max(unsynced.map_or(0, Unsynced::end));
        if offset >= len {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (len - offset).min(size as u64) as usize];
        let mut at = 0;
        while at < buf.len() && offset + (at as u64) < disk_len {
            match h
                .file
                .read_at(&mut buf[at..], offset + at as u64)
                .map_err(io)?
            {
                0 => break,
                n => at += n,
            }
        }
        if let Some(u) = unsynced {
            u.overlay(offset, &mut buf);
        }
        Ok(buf)
    }

    pub(super) fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Io<()> {
        let h = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        let ino = h.ino;
        let offset = if h.append {
            let disk = h.file.metadata().map_err(io)?.len();
            disk.max(self.unsynced.get(&ino).map_or(0, Unsynced::end))
        } else {
            offset
        };
        self.unsynced.entry(ino).or_default().write(offset, data);
        Ok(())
    }

    /// fsync / fdatasync: the file's unsynced data becomes durable.
    pub(super) fn sync(&mut self, ino: u64, fh: u64) -> Io<()> {
        let Some(mut u) = self.unsynced.remove(&ino) else {
            return Ok(());
        };
        if self.failing_syncs > 0 {
            // Writeback failed: the data is dropped, the error reported once.
            self.failing_syncs -= 1;
            return Err(Errno::EIO);
        }
        let result = match self.handles.get(&fh) {
            Some(h) => u.write_through(&h.file),
            None => OpenOptions::new()
                .write(true)
                .open(self.full(&self.rel(ino)?))
                .and_then(|f| u.write_through(&f)),
        };
        if !u.is_empty() {
            self.unsynced.insert(ino, u);
        }
        result.map_err(io)
    }

    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> Io<()> {
        std::fs::rename(self.full(from), self.full(to)).map_err(io)?;
        if let Some(old) = self.inos.remove(to) {
            self.paths.remove(&old);
        }
        let moved: Vec<(PathBuf, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            // (`join("")` would add a trailing slash: a directory.)
            let new = match p.strip_prefix(from) {
                Ok(rest) if !rest.as_os_str().is_empty() => to.join(rest),
                _ => to.to_path_buf(),
            };
            self.inos.remove(&p);
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
        Ok(())
    }

    pub(super) fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
        }
    }
}

/// The open(2) flag bits this model looks at (Linux values).
pub(super) mod libc_o {
    pub const ACCMODE: i32 = 0o3;
    pub const RDONLY: i32 = 0o0;
    pub const EXCL: i32 = 0o200;
    pub const TRUNC: i32 = 0o1000;
    pub const APPEND: i32 = 0o2000;
}

pub(super) fn open_options(flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(flags & libc_o::ACCMODE != libc_o::RDONLY);
    o
}

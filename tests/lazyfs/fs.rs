//! The FUSE side: a pass-through to a backing directory that keeps every
//! file's written data in memory (`Unsynced`) until fsync/fdatasync.
//!
//! Modelled as always durable (the common simplification, as LazyFS's
//! default): create, mkdir, rename, unlink, rmdir, truncate, chmod,
//! fallocate. Only file *data* waits for a sync. A cut is the end of this
//! object: what it held in memory is gone, the backing directory is what a
//! disk would hold after the power came back.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::overlay::Unsynced;

/// Nothing cached in the kernel: sizes change with a cut.
const TTL: Duration = Duration::ZERO;

struct Handle {
    ino: u64,
    file: File,
    append: bool,
}

struct State {
    backing: PathBuf,
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    unsynced: HashMap<u64, Unsynced>,
}

/// The filesystem; one per mount (a remount after a cut starts empty).
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

/// A handle on a mounted LazyFs's unsynced data, for a torn cut.
#[derive(Clone)]
pub struct UnsyncedData(Arc<Mutex<State>>);

type Io<T> = Result<T, Errno>;

impl LazyFs {
    pub fn new(backing: &Path) -> LazyFs {
        let mut paths = HashMap::new();
        let mut inos = HashMap::new();
        paths.insert(INodeNo::ROOT.0, PathBuf::new());
        inos.insert(PathBuf::new(), INodeNo::ROOT.0);
        LazyFs {
            state: Arc::new(Mutex::new(State {
                backing: backing.to_path_buf(),
                paths,
                inos,
                next_ino: 2,
                handles: HashMap::new(),
                next_fh: 1,
                unsynced: HashMap::new(),
            })),
        }
    }

    /// The handle a torn cut uses (`UnsyncedData::persist_some`).
    pub fn unsynced_data(&self) -> UnsyncedData {
        UnsyncedData(self.state.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Io<T>) -> Io<T> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }
}

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
}

fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}

impl State {
    fn rel(&self, ino: u64) -> Io<PathBuf> {
        self.paths.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn ino_of(&mut self, rel: &Path) -> u64 {
        if let Some(ino) = self.inos.get(rel) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inos.insert(rel.to_path_buf(), ino);
        self.paths.insert(ino, rel.to_path_buf());
        ino
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Io<PathBuf> {
        Ok(self.rel(parent.0)?.join(name))
    }

    fn meta(&self, ino: u64, fh: Option<FileHandle>) -> Io<Metadata> {
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

    fn attr(&self, ino: u64, m: &Metadata) -> FileAttr {
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

    fn entry(&mut self, rel: &Path) -> Io<FileAttr> {
        let m = std::fs::symlink_metadata(self.full(rel)).map_err(io)?;
        let ino = self.ino_of(rel);
        Ok(self.attr(ino, &m))
    }

    fn open_handle(&mut self, ino: u64, file: File, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let append = flags & libc_o::APPEND != 0;
        self.handles.insert(fh, Handle { ino, file, append });
        fh
    }

    fn truncate(&mut self, ino: u64, fh: Option<FileHandle>, size: u64) -> Io<()> {
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

    fn read(&self, fh: u64, offset: u64, size: u32) -> Io<Vec<u8>> {
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

    fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Io<()> {
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
    fn sync(&mut self, ino: u64, fh: u64) -> Io<()> {
        let Some(mut u) = self.unsynced.remove(&ino) else {
            return Ok(());
        };
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

    fn rename(&mut self, from: &Path, to: &Path) -> Io<()> {
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

    fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
        }
    }
}

/// The open(2) flag bits this model looks at (Linux values).
mod libc_o {
    pub const ACCMODE: i32 = 0o3;
    pub const RDONLY: i32 = 0o0;
    pub const EXCL: i32 = 0o200;
    pub const TRUNC: i32 = 0o1000;
    pub const APPEND: i32 = 0o2000;
}

fn open_options(flags: i32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(flags & libc_o::ACCMODE != libc_o::RDONLY);
    o
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.with(|s| {
            let rel = s.child(parent, name)?;
            s.entry(&rel)
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|s| s.meta(ino.0, fh).map(|m| s.attr(ino.0, &m))) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.with(|s| {
            if let Some(size) = size {
                s.truncate(ino.0, fh, size)?;
            }
            if let Some(mode) = mode {
                let path = s.full(&s.rel(ino.0)?);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            s.meta(ino.0, fh).map(|m| s.attr(ino.0, &m))
        }) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.with(|s| {
            let rel = s.child(parent, name)?;
            std::fs::create_dir(s.full(&rel)).map_err(io)?;
            let perm = std::fs::Permissions::from_mode(mode & !umask & 0o7777);
            std::fs::set_permissions(s.full(&rel), perm).map_err(io)?;
            s.entry(&rel)
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| {
            let rel = s.child(parent, name)?;
            std::fs::remove_file(s.full(&rel)).map_err(io)?;
            s.forget_path(&rel);
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| {
            let rel = s.child(parent, name)?;
            std::fs::remove_dir(s.full(&rel)).map_err(io)?;
            s.forget_path(&rel);
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.with(|s| {
            let (from, to) = (s.child(parent, name)?, s.child(newparent, newname)?);
            s.rename(&from, &to)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.with(|s| {
            let file = open_options(flags.0)
                .open(s.full(&s.rel(ino.0)?))
                .map_err(io)?;
            let fh = s.open_handle(ino.0, file, flags.0);
            if flags.0 & libc_o::TRUNC != 0 {
                s.truncate(ino.0, Some(FileHandle(fh)), 0)?;
            }
            Ok(fh)
        }) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.with(|s| {
            let rel = s.child(parent, name)?;
            let mut o = OpenOptions::new();
            o.read(true).write(true).create(true);
            o.mode(mode & !umask & 0o7777);
            if flags & libc_o::EXCL != 0 {
                o.create_new(true);
            }
            let file = o.open(s.full(&rel)).map_err(io)?;
            let attr = s.entry(&rel)?;
            let fh = s.open_handle(attr.ino.0, file, flags);
            if flags & libc_o::TRUNC != 0 {
                s.truncate(attr.ino.0, Some(FileHandle(fh)), 0)?;
            }
            Ok((attr, fh))
        }) {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.with(|s| s.read(fh.0, offset, size)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with(|s| s.write(fh.0, offset, data)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) is not a sync: the data stays unsynced.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _ = self.with(|s| Ok(s.handles.remove(&fh.0)));
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.with(|s| s.sync(ino.0, fh.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.with(|s| {
            let rel = s.rel(ino.0)?;
            let mut out = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for entry in std::fs::read_dir(s.full(&rel)).map_err(io)? {
                let entry = entry.map_err(io)?;
                let kind = match entry.file_type().map_err(io)? {
                    t if t.is_dir() => FileType::Directory,
                    t if t.is_symlink() => FileType::Symlink,
                    _ => FileType::RegularFile,
                };
                let child = s.ino_of(&rel.join(entry.file_name()));
                out.push((child, kind, entry.file_name()));
            }
            Ok(out)
        });
        match listed {
            Ok(entries) => {
                for (i, (child, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*child), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Metadata is always durable in this model.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let backing = self.with(|s| Ok(s.backing.clone())).unwrap_or_default();
        match rustix::fs::statvfs(&backing) {
            Ok(v) => reply.statfs(
                v.f_blocks,
                v.f_bfree,
                v.f_bavail,
                v.f_files,
                v.f_ffree,
                v.f_bsize as u32,
                v.f_namemax as u32,
                v.f_frsize as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e.raw_os_error())),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.with(|s| {
            let h = s.handles.get(&fh.0).ok_or(Errno::EBADF)?;
            let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
            rustix::fs::fallocate(&h.file, flags, offset, length)
                .map_err(|e| Errno::from_i32(e.raw_os_error()))
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

//! The FUSE side: a pass-through to a backing directory that keeps every
//! file's written data in memory (`Unsynced`) until fsync/fdatasync.
//!
//! Modelled as always durable (the common simplification, as LazyFS's
//! default): create, mkdir, rename, unlink, rmdir, truncate, chmod,
//! fallocate. Only file *data* waits for a sync. A cut is the end of this
//! object: what it held in memory is gone, the backing directory is what a
//! disk would hold after the power came back.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::state::{io, libc_o, open_options, Io, State, UnsyncedData};

/// Nothing cached in the kernel: sizes change with a cut.
const TTL: Duration = Duration::ZERO;

/// The filesystem; one per mount (a remount after a cut starts empty).
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    pub fn new(backing: &Path) -> LazyFs {
        LazyFs {
            state: Arc::new(Mutex::new(State::new(backing))),
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

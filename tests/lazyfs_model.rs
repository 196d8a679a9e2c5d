//! The power-cut filesystem itself (tests/lazyfs): data survives a cut only
//! once synced; metadata (create, rename, truncate) always does, as the
//! model says.
mod lazyfs;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};

use lazyfs::LazyMount;

fn mounted(test: &str) -> Option<(tempfile::TempDir, LazyMount)> {
    let root = tempfile::tempdir().unwrap();
    let m = LazyMount::mount_or_skip(root.path(), test)?;
    Some((root, m))
}

fn read(path: &std::path::Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

#[test]
fn written_without_sync_is_gone_after_a_cut() {
    let Some((_root, mut fs)) = mounted("written_without_sync_is_gone_after_a_cut") else {
        return;
    };
    let path = fs.path().join("a");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"hello").unwrap();
    drop(f);
    assert_eq!(
        read(&path),
        b"hello",
        "reads see unsynced data before a cut"
    );
    fs.cut();
    assert!(
        path.exists(),
        "a created file survives (metadata is durable)"
    );
    assert_eq!(read(&path), b"", "unsynced data survived the cut");
}

/// A file `journal` holding "synced;" synced, then "lost" written unsynced.
fn synced_then_unsynced(fs: &LazyMount) -> (std::path::PathBuf, std::fs::File) {
    let path = fs.path().join("journal");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"synced;").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"lost").unwrap();
    (path, f)
}

#[test]
fn fdatasync_keeps_data_across_a_cut_and_later_writes_are_cut() {
    let Some((_root, mut fs)) = mounted("fdatasync_keeps_data_across_a_cut") else {
        return;
    };
    let (path, mut f) = synced_then_unsynced(&fs);
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"S").unwrap();
    drop(f);
    assert_eq!(read(&path), b"Synced;lost");
    fs.cut();
    assert_eq!(read(&path), b"synced;", "only the synced bytes survive");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 7);
}

#[test]
fn fsync_after_reopen_and_rename_keeps_data() {
    let Some((_root, mut fs)) = mounted("fsync_after_reopen_and_rename_keeps_data") else {
        return;
    };
    let (a, b) = (fs.path().join("a.tmp"), fs.path().join("b"));
    std::fs::write(&a, b"one").unwrap();
    let f = OpenOptions::new().append(true).open(&a).unwrap();
    (&f).write_all(b"two").unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&a, &b).unwrap();
    assert_eq!(
        read(&b),
        b"onetwo",
        "a renamed file opens under its new name"
    );
    std::fs::create_dir(fs.path().join("d")).unwrap();
    std::fs::write(fs.path().join("d/x"), b"unsynced").unwrap();
    fs.cut();
    assert_eq!(
        read(&b),
        b"onetwo",
        "synced through another handle, then renamed"
    );
    assert!(!a.exists());
    assert_eq!(read(&fs.path().join("d/x")), b"");
    assert_eq!(read(&fs.backing().join("b")), b"onetwo");
}

#[test]
fn truncate_is_durable_and_cuts_unsynced_data() {
    let Some((_root, mut fs)) = mounted("truncate_is_durable") else {
        return;
    };
    let path = fs.path().join("t");
    let f = std::fs::File::create(&path).unwrap();
    (&f).write_all(b"0123456789").unwrap();
    f.sync_data().unwrap();
    f.set_len(4).unwrap();
    (&f).write_all(b"zz").unwrap(); // at offset 10: past the end, a hole
    assert_eq!(read(&path), b"0123\0\0\0\0\0\0zz");
    drop(f);
    fs.cut();
    assert_eq!(read(&path), b"0123");
}

#[test]
fn a_torn_cut_keeps_what_it_picks_of_the_unsynced_writes() {
    let Some((_root, mut fs)) = mounted("a_torn_cut_keeps_what_it_picks") else {
        return;
    };
    let (a, b) = (fs.path().join("a"), fs.path().join("b"));
    let f = std::fs::File::create(&a).unwrap();
    (&f).write_all(b"synced;").unwrap();
    f.sync_data().unwrap();
    (&f).write_all(b"kept").unwrap();
    drop(f);
    std::fs::write(&b, b"dropped").unwrap();
    // Every pick 1: each unsynced write kept (1 of 2), whole (1 of 4).
    fs.cut_torn(|_| 1);
    assert_eq!(read(&a), b"synced;kept");
    assert_eq!(read(&b), b"dropped");
    let f = OpenOptions::new().append(true).open(&a).unwrap();
    (&f).write_all(b"-gone").unwrap();
    drop(f);
    fs.cut_torn(|_| 0);
    assert_eq!(read(&a), b"synced;kept", "a write not picked is lost");
}

#[test]
fn a_failed_fsync_reports_eio_and_drops_what_it_held() {
    let Some((_root, mut fs)) = mounted("a_failed_fsync_reports_eio") else {
        return;
    };
    let (path, mut f) = synced_then_unsynced(&fs);
    fs.fail_next_sync();
    let e = f.sync_data().expect_err("the armed fsync fails");
    assert_eq!(e.raw_os_error(), Some(5), "EIO: {e}");
    assert_eq!(read(&path), b"synced;", "the data it held is gone at once");
    f.write_all(b"again").unwrap();
    f.sync_data().expect("only the next fsync fails");
    drop(f);
    fs.cut();
    // The file offset went on past the dropped bytes: a hole, as on Linux.
    assert_eq!(read(&path), b"synced;\0\0\0\0again");
}

//! Ordinary behaviour of `FsStorage`: round trips, atomic replacement, mkdir,
//! error variants, temp handling and user-name validation.

use std::io::{Read, Write};
use std::path::Path;

use ftp_storage::{FsHome, FsStorage, Home, PathError, Storage, StorageError, Upload, VPath};

/// Asserts that `$result` is `Err(StorageError::$variant)`.
macro_rules! assert_err {
    ($result:expr, $variant:ident) => {
        assert!(matches!($result, Err(StorageError::$variant)))
    };
}

fn vp(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn setup() -> (tempfile::TempDir, FsStorage) {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(&tmp.path().join("root")).unwrap();
    (tmp, storage)
}

/// [`setup`] and alice's home in it (the storage is kept alive beside it).
fn setup_alice() -> (tempfile::TempDir, FsStorage, FsHome) {
    let (tmp, storage) = setup();
    let home = storage.home("alice").unwrap();
    (tmp, storage, home)
}

fn read_all<H: Home>(home: &H, path: &str) -> Result<Vec<u8>, StorageError> {
    let (mut reader, size) = home.open_read(&vp(path))?;
    let mut buf = Vec::new();
    reader.read_to_end(&mut buf).unwrap();
    assert_eq!(buf.len() as u64, size);
    Ok(buf)
}

fn upload<H: Home>(home: &H, path: &str, data: &[u8]) -> Result<(), StorageError> {
    let mut up = home.create_upload(&vp(path), 0)?;
    up.write_all(data).unwrap();
    up.commit().map(|_| ())
}

fn incoming_entries(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp.join("root/.incoming"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn round_trip_sizes() {
    let (tmp, _storage, home) = setup_alice();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for (name, data) in [
        ("empty", &b""[..]),
        ("one", &b"x"[..]),
        ("big.bin", &big[..]),
    ] {
        upload(&home, name, data).unwrap();
        assert_eq!(read_all(&home, name).unwrap(), data, "{name}");
        assert_eq!(
            std::fs::read(tmp.path().join("root/alice").join(name)).unwrap(),
            data
        );
    }
    assert!(incoming_entries(tmp.path()).is_empty());
}

#[test]
fn temp_name_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (tmp, _storage, home) = setup_alice();
    let up = home.create_upload(&vp("f"), 0).unwrap();
    let names = incoming_entries(tmp.path());
    assert_eq!(names.len(), 1);
    let name = &names[0];
    let hex = name
        .strip_prefix("alice.")
        .and_then(|n| n.strip_suffix(".part"))
        .unwrap();
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    let mode = std::fs::metadata(tmp.path().join("root/.incoming").join(name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0, "temp must not be group/other-writable");
    up.commit().unwrap();
}

#[test]
fn dropped_or_aborted_upload_leaves_nothing() {
    let (tmp, _storage, home) = setup_alice();
    let mut up = home.create_upload(&vp("dropped.txt"), 0).unwrap();
    up.write_all(b"partial").unwrap();
    assert_eq!(incoming_entries(tmp.path()).len(), 1);
    drop(up);
    let mut up = home.create_upload(&vp("aborted.txt"), 0).unwrap();
    up.write_all(b"partial").unwrap();
    up.abort();
    assert!(incoming_entries(tmp.path()).is_empty());
    for name in ["dropped.txt", "aborted.txt"] {
        assert!(!tmp.path().join("root/alice").join(name).exists());
        assert_err!(read_all(&home, name), NotFound);
    }
}

#[test]
fn replacement_is_atomic() {
    let (tmp, _storage, home) = setup_alice();
    upload(&home, "doc.txt", b"old content").unwrap();
    let (mut early_reader, _) = home.open_read(&vp("doc.txt")).unwrap();
    let mut up = home.create_upload(&vp("doc.txt"), 0).unwrap();
    up.write_all(b"new content, longer").unwrap();
    up.flush().unwrap();
    assert_eq!(read_all(&home, "doc.txt").unwrap(), b"old content");
    up.commit().unwrap();
    assert_eq!(read_all(&home, "doc.txt").unwrap(), b"new content, longer");
    // A reader opened before the commit keeps the old file.
    let mut old = Vec::new();
    early_reader.read_to_end(&mut old).unwrap();
    assert_eq!(old, b"old content");
    assert!(incoming_entries(tmp.path()).is_empty());
}

#[test]
fn mkdir_semantics() {
    let (tmp, _storage, home) = setup_alice();
    home.mkdir(&vp("a/b/c"), true).unwrap();
    assert!(tmp.path().join("root/alice/a/b/c").is_dir());
    home.mkdir(&vp("a/b/c"), true).unwrap(); // idempotent
    home.mkdir(&vp("a/b/c/"), true).unwrap();
    assert_err!(home.mkdir(&vp("x/y"), false), NotFound);
    assert_err!(home.mkdir(&vp("a/b"), false), AlreadyExists);
    home.mkdir(&vp("a/d"), false).unwrap();
    upload(&home, "a/file", b"f").unwrap();
    assert_err!(home.mkdir(&vp("a/file"), false), AlreadyExists);
    assert_err!(home.mkdir(&vp("a/file"), true), AlreadyExists);
    assert_err!(home.mkdir(&vp("a/file/x"), true), NotADirectory);
    assert_err!(home.mkdir(&vp("a/file/x"), false), NotADirectory);
    // An in-home symlink to a directory counts as a directory.
    std::os::unix::fs::symlink("a/b", tmp.path().join("root/alice/to_b")).unwrap();
    home.mkdir(&vp("to_b/e"), true).unwrap();
    assert!(tmp.path().join("root/alice/a/b/e").is_dir());
}

#[test]
fn upload_error_variants() {
    let (_tmp, _storage, home) = setup_alice();
    home.mkdir(&vp("dir"), false).unwrap();
    upload(&home, "file", b"f").unwrap();
    assert_err!(home.create_upload(&vp("dir"), 0), IsADirectory);
    assert_err!(home.create_upload(&vp("missing/f"), 0), NotFound);
    assert_err!(home.create_upload(&vp("file/f"), 0), NotADirectory);
    assert_err!(home.open_read(&vp("dir")), IsADirectory);
    assert_err!(home.open_read(&vp("nope")), NotFound);
}

#[test]
fn upload_fails_if_parent_vanishes_before_commit() {
    let (tmp, _storage, home) = setup_alice();
    home.mkdir(&vp("d"), false).unwrap();
    let mut up = home.create_upload(&vp("d/f"), 0).unwrap();
    up.write_all(b"data").unwrap();
    std::fs::remove_dir(tmp.path().join("root/alice/d")).unwrap();
    assert_err!(up.commit(), NotFound);
    assert!(incoming_entries(tmp.path()).is_empty());
}

#[test]
fn upload_through_in_home_symlink_replaces_target() {
    let (tmp, _storage, home) = setup_alice();
    home.mkdir(&vp("sub"), false).unwrap();
    upload(&home, "sub/real.txt", b"old").unwrap();
    std::os::unix::fs::symlink("sub/real.txt", tmp.path().join("root/alice/alias")).unwrap();
    assert_eq!(read_all(&home, "alias").unwrap(), b"old");
    upload(&home, "alias", b"new").unwrap();
    let alice = tmp.path().join("root/alice");
    assert!(alice.join("alias").symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read(alice.join("sub/real.txt")).unwrap(), b"new");
}

#[test]
fn non_ascii_names() {
    let (tmp, _storage, home) = setup_alice();
    home.mkdir(&vp("目录"), false).unwrap();
    upload(&home, "目录/报告.txt", "内容 café".as_bytes()).unwrap();
    assert_eq!(
        read_all(&home, "目录/报告.txt").unwrap(),
        "内容 café".as_bytes()
    );
    assert!(tmp.path().join("root/alice/目录/报告.txt").is_file());
}

#[test]
fn open_sweeps_stale_temps() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    drop(FsStorage::open(&root).unwrap());
    let incoming = root.join(".incoming");
    std::fs::write(incoming.join("alice.0123456789abcdef.part"), b"stale").unwrap();
    std::fs::write(incoming.join("junk"), b"x").unwrap();
    std::fs::create_dir_all(incoming.join("odd/dir")).unwrap();
    let storage = FsStorage::open(&root).unwrap();
    assert!(incoming_entries(tmp.path()).is_empty());
    // The storage still works afterwards.
    let home = storage.home("alice").unwrap();
    upload(&home, "f", b"ok").unwrap();
    assert_eq!(read_all(&home, "f").unwrap(), b"ok");
}

#[test]
fn user_names_are_validated() {
    let (tmp, storage) = setup();
    for bad in ["../x", ".incoming", "", "..", "a/b", "Alice", "-x"] {
        let err = storage.home(bad).expect_err(bad);
        assert!(
            matches!(err, StorageError::InvalidPath(PathError::InvalidUserName)),
            "{bad}: {err:?}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [".incoming"]);
    storage.home("alice").unwrap();
    assert!(tmp.path().join("root/alice").is_dir());
}

#[test]
fn homes_are_independent() {
    let (_tmp, storage) = setup();
    let alice = storage.home("alice").unwrap();
    let bob = storage.home("bob").unwrap();
    upload(&alice, "same.txt", b"alice").unwrap();
    upload(&bob, "same.txt", b"bob").unwrap();
    assert_eq!(read_all(&alice, "same.txt").unwrap(), b"alice");
    assert_eq!(read_all(&bob, "same.txt").unwrap(), b"bob");
}

#[test]
fn display_is_client_safe() {
    let io = std::io::Error::from_raw_os_error(libc::EIO);
    let err = StorageError::from(io);
    assert!(matches!(err, StorageError::Io(_)));
    assert_eq!(err.to_string(), "storage error");
    let full = StorageError::from(std::io::Error::from_raw_os_error(libc::ENOSPC));
    assert_eq!(full.to_string(), "no space left on the server");
    assert_eq!(
        StorageError::from(PathError::DotComponent).to_string(),
        "'..' and '.' are not allowed in paths"
    );
}

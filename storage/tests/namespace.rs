//! Listing, describing, removing and renaming in a home: `list`, `stat`,
//! `remove`, `rmdir` and `rename` of `FsHome`, and their error variants.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use ftp_storage::{Entry, EntryKind, FsHome, FsStorage, Home, Storage, StorageError, VPath};

/// Asserts that `$result` is `Err(StorageError::$variant)`.
macro_rules! assert_err {
    ($result:expr, $variant:ident) => {{
        let result = $result;
        assert!(
            matches!(result, Err(StorageError::$variant)),
            "expected {}, got {result:?}",
            stringify!($variant)
        )
    }};
}

fn vp(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// A temp dir with `outside/secret.txt` beside the root, and alice's home
/// (its path on disk too).
fn setup() -> (tempfile::TempDir, FsStorage, FsHome, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("outside")).unwrap();
    std::fs::write(tmp.path().join("outside/secret.txt"), b"secret").unwrap();
    let storage = FsStorage::open(&tmp.path().join("root")).unwrap();
    let home = storage.home("alice").unwrap();
    let dir = tmp.path().join("root/alice");
    (tmp, storage, home, dir)
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

/// Every entry, sorted by name (listings come in directory order).
fn list(home: &FsHome, path: &str) -> Result<Vec<Entry>, StorageError> {
    let listing = if path.is_empty() {
        home.list(None)?
    } else {
        home.list(Some(&vp(path)))?
    };
    let mut entries = listing.read_all()?;
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[test]
fn list_describes_each_entry_as_it_is() {
    let (_tmp, _storage, home, dir) = setup();
    assert_eq!(list(&home, "").unwrap(), []);
    std::fs::write(dir.join("file.txt"), b"12345").unwrap();
    std::fs::set_permissions(dir.join("file.txt"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/inner"), b"x").unwrap();
    symlink("file.txt", dir.join("link")).unwrap();
    symlink("sub", dir.join("dirlink")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());

    let entries = list(&home, "").unwrap();
    assert_eq!(
        names(&entries),
        ["dirlink", "fifo", "file.txt", "link", "sub"]
    );
    let by_name = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
    let meta = std::fs::metadata(dir.join("file.txt")).unwrap();
    assert_eq!(
        by_name("file.txt"),
        Entry {
            name: "file.txt".into(),
            kind: EntryKind::File,
            size: 5,
            modified: meta.mtime(),
            mode: 0o640,
        }
    );
    let link = by_name("link");
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.size, "file.txt".len() as u64);
    assert_eq!(by_name("dirlink").kind, EntryKind::Symlink);
    assert_eq!(by_name("sub").kind, EntryKind::Directory);
    assert_eq!(by_name("fifo").kind, EntryKind::Other);

    // A directory, also through an in-home symlink and with a trailing '/'.
    for path in ["sub", "sub/", "dirlink"] {
        assert_eq!(names(&list(&home, path).unwrap()), ["inner"], "{path}");
    }
    // Anything else: the one entry of the thing itself.
    assert_eq!(list(&home, "sub/inner").unwrap()[0].name, "inner");
    assert_eq!(list(&home, "link").unwrap(), [link]);
    let fifo = list(&home, "fifo").unwrap();
    assert_eq!((fifo.len(), fifo[0].kind), (1, EntryKind::Other));
    assert_err!(list(&home, "missing"), NotFound);
    assert_err!(list(&home, "sub/missing"), NotFound);
    assert_err!(list(&home, "file.txt/x"), NotADirectory);
}

#[test]
fn list_never_follows_a_symlink_out_of_the_home() {
    let (tmp, _storage, home, dir) = setup();
    symlink(tmp.path().join("outside"), dir.join("abs")).unwrap();
    symlink("../../outside", dir.join("rel")).unwrap();
    symlink("..", dir.join("parent")).unwrap();
    symlink("missing", dir.join("broken")).unwrap();
    symlink("loop", dir.join("loop")).unwrap();
    for link in ["abs", "rel", "parent", "broken", "loop"] {
        let entries = list(&home, link).unwrap();
        assert_eq!(entries.len(), 1, "{link}: {entries:?}");
        assert_eq!(entries[0].name, link);
        assert_eq!(entries[0].kind, EntryKind::Symlink, "{link}");
    }
    for path in ["abs/secret.txt", "rel/secret.txt", "parent/alice"] {
        assert_err!(list(&home, path), PermissionDenied);
    }
}

#[test]
fn list_shows_no_upload_in_progress_and_lossy_names() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, _storage, home, dir) = setup();
    let _upload = home.create_upload(&vp("coming.bin"), 10).unwrap();
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"").unwrap();
    assert_eq!(names(&list(&home, "").unwrap()), ["bad\u{fffd}name"]);
}

#[test]
fn stat_follows_in_home_symlinks_only() {
    let (tmp, _storage, home, dir) = setup();
    let root = home.stat(None).unwrap();
    assert_eq!((root.name.as_str(), root.kind), ("", EntryKind::Directory));
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/f"), b"abc").unwrap();
    symlink("d/f", dir.join("to_f")).unwrap();
    symlink(tmp.path().join("outside/secret.txt"), dir.join("out")).unwrap();
    symlink("nowhere", dir.join("broken")).unwrap();
    symlink("loop", dir.join("loop")).unwrap();

    let f = home.stat(Some(&vp("d/f"))).unwrap();
    assert_eq!((f.name.as_str(), f.kind, f.size), ("f", EntryKind::File, 3));
    let through = home.stat(Some(&vp("to_f"))).unwrap();
    assert_eq!(
        (through.name.as_str(), through.kind, through.size),
        ("to_f", EntryKind::File, 3)
    );
    let d = home.stat(Some(&vp("d/"))).unwrap();
    assert_eq!((d.name.as_str(), d.kind), ("d", EntryKind::Directory));
    assert_err!(home.stat(Some(&vp("out"))), PermissionDenied);
    assert_err!(home.stat(Some(&vp("loop"))), PermissionDenied);
    assert_err!(home.stat(Some(&vp("broken"))), NotFound);
    assert_err!(home.stat(Some(&vp("missing"))), NotFound);
}

#[test]
fn remove_unlinks_files_and_symlinks_never_directories() {
    let (tmp, _storage, home, dir) = setup();
    std::fs::write(dir.join("f"), b"x").unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    symlink(tmp.path().join("outside/secret.txt"), dir.join("out")).unwrap();
    symlink("d", dir.join("to_d")).unwrap();

    home.remove(&vp("f")).unwrap();
    assert!(!dir.join("f").exists());
    assert_err!(home.remove(&vp("f")), NotFound);
    assert_err!(home.remove(&vp("d")), IsADirectory);
    assert_err!(home.remove(&vp("d/")), IsADirectory);
    home.remove(&vp("out")).unwrap();
    assert!(dir.join("out").symlink_metadata().is_err());
    assert_eq!(
        std::fs::read(tmp.path().join("outside/secret.txt")).unwrap(),
        b"secret"
    );
    home.remove(&vp("to_d")).unwrap();
    assert!(dir.join("d").is_dir());
}

#[test]
fn rmdir_removes_empty_directories_only() {
    let (_tmp, _storage, home, dir) = setup();
    std::fs::create_dir_all(dir.join("full/inner")).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("f"), b"x").unwrap();
    symlink("empty", dir.join("to_empty")).unwrap();

    assert_err!(home.rmdir(&vp("full")), DirectoryNotEmpty);
    assert_err!(home.rmdir(&vp("f")), NotADirectory);
    assert_err!(home.rmdir(&vp("to_empty")), NotADirectory);
    assert_err!(home.rmdir(&vp("missing")), NotFound);
    home.rmdir(&vp("empty")).unwrap();
    home.rmdir(&vp("full/inner")).unwrap();
    home.rmdir(&vp("full")).unwrap();
    assert!(!dir.join("full").exists() && !dir.join("empty").exists());
}

#[test]
fn rename_is_one_step_inside_the_home() {
    let (tmp, _storage, home, dir) = setup();
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
    std::fs::write(dir.join("a"), b"A").unwrap();
    std::fs::write(dir.join("b"), b"B").unwrap();
    std::fs::create_dir_all(dir.join("d/sub")).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::create_dir_all(dir.join("full/x")).unwrap();

    home.rename(&vp("a"), &vp("c")).unwrap();
    assert_eq!(read("c"), b"A");
    assert!(!dir.join("a").exists());
    home.rename(&vp("c"), &vp("b")).unwrap();
    assert_eq!(read("b"), b"A");
    home.rename(&vp("b"), &vp("b")).unwrap();
    assert_eq!(read("b"), b"A");
    assert_err!(home.rename(&vp("a"), &vp("a")), NotFound);
    assert_err!(home.rename(&vp("missing"), &vp("x")), NotFound);
    assert_err!(home.rename(&vp("b"), &vp("nowhere/b")), NotFound);
    assert_err!(home.rename(&vp("b"), &vp("b/x")), NotADirectory);
    assert_err!(home.rename(&vp("d"), &vp("d/sub/d")), InvalidMove);
    assert_err!(home.rename(&vp("d"), &vp("d/x")), InvalidMove);
    assert_err!(home.rename(&vp("d"), &vp("full")), DirectoryNotEmpty);
    assert_err!(home.rename(&vp("b"), &vp("empty")), IsADirectory);
    assert_err!(home.rename(&vp("d"), &vp("b")), NotADirectory);
    home.rename(&vp("d"), &vp("empty")).unwrap();
    assert!(dir.join("empty/sub").is_dir() && !dir.join("d").exists());
    home.rename(&vp("empty/sub"), &vp("sub")).unwrap();
    assert!(dir.join("sub").is_dir());

    // Symlinks are renamed as themselves, and never lead out.
    symlink(tmp.path().join("outside"), dir.join("out")).unwrap();
    home.rename(&vp("out"), &vp("moved")).unwrap();
    assert!(dir.join("moved").symlink_metadata().unwrap().is_symlink());
    assert_err!(home.rename(&vp("b"), &vp("moved/b")), PermissionDenied);
    assert_err!(
        home.rename(&vp("moved/secret.txt"), &vp("stolen")),
        PermissionDenied
    );
    assert_eq!(
        std::fs::read(tmp.path().join("outside/secret.txt")).unwrap(),
        b"secret"
    );
    let outside: Vec<_> = std::fs::read_dir(tmp.path().join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["secret.txt"]);
    assert!(!Path::new(&dir.join("stolen")).exists());
}

#[test]
fn new_errors_are_client_safe() {
    let err = StorageError::from(std::io::Error::from_raw_os_error(libc::ENOTEMPTY));
    assert!(matches!(err, StorageError::DirectoryNotEmpty));
    assert_eq!(err.to_string(), "directory not empty");
    assert_eq!(
        StorageError::InvalidMove.to_string(),
        "cannot move a directory inside itself"
    );
}

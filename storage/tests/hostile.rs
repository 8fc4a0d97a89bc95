//! Every hostile path of the workspace's `tests/data/hostile-paths.txt` (plus
//! paths through planted symlinks, a FIFO and a hard link) used as an upload
//! target, a download source, a mkdir target, a path to list, describe,
//! remove or rmdir, and either side of a rename must either fail or act
//! strictly inside alice's home: nothing outside it changes, nothing outside
//! it is read, listed or described.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ftp_storage::{FsHome, FsStorage, Home, Storage, StorageError, Upload, VPath};

// Shared with the `tests` package, which this crate cannot depend on: the
// vector file's decoder, and the planted tree with its snapshot.
#[path = "../../tests/src/hostile.rs"]
mod hostile_vectors;
#[path = "../../tests/src/planted.rs"]
mod planted;

use hostile_vectors::{decode_escapes, hostile_lines};
use planted::{OUTSIDE_SECRET, assert_reveals_nothing, outside_alice};

const WATCHDOG: Duration = Duration::from_secs(60);

/// Extra paths that go through the planted entries.
const PLANTED: &[&str] = &[
    "link_to_bob/secret.txt",
    "link_to_bob",
    "link_to_outside/secret.txt",
    "link_to_outside/new.txt",
    "link_to_outside_rel/new.txt",
    "link_to_outside_rel/secret.txt",
    "link_to_outside_rel",
    "link_to_parent/bob/secret.txt",
    "link_to_parent/outside/secret.txt",
    "link_to_parent/new_dir",
    "link_to_parent",
    "link_to_root_self/etc/passwd",
    "link_to_root_self/tmp/evil",
    "link_to_etc/passwd",
    "link_to_etc",
    "loop_link",
    "loop_link/x",
    "proc_link/root/etc/passwd",
    "proc_link/cwd/x",
    "hardlink.txt",
    "fifo",
    "fifo/x",
    "ok.txt",
    "sub/file.txt",
    "sub/new/deeper",
];

/// The vector lines, decoded, and whether each one must be invalid UTF-8.
fn hostile_cases() -> Vec<(String, Vec<u8>, bool)> {
    hostile_lines()
        .into_iter()
        .map(|l| {
            let invalid = l.contains("\\x{") || l.contains("\\u{d8") || l.contains("\\u{D8");
            (l.to_owned(), decode_escapes(l), invalid)
        })
        .collect()
}

struct Fixture {
    tmp: tempfile::TempDir,
    home: FsHome,
}

/// A temp dir holding the planted tree, and alice's home in its `root/`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    planted::plant(tmp.path());
    let storage = FsStorage::open(&tmp.path().join("root")).unwrap();
    let home = storage.home("alice").unwrap();
    Fixture { tmp, home }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Upload,
    Read,
    Mkdir,
    MkdirParents,
    List,
    Stat,
    Remove,
    Rmdir,
    /// The path renamed to a fresh name.
    RenameFrom,
    /// A fresh file renamed to the path.
    RenameTo,
}

const ALL_OPS: [Op; 10] = [
    Op::Upload,
    Op::Read,
    Op::Mkdir,
    Op::MkdirParents,
    Op::List,
    Op::Stat,
    Op::Remove,
    Op::Rmdir,
    Op::RenameFrom,
    Op::RenameTo,
];

/// Every name in alice's home (symlinks not followed), the only names a
/// listing may show.
fn names_in(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        names.insert(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            names.extend(names_in(&entry.path()));
        }
    }
    names
}

/// Panics unless `path`, resolved by the host with every symlink followed,
/// lies inside `home` (what `stat` described must be alice's).
fn assert_resolves_inside(home: &Path, path: &VPath, label: &str) {
    let resolved = std::fs::canonicalize(home.join(path.as_str()))
        .unwrap_or_else(|e| panic!("{label:?}: described, but does not resolve: {e}"));
    let home = std::fs::canonicalize(home).unwrap();
    assert!(
        resolved.starts_with(&home),
        "{label:?}: described {} outside the home",
        resolved.display()
    );
}

/// Performs `op` on `path` (case number `i`); what a read brought back.
fn perform(fx: &Fixture, op: Op, path: &VPath, i: usize) -> Result<Option<Vec<u8>>, StorageError> {
    let home = &fx.home;
    let alice = fx.tmp.path().join("root/alice");
    match op {
        Op::List => {
            let entries = home.list(Some(path))?.read_all()?;
            let known = names_in(&alice);
            for entry in &entries {
                assert!(
                    known.contains(&entry.name),
                    "listing {path} showed {:?}, which is not in alice's home",
                    entry.name
                );
            }
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            Ok(Some(names.join("\n").into_bytes()))
        }
        Op::Stat => {
            let entry = home.stat(Some(path))?;
            assert_eq!(entry.name, path.file_name());
            assert_resolves_inside(&alice, path, path.as_str());
            Ok(None)
        }
        Op::Remove => home.remove(path).map(|_| None),
        Op::Rmdir => home.rmdir(path).map(|()| None),
        Op::RenameFrom => home
            .rename(path, &VPath::parse(&format!("renamed-{i}")).unwrap())
            .map(|_| None),
        Op::RenameTo => {
            let victim = format!("victim-{i}.txt");
            std::fs::write(alice.join(&victim), b"PWNED").unwrap();
            home.rename(&VPath::parse(&victim).unwrap(), path)
                .map(|_| None)
        }
        Op::Upload => {
            let mut up = home.create_upload(path, 0)?;
            up.write_all(b"PWNED").map_err(StorageError::from)?;
            up.commit().map(|_| None)
        }
        Op::Read => {
            let (mut reader, _) = home.open_read(path)?;
            let mut data = Vec::new();
            reader.read_to_end(&mut data).map_err(StorageError::from)?;
            Ok(Some(data))
        }
        Op::Mkdir => home.mkdir(path, false).map(|()| None),
        Op::MkdirParents => home.mkdir(path, true).map(|()| None),
    }
}

fn check_error_display(err: &StorageError, base: &Path, label: &str) {
    let shown = err.to_string();
    let base = base.to_string_lossy();
    assert!(
        !shown.contains(&*base),
        "{label}: error shows a host path: {shown}"
    );
    assert!(
        !shown.contains("os error"),
        "{label}: error shows an OS message: {shown}"
    );
    assert!(!shown.contains('/'), "{label}: error shows a path: {shown}");
}

fn run_phase(op: Op, cases: &[(String, Vec<u8>, bool)], passwd: &Option<Vec<u8>>) {
    let fx = fixture();
    let base = fx.tmp.path();
    let before = outside_alice(base);
    let (mut invalid_utf8, mut refused_parse, mut refused_storage, mut inside) = (0, 0, 0, 0);
    for (i, (label, bytes, must_be_invalid)) in cases.iter().enumerate() {
        let text = match String::from_utf8(bytes.clone()) {
            Ok(text) => {
                assert!(!must_be_invalid, "{label:?} decoded to valid UTF-8");
                text
            }
            Err(_) => {
                assert!(must_be_invalid, "{label:?} decoded to invalid UTF-8");
                invalid_utf8 += 1;
                continue;
            }
        };
        let path = match VPath::parse(&text) {
            Ok(path) => path,
            Err(e) => {
                check_error_display(&e.into(), base, label);
                refused_parse += 1;
                continue;
            }
        };
        let started = Instant::now();
        match perform(&fx, op, &path, i) {
            Ok(data) => {
                inside += 1;
                if let Some(data) = data {
                    assert_reveals_nothing(&data, passwd.as_deref(), &format!("{op:?} {label:?}"));
                }
            }
            Err(e) => {
                check_error_display(&e, base, label);
                refused_storage += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{op:?} {label:?} was slow"
        );
    }
    assert_eq!(
        before,
        outside_alice(base),
        "{op:?}: something outside alice's home changed"
    );
    let incoming: Vec<_> = std::fs::read_dir(base.join("root/.incoming"))
        .unwrap()
        .collect();
    assert!(
        incoming.is_empty(),
        "{op:?}: temps left behind: {incoming:?}"
    );
    assert_eq!(
        passwd,
        &std::fs::read("/etc/passwd").ok(),
        "/etc/passwd changed"
    );
    eprintln!(
        "{op:?}: {} paths: {invalid_utf8} invalid UTF-8, {refused_parse} refused by VPath::parse, \
         {refused_storage} refused by storage, {inside} acted inside the home",
        cases.len()
    );
}

/// Runs `f` on a thread; fails the test if it has not finished after [`WATCHDOG`].
fn with_watchdog(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hostile test hung for {WATCHDOG:?}"),
        _ => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[test]
fn hostile_paths_stay_inside_home() {
    with_watchdog(|| {
        let mut cases = hostile_cases();
        cases.extend(
            PLANTED
                .iter()
                .map(|p| (p.to_string(), p.as_bytes().to_vec(), false)),
        );
        let passwd = std::fs::read("/etc/passwd").ok();
        for op in ALL_OPS {
            run_phase(op, &cases, &passwd);
        }
    });
}

#[test]
fn planted_entries_give_precise_errors() {
    with_watchdog(|| {
        let fx = fixture();
        let read = |p: &str| fx.home.open_read(&VPath::parse(p).unwrap()).map(|(_, n)| n);
        let started = Instant::now();
        assert!(matches!(read("fifo"), Err(StorageError::NotARegularFile)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "opening the FIFO blocked"
        );
        assert!(matches!(
            read("hardlink.txt"),
            Err(StorageError::NotARegularFile)
        ));
        for p in [
            "link_to_etc/passwd",
            "link_to_outside/secret.txt",
            "link_to_outside_rel/secret.txt",
            "link_to_bob/secret.txt",
            "link_to_parent/bob/secret.txt",
            "link_to_root_self/etc/passwd",
            "proc_link/environ",
            "loop_link",
        ] {
            let err = read(p).expect_err(p);
            assert!(
                matches!(err, StorageError::PermissionDenied),
                "{p}: {err:?}"
            );
            let up = fx.home.create_upload(&VPath::parse(p).unwrap(), 0);
            assert!(
                matches!(up, Err(StorageError::PermissionDenied)),
                "upload {p}: {up:?}"
            );
        }
        assert_eq!(read("ok.txt").unwrap(), 8);
        let fifo_up = fx.home.create_upload(&VPath::parse("fifo").unwrap(), 0);
        assert!(matches!(fifo_up, Err(StorageError::NotARegularFile)));
    });
}

#[test]
fn parent_swapped_for_outside_symlink_before_commit() {
    with_watchdog(|| {
        let fx = fixture();
        let base = fx.tmp.path();
        let alice = base.join("root/alice");
        std::fs::create_dir(alice.join("d")).unwrap();
        let before = outside_alice(base);
        let mut up = fx
            .home
            .create_upload(&VPath::parse("d/secret.txt").unwrap(), 0)
            .unwrap();
        up.write_all(b"PWNED").unwrap();
        std::fs::rename(alice.join("d"), alice.join("d.moved")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), alice.join("d")).unwrap();
        let err = up.commit().expect_err("commit through an escaping symlink");
        assert!(matches!(err, StorageError::PermissionDenied), "{err:?}");
        assert_eq!(before, outside_alice(base));
        assert_eq!(
            std::fs::read(base.join("outside/secret.txt")).unwrap(),
            OUTSIDE_SECRET
        );
        assert_eq!(
            std::fs::read_dir(base.join("root/.incoming"))
                .unwrap()
                .count(),
            0
        );
    });
}

#[test]
fn planted_entries_are_listed_described_and_removed_as_themselves() {
    with_watchdog(|| {
        use ftp_storage::EntryKind;
        let fx = fixture();
        let base = fx.tmp.path();
        let before = outside_alice(base);
        let vp = |p: &str| VPath::parse(p).unwrap();
        let escaping = [
            "link_to_etc",
            "link_to_outside",
            "link_to_outside_rel",
            "link_to_parent",
            "link_to_root_self",
            "link_to_bob",
            "proc_link",
            "loop_link",
        ];
        for link in escaping {
            // The link itself, never what it points to.
            let listed = fx.home.list(Some(&vp(link))).unwrap().read_all().unwrap();
            assert_eq!(listed.len(), 1, "{link}: {listed:?}");
            assert_eq!(listed[0].kind, EntryKind::Symlink, "{link}");
            let err = fx.home.stat(Some(&vp(link))).expect_err(link);
            assert!(
                matches!(err, StorageError::PermissionDenied),
                "{link}: {err:?}"
            );
            let err = fx.home.rmdir(&vp(link)).expect_err(link);
            assert!(
                matches!(err, StorageError::NotADirectory),
                "{link}: {err:?}"
            );
        }
        let started = Instant::now();
        let fifo = fx.home.list(Some(&vp("fifo"))).unwrap().read_all().unwrap();
        assert_eq!(fifo[0].kind, EntryKind::Other);
        assert_eq!(
            fx.home.stat(Some(&vp("fifo"))).unwrap().kind,
            EntryKind::Other
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the FIFO blocked"
        );
        for link in escaping {
            fx.home.remove(&vp(link)).unwrap();
        }
        fx.home.remove(&vp("hardlink.txt")).unwrap();
        fx.home.remove(&vp("fifo")).unwrap();
        assert_eq!(before, outside_alice(base));
        assert_eq!(
            std::fs::read(base.join("outside/secret.txt")).unwrap(),
            OUTSIDE_SECRET
        );
        let mut left: Vec<_> = fx
            .home
            .list(None)
            .and_then(|l| l.read_all())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        left.sort();
        assert_eq!(left, ["ok.txt", "sub"]);
    });
}

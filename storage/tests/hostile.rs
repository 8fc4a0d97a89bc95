//! Every hostile path of `tests/data/hostile-paths.txt` (plus paths through
//! planted symlinks, a FIFO and a hard link) used as an upload target, a
//! download source and a mkdir target must either fail or act strictly inside
//! alice's home: nothing outside it changes, nothing outside it is read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ftp_storage::{FsHome, FsStorage, Home, Storage, StorageError, Upload, VPath};

const OUTSIDE_SECRET: &[u8] = b"OUTSIDE-SECRET-7f3a9c1e";
const BOB_SECRET: &[u8] = b"BOB-SECRET-52d8e0b4";
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

/// Decodes a vector line: `\u{..}` is a scalar (a surrogate becomes its WTF-8
/// bytes), `\x{..}` a raw byte; any other backslash is literal.
fn decode(line: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        let after = &rest[pos + 1..];
        let escape = (after.starts_with("u{") || after.starts_with("x{"))
            .then(|| after[2..].find('}').map(|end| (&after[2..2 + end], end)))
            .flatten()
            .filter(|(hex, _)| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        match escape {
            Some((hex, end)) => {
                let value = u32::from_str_radix(hex, 16).unwrap();
                if after.starts_with('x') {
                    out.push(u8::try_from(value).unwrap());
                } else if let Some(c) = char::from_u32(value) {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                } else {
                    assert!((0xD800..=0xDFFF).contains(&value), "bad scalar {hex}");
                    out.extend_from_slice(&[
                        0xE0 | (value >> 12) as u8,
                        0x80 | ((value >> 6) & 0x3F) as u8,
                        0x80 | (value & 0x3F) as u8,
                    ]);
                }
                rest = &after[2 + end + 1..];
            }
            None => {
                out.push(b'\\');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The vector lines, decoded, and whether each one must be invalid UTF-8.
fn hostile_lines() -> Vec<(String, Vec<u8>, bool)> {
    let text = include_str!("data/hostile-paths.txt");
    let lines: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let invalid = l.contains("\\x{") || l.contains("\\u{d8") || l.contains("\\u{D8");
            (l.to_owned(), decode(l), invalid)
        })
        .collect();
    assert!(lines.len() > 90, "vector file truncated?");
    lines
}

#[derive(Debug, PartialEq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other(String),
}

/// Everything under `base`, except alice's home and the temp area.
fn snapshot(base: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if rel == Path::new("root/alice") || rel == Path::new("root/.incoming") {
                continue;
            }
            let ft = path.symlink_metadata().unwrap().file_type();
            let e = if ft.is_symlink() {
                Entry::Symlink(std::fs::read_link(&path).unwrap())
            } else if ft.is_dir() {
                walk(base, &path, out);
                Entry::Dir
            } else if ft.is_file() {
                Entry::File(std::fs::read(&path).unwrap())
            } else {
                Entry::Other(format!("{ft:?}"))
            };
            out.insert(rel, e);
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, &mut out);
    out
}

struct Fixture {
    tmp: tempfile::TempDir,
    home: FsHome,
}

fn fixture() -> Fixture {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let outside = base.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), OUTSIDE_SECRET).unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(root.join("bob")).unwrap();
    std::fs::write(root.join("bob/secret.txt"), BOB_SECRET).unwrap();
    let alice = root.join("alice");
    std::fs::create_dir_all(alice.join("sub")).unwrap();
    std::fs::write(alice.join("ok.txt"), b"alice ok").unwrap();
    std::fs::write(alice.join("sub/file.txt"), b"alice sub file").unwrap();
    symlink("/etc", alice.join("link_to_etc")).unwrap();
    symlink(&outside, alice.join("link_to_outside")).unwrap();
    symlink("../../outside", alice.join("link_to_outside_rel")).unwrap();
    symlink("..", alice.join("link_to_parent")).unwrap();
    symlink("/", alice.join("link_to_root_self")).unwrap();
    symlink("../bob", alice.join("link_to_bob")).unwrap();
    symlink("loop_link", alice.join("loop_link")).unwrap();
    symlink("/proc/self", alice.join("proc_link")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(alice.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    std::fs::hard_link(outside.join("secret.txt"), alice.join("hardlink.txt")).unwrap();
    let storage = FsStorage::open(&root).unwrap();
    let home = storage.home("alice").unwrap();
    Fixture { tmp, home }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Upload,
    Read,
    Mkdir,
    MkdirParents,
}

fn perform(home: &FsHome, op: Op, path: &VPath) -> Result<Option<Vec<u8>>, StorageError> {
    match op {
        Op::Upload => {
            let mut up = home.create_upload(path)?;
            up.write_all(b"PWNED").map_err(StorageError::from)?;
            up.commit().map(|()| None)
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
    let before = snapshot(base);
    let (mut invalid_utf8, mut refused_parse, mut refused_storage, mut inside) = (0, 0, 0, 0);
    for (label, bytes, must_be_invalid) in cases {
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
        match perform(&fx.home, op, &path) {
            Ok(data) => {
                inside += 1;
                if let Some(data) = data {
                    for secret in [OUTSIDE_SECRET, BOB_SECRET] {
                        assert!(
                            !data.windows(secret.len()).any(|w| w == secret),
                            "{op:?} {label:?} revealed a secret"
                        );
                    }
                    if let Some(passwd) = passwd.as_ref().filter(|p| !p.is_empty()) {
                        assert_ne!(&data, passwd, "{op:?} {label:?} revealed /etc/passwd");
                    }
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
        snapshot(base),
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
        let mut cases = hostile_lines();
        cases.extend(
            PLANTED
                .iter()
                .map(|p| (p.to_string(), p.as_bytes().to_vec(), false)),
        );
        let passwd = std::fs::read("/etc/passwd").ok();
        for op in [Op::Upload, Op::Read, Op::Mkdir, Op::MkdirParents] {
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
            let up = fx.home.create_upload(&VPath::parse(p).unwrap());
            assert!(
                matches!(up, Err(StorageError::PermissionDenied)),
                "upload {p}: {up:?}"
            );
        }
        assert_eq!(read("ok.txt").unwrap(), 8);
        let fifo_up = fx.home.create_upload(&VPath::parse("fifo").unwrap());
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
        let before = snapshot(base);
        let mut up = fx
            .home
            .create_upload(&VPath::parse("d/secret.txt").unwrap())
            .unwrap();
        up.write_all(b"PWNED").unwrap();
        std::fs::rename(alice.join("d"), alice.join("d.moved")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), alice.join("d")).unwrap();
        let err = up.commit().expect_err("commit through an escaping symlink");
        assert!(matches!(err, StorageError::PermissionDenied), "{err:?}");
        assert_eq!(before, snapshot(base));
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
fn decoder_handles_escapes_and_literal_backslashes() {
    assert_eq!(decode(r"..\outside.txt"), br"..\outside.txt");
    assert_eq!(decode(r"a\u{0}b"), b"a\0b");
    assert_eq!(decode(r"caf\u{e9}"), "café".as_bytes());
    assert_eq!(decode(r"\x{c0}\x{ae}"), [0xC0, 0xAE]);
    assert_eq!(decode(r"\u{d800}"), [0xED, 0xA0, 0x80]);
    assert_eq!(decode(r"\u{zz}\x{}"), br"\u{zz}\x{}");
    assert_eq!(decode(r"\\?\C:\"), br"\\?\C:\");
}

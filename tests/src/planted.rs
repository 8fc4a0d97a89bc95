//! The planted tree of the sandbox tests, and the snapshot that proves
//! nothing outside a home changed.
//!
//! [`plant`] fills a base directory with secrets outside the storage root and
//! in bob's home, and with hostile entries in alice's home (symlinks out of
//! it, a loop, a FIFO, a hard link to the outside secret);
//! [`assert_reveals_nothing`] checks what a read brought back; [`snapshot`]
//! and [`outside_alice`] record a tree to compare before and after.
//!
//! Self-contained (std only) on purpose: the `tests` crate has it as
//! `tests::planted`, and `storage/tests/hostile.rs` includes this very file
//! with `#[path = "../../tests/src/planted.rs"]`, since `ftp-storage` cannot
//! depend on the `tests` package.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The content of `outside/secret.txt` (beside the storage root).
pub const OUTSIDE_SECRET: &[u8] = b"OUTSIDE-SECRET-7f3a9c1e";
/// The content of `root/bob/secret.txt`.
pub const BOB_SECRET: &[u8] = b"BOB-SECRET-52d8e0b4";

/// Creates, under `base`: `outside/secret.txt` (`outside/` may exist
/// already: a `ServerDir` starts with it as a sentinel holding the same
/// secret), `root/bob/secret.txt`, and in `root/alice` the ordinary files
/// `ok.txt` and `sub/file.txt` and the planted entries of the hostile-path
/// list: `link_to_etc`, `link_to_outside` (absolute), `link_to_outside_rel`,
/// `link_to_parent`, `link_to_root_self`, `link_to_bob`, `loop_link`,
/// `proc_link`, the FIFO `fifo` and `hardlink.txt` (a hard link to the
/// outside secret).
pub fn plant(base: &Path) {
    let outside = base.join("outside");
    // `ServerDir` may have created it already (its sentinel holds the same secret).
    std::fs::create_dir_all(&outside).unwrap();
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
}

/// Panics if `data` (what a hostile read brought back) holds either planted
/// secret, or is `passwd` (the host's `/etc/passwd` as read before, when it
/// is not empty).
#[track_caller]
pub fn assert_reveals_nothing(data: &[u8], passwd: Option<&[u8]>, what: &str) {
    for secret in [OUTSIDE_SECRET, BOB_SECRET] {
        assert!(
            !data.windows(secret.len()).any(|w| w == secret),
            "{what} revealed a secret"
        );
    }
    if let Some(passwd) = passwd.filter(|p| !p.is_empty()) {
        assert_ne!(data, passwd, "{what} revealed /etc/passwd");
    }
}

/// One entry of a [`snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other(String),
}

/// Everything under `base` (relative path -> entry), except the relative
/// paths in `skip` and what is beneath them. Symlinks are not followed.
pub fn snapshot(base: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, skip: &[&Path], out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            // A skipped file's temps (`.<name>.<random>`, written beside it
            // and renamed over it) are skipped too.
            let temp_of = |s: &Path| {
                let temp = format!(".{}.", s.file_name().unwrap_or_default().to_string_lossy());
                rel.parent() == s.parent()
                    && rel
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&temp))
            };
            if skip.iter().any(|s| rel == *s || temp_of(s)) {
                continue;
            }
            let ft = path.symlink_metadata().expect("lstat").file_type();
            let e = if ft.is_symlink() {
                Entry::Symlink(std::fs::read_link(&path).expect("readlink"))
            } else if ft.is_dir() {
                walk(base, &path, skip, out);
                Entry::Dir
            } else if ft.is_file() {
                Entry::File(std::fs::read(&path).expect("read"))
            } else {
                Entry::Other(format!("{ft:?}"))
            };
            out.insert(rel, e);
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, skip, &mut out);
    out
}

/// Everything under `base` except alice's home and the temp area of uploads
/// (`root/alice` and `root/.incoming`).
pub fn outside_alice(base: &Path) -> BTreeMap<PathBuf, Entry> {
    snapshot(
        base,
        &[Path::new("root/alice"), Path::new("root/.incoming")],
    )
}

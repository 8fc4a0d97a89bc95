//! Recursive transfers: plans for `put -r` (here) and `get -r` (in
//! [`super::get_tree`], with the bounds on what a server sends).
//!
//! A plan says which directories to create (parents first), which files to
//! transfer and which entries are left out, and why. The files then go
//! through the pipelined [`Client::put_files`] / [`Client::get_files`], so a
//! tree of many small files costs no round trip per file; planning costs one
//! `Stat` for the target and, for a download, one `List` per directory (the
//! `List`s of one depth pipelined).
//!
//! Targets are named like `cp -r` and `scp -r` name them: copying `photos`
//! to `dest` makes `dest/photos` when `dest` is an existing directory (or is
//! written `dest/`), and makes `dest` itself a copy of `photos` otherwise.
//!
//! Uploads never leave the local tree: a symlink is followed only when its
//! target lies inside the tree (a loop back to a directory being copied is
//! cut). Downloads never follow remote symlinks, and a remote name that
//! could not be used safely as a local file name is never joined to a local
//! path.
//!
//! Entries left out by these rules are in `skipped`; entries that should
//! have been copied but cannot be (a directory that cannot be read, a name
//! the other side cannot hold) are in `failed`: the copy is incomplete.
//! Both lists hold names as found (remote names are the server's text):
//! escape them before showing them to a person.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ftp_shared::message::EntryKind;
use ftp_shared::text::is_unsafe_char;
use ftp_shared::{ErrorCode, Request, Response};

use super::PutItem;
use crate::client::{next_reply, unexpected};
use crate::{Client, ClientError};

/// What `put -r` will do: remote directories to create (parents first, as
/// home-relative paths), the files to upload, and local entries left out
/// with the reason.
#[derive(Debug, Clone, Default)]
pub struct PutTree {
    pub dirs: Vec<String>,
    pub files: Vec<PutItem>,
    pub skipped: Vec<(PathBuf, String)>,
    pub failed: Vec<(PathBuf, String)>,
}

/// A directory's identity, to recognise it when a symlink leads back to it.
type DirId = (u64, u64);

fn dir_id(meta: &Metadata) -> DirId {
    (meta.dev(), meta.ino())
}

impl Client {
    /// Plans uploading the local directory `local` to `remote` with
    /// `cp -r`/`scp -r` semantics: `remote` `None` or `""` (the home) makes
    /// a directory named like `local`'s last component in the home; an
    /// existing remote directory, or a `remote` ending in '/', receives the
    /// copy under that name; any other `remote` becomes the copy itself.
    /// `remote` is home-relative (no leading '/').
    ///
    /// Every directory of the tree, the top one included, is in `dirs`
    /// (parents first), so empty directories are created too. Entries are
    /// taken in name order. A symlink is followed only when its target lies
    /// inside the tree: a file is uploaded under the link's name, a
    /// directory is copied unless it is one being copied already (a loop).
    /// Symlinks leading outside, broken ones, FIFOs, sockets and devices
    /// are left out, each in `skipped`; directories that cannot be read and
    /// names the server would refuse are in `failed`.
    pub async fn plan_put_tree(
        &mut self,
        local: &Path,
        remote: Option<&str>,
    ) -> Result<PutTree, ClientError> {
        let meta = std::fs::metadata(local).map_err(|e| ClientError::local(local, e))?;
        if !meta.is_dir() {
            return Err(not_a_local_directory(local));
        }
        let root = std::fs::canonicalize(local).map_err(|e| ClientError::local(local, e))?;
        let name = local_top_name(local, &root)?;
        let target = match remote.map(|r| r.trim_start_matches('/')) {
            None | Some("") => name,
            Some(r) if r.ends_with('/') => join_remote(r.trim_end_matches('/'), &name),
            Some(r) => match self.stat(r).await {
                Ok(entry) if entry.kind == EntryKind::Directory => join_remote(r, &name),
                Ok(_) => {
                    return Err(ClientError::Remote {
                        code: ErrorCode::NOT_A_DIRECTORY,
                        message: format!("{r}: exists and is not a directory"),
                    });
                }
                Err(e) if e.remote_code() == Some(ErrorCode::NOT_FOUND) => r.to_string(),
                Err(e) => return Err(e),
            },
        };
        let local = local.to_path_buf();
        tokio::task::spawn_blocking(move || walk_local(local, &root, target, &meta))
            .await
            .map_err(|e| ClientError::Protocol(format!("reading the local tree failed: {e}")))?
    }

    /// Creates remote directories with `mkdir -p` semantics (existing ones
    /// are fine), pipelined: every request is sent while the replies are
    /// read. The first refusal is returned, after every reply was read.
    pub async fn make_dirs(&mut self, dirs: &[String]) -> Result<(), ClientError> {
        let Client { reader, writer, .. } = self;
        let sending = async {
            for dir in dirs {
                writer
                    .feed(&Request::Mkdir {
                        path: dir.clone(),
                        parents: true,
                    })
                    .await?;
            }
            writer.flush().await
        };
        let receiving = async {
            let mut first = None;
            for _ in dirs {
                match next_reply(reader).await {
                    Ok(Response::Ok) => {}
                    Ok(other) => return Err(unexpected(other)),
                    Err(e @ ClientError::Remote { .. }) => {
                        first.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(first)
        };
        let ((), refused) = tokio::try_join!(sending, receiving)?;
        refused.map_or(Ok(()), Err)
    }
}

fn not_a_local_directory(path: &Path) -> ClientError {
    ClientError::LocalFile {
        path: path.into(),
        message: "not a directory".into(),
    }
}

/// `dir/name`, or `name` in the home.
pub(crate) fn join_remote(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The name the copy of the local directory `local` takes: its last
/// component as given, or that of its canonical path (for `.` and the like).
fn local_top_name(local: &Path, canonical: &Path) -> Result<String, ClientError> {
    let name = local
        .file_name()
        .or_else(|| canonical.file_name())
        .ok_or_else(|| ClientError::LocalFile {
            path: local.into(),
            message: "has no name to copy it under".into(),
        })?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| ClientError::LocalFile {
            path: local.into(),
            message: "the name is not valid UTF-8".into(),
        })
}

/// Why the server would refuse a local name as a path component, if it would.
fn refused_remote_name(name: &str) -> Option<&'static str> {
    if name.contains('\\') {
        Some("the server does not accept backslashes in names")
    } else if name.chars().any(is_unsafe_char) {
        Some("the server does not accept control or invisible characters in names")
    } else {
        None
    }
}

/// A local directory to copy, the remote path it becomes, and the
/// directories being copied on the way to it (to cut loops).
struct Pending {
    local: PathBuf,
    remote: String,
    ancestors: Vec<DirId>,
}

/// Walks the local tree at `local` (canonically `root`), depth first in name
/// order, into a plan whose top remote directory is `target`.
fn walk_local(
    local: PathBuf,
    root: &Path,
    target: String,
    meta: &Metadata,
) -> Result<PutTree, ClientError> {
    let mut tree = PutTree::default();
    let mut stack = vec![Pending {
        local,
        remote: target,
        ancestors: vec![dir_id(meta)],
    }];
    let mut is_top = true;
    while let Some(dir) = stack.pop() {
        let entries = match read_sorted(&dir.local) {
            Ok(entries) => entries,
            Err(e) if is_top => return Err(ClientError::local(&dir.local, e)),
            Err(e) => {
                tree.failed.push((dir.local, format!("cannot read: {e}")));
                continue;
            }
        };
        is_top = false;
        let mut children = Vec::new();
        for entry in entries {
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                tree.failed
                    .push((path, "the name is not valid UTF-8".into()));
                continue;
            };
            if let Some(reason) = refused_remote_name(name) {
                tree.failed.push((path, reason.into()));
                continue;
            }
            let remote = join_remote(&dir.remote, name);
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    tree.failed.push((path, e.to_string()));
                    continue;
                }
            };
            if file_type.is_file() {
                tree.files.push(PutItem {
                    local: path,
                    remote,
                });
            } else if file_type.is_dir() {
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if dir.ancestors.contains(&dir_id(&meta)) => {
                        tree.skipped.push((path, "directory loop".into()));
                    }
                    Ok(meta) => children.push(child(&dir, path, remote, &meta)),
                    Err(e) => tree.failed.push((path, e.to_string())),
                }
            } else if file_type.is_symlink() {
                match follow(&path, root) {
                    Ok(meta) if meta.is_file() => tree.files.push(PutItem {
                        local: path,
                        remote,
                    }),
                    Ok(meta) if dir.ancestors.contains(&dir_id(&meta)) => {
                        tree.skipped.push((path, "directory loop".into()));
                    }
                    Ok(meta) if meta.is_dir() => {
                        children.push(child(&dir, path, remote, &meta));
                    }
                    Ok(_) => tree.skipped.push((path, "not a regular file".into())),
                    Err(reason) => tree.skipped.push((path, reason)),
                }
            } else {
                tree.skipped.push((path, "not a regular file".into()));
            }
        }
        tree.dirs.push(dir.remote);
        // Popped in name order.
        stack.extend(children.into_iter().rev());
    }
    Ok(tree)
}

fn child(parent: &Pending, local: PathBuf, remote: String, meta: &Metadata) -> Pending {
    let mut ancestors = parent.ancestors.clone();
    ancestors.push(dir_id(meta));
    Pending {
        local,
        remote,
        ancestors,
    }
}

/// The entries of a directory, sorted by name.
fn read_sorted(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// What the symlink `link` leads to, when that is inside the tree whose
/// canonical path is `root`; otherwise why it is not followed.
fn follow(link: &Path, root: &Path) -> Result<Metadata, String> {
    let target = std::fs::canonicalize(link).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "broken symlink".to_string()
        } else if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            "symlink loop".to_string()
        } else {
            format!("cannot follow the symlink: {e}")
        }
    })?;
    if !target.starts_with(root) {
        return Err("symlink leads outside the tree".into());
    }
    std::fs::metadata(&target).map_err(|e| format!("cannot follow the symlink: {e}"))
}

//! Plans for `get -r`: the remote tree listed one depth at a time, within
//! bounds, so that a server whose tree never ends (a directory that holds
//! one more directory at every depth, a listing that always says "more")
//! fails the command with a clear error instead of filling the memory or
//! the disk.
//!
//! The bounds are the protocol's path limits ([`MAX_DEPTH`] components,
//! [`MAX_PATH_BYTES`] bytes, [`MAX_NAME_BYTES`] per name: a deeper or
//! longer entry is in `failed`, the rest is downloaded), the entries of one
//! listing ([`MAX_LISTING_ENTRIES`](crate::client::MAX_LISTING_ENTRIES))
//! and of the whole tree ([`MAX_TREE_ENTRIES`]: the command fails before
//! anything is downloaded).

use std::path::{Path, PathBuf};

use ftp_shared::message::{Entry, EntryKind};
use ftp_shared::text::{escape, is_unsafe_char};
use ftp_shared::{ErrorCode, Request, Response};

use super::GetItem;
use super::tree::join_remote;
use crate::client::{add_entries, next_reply_to, unexpected};
use crate::{Client, ClientError};

/// The most components a remote path has (the protocol's limit).
pub const MAX_DEPTH: usize = 64;
/// The longest remote path, in bytes (the protocol's limit).
pub const MAX_PATH_BYTES: usize = 4095;
/// The longest name, in bytes (the protocol's limit, and Linux's).
pub const MAX_NAME_BYTES: usize = 255;
/// The most entries a `get -r` takes in, over the whole tree.
pub const MAX_TREE_ENTRIES: usize = 1_000_000;

/// What `get -r` will do: local directories to create (parents first), the
/// files to download, and remote entries left out with the reason.
#[derive(Debug, Clone, Default)]
pub struct GetTree {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<GetItem>,
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
}

impl Client {
    /// Plans downloading the remote directory `remote` (home-relative; `""`
    /// is the home) to `local` with `cp -r`/`scp -r` semantics: `None`
    /// makes `./NAME` (NAME: `remote`'s last component); an existing local
    /// directory, or a `local` ending in '/', receives `LOCAL/NAME`; any
    /// other `local` becomes the copy itself. The home has no name: it is
    /// copied into `local` itself, which must then be given.
    ///
    /// The directories are listed one depth at a time, the `List`s of a
    /// depth pipelined. Files are downloaded; directories are descended;
    /// symlinks are not followed and FIFOs, sockets and devices not
    /// transferred (each in `skipped`); names that are not usable as a
    /// local file name (empty, `.`, `..`, holding '/', NUL, a backslash or a
    /// control or invisible character) and directories the server refuses
    /// to list are in `failed`. Every local directory to create,
    /// the top one included, is in `dirs` (parents first).
    pub async fn plan_get_tree(
        &mut self,
        remote: &str,
        local: Option<&Path>,
    ) -> Result<GetTree, ClientError> {
        let remote = remote.trim_start_matches('/').trim_end_matches('/');
        let top = self.stat(remote).await?;
        if top.kind != EntryKind::Directory {
            return Err(ClientError::Remote {
                code: ErrorCode::NOT_A_DIRECTORY,
                message: format!("not a directory: {remote}"),
            });
        }
        let name = remote.rsplit('/').next().unwrap_or_default();
        if !name.is_empty() && unsafe_local_name(name) {
            return Err(ClientError::Remote {
                code: ErrorCode::INVALID_PATH,
                message: format!("unsafe name: {remote}"),
            });
        }
        let target = local_target(name, local)?;

        let mut tree = GetTree::default();
        let mut level = vec![(remote.to_string(), target)];
        let mut top_level = true;
        // Entries taken in so far, within MAX_TREE_ENTRIES.
        let mut seen = 0usize;
        while !level.is_empty() {
            let paths: Vec<&str> = level.iter().map(|(r, _)| r.as_str()).collect();
            let listings = self.list_many(&paths).await?;
            let mut next = Vec::new();
            for ((dir, local_dir), listing) in level.into_iter().zip(listings) {
                let entries = match listing {
                    Ok(entries) => entries,
                    Err(e) if top_level => return Err(e),
                    Err(e) => {
                        tree.failed.push((dir, e.to_string()));
                        continue;
                    }
                };
                seen = seen.saturating_add(entries.len());
                if seen > MAX_TREE_ENTRIES {
                    return Err(ClientError::TooMuch(format!(
                        "{} holds more than {MAX_TREE_ENTRIES} entries; nothing was downloaded",
                        shown_dir(remote)
                    )));
                }
                for entry in entries {
                    if unsafe_local_name(&entry.name) {
                        let path = join_remote(&dir, &entry.name);
                        tree.failed
                            .push((path, "the name cannot be a local file name".into()));
                        continue;
                    }
                    let path = join_remote(&dir, &entry.name);
                    if let Some(reason) = too_deep(&path) {
                        tree.failed.push((path, reason));
                        continue;
                    }
                    match entry.kind {
                        EntryKind::File => tree.files.push(GetItem {
                            remote: path,
                            local: local_dir.join(&entry.name),
                        }),
                        EntryKind::Directory => next.push((path, local_dir.join(&entry.name))),
                        EntryKind::Symlink => {
                            tree.skipped.push((path, "symlink not followed".into()))
                        }
                        EntryKind::Other => tree.skipped.push((path, "not a regular file".into())),
                    }
                }
                tree.dirs.push(local_dir);
            }
            level = next;
            top_level = false;
        }
        Ok(tree)
    }

    /// Lists every directory of `dirs`, pipelined: each directory's
    /// entries sorted by name (whatever order the server sent them in), or
    /// the server's refusal. The outer error is a
    /// lost connection or a reply that does not fit.
    async fn list_many(
        &mut self,
        dirs: &[&str],
    ) -> Result<Vec<Result<Vec<Entry>, ClientError>>, ClientError> {
        let Client { reader, writer, .. } = self;
        let sending = async {
            for dir in dirs {
                writer
                    .feed(&Request::List {
                        path: dir.to_string(),
                    })
                    .await?;
            }
            writer.flush().await
        };
        let receiving = async {
            let mut listings = Vec::with_capacity(dirs.len());
            for dir in dirs {
                let what = format!("List {}", shown_dir(dir));
                let mut all = Vec::new();
                let listing = loop {
                    match next_reply_to(reader, &what).await {
                        Ok(Response::Entries { entries, more }) => {
                            add_entries(&mut all, entries, dir)?;
                            if !more {
                                all.sort_by(|a: &Entry, b: &Entry| a.name.cmp(&b.name));
                                break Ok(all);
                            }
                        }
                        Ok(other) => return Err(unexpected(other)),
                        Err(e @ ClientError::Remote { .. }) => break Err(e),
                        Err(e) => return Err(e),
                    }
                };
                listings.push(listing);
            }
            Ok(listings)
        };
        let ((), listings) = tokio::try_join!(sending, receiving)?;
        Ok(listings)
    }
}

/// Creates the local directories of a [`GetTree`] (`create_dir_all`, so
/// existing ones are fine), in order.
pub fn make_local_dirs(dirs: &[PathBuf]) -> Result<(), ClientError> {
    for dir in dirs {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::local(dir, e))?;
    }
    Ok(())
}

/// Where the copy of a remote directory named `name` (empty: the home) goes.
fn local_target(name: &str, local: Option<&Path>) -> Result<PathBuf, ClientError> {
    let Some(local) = local else {
        if name.is_empty() {
            return Err(ClientError::LocalFile {
                path: PathBuf::from("."),
                message: "the home has no name to copy it under: give a local directory".into(),
            });
        }
        return Ok(PathBuf::from(name));
    };
    let inside = |dir: &Path| {
        if name.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(name)
        }
    };
    match std::fs::metadata(local) {
        Ok(meta) if meta.is_dir() => Ok(inside(local)),
        Ok(_) => Err(ClientError::LocalFile {
            path: local.into(),
            message: "exists and is not a directory".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if local.as_os_str().as_encoded_bytes().ends_with(b"/") {
                Ok(inside(local))
            } else {
                Ok(local.to_path_buf())
            }
        }
        Err(e) => Err(ClientError::local(local, e)),
    }
}

/// Whether a remote name must not become a local file name: it could
/// leave the directory (`..`, '/'), mean something else (empty, `.`), cut
/// the path (NUL), is longer than a name may be (255 bytes), or is one the
/// server would not serve (a backslash, a control or invisible character).
pub(crate) fn unsafe_local_name(name: &str) -> bool {
    matches!(name, "" | "." | "..")
        || name.len() > MAX_NAME_BYTES
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || is_unsafe_char(c))
}

/// Why an entry at the remote `path` is not downloaded, when it lies beyond
/// the protocol's path limits.
fn too_deep(path: &str) -> Option<String> {
    if path.split('/').count() > MAX_DEPTH {
        Some(format!("deeper than {MAX_DEPTH} directories"))
    } else if path.len() > MAX_PATH_BYTES {
        Some(format!("the path is longer than {MAX_PATH_BYTES} bytes"))
    } else {
        None
    }
}

/// A remote directory as a message names it.
fn shown_dir(dir: &str) -> String {
    if dir.is_empty() {
        "the home".into()
    } else {
        escape(dir).to_string()
    }
}

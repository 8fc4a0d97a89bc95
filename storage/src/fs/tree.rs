//! Walks over a directory tree: without recursion, with at most a bounded
//! number of directories open at once, whatever the tree's depth.
//!
//! Two uses: measuring the bytes a home holds (quotas), and checking that a
//! directory moved deeper or to a longer name keeps every path beneath it
//! within the limits of [`crate::VPath`].

use std::io;

use cap_std::fs::{Dir, ReadDir};

use crate::StorageError;
use crate::path::{MAX_DEPTH, MAX_PATH_BYTES};

/// Directories open at once during a walk at the most: one per level, and
/// no path may have more levels than this.
const MAX_OPEN: usize = MAX_DEPTH + 1;

/// Entries a move check looks at before it gives up.
pub(super) const MOVE_CHECK_MAX_ENTRIES: usize = 200_000;

/// One entry met on a walk.
struct Visit<'a> {
    entry: &'a cap_std::fs::DirEntry,
    /// 1 for the entries of the top directory.
    depth: usize,
    /// Bytes of its path relative to the top directory (`a/b/c`).
    rel_bytes: usize,
    is_dir: bool,
}

struct Frame {
    entries: ReadDir,
    depth: usize,
    rel_bytes: usize,
}

/// Calls `visit` for every entry beneath `top`, depth first. Directories are
/// descended into (never through a symlink) while `visit` says so and fewer
/// than [`MAX_OPEN`] are open; deeper ones are reported by the return value
/// (how many directories were not entered).
fn walk(
    top: &Dir,
    mut visit: impl FnMut(&Visit<'_>) -> Result<bool, StorageError>,
) -> Result<usize, StorageError> {
    let mut stack = vec![Frame {
        entries: top.entries()?,
        depth: 1,
        rel_bytes: 0,
    }];
    let mut skipped = 0;
    while let Some(frame) = stack.last_mut() {
        let Some(entry) = frame.entries.next() else {
            stack.pop();
            continue;
        };
        let entry = entry?;
        let (depth, parent_bytes) = (frame.depth, frame.rel_bytes);
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            // Removed since the directory was read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let name_bytes = entry.file_name().len();
        let rel_bytes = if parent_bytes == 0 {
            name_bytes
        } else {
            parent_bytes + 1 + name_bytes
        };
        let seen = Visit {
            entry: &entry,
            depth,
            rel_bytes,
            is_dir: kind.is_dir(),
        };
        if !visit(&seen)? || !kind.is_dir() {
            continue;
        }
        if stack.len() >= MAX_OPEN {
            skipped += 1;
            continue;
        }
        let entries = match entry.open_dir().and_then(|d| d.entries()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        stack.push(Frame {
            entries,
            depth: depth + 1,
            rel_bytes,
        });
    }
    Ok(skipped)
}

/// The bytes held by the regular files beneath `top` (lstat: a symlink is
/// not followed and counts nothing).
pub(super) fn usage(top: &Dir) -> Result<u64, StorageError> {
    let mut total: u64 = 0;
    let skipped = walk(top, |v| {
        if !v.is_dir {
            match v.entry.metadata() {
                Ok(meta) if meta.is_file() => total = total.saturating_add(meta.len()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    })?;
    if skipped > 0 {
        // Only a tree made on the host can be this deep: no request can.
        tracing::warn!(
            skipped,
            "directories nested deeper than {MAX_DEPTH} levels were not measured"
        );
    }
    Ok(total)
}

/// Checks that a directory holding what `top` holds, placed at a path of
/// `depth` components and `bytes` bytes, keeps every path beneath it within
/// the limits.
pub(super) fn check_move(top: &Dir, depth: usize, bytes: usize) -> Result<(), StorageError> {
    let mut seen = 0;
    walk(top, |v| {
        seen += 1;
        if seen > MOVE_CHECK_MAX_ENTRIES {
            return Err(StorageError::MoveBeyondLimits(
                "the directory holds too many entries to be moved deeper or to a longer name",
            ));
        }
        if depth + v.depth > MAX_DEPTH {
            return Err(StorageError::MoveBeyondLimits(
                "the move would nest what the directory holds deeper than 64 components",
            ));
        }
        if bytes + 1 + v.rel_bytes > MAX_PATH_BYTES {
            return Err(StorageError::MoveBeyondLimits(
                "the move would make paths beneath the directory longer than 4095 bytes",
            ));
        }
        Ok(true)
    })?;
    Ok(())
}

//! Group commit: publishing several finished uploads together.

use std::io;
use std::path::PathBuf;

use cap_std::fs::Dir;

use super::lock::Namespace;
use super::upload::{self, FsUpload};
use crate::StorageError;

/// Every upload's data flushed in parallel (the journal merges concurrent
/// flushes into few disk commits), then every rename (under the user's
/// namespace lock, which the flushes do not hold), then one fsync per
/// destination directory. Each result is the bytes its publication freed.
pub(super) fn commit_together(
    mut uploads: Vec<FsUpload>,
    namespace: &Namespace,
) -> Vec<Result<u64, StorageError>> {
    const FLUSHERS: usize = 32;
    let per_thread = uploads.len().div_ceil(FLUSHERS).max(1);
    // Threads only pay off when there are several flushes to wait for.
    let parallel = uploads.len() > 1 && uploads.iter().any(FsUpload::durable);
    let flushed: Vec<Result<(), StorageError>> = if !parallel {
        uploads.iter_mut().map(FsUpload::flush_data).collect()
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = uploads
                .chunks_mut(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter_mut()
                            .map(FsUpload::flush_data)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| match w.join() {
                    Ok(results) => results,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    let mut results: Vec<Result<u64, StorageError>> =
        flushed.into_iter().map(|r| r.map(|()| 0)).collect();
    let mut dirs: Vec<(PathBuf, Dir)> = Vec::new();
    {
        let _held = namespace.hold();
        for (upload, result) in uploads.iter_mut().zip(results.iter_mut()) {
            if result.is_err() {
                continue;
            }
            match upload.rename_into_place() {
                Ok((dir, rel, freed)) => {
                    *result = Ok(freed);
                    if upload.durable() && !dirs.iter().any(|(r, _)| *r == rel) {
                        dirs.push((rel, dir));
                    }
                }
                Err(e) => *result = Err(e),
            }
        }
    }
    for (rel, dir) in &dirs {
        if let Err(e) = upload::sync_dir(dir) {
            tracing::warn!(error = ?e, "directory fsync failed after a group commit");
            // Every upload published into this directory is not known to be durable.
            for (upload, result) in uploads.iter().zip(results.iter_mut()) {
                if result.is_ok() && upload.dest_parent() == rel.as_path() {
                    *result = Err(StorageError::Io(io::Error::other("directory fsync failed")));
                }
            }
        }
    }
    results
}

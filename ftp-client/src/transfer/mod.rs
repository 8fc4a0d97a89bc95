//! File transfers: uploads ([`put`]) and downloads ([`get`]) of one file or
//! many, pipelined, and plans for copying whole directories ([`tree`]).
//!
//! Every transfer streams in chunks through a blocking disk thread and a
//! small bounded channel, so memory stays constant whatever the file size,
//! and hashes every byte on the way: an upload ends with the digest the
//! server checks; a download lands in `NAME.part` and is renamed only after
//! its digest matched. Interrupted transfers can be continued: the digest
//! still covers the whole file.

pub mod get;
pub mod get_tree;
pub mod put;
pub mod tree;

use crate::ClientError;

pub use get::GetItem;
pub use get_tree::{GetTree, make_local_dirs};
pub use put::PutItem;
pub use tree::PutTree;

/// Files of this size or more are resumed automatically when the server kept
/// part of an earlier upload of them.
pub const RESUME_MIN: u64 = 1024 * 1024;

/// Files opened at once by a transfer of many: `put_files` and `get_files`
/// work through their lists in windows of this many files (pipelined
/// within a window), so a tree of any size stays far below the limit on
/// open files.
pub const WINDOW: usize = 256;

/// Chunks in flight between a disk thread and the network.
const QUEUE: usize = 4;

/// Told `(index of the file, bytes of it done, its size)` as a transfer goes.
pub type Progress<'a> = &'a mut (dyn FnMut(usize, u64, u64) + Send);

/// What a transfer of many files did: a result for each file whose fate is
/// known, in order, and the error that ended the connection, if one did.
/// When the connection stayed up, every file has its result; when it was
/// lost, the files after the last result were not transferred (or not
/// confirmed).
#[derive(Debug)]
pub struct Outcome {
    pub results: Vec<Result<u64, ClientError>>,
    pub lost: Option<ClientError>,
}

impl Outcome {
    /// Every file's result, or the error that lost the connection.
    pub fn into_result(self) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
        match self.lost {
            None => Ok(self.results),
            Some(e) => Err(e),
        }
    }
}

/// Runs a transfer of many files window by window: `window` transfers the
/// files of one window (told which repeat an earlier target), appends their
/// results and returns the error that lost the connection, if one did.
async fn by_windows<T>(
    items: &[T],
    repeated: &[bool],
    progress: Progress<'_>,
    mut window: impl AsyncFnMut(
        &[T],
        &[bool],
        &mut Vec<Result<u64, ClientError>>,
        Progress<'_>,
    ) -> Option<ClientError>,
) -> Outcome {
    let mut results = Vec::with_capacity(items.len());
    for (w, chunk) in items.chunks(WINDOW).enumerate() {
        let first = w * WINDOW;
        let repeated = &repeated[first..first + chunk.len()];
        let mut progress = |i, done, total| progress(first + i, done, total);
        let lost = window(chunk, repeated, &mut results, &mut progress).await;
        if lost.is_some() {
            return Outcome { results, lost };
        }
    }
    Outcome {
        results,
        lost: None,
    }
}

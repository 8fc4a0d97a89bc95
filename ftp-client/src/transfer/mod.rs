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
pub mod put;
pub mod tree;

pub use get::GetItem;
pub use put::PutItem;
pub use tree::{GetTree, PutTree, make_local_dirs};

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

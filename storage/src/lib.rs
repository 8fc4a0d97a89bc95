//! Storage back-ends of the mini-FTP server.
//!
//! The server keeps every authenticated user inside a sandboxed *home*. This
//! crate owns everything between a client-supplied path and the disk.
//!
//! # Module map
//!
//! - [`path`]: [`VPath`], the validated home-relative path, and
//!   [`validate_user_name`]. Paths are checked as text first, so `..`, absolute
//!   paths, backslashes and invisible characters never reach the filesystem.
//! - [`fs`]: [`FsStorage`], the filesystem implementation. Every operation is
//!   resolved *beneath* a directory handle of the home with `cap-std`
//!   (`openat2(RESOLVE_BENEATH)` or its own careful resolution), so even a
//!   symlink planted in a home cannot lead outside it: symlinks that stay inside
//!   are followed, those that escape give [`StorageError::PermissionDenied`].
//! - This file: the [`Storage`], [`Home`] and [`Upload`] traits the server is
//!   written against, and [`StorageError`] with the single mapping from
//!   `std::io::Error`.
//!
//! # Layout on disk
//!
//! ```text
//! root/
//!   .incoming/              uploads in progress: <user>.<16 hex>.part
//!   alice/                  alice's home
//!   bob/                    bob's home
//! ```
//!
//! Uploads are written to a temp file in `root/.incoming/` and renamed into the
//! home on commit, so a file appears whole or not at all, and a reader of the old
//! content is never disturbed. User names cannot start with '.', so
//! `.incoming` can never be a home; no name in a user's namespace is reserved and
//! listings never show temps. Because publishing is a `rename`, **the whole root
//! must be one filesystem** (no homes on other mounts). Stale temps left by a
//! crash are removed by [`FsStorage::open`].
//!
//! # Errors
//!
//! [`StorageError`]'s `Display` is sent to clients: it never contains host paths
//! or OS error strings. Details are logged with `tracing` instead.

pub mod fs;
pub mod path;

pub use fs::{FsHome, FsReader, FsStorage, FsUpload, Listing};
pub use ftp_shared::message::{Entry, EntryKind};
pub use path::{PathError, VPath, validate_user_name};

use std::io;

/// An error from a storage operation, safe to show to a client.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The client path or user name was refused before touching the disk.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// Nothing exists under that name.
    #[error("not found")]
    NotFound,
    /// Something already exists under that name.
    #[error("already exists")]
    AlreadyExists,
    /// A component that had to be a directory is not one.
    #[error("not a directory")]
    NotADirectory,
    /// A directory was named where a file was expected.
    #[error("is a directory")]
    IsADirectory,
    /// A FIFO, device, socket or hard-linked file: never served or replaced.
    #[error("not a regular file")]
    NotARegularFile,
    /// An attempt to leave the home (through a symlink), or the OS refused access.
    #[error("permission denied")]
    PermissionDenied,
    /// The disk or the quota is full.
    #[error("no space left on the server")]
    StorageFull,
    /// A directory to remove, or to replace by a rename, is not empty.
    #[error("directory not empty")]
    DirectoryNotEmpty,
    /// A rename would move a directory inside itself.
    #[error("cannot move a directory inside itself")]
    InvalidMove,
    /// A rename would put what a directory holds beyond the path limits
    /// (too deep or too long), or the directory is too large to check.
    #[error("{0}")]
    MoveBeyondLimits(&'static str),
    /// The server has no file handle to spare for this now (its own or the
    /// process's limit); the request may succeed later.
    #[error("the server is busy, try again later")]
    Busy,
    /// Any other I/O failure; the cause is kept for logs, never displayed.
    #[error("storage error")]
    Io(#[source] io::Error),
}

impl From<io::Error> for StorageError {
    /// The one place that maps OS errors to client-facing variants.
    fn from(e: io::Error) -> Self {
        let mapped = match e.raw_os_error() {
            Some(libc::ENOENT) => Some(StorageError::NotFound),
            Some(libc::EEXIST) => Some(StorageError::AlreadyExists),
            Some(libc::ENOTDIR) => Some(StorageError::NotADirectory),
            Some(libc::EISDIR) => Some(StorageError::IsADirectory),
            // ENXIO: open(2) of a socket, or of a FIFO/device without a peer.
            Some(libc::ENXIO) => Some(StorageError::NotARegularFile),
            Some(libc::EACCES | libc::EPERM | libc::ELOOP | libc::EXDEV | libc::EROFS) => {
                Some(StorageError::PermissionDenied)
            }
            Some(libc::ENOSPC | libc::EDQUOT) => Some(StorageError::StorageFull),
            Some(libc::ENOTEMPTY) => Some(StorageError::DirectoryNotEmpty),
            Some(libc::EMFILE | libc::ENFILE) => Some(StorageError::Busy),
            Some(_) => None,
            // No errno: cap-std's own errors, e.g. its escape error, which is
            // `ErrorKind::PermissionDenied` with a message of its own.
            None => match e.kind() {
                io::ErrorKind::NotFound => Some(StorageError::NotFound),
                io::ErrorKind::AlreadyExists => Some(StorageError::AlreadyExists),
                io::ErrorKind::NotADirectory => Some(StorageError::NotADirectory),
                io::ErrorKind::IsADirectory => Some(StorageError::IsADirectory),
                io::ErrorKind::PermissionDenied => Some(StorageError::PermissionDenied),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                    Some(StorageError::StorageFull)
                }
                io::ErrorKind::DirectoryNotEmpty => Some(StorageError::DirectoryNotEmpty),
                _ => None,
            },
        };
        match mapped {
            Some(err) => {
                tracing::debug!(error = %e, mapped = %err, "storage operation failed");
                err
            }
            None => {
                tracing::warn!(error = %e, kind = ?e.kind(), "unexpected storage I/O error");
                StorageError::Io(e)
            }
        }
    }
}

/// A place where users' homes live.
pub trait Storage: Send + Sync + 'static {
    /// The handle of one user's home.
    type Home: Home;
    /// Opens the home of a user (validated with [`validate_user_name`]),
    /// creating `root/<user>/` at first use.
    fn home(&self, user: &str) -> Result<Self::Home, StorageError>;
}

/// One user's home. All paths are relative to it and can never leave it.
pub trait Home: Send + Sync + 'static {
    /// A download in progress.
    type Reader: io::Read + io::Seek + Send + 'static;
    /// An upload in progress.
    type Upload: Upload;
    /// mkdir; with `parents = true` like `mkdir -p` (existing directories are
    /// fine, an existing non-directory in the way is `NotADirectory`, or
    /// `AlreadyExists` when it is the last component); with `parents = false`,
    /// an existing entry is `AlreadyExists` and a missing parent is `NotFound`.
    fn mkdir(&self, path: &VPath, parents: bool) -> Result<(), StorageError>;
    /// Opens a regular file for reading; returns it with its size (from fstat
    /// of the opened handle).
    fn open_read(&self, path: &VPath) -> Result<(Self::Reader, u64), StorageError>;
    /// The digest recorded for an opened file when it was stored
    /// ([`Upload::record_digest`]), if the file has not changed since; none
    /// when nothing was recorded (the caller then hashes what it reads).
    fn recorded_digest(&self, _reader: &Self::Reader) -> Option<ftp_shared::Digest> {
        None
    }
    /// Starts an upload of `size` bytes that will be published under `path`.
    /// What an interrupted upload of the same path and size kept stays until
    /// this one is published or kept in its place ([`Upload::suspend`]).
    /// Fails early when the parent directory is missing (`NotFound`) or
    /// `path` names a directory (`IsADirectory`) or something that is not a
    /// regular file, or a regular file with other hard links (which `open_read`
    /// refuses too).
    fn create_upload(&self, path: &VPath, size: u64) -> Result<Self::Upload, StorageError>;
    /// The bytes kept from an interrupted upload of `size` bytes to `path`
    /// (see [`Upload::suspend`]) within the last 24 hours: a reader of them
    /// and their count.
    fn partial(&self, path: &VPath, size: u64)
    -> Result<Option<(Self::Reader, u64)>, StorageError>;
    /// Takes over the interrupted upload of `size` bytes to `path`: the
    /// upload, appending after the kept bytes, a reader of the kept bytes,
    /// and their count. `NotFound` when nothing was kept.
    fn resume_upload(
        &self,
        path: &VPath,
        size: u64,
    ) -> Result<(Self::Upload, Self::Reader, u64), StorageError>;
    /// Lists a directory: `None` is the home, a path is resolved like
    /// [`Home::open_read`] (symlinks that stay inside the home are followed,
    /// also as the last component). Each entry is described as it is, a
    /// symlink as a symlink (lstat). When the path does not lead to a
    /// directory (a file, a FIFO, a broken symlink or one that leads outside
    /// the home), the one entry describing the named thing itself. Names that
    /// are not UTF-8 are given in their lossy form. The entries are read
    /// page by page as the caller asks ([`Listing::next_page`]), in
    /// directory order (not sorted); one removed meanwhile is skipped.
    fn list(&self, path: Option<&VPath>) -> Result<Listing, StorageError>;
    /// Describes what `path` designates (`None`: the home, named ""),
    /// following symlinks that stay inside the home: one leading outside is
    /// `PermissionDenied`, a broken one `NotFound`. The name is the last
    /// component of the path.
    fn stat(&self, path: Option<&VPath>) -> Result<Entry, StorageError>;
    /// Deletes a file, a symlink (never what it points to) or another
    /// non-directory; a directory is `IsADirectory`. Returns the bytes freed
    /// (the size of a regular file, else 0).
    fn remove(&self, path: &VPath) -> Result<u64, StorageError>;
    /// Deletes an empty directory: `DirectoryNotEmpty` if it holds anything,
    /// `NotADirectory` for anything else (a symlink to a directory too: it
    /// is not followed).
    fn rmdir(&self, path: &VPath) -> Result<(), StorageError>;
    /// Renames `from` to `to` in one atomic step (neither last component is
    /// followed if it is a symlink). An existing file at `to` is replaced; an
    /// existing directory only by a directory, and only when empty
    /// (`DirectoryNotEmpty`). A directory into itself is `InvalidMove`; a
    /// file over a directory `IsADirectory`, a directory over a file
    /// `NotADirectory`. Renaming an existing name to itself does nothing.
    /// No rename puts a path beyond the limits of [`VPath`]: moving a
    /// directory deeper or to a longer name checks what it holds
    /// (`MoveBeyondLimits`). Returns the bytes freed (a replaced regular file).
    fn rename(&self, from: &VPath, to: &VPath) -> Result<u64, StorageError>;
    /// The bytes the user makes the server keep, for quotas: the regular files
    /// of the home (symlinks are not followed) and the kept bytes of
    /// interrupted uploads. Walks the home without recursion and with a
    /// bounded number of open directories.
    fn usage(&self) -> Result<u64, StorageError>;
    /// Publishes several finished uploads together, sharing the cost of
    /// flushing them to disk. Each gets its own result, in order: the bytes
    /// its publication freed (see [`Upload::commit`]).
    fn commit_all(&self, uploads: Vec<Self::Upload>) -> Vec<Result<u64, StorageError>> {
        uploads.into_iter().map(Upload::commit).collect()
    }
}

/// What [`Upload::suspend`] did to the bytes kept for resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Suspended {
    /// The bytes now kept (0 when nothing could be kept).
    pub kept: u64,
    /// The bytes an earlier interrupted upload kept, replaced by these.
    pub freed: u64,
}

/// An upload in progress: bytes go to a hidden temp file; nothing is visible
/// under the final name until [`Upload::commit`].
pub trait Upload: io::Write + Send + 'static {
    /// Records the verified digest of the whole file, to be stored with it
    /// when it is published (see [`Home::recorded_digest`]).
    fn record_digest(&mut self, _digest: ftp_shared::Digest) {}
    /// fsync the temp file, rename it over the final name, fsync the
    /// destination directory. Returns the bytes freed: the file it replaced
    /// and the kept bytes of an interrupted upload of the same path and size,
    /// which it supersedes.
    fn commit(self) -> Result<u64, StorageError>;
    /// Keeps what was written so far, so that a later upload of the same path
    /// and size can continue it ([`Home::resume_upload`]); it replaces what
    /// an earlier interrupted upload of them kept.
    fn suspend(self) -> Suspended;
    /// Removes the temp file. Dropping an uncommitted upload does the same.
    fn abort(self);
}

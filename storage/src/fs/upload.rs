//! Uploads: written to a temp file in `root/.incoming/`, published by rename.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions};
use ftp_shared::write_back::WriteBack;

use super::lock::Namespace;
use super::open_dir_beneath;
use crate::{StorageError, Suspended, Upload};

/// An upload in progress. The bytes go to `root/.incoming/<user>.<hex>.part`;
/// [`Upload::commit`] renames it into the home, so readers see either the old
/// file or the whole new one. Dropping it without committing removes the temp;
/// [`Upload::suspend`] keeps it under a name derived from the destination and
/// size, for a later resume.
#[derive(Debug)]
pub struct FsUpload {
    file: std::fs::File,
    incoming: Arc<Dir>,
    home: Arc<Dir>,
    namespace: Namespace,
    tmp_name: String,
    /// The name it is kept under when suspended.
    partial_name: String,
    /// Final path relative to the home.
    dest: PathBuf,
    /// Whether data and rename are flushed to disk before commit returns.
    durable: bool,
    /// Bytes in the file.
    written: u64,
    /// Early write-back, when durable.
    write_back: WriteBack,
    /// Whether the temp file may still exist and must be removed on drop.
    pending: bool,
    /// The verified digest, recorded with the file when it is published.
    digest: Option<ftp_shared::Digest>,
}

/// What [`FsUpload::new`] needs.
#[derive(Debug)]
pub(super) struct Parts {
    pub file: std::fs::File,
    pub incoming: Arc<Dir>,
    pub home: Arc<Dir>,
    pub namespace: Namespace,
    pub tmp_name: String,
    pub partial_name: String,
    pub dest: PathBuf,
    pub durable: bool,
    pub written: u64,
}

impl FsUpload {
    pub(super) fn new(p: Parts) -> FsUpload {
        FsUpload {
            file: p.file,
            incoming: p.incoming,
            home: p.home,
            namespace: p.namespace,
            tmp_name: p.tmp_name,
            partial_name: p.partial_name,
            dest: p.dest,
            durable: p.durable,
            written: p.written,
            write_back: WriteBack::new(p.written),
            pending: true,
            digest: None,
        }
    }

    /// Step one of publishing: the data on disk (a no-op when not durable).
    /// Uploads committed together run this in parallel, so the filesystem
    /// journal can group their flushes.
    pub(super) fn flush_data(&mut self) -> Result<(), StorageError> {
        self.file.flush()?;
        // After the last byte (the record names the final mtime), before the
        // flush (so it is as durable as the data).
        if let Some(digest) = &self.digest {
            super::digest_record::record(&self.file, digest);
        }
        if self.durable {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Step two: the rename into the home, with the user's namespace lock
    /// held by the caller. Returns the destination directory, which the
    /// caller fsyncs (once for all the uploads that share it), and the bytes
    /// freed: the file replaced and the kept bytes this upload supersedes.
    pub(super) fn rename_into_place(&mut self) -> Result<(Dir, PathBuf, u64), StorageError> {
        let result = (|| {
            let name = self.dest.file_name().ok_or(StorageError::NotFound)?;
            let parent = self.dest.parent().unwrap_or(Path::new("")).to_path_buf();
            // Re-resolved beneath the home now: if the parent was meanwhile
            // replaced by a symlink leading outside, this fails instead of
            // following it.
            let parent_dir = open_dir_beneath(&self.home, &parent)?;
            let replaced = regular_file_bytes(&parent_dir, name);
            self.incoming.rename(&self.tmp_name, &parent_dir, name)?;
            Ok((parent_dir, parent, replaced))
        })();
        match result {
            Ok((dir, parent, replaced)) => {
                self.pending = false;
                Ok((dir, parent, replaced + self.remove_superseded()))
            }
            Err(e) => {
                tracing::debug!(tmp = %self.tmp_name, error = ?e, "upload commit failed");
                self.remove_temp();
                Err(e)
            }
        }
    }

    /// Removes what an interrupted upload of the same file kept: this one
    /// replaces it. Returns its bytes.
    fn remove_superseded(&self) -> u64 {
        let kept = regular_file_bytes(&self.incoming, &self.partial_name);
        match self.incoming.remove_file(&self.partial_name) {
            Ok(()) => kept,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(error = %e, "could not remove superseded kept bytes");
                0
            }
        }
    }

    pub(super) fn durable(&self) -> bool {
        self.durable
    }

    pub(super) fn dest_parent(&self) -> &Path {
        self.dest.parent().unwrap_or(Path::new(""))
    }

    fn remove_temp(&mut self) {
        if !std::mem::take(&mut self.pending) {
            return;
        }
        if let Err(e) = self.incoming.remove_file(&self.tmp_name) {
            tracing::debug!(tmp = %self.tmp_name, error = %e, "could not remove upload temp");
        }
    }
}

/// The size of the regular file `name` in `dir` (not followed), 0 for
/// anything else or nothing.
fn regular_file_bytes(dir: &Dir, name: impl AsRef<Path>) -> u64 {
    dir.symlink_metadata(name)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len())
}

/// The new directory entries on disk: fsync each directory once.
pub(super) fn sync_dir(dir: &Dir) -> Result<(), StorageError> {
    // cap-std holds directories as O_PATH handles, which cannot be fsynced,
    // so the directory is opened again for reading.
    let mut options = OpenOptions::new();
    options.read(true);
    dir.open_with(".", &options)?.sync_all()?;
    Ok(())
}

impl Write for FsUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.durable {
            self.write_back.wrote(&self.file, n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Upload for FsUpload {
    fn record_digest(&mut self, digest: ftp_shared::Digest) {
        self.digest = Some(digest);
    }

    fn commit(mut self) -> Result<u64, StorageError> {
        if let Err(e) = self.flush_data() {
            self.remove_temp();
            return Err(e);
        }
        let namespace = self.namespace.clone();
        let held = namespace.hold();
        let (dir, _, freed) = self.rename_into_place()?;
        drop(held);
        if self.durable {
            sync_dir(&dir)?;
        }
        tracing::debug!(tmp = %self.tmp_name, "upload committed");
        Ok(freed)
    }

    fn suspend(mut self) -> Suspended {
        if !self.pending {
            return Suspended::default();
        }
        let namespace = self.namespace.clone();
        let _held = namespace.hold();
        let freed = regular_file_bytes(&self.incoming, &self.partial_name);
        match self
            .incoming
            .rename(&self.tmp_name, &self.incoming, &self.partial_name)
        {
            Ok(()) => {
                self.pending = false;
                tracing::debug!(partial = %self.partial_name, bytes = self.written, "upload kept for resume");
                Suspended {
                    kept: self.written,
                    freed,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not keep the upload for resume");
                Suspended::default()
            }
        }
    }

    fn abort(mut self) {
        self.remove_temp();
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        self.remove_temp();
    }
}

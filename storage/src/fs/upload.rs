//! Uploads: written to a temp file in `root/.incoming/`, published by rename.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions};

use super::open_dir_beneath;
use crate::{StorageError, Upload};

/// An upload in progress. The bytes go to `root/.incoming/<user>.<hex>.part`;
/// [`Upload::commit`] renames it into the home, so readers see either the old
/// file or the whole new one. Dropping it without committing removes the temp.
#[derive(Debug)]
pub struct FsUpload {
    file: std::fs::File,
    incoming: Arc<Dir>,
    home: Arc<Dir>,
    tmp_name: String,
    /// Final path relative to the home.
    dest: PathBuf,
    /// Whether the temp file may still exist and must be removed on drop.
    pending: bool,
}

impl FsUpload {
    pub(super) fn new(
        file: std::fs::File,
        incoming: Arc<Dir>,
        home: Arc<Dir>,
        tmp_name: String,
        dest: PathBuf,
    ) -> FsUpload {
        FsUpload {
            file,
            incoming,
            home,
            tmp_name,
            dest,
            pending: true,
        }
    }

    fn publish(&mut self) -> Result<(), StorageError> {
        self.file.flush()?;
        self.file.sync_all()?;
        let name = self.dest.file_name().ok_or(StorageError::NotFound)?;
        let parent = self.dest.parent().unwrap_or(Path::new(""));
        // Re-resolved beneath the home now: if the parent was meanwhile replaced
        // by a symlink leading outside, this fails instead of following it.
        let parent_dir = open_dir_beneath(&self.home, parent)?;
        self.incoming.rename(&self.tmp_name, &parent_dir, name)?;
        // The file is in place; make the new directory entry durable. (cap-std
        // holds directories as O_PATH handles, which cannot be fsynced, so the
        // directory is opened again for reading.)
        let mut options = OpenOptions::new();
        options.read(true);
        parent_dir.open_with(".", &options)?.sync_all()?;
        Ok(())
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

impl Write for FsUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Upload for FsUpload {
    fn commit(mut self) -> Result<(), StorageError> {
        match self.publish() {
            Ok(()) => {
                self.pending = false;
                tracing::debug!(tmp = %self.tmp_name, "upload committed");
                Ok(())
            }
            Err(e) => {
                tracing::debug!(tmp = %self.tmp_name, error = ?e, "upload commit failed");
                self.remove_temp();
                Err(e)
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

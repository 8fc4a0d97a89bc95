//! The operations that change a home's namespace: directories made,
//! entries removed and renamed. Each holds the user's namespace lock (see
//! [`super::lock`]) and reports the bytes it freed, for quotas.

use cap_std::fs::MetadataExt as _;
use std::io;
use std::path::PathBuf;

use super::{FsHome, tree};
use crate::{StorageError, VPath};

impl FsHome {
    pub(super) fn make_dir(&self, path: &VPath, parents: bool) -> Result<(), StorageError> {
        let ns = self.namespace();
        let _held = ns.hold();
        if parents {
            self.mkdir_parents(path)
        } else {
            Ok(self.home.create_dir(path.as_str())?)
        }
    }

    /// `mkdir -p`, one component at a time, so that an existing directory
    /// (or an in-home symlink to one) is fine and anything else is reported.
    fn mkdir_parents(&self, path: &VPath) -> Result<(), StorageError> {
        let mut prefix = PathBuf::new();
        let count = path.components().count();
        for (i, component) in path.components().enumerate() {
            prefix.push(component);
            match self.home.create_dir(&prefix) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Follows symlinks, beneath the home only.
                    let meta = self.home.metadata(&prefix)?;
                    if !meta.is_dir() {
                        return Err(if i + 1 == count {
                            StorageError::AlreadyExists
                        } else {
                            StorageError::NotADirectory
                        });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The size of the regular file `path` names itself (not followed), 0
    /// for anything else or nothing.
    fn file_bytes(&self, path: &VPath) -> u64 {
        self.home
            .symlink_metadata(path.as_str())
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len())
    }

    pub(super) fn remove_entry(&self, path: &VPath) -> Result<u64, StorageError> {
        let ns = self.namespace();
        let _held = ns.hold();
        let freed = self.file_bytes(path);
        // unlinkat(2) of the last component: a symlink goes, not its target.
        match self.home.remove_file(path.as_str()) {
            Ok(()) => Ok(freed),
            Err(e) => {
                // Linux says EISDIR, POSIX allows EPERM: ask what it is.
                if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EPERM))
                    && self
                        .home
                        .symlink_metadata(path.as_str())
                        .is_ok_and(|m| m.is_dir())
                {
                    return Err(StorageError::IsADirectory);
                }
                Err(e.into())
            }
        }
    }

    pub(super) fn remove_dir(&self, path: &VPath) -> Result<(), StorageError> {
        let ns = self.namespace();
        let _held = ns.hold();
        // unlinkat(2) with AT_REMOVEDIR: a symlink is ENOTDIR, not followed.
        match self.home.remove_dir(path.as_str()) {
            Ok(()) => Ok(()),
            // POSIX allows either for a directory that is not empty.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                Err(StorageError::DirectoryNotEmpty)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn rename_entry(&self, from: &VPath, to: &VPath) -> Result<u64, StorageError> {
        let ns = self.namespace();
        let _held = ns.hold();
        let source = self.home.symlink_metadata(from.as_str())?;
        let dest = self.home.symlink_metadata(to.as_str()).ok();
        if source.is_dir() {
            self.check_move(from, to)?;
        }
        // rename(2) of two names of one inode does nothing and frees nothing.
        let same = dest
            .as_ref()
            .is_some_and(|d| d.dev() == source.dev() && d.ino() == source.ino());
        let freed = match &dest {
            Some(d) if d.is_file() && !same => d.len(),
            _ => 0,
        };
        // renameat(2) between the two parents, each opened beneath the home.
        match self.home.rename(from.as_str(), &self.home, to.as_str()) {
            Ok(()) => Ok(freed),
            Err(e) => Err(match e.raw_os_error() {
                // A directory in the way that is not empty.
                Some(libc::ENOTEMPTY | libc::EEXIST) => StorageError::DirectoryNotEmpty,
                // `to` lies inside `from`.
                Some(libc::EINVAL) => StorageError::InvalidMove,
                _ => e.into(),
            }),
        }
    }

    /// A directory moved deeper or to a longer name must keep every path
    /// beneath it within the limits; moved up or to a shorter name, it does.
    fn check_move(&self, from: &VPath, to: &VPath) -> Result<(), StorageError> {
        let depth = |p: &VPath| p.components().count();
        if depth(to) <= depth(from) && to.as_str().len() <= from.as_str().len() {
            return Ok(());
        }
        let moved = self.home.open_dir(from.as_str())?;
        tree::check_move(&moved, depth(to), to.as_str().len())
    }

    /// The bytes of the home's regular files and of the user's kept uploads.
    pub(super) fn measure(&self) -> Result<u64, StorageError> {
        let files = tree::usage(&self.home)?;
        let prefix = format!("{}.", self.user);
        let mut kept: u64 = 0;
        for entry in self.incoming.entries()? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with(&prefix) && name.ends_with(".partial")) {
                continue;
            }
            match entry.metadata() {
                Ok(meta) if meta.is_file() => kept = kept.saturating_add(meta.len()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(files.saturating_add(kept))
    }
}

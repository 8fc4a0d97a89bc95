//! The filesystem back-end: homes are directories under one root, every
//! operation is resolved beneath a `cap_std::fs::Dir` handle of the home.
//!
//! - `root/<user>/` is the home of `<user>`, created at first use.
//! - `root/.incoming/` holds uploads in progress (see [`FsUpload`]); it is
//!   emptied by [`FsStorage::open`]. The root must be a single filesystem, as
//!   uploads are published with `rename(2)` from there into a home.
//!
//! Why `cap-std`: a path is never joined to a host path and opened; it is opened
//! relative to the home's directory handle with `openat2(RESOLVE_BENEATH)` (or
//! cap-std's component-by-component resolution where that is unavailable).
//! `..`, absolute symlinks and symlinks to other homes fail there, so there is
//! no check-then-use race to win with a symlink swapped in at the right moment.

mod commit;
mod digest_record;
mod list;
mod lock;
mod namespace;
mod tree;
mod upload;

pub use list::Listing;
use lock::Namespace;
pub use upload::FsUpload;
use upload::Parts;

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cap_std::ambient_authority;
use cap_std::fs::{
    Dir, DirBuilder, DirBuilderExt as _, Metadata, OpenOptions, OpenOptionsExt as _,
};

use crate::{Entry, EntryKind, Home, Storage, StorageError, VPath, validate_user_name};

/// Name of the temp area inside the root. User names cannot start with '.', so
/// it can never be a home.
pub const INCOMING_DIR: &str = ".incoming";

/// How long the bytes of an interrupted upload are kept for a resume.
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A download: the opened regular file.
pub type FsReader = std::fs::File;

/// Homes under one root directory of the local filesystem.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: Arc<Dir>,
    incoming: Arc<Dir>,
    durable: bool,
    home_mode: u32,
    file_mode: u32,
}

impl FsStorage {
    /// Creates `root` if missing, opens it once, creates `root/.incoming/` and
    /// removes whatever a previous run left there (stale temps from a crash).
    pub fn open(root: &Path) -> Result<FsStorage, StorageError> {
        let opened = {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
        }
        .and_then(|()| Dir::open_ambient_dir(root, ambient_authority()));
        let root_dir = opened.map_err(|e| {
            tracing::error!(root = %root.display(), error = %e, "cannot open the storage root");
            StorageError::from(e)
        })?;
        let mut builder = DirBuilder::new();
        builder.mode(0o700);
        match root_dir.create_dir_with(INCOMING_DIR, &builder) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let incoming = root_dir.open_dir(INCOMING_DIR)?;
        let removed = sweep(&incoming)?;
        tracing::info!(
            root = %root.display(),
            removed,
            "storage opened; stale uploads removed from {INCOMING_DIR}"
        );
        Ok(FsStorage {
            root: Arc::new(root_dir),
            incoming: Arc::new(incoming),
            durable: true,
            home_mode: 0o700,
            file_mode: 0o600,
        })
    }

    /// The modes new homes (and their directories) and new files get
    /// [default: 0700 and 0600, owner only]; the umask still applies.
    /// Existing homes and files keep theirs.
    pub fn with_modes(mut self, home_mode: u32, file_mode: u32) -> FsStorage {
        self.home_mode = home_mode;
        self.file_mode = file_mode;
        self
    }

    /// With `false`, uploads are published without waiting for the disk
    /// (no fsync): faster, but a power loss can lose recent uploads. The
    /// rename stays atomic either way.
    pub fn with_fsync(mut self, durable: bool) -> FsStorage {
        self.durable = durable;
        self
    }
}

/// Removes every entry of the temp area but the kept parts of interrupted
/// uploads younger than [`PARTIAL_MAX_AGE`]; returns how many it removed.
fn sweep(incoming: &Dir) -> Result<usize, StorageError> {
    let mut removed = 0;
    for entry in incoming.entries()? {
        let entry = entry?;
        let name = entry.file_name();
        let fresh_partial = name.to_str().is_some_and(|n| n.ends_with(".partial"))
            && entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                let t = t.into_std();
                SystemTime::now().duration_since(t).unwrap_or_default() < PARTIAL_MAX_AGE
            });
        if fresh_partial {
            continue;
        }
        let result = if entry.file_type()?.is_dir() {
            incoming.remove_dir_all(&name)
        } else {
            incoming.remove_file(&name)
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(name = ?name, error = %e, "cannot remove a stale upload"),
        }
    }
    Ok(removed)
}

impl Storage for FsStorage {
    type Home = FsHome;

    fn home(&self, user: &str) -> Result<FsHome, StorageError> {
        validate_user_name(user)?;
        let mut builder = DirBuilder::new();
        builder.mode(self.home_mode);
        match self.root.create_dir_with(user, &builder) {
            Ok(()) => tracing::info!(user, "created home"),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let home = self.root.open_dir(user)?;
        Ok(FsHome {
            home: Arc::new(home),
            incoming: Arc::clone(&self.incoming),
            user: user.to_owned(),
            durable: self.durable,
            file_mode: self.file_mode,
        })
    }
}

/// One user's home: a directory handle everything is resolved beneath.
#[derive(Debug)]
pub struct FsHome {
    home: Arc<Dir>,
    incoming: Arc<Dir>,
    user: String,
    durable: bool,
    file_mode: u32,
}

/// Opens a directory beneath `home`; the empty path is the home itself.
fn open_dir_beneath(home: &Dir, rel: &Path) -> io::Result<Dir> {
    if rel.as_os_str().is_empty() {
        home.try_clone()
    } else {
        home.open_dir(rel)
    }
}

/// The entry named `name` that `meta` describes (a symlink, when `meta`
/// comes from lstat, is described as itself).
fn describe(name: String, meta: &Metadata) -> Entry {
    use cap_std::fs::MetadataExt as _;
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_dir() {
        EntryKind::Directory
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: meta.len(),
        modified: meta.mtime(),
        mode: meta.mode() & 0o7777,
    }
}

impl FsHome {
    /// The lock over this user's namespace (see [`lock`]).
    fn namespace(&self) -> Namespace {
        Namespace::of(&self.user)
    }

    /// Where an upload to `path` will be published, relative to the home. An
    /// in-home symlink to a regular file is followed, so the upload replaces
    /// the file it points to (renaming over the link would silently turn it
    /// into a file).
    fn upload_target(&self, path: &VPath) -> Result<PathBuf, StorageError> {
        let parent = path
            .parent()
            .map(|p| PathBuf::from(p.as_str()))
            .unwrap_or_default();
        let parent_dir = open_dir_beneath(&self.home, &parent)?;
        let name = path.file_name();
        let meta = match parent_dir.symlink_metadata(name) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(parent.join(name)),
            Err(e) => return Err(e.into()),
        };
        use cap_std::fs::MetadataExt as _;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        // A hard-linked file may share its inode with a file outside the
        // home: never replaced, as it is never served (`open_read`).
        if file_type.is_file() {
            if meta.nlink() > 1 {
                return Err(StorageError::NotARegularFile);
            }
            return Ok(parent.join(name));
        }
        if !file_type.is_symlink() {
            return Err(StorageError::NotARegularFile);
        }
        // A symlink: follow it beneath the home (escapes and loops fail here).
        let target = self.home.metadata(path.as_str())?;
        if target.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        if !target.is_file() || target.nlink() > 1 {
            return Err(StorageError::NotARegularFile);
        }
        Ok(self.home.canonicalize(path.as_str())?)
    }

    /// The name the kept bytes of an interrupted upload of `size` bytes to
    /// `path` go by: `<user>.<32 hex of SHA-256(path, size)>.partial`.
    fn partial_name(&self, path: &VPath, size: u64) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(path.as_str().as_bytes());
        h.update([0]);
        h.update(size.to_le_bytes());
        format!("{}.{}.partial", self.user, hex::encode(&h.finalize()[..16]))
    }

    fn read_only() -> OpenOptions {
        let mut options = OpenOptions::new();
        options.read(true);
        options
    }

    /// An upload writing to `file` (temp `tmp_name`, holding `written` bytes).
    fn upload(
        &self,
        file: std::fs::File,
        tmp_name: String,
        partial_name: String,
        dest: PathBuf,
        written: u64,
    ) -> FsUpload {
        FsUpload::new(Parts {
            file,
            incoming: Arc::clone(&self.incoming),
            home: Arc::clone(&self.home),
            namespace: self.namespace(),
            tmp_name,
            partial_name,
            dest,
            durable: self.durable,
            written,
        })
    }

    /// Creates a fresh temp file `<user>.<16 hex>.part` in the temp area.
    fn create_temp(&self) -> Result<(String, std::fs::File), StorageError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(self.file_mode);
        for _ in 0..8 {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).map_err(|e| {
                tracing::error!(error = %e, "getrandom failed");
                StorageError::Io(io::Error::other("getrandom failed"))
            })?;
            let name = format!("{}.{}.part", self.user, hex::encode(random));
            match self.incoming.open_with(&name, &options) {
                Ok(file) => return Ok((name, file.into_std())),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StorageError::Io(io::Error::other("no free temp name")))
    }
}

impl Home for FsHome {
    type Reader = FsReader;
    type Upload = FsUpload;

    fn mkdir(&self, path: &VPath, parents: bool) -> Result<(), StorageError> {
        self.make_dir(path, parents)
    }

    fn open_read(&self, path: &VPath) -> Result<(FsReader, u64), StorageError> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer. It has no
        // effect on reads from regular files, the only thing served.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
        let file = self.home.open_with(path.as_str(), &options)?.into_std();
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(StorageError::IsADirectory);
        }
        if !meta.is_file() {
            tracing::warn!(user = %self.user, path = %path, "refused to read a special file");
            return Err(StorageError::NotARegularFile);
        }
        // A hard link may share its inode with a file outside the home; our
        // uploads never create one.
        if meta.nlink() > 1 {
            tracing::warn!(user = %self.user, path = %path, "refused to read a hard-linked file");
            return Err(StorageError::NotARegularFile);
        }
        // Read front to back: a larger read-ahead window.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        Ok((file, meta.len()))
    }

    fn recorded_digest(&self, reader: &FsReader) -> Option<ftp_shared::Digest> {
        digest_record::recorded(reader, &reader.metadata().ok()?)
    }

    fn create_upload(&self, path: &VPath, size: u64) -> Result<FsUpload, StorageError> {
        let dest = self.upload_target(path)?;
        let (tmp_name, file) = self.create_temp()?;
        // What an interrupted upload of the same file kept stays until this
        // one is published (or kept in its place): this one may fail too.
        let partial_name = self.partial_name(path, size);
        tracing::debug!(user = %self.user, path = %path, tmp = %tmp_name, "upload started");
        Ok(self.upload(file, tmp_name, partial_name, dest, 0))
    }

    fn partial(&self, path: &VPath, size: u64) -> Result<Option<(FsReader, u64)>, StorageError> {
        match self
            .incoming
            .open_with(self.partial_name(path, size), &Self::read_only())
        {
            Ok(file) => {
                let file = file.into_std();
                let meta = file.metadata()?;
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                if age >= PARTIAL_MAX_AGE {
                    // Too old to be offered; a restart sweeps it, a new
                    // upload of the file replaces it.
                    return Ok(None);
                }
                Ok(Some((file, meta.len())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn resume_upload(
        &self,
        path: &VPath,
        size: u64,
    ) -> Result<(FsUpload, FsReader, u64), StorageError> {
        let dest = self.upload_target(path)?;
        let partial_name = self.partial_name(path, size);
        // Claim the kept bytes by renaming them to a temp name of our own, so
        // that two sessions can never continue the same upload.
        let (tmp_name, placeholder) = self.create_temp()?;
        drop(placeholder);
        let ns = self.namespace();
        let held = ns.hold();
        if let Err(e) = self
            .incoming
            .rename(&partial_name, &self.incoming, &tmp_name)
        {
            let _ = self.incoming.remove_file(&tmp_name);
            return Err(e.into());
        }
        let mut options = OpenOptions::new();
        options.append(true);
        let opened = self
            .incoming
            .open_with(&tmp_name, &options)
            .and_then(|writer| {
                let reader = self.incoming.open_with(&tmp_name, &Self::read_only())?;
                Ok((writer.into_std(), reader.into_std()))
            });
        let (file, reader) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                let _ = self.incoming.remove_file(&tmp_name);
                return Err(e.into());
            }
        };
        drop(held);
        let written = file.metadata()?.len();
        tracing::debug!(user = %self.user, path = %path, bytes = written, "upload resumed");
        let upload = self.upload(file, tmp_name, partial_name, dest, written);
        Ok((upload, reader, written))
    }

    fn list(&self, path: Option<&VPath>) -> Result<Listing, StorageError> {
        self.listing(path)
    }

    fn stat(&self, path: Option<&VPath>) -> Result<Entry, StorageError> {
        match path {
            None => Ok(describe(String::new(), &self.home.dir_metadata()?)),
            // Follows symlinks beneath the home only.
            Some(path) => {
                let meta = self.home.metadata(path.as_str())?;
                Ok(describe(path.file_name().to_owned(), &meta))
            }
        }
    }

    fn remove(&self, path: &VPath) -> Result<u64, StorageError> {
        self.remove_entry(path)
    }

    fn rmdir(&self, path: &VPath) -> Result<(), StorageError> {
        self.remove_dir(path)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> Result<u64, StorageError> {
        self.rename_entry(from, to)
    }

    fn usage(&self) -> Result<u64, StorageError> {
        self.measure()
    }

    fn commit_all(&self, uploads: Vec<FsUpload>) -> Vec<Result<u64, StorageError>> {
        commit::commit_together(uploads, &self.namespace())
    }
}

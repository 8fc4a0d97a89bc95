//! The disk side of an upload: the local file opened, read in chunks and
//! hashed on a blocking thread.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use ftp_shared::Digest;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher};
use tokio::sync::mpsc;

use crate::ClientError;

/// An opened local file and where its upload starts.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) file: File,
    pub(super) size: u64,
    pub(super) offset: u64,
    /// The digest state after the first `offset` bytes.
    pub(super) hasher: Hasher,
}

impl Source {
    pub(super) fn open(path: &Path, algorithm: DigestAlgorithm) -> Result<Source, ClientError> {
        let file = File::open(path).map_err(|e| ClientError::local(path, e))?;
        let meta = file.metadata().map_err(|e| ClientError::local(path, e))?;
        // Read front to back: a larger read-ahead window.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        if !meta.is_file() {
            return Err(ClientError::LocalFile {
                path: path.into(),
                message: "not a regular file".into(),
            });
        }
        Ok(Source {
            file,
            size: meta.len(),
            offset: 0,
            hasher: Hasher::new(algorithm),
        })
    }
}

/// The disk side of an upload: exactly `len` more bytes, hashed, then the
/// digest of the whole file.
pub(super) fn read_chunks(
    mut file: File,
    len: u64,
    mut hasher: Hasher,
    path: &Path,
    tx: mpsc::Sender<Bytes>,
) -> Result<Digest, ClientError> {
    let changed = || ClientError::LocalFile {
        path: path.into(),
        message: "the file changed while it was being sent".into(),
    };
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK_SIZE as u64) as usize;
        let mut chunk = vec![0u8; want];
        file.read_exact(&mut chunk).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => changed(),
            _ => ClientError::local(path, e),
        })?;
        hasher.update(&chunk);
        left -= want as u64;
        if tx.blocking_send(Bytes::from(chunk)).is_err() {
            return Err(changed()); // the upload was refused; its reply says why
        }
    }
    if file
        .read(&mut [0u8; 1])
        .map_err(|e| ClientError::local(path, e))?
        != 0
    {
        return Err(changed());
    }
    Ok(hasher.finish())
}

/// Hashes exactly `len` bytes of `file` from its position.
pub(crate) fn hash_exactly(file: &mut File, len: u64, hasher: &mut Hasher) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(())
}

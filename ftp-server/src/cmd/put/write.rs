//! Where an upload's bytes go: a buffer for small files, a blocking writer
//! thread for the rest; and the opening of the temp file or of the kept
//! bytes of an interrupted upload.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::text::{escape, log_text};
use ftp_shared::{Digest, ErrorCode};
use ftp_storage::{Home, StorageError, Upload, VPath};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::PutRequest;
use crate::cmd::blocking;
use crate::error::CmdError;

/// Chunks in flight between the network and the disk.
const QUEUE: usize = 2;

/// Uploads up to this size are gathered in memory and written in one go:
/// one hop to a blocking thread instead of a writer thread per file.
pub const SMALL_FILE: u64 = 64 * 1024;

/// The upload (when one was opened) and the digest of the bytes it holds,
/// or why writing them failed.
pub type Written<U> = (Option<U>, Result<Digest, CmdError>);

/// Where the bytes of an upload go as they arrive.
pub enum Sink<U> {
    /// A small upload, kept in memory until `PutEnd`.
    Buffer(Vec<u8>),
    /// The writer thread of a larger (or resumed) upload.
    Stream {
        chunks: mpsc::Sender<Bytes>,
        writer: JoinHandle<(U, Result<Digest, StorageError>)>,
    },
}

impl<U: Upload> Sink<U> {
    /// Starts the writer thread of `upload` (after `kept` bytes, hashed first).
    pub fn stream<R: Read + Send + 'static>(
        upload: U,
        kept: Option<R>,
        req: &PutRequest,
    ) -> Sink<U> {
        let (chunks, rx) = mpsc::channel::<Bytes>(QUEUE);
        let (offset, algorithm) = (req.offset, req.algorithm);
        let writer =
            tokio::task::spawn_blocking(move || write_all(upload, kept, offset, algorithm, rx));
        Sink::Stream { chunks, writer }
    }

    /// False when the writer stopped (on an error, reported when it is joined).
    pub async fn push(&mut self, data: Bytes) -> bool {
        match self {
            Sink::Buffer(buf) => {
                buf.extend_from_slice(&data);
                true
            }
            Sink::Stream { chunks, .. } => chunks.send(data).await.is_ok(),
        }
    }

    /// Ends the sink: the writer's upload and result, or (for a small upload
    /// that `complete`d) the upload written now. `None` for a small upload
    /// that did not complete: nothing was written.
    pub async fn finish<H: Home<Upload = U>>(
        self,
        home: &Arc<H>,
        vpath: VPath,
        complete: bool,
        algorithm: DigestAlgorithm,
    ) -> Option<Written<U>> {
        let path = vpath.as_str().to_owned();
        match self {
            Sink::Stream { chunks, writer } => {
                drop(chunks);
                Some(match writer.await {
                    Ok((upload, result)) => (
                        Some(upload),
                        result.map_err(|e| CmdError::storage(e, &path)),
                    ),
                    Err(e) => (None, Err(writer_failed(e))),
                })
            }
            Sink::Buffer(data) if complete => {
                let home = home.clone();
                let write = move || -> Result<(U, Digest), StorageError> {
                    let mut upload = home.create_upload(&vpath, data.len() as u64)?;
                    upload.write_all(&data)?;
                    let mut hasher = Hasher::new(algorithm);
                    hasher.update(&data);
                    Ok((upload, hasher.finish()))
                };
                Some(match tokio::task::spawn_blocking(write).await {
                    Ok(Ok((upload, digest))) => (Some(upload), Ok(digest)),
                    Ok(Err(e)) => (None, Err(CmdError::storage(e, &path))),
                    Err(e) => (None, Err(writer_failed(e))),
                })
            }
            Sink::Buffer(_) => None,
        }
    }
}

fn writer_failed(e: tokio::task::JoinError) -> CmdError {
    tracing::error!("upload writer failed: {e}");
    CmdError::refused(ErrorCode::INTERNAL, "internal server error")
}

/// Opens the temp file, or takes over the kept bytes of an interrupted
/// upload (with a reader of them).
pub async fn open<H: Home>(
    home: &Arc<H>,
    req: &PutRequest,
    vpath: VPath,
) -> Result<(H::Upload, Option<H::Reader>), CmdError> {
    let path = req.path.as_str();
    let home = home.clone();
    let (size, offset) = (req.size, req.offset);
    if offset > 0 {
        tracing::info!(path = %log_text(path), offset, size, "resuming an upload");
    }
    let started = blocking(move || {
        if offset == 0 {
            return home.create_upload(&vpath, size).map(|u| Ok((u, None)));
        }
        match home.resume_upload(&vpath, size) {
            Ok((upload, kept, have)) if have == offset => Ok(Ok((upload, Some(kept)))),
            Ok((upload, _, have)) => {
                // Not what the client expects: kept as it was.
                upload.suspend();
                Ok(Err(format!(
                    "the server holds {have} bytes of this upload, not {offset}"
                )))
            }
            Err(StorageError::NotFound) => Ok(Err("no interrupted upload to resume".to_string())),
            Err(e) => Err(e),
        }
    })
    .await?
    .map_err(|e| CmdError::storage(e, path))?;
    started
        .map_err(|why| CmdError::refused(ErrorCode::BAD_OFFSET, format!("{why}: {}", escape(path))))
}

/// The writer thread: the kept bytes (hashed only), then every chunk to the
/// temp file and the hasher. The upload always comes back, so that what it
/// holds can be kept or removed.
fn write_all<U: Upload, R: Read>(
    mut upload: U,
    kept: Option<R>,
    offset: u64,
    algorithm: DigestAlgorithm,
    mut chunks: mpsc::Receiver<Bytes>,
) -> (U, Result<Digest, StorageError>) {
    let mut hasher = Hasher::new(algorithm);
    let run = || {
        if let Some(mut kept) = kept {
            let hashed = hash_reader(&mut kept, &mut hasher)?;
            if hashed != offset {
                return Err(StorageError::Io(std::io::Error::other(
                    "the kept part of an upload changed",
                )));
            }
        }
        while let Some(chunk) = chunks.blocking_recv() {
            upload.write_all(&chunk)?;
            hasher.update(&chunk);
        }
        Ok(())
    };
    let result = run();
    (upload, result.map(|()| hasher.finish()))
}

/// Feeds everything `reader` holds to `hasher`; returns the byte count.
pub fn hash_reader(reader: &mut impl Read, hasher: &mut Hasher) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

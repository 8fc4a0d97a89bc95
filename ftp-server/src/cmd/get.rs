//! `Get { path, offset, algorithm }`: answered with `FileStart { size }`,
//! `Data` frames carrying bytes `offset..size`, and `FileEnd { digest }` of
//! the whole file; or with an error.
//!
//! A blocking reader thread reads the opened file (a snapshot: uploads
//! replace files by rename, never in place) a few chunks ahead of the
//! network. When the storage recorded the file's digest in the requested
//! algorithm when it was stored, that is the digest sent, and the bytes
//! before `offset` are skipped; otherwise the thread hashes the file as it
//! reads it, the bytes before `offset` too (hashed, not sent). Chunks go to
//! the socket without being copied into a frame. If the file cannot be
//! read to its announced size, an `Error` takes the place of the remaining
//! frames.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher};
use ftp_shared::text::{escape, log_text};
use ftp_shared::{Digest, ErrorCode, Response};
use ftp_storage::{Home, StorageError};
use tokio::sync::mpsc;

use crate::Limits;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::outbox::rate;
use crate::quota::UserQuota;

const QUEUE: usize = 4;

/// What the client asked for.
#[derive(Debug)]
pub struct GetRequest {
    pub path: String,
    pub offset: u64,
    pub algorithm: DigestAlgorithm,
}

enum Piece {
    Chunk(Bytes),
    End(Digest),
    Failed(StorageError),
}

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    limits: &Limits,
    quota: &UserQuota,
    req: GetRequest,
) -> Result<(), CmdError> {
    let started = Instant::now();
    let (path, offset, algorithm) = (req.path.as_str(), req.offset, req.algorithm);
    let vpath = parse_path(path)?;
    // Held while the file is open.
    let _handle = quota.handles().acquire(&quota.user, limits)?;
    let opener = home.clone();
    let (file, size, recorded) = blocking(move || {
        let (file, size) = opener.open_read(&vpath)?;
        let recorded = opener.recorded_digest(&file);
        Ok::<_, StorageError>((file, size, recorded))
    })
    .await?
    .map_err(|e| CmdError::storage(e, path))?;
    if offset > size {
        return Err(CmdError::refused(
            ErrorCode::BAD_OFFSET,
            format!("offset {offset} is past the size {size}: {}", escape(path)),
        ));
    }
    conn.send(Response::FileStart { size }).await?;

    let (tx, mut pieces) = mpsc::channel(QUEUE);
    let digesting = match recorded.filter(|d| d.algorithm() == algorithm) {
        Some(digest) => Digesting::Known(digest),
        None => Digesting::Computed(Hasher::new(algorithm)),
    };
    tokio::task::spawn_blocking(move || read_all(file, size, offset, digesting, tx));
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Chunk(bytes) => conn.send_data(bytes).await?,
            Piece::End(digest) => {
                conn.send(Response::FileEnd { digest }).await?;
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(
                    user = %quota.user,
                    path = %log_text(path),
                    bytes = size - offset,
                    offset,
                    %digest,
                    secs = format_args!("{secs:.3}"),
                    mib_per_sec = format_args!("{:.1}", rate(size - offset, secs)),
                    "sent"
                );
            }
            // The announced size can no longer be kept: the error ends the
            // download and the session goes on.
            Piece::Failed(e) => {
                tracing::info!(user = %quota.user, path = %log_text(path), error = %e, "download failed");
                conn.send(CmdError::storage(e, path).response()).await?;
            }
        }
    }
    Ok(())
}

/// What the reader thread ends with: a digest known from the storage, or
/// one computed from every byte of the file as it is read.
enum Digesting {
    Known(Digest),
    Computed(Hasher),
}

/// The reader thread: bytes `offset..size` in chunks, then the digest. With
/// a known digest it starts at `offset`; otherwise it reads and hashes the
/// bytes before `offset` too (without sending them).
fn read_all<R: Read + Seek>(
    mut file: R,
    size: u64,
    offset: u64,
    mut digesting: Digesting,
    tx: mpsc::Sender<Piece>,
) {
    let mut pos = 0u64;
    if matches!(digesting, Digesting::Known(_)) && offset > 0 {
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            let _ = tx.blocking_send(Piece::Failed(e.into()));
            return;
        }
        pos = offset;
    }
    while pos < size {
        // Stop at `offset` once, so that every chunk sent starts at or after it.
        let boundary = if pos < offset { offset } else { size };
        let want = (boundary - pos).min(CHUNK_SIZE as u64) as usize;
        let chunk = match read_chunk(&mut file, want) {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = tx.blocking_send(Piece::Failed(e.into()));
                return;
            }
        };
        if let Digesting::Computed(hasher) = &mut digesting {
            hasher.update(&chunk);
        }
        let sending = pos >= offset;
        pos += want as u64;
        if sending && tx.blocking_send(Piece::Chunk(Bytes::from(chunk))).is_err() {
            return; // the connection is gone
        }
    }
    let digest = match digesting {
        Digesting::Known(digest) => digest,
        Digesting::Computed(hasher) => hasher.finish(),
    };
    let _ = tx.blocking_send(Piece::End(digest));
}

/// The next `want` bytes, read into memory that is not zeroed first; a
/// file that ends early is an error of its own.
fn read_chunk(file: &mut impl Read, want: usize) -> std::io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(want);
    file.by_ref().take(want as u64).read_to_end(&mut chunk)?;
    if chunk.len() < want {
        return Err(std::io::Error::other(
            "the file became shorter while it was being sent",
        ));
    }
    Ok(chunk)
}

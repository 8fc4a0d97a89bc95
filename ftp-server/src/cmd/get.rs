//! `Get { path, offset, algorithm }`: answered with `FileStart { size }`,
//! `Data` frames carrying bytes `offset..size`, and `FileEnd { digest }` of
//! the whole file; or with an error.
//!
//! A blocking reader thread reads the opened file (a snapshot: uploads
//! replace files by rename, never in place) and hashes it, a few chunks ahead
//! of the network; the bytes before `offset` are hashed but not sent. Chunks
//! go to the socket without being copied into a frame. If the file cannot be
//! read to its announced size, an `Error` takes the place of the remaining
//! frames.

use std::io::Read;
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
    let (file, size) = blocking(move || opener.open_read(&vpath))
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
    tokio::task::spawn_blocking(move || read_all(file, size, offset, algorithm, tx));
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

/// The reader thread: exactly `size` bytes, hashed; those from `offset` on
/// are sent in chunks; then the digest.
fn read_all<R: Read>(
    mut file: R,
    size: u64,
    offset: u64,
    algorithm: DigestAlgorithm,
    tx: mpsc::Sender<Piece>,
) {
    let mut hasher = Hasher::new(algorithm);
    let mut pos = 0u64;
    while pos < size {
        // Stop at `offset` once, so that every chunk sent starts at or after it.
        let boundary = if pos < offset { offset } else { size };
        let want = (boundary - pos).min(CHUNK_SIZE as u64) as usize;
        let mut chunk = vec![0u8; want];
        if let Err(e) = read_exact(&mut file, &mut chunk) {
            let _ = tx.blocking_send(Piece::Failed(e.into()));
            return;
        }
        hasher.update(&chunk);
        let sending = pos >= offset;
        pos += want as u64;
        if sending && tx.blocking_send(Piece::Chunk(Bytes::from(chunk))).is_err() {
            return; // the connection is gone
        }
    }
    let _ = tx.blocking_send(Piece::End(hasher.finish()));
}

/// `read_exact`, but a file that ends early is an error of its own.
fn read_exact(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<()> {
    file.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            std::io::Error::other("the file became shorter while it was being sent")
        }
        _ => e,
    })
}

//! `Put { path, size }`, then `Data` frames, then `PutEnd { digest }`.
//!
//! The bytes go to a hidden temp file through a blocking writer thread fed by
//! a small bounded channel, so disk writes overlap with reading the network
//! and memory stays at a few chunks whatever the file size. The writer hashes
//! as it goes; the upload is published (fsync, rename, fsync of the
//! directory) only when the size and the client's digest match.
//!
//! The single reply may come early: when the path is refused or the disk
//! fails mid-way, the error is sent at once and the rest of the upload's
//! frames are read and discarded up to `PutEnd` or `PutCancel`.

use std::sync::Arc;

use ftp_shared::message::Hasher;
use ftp_shared::text::escape;
use ftp_shared::{Digest, ErrorCode, Request, Response};
use ftp_storage::{Home, StorageError, Upload};
use tokio::sync::mpsc;

use crate::Limits;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;

/// Chunks in flight between the network and the disk.
const QUEUE: usize = 4;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    limits: &Limits,
    path: &str,
    size: u64,
) -> Result<(), CmdError> {
    let upload = match start(home, limits, path, size).await {
        Ok(upload) => upload,
        Err(e) => return refuse_and_drain(conn, limits, e).await,
    };

    let (chunks, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_all(upload, rx));
    let mut received = 0u64;
    let ended = loop {
        let request = tokio::time::timeout(limits.transfer_timeout, conn.read()).await;
        match request {
            Err(_) => break Err(CmdError::Timeout),
            Ok(Err(e)) => break Err(e.into()),
            Ok(Ok(None)) => break Err(CmdError::Protocol("connection closed mid-upload".into())),
            Ok(Ok(Some(Request::Data(data)))) => {
                received += data.len() as u64;
                if received > size {
                    break Err(CmdError::refused(
                        ErrorCode::SIZE_MISMATCH,
                        format!("more than the announced {size} bytes: {}", escape(path)),
                    ));
                }
                if chunks.send(data.into_vec()).await.is_err() {
                    // The writer stopped on an error; it is reported below.
                    break Ok(None);
                }
            }
            Ok(Ok(Some(Request::PutEnd { digest }))) => break Ok(Some(digest)),
            Ok(Ok(Some(Request::PutCancel))) => {
                break Err(CmdError::refused(ErrorCode::CANCELLED, "upload cancelled"));
            }
            Ok(Ok(Some(_))) => {
                break Err(CmdError::Protocol(
                    "unexpected request during an upload".into(),
                ));
            }
        }
    };
    drop(chunks);
    let written = match writer.await {
        Ok(Ok(written)) => Ok(written),
        Ok(Err(e)) => Err(CmdError::storage(e, path)),
        Err(e) => {
            tracing::error!("upload writer failed: {e}");
            Err(CmdError::refused(
                ErrorCode::INTERNAL,
                "internal server error",
            ))
        }
    };

    let (upload, digest) = match (ended, written) {
        // Too much data: the client is still sending the rest.
        (
            Err(
                e @ CmdError::Refused {
                    code: ErrorCode::SIZE_MISMATCH,
                    ..
                },
            ),
            _,
        ) => {
            return refuse_and_drain(conn, limits, e).await;
        }
        (Err(e), _) => return Err(e),
        // The writer failed before `PutEnd` arrived: the rest is still coming.
        (Ok(None), Err(e)) => return refuse_and_drain(conn, limits, e).await,
        // `PutEnd` was read already: the reply ends the upload.
        (Ok(Some(_)), Err(e)) => return Err(e),
        (Ok(None), Ok(_)) => unreachable!("the writer only stops early on an error"),
        (Ok(Some(claimed)), Ok((upload, digest))) => {
            if received != size {
                return Err(CmdError::refused(
                    ErrorCode::SIZE_MISMATCH,
                    format!(
                        "received {received} of the announced {size} bytes: {}",
                        escape(path)
                    ),
                ));
            }
            if claimed != digest {
                tracing::warn!(path = %escape(path), "digest mismatch: upload discarded");
                return Err(CmdError::refused(
                    ErrorCode::DIGEST_MISMATCH,
                    format!("digest mismatch, upload discarded: {}", escape(path)),
                ));
            }
            (upload, digest)
        }
    };

    blocking(move || upload.commit())
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    tracing::info!(path = %escape(path), bytes = size, %digest, "stored");
    conn.send(Response::Ok).await?;
    Ok(())
}

/// Checks the request and opens the temp file.
async fn start<H: Home>(
    home: &Arc<H>,
    limits: &Limits,
    path: &str,
    size: u64,
) -> Result<H::Upload, CmdError> {
    let vpath = parse_path(path)?;
    if size > limits.max_file_size {
        return Err(CmdError::refused(
            ErrorCode::TOO_LARGE,
            format!(
                "file of {size} bytes exceeds the limit of {} bytes: {}",
                limits.max_file_size,
                escape(path)
            ),
        ));
    }
    let home = home.clone();
    blocking(move || home.create_upload(&vpath))
        .await?
        .map_err(|e| CmdError::storage(e, path))
}

/// The writer thread: every chunk to the temp file and the hasher.
fn write_all<U: Upload>(
    mut upload: U,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) -> Result<(U, Digest), StorageError> {
    let mut hasher = Hasher::new();
    while let Some(chunk) = chunks.blocking_recv() {
        upload.write_all(&chunk)?;
        hasher.update(&chunk);
    }
    Ok((upload, hasher.finish()))
}

/// Replies with `error` now, then reads and discards the rest of the upload.
async fn refuse_and_drain(
    conn: &mut Connection,
    limits: &Limits,
    error: CmdError,
) -> Result<(), CmdError> {
    if error.closes() {
        return Err(error);
    }
    if let Some(reply) = error.reply() {
        conn.send(reply).await?;
    }
    loop {
        match tokio::time::timeout(limits.transfer_timeout, conn.read()).await? {
            Ok(Some(Request::Data(_))) => {}
            Ok(Some(Request::PutEnd { .. } | Request::PutCancel)) => return Ok(()),
            Ok(Some(_)) => {
                return Err(CmdError::Protocol(
                    "unexpected request during an upload".into(),
                ));
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

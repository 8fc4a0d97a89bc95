//! `Put { path, size, offset, algorithm }`, then `Data` frames, then
//! `PutEnd { digest }`.
//!
//! The bytes go to a hidden temp file through a blocking writer thread fed by
//! a small bounded channel, so disk writes overlap with reading the network
//! and memory stays at a few chunks whatever the file size. The writer hashes
//! as it goes (a resumed upload first hashes the bytes kept from before, so
//! the digest always covers the whole file). A finished upload whose size and
//! digest match goes to the [`Outbox`], which publishes it (fsync, rename,
//! fsync of the directory) and replies `Ok`.
//!
//! The single reply may come early: when the path is refused or the disk
//! fails mid-way, the error is sent at once (or queued behind replies still
//! waiting) and the rest of the upload's frames are read and discarded up to
//! `PutEnd` or `PutCancel`. An upload of more than 64 KiB cut off by a lost
//! connection or a timeout is kept for a resume; one refused or cancelled is
//! deleted. Uploads of up to 64 KiB are gathered in memory and written in one
//! step after `PutEnd`, so their refusals by the filesystem come then.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::text::{escape, log_text};
use ftp_shared::{Digest, ErrorCode, Request};
use ftp_storage::{Home, StorageError, Upload, VPath};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Limits;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::outbox::{Finished, Outbox};
use crate::quota::UserQuota;

/// Chunks in flight between the network and the disk.
const QUEUE: usize = 2;

/// What the client asked for.
#[derive(Debug)]
pub struct PutRequest {
    pub path: String,
    pub size: u64,
    pub offset: u64,
    pub algorithm: DigestAlgorithm,
}

/// Uploads up to this size are gathered in memory and written in one go:
/// one hop to a blocking thread instead of a writer thread per file.
const SMALL_FILE: u64 = 64 * 1024;

/// Where the bytes of an upload go as they arrive.
enum Sink<U> {
    /// A small upload, kept in memory until `PutEnd`.
    Buffer(Vec<u8>),
    /// The writer thread of a larger (or resumed) upload.
    Stream {
        chunks: mpsc::Sender<Bytes>,
        writer: JoinHandle<Result<(U, Digest), StorageError>>,
    },
}

impl<U> Sink<U> {
    /// False when the writer stopped (on an error, reported when it is joined).
    async fn push(&mut self, data: Bytes) -> bool {
        match self {
            Sink::Buffer(buf) => {
                buf.extend_from_slice(&data);
                true
            }
            Sink::Stream { chunks, .. } => chunks.send(data).await.is_ok(),
        }
    }
}

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    limits: &Limits,
    outbox: &mut Outbox<H::Upload>,
    quota: &UserQuota,
    req: PutRequest,
) -> Result<(), CmdError> {
    let path = req.path.as_str();
    let vpath = match check(limits, &req) {
        Ok(vpath) => vpath,
        Err(e) => return refuse_and_drain(conn, home, limits, outbox, e).await,
    };
    // Checked before a byte is written; the upload cannot grow past its size.
    let reservation = match quota.reserve(home, req.size, path).await {
        Ok(reservation) => reservation,
        Err(e) => return refuse_and_drain(conn, home, limits, outbox, e).await,
    };
    let small = req.offset == 0 && req.size <= SMALL_FILE;
    let mut sink = if small {
        Sink::Buffer(Vec::with_capacity(req.size as usize))
    } else {
        let (upload, kept) = match open(home, &req, vpath.clone()).await {
            Ok(started) => started,
            Err(e) => return refuse_and_drain(conn, home, limits, outbox, e).await,
        };
        let (chunks, rx) = mpsc::channel::<Bytes>(QUEUE);
        let (offset, algorithm) = (req.offset, req.algorithm);
        let writer =
            tokio::task::spawn_blocking(move || write_all(upload, kept, offset, algorithm, rx));
        Sink::Stream { chunks, writer }
    };

    let mut received = req.offset;
    let ended = loop {
        let request = outbox.read(conn, home, limits.transfer_timeout).await;
        match request {
            Err(e) => break Err(e),
            Ok(None) => break Err(CmdError::Protocol("connection closed mid-upload".into())),
            Ok(Some(Request::Data(data))) => {
                received += data.len() as u64;
                if received > req.size {
                    break Err(CmdError::refused(
                        ErrorCode::SIZE_MISMATCH,
                        format!(
                            "more than the announced {} bytes: {}",
                            req.size,
                            escape(path)
                        ),
                    ));
                }
                if !sink.push(data).await {
                    // The writer stopped on an error; it is reported below.
                    break Ok(None);
                }
            }
            Ok(Some(Request::PutEnd { digest })) => break Ok(Some(digest)),
            Ok(Some(Request::PutCancel)) => {
                break Err(CmdError::refused(ErrorCode::CANCELLED, "upload cancelled"));
            }
            Ok(Some(_)) => {
                break Err(CmdError::Protocol(
                    "unexpected request during an upload".into(),
                ));
            }
        }
    };
    let written = match sink {
        Sink::Stream { chunks, writer } => {
            drop(chunks);
            Some(joined(writer.await, path))
        }
        // A small upload is written only once it is complete.
        Sink::Buffer(data) if matches!(ended, Ok(Some(_))) && received == req.size => {
            let home = home.clone();
            let algorithm = req.algorithm;
            let write = move || {
                let mut upload = home.create_upload(&vpath, data.len() as u64)?;
                upload.write_all(&data)?;
                let mut hasher = Hasher::new(algorithm);
                hasher.update(&data);
                Ok((upload, hasher.finish()))
            };
            Some(joined(tokio::task::spawn_blocking(write).await, path))
        }
        Sink::Buffer(_) => None,
    };

    match (ended, written) {
        // Cut off: keep what arrived, for a resume.
        (Err(e), Some(Ok((upload, _)))) if e.closes() => {
            blocking(move || upload.suspend()).await?;
            Err(e)
        }
        // Too much data: the client is still sending the rest.
        (
            Err(
                e @ CmdError::Refused {
                    code: ErrorCode::SIZE_MISMATCH,
                    ..
                },
            ),
            written,
        ) => {
            drop(written); // the temp file goes before the reply says so
            refuse_and_drain(conn, home, limits, outbox, e).await
        }
        (Err(e), written) => {
            drop(written);
            finish_refused(conn, outbox, e).await
        }
        // The writer failed before `PutEnd` arrived: the rest is still coming.
        (Ok(None), Some(Err(e))) => refuse_and_drain(conn, home, limits, outbox, e).await,
        // `PutEnd` was read already: the reply ends the upload.
        (Ok(Some(_)), Some(Err(e))) => finish_refused(conn, outbox, e).await,
        (Ok(None), _) => unreachable!("only a writer thread stops early, on an error"),
        (Ok(Some(_)), None) => {
            // A small upload that ended short.
            let e = size_mismatch(received, &req);
            finish_refused(conn, outbox, e).await
        }
        (Ok(Some(claimed)), Some(Ok((upload, digest)))) => {
            let refusal = if received != req.size {
                Some(size_mismatch(received, &req))
            } else if claimed != digest {
                tracing::warn!(path = %log_text(path), "digest mismatch: upload discarded");
                Some(CmdError::refused(
                    ErrorCode::DIGEST_MISMATCH,
                    format!("digest mismatch, upload discarded: {}", escape(path)),
                ))
            } else {
                None
            };
            if let Some(e) = refusal {
                // Gone before the reply says so.
                blocking(move || upload.abort()).await?;
                return finish_refused(conn, outbox, e).await;
            }
            outbox.commit(Finished {
                upload,
                path: req.path,
                size: req.size,
                digest,
                reservation,
            });
            Ok(())
        }
    }
}

fn size_mismatch(received: u64, req: &PutRequest) -> CmdError {
    CmdError::refused(
        ErrorCode::SIZE_MISMATCH,
        format!(
            "received {received} of the announced {} bytes: {}",
            req.size,
            escape(&req.path)
        ),
    )
}

/// The outcome of a blocking writer.
fn joined<U>(
    outcome: Result<Result<(U, Digest), StorageError>, tokio::task::JoinError>,
    path: &str,
) -> Result<(U, Digest), CmdError> {
    match outcome {
        Ok(Ok(written)) => Ok(written),
        Ok(Err(e)) => Err(CmdError::storage(e, path)),
        Err(e) => {
            tracing::error!("upload writer failed: {e}");
            Err(CmdError::refused(
                ErrorCode::INTERNAL,
                "internal server error",
            ))
        }
    }
}

/// Checks the request before anything is opened.
fn check(limits: &Limits, req: &PutRequest) -> Result<VPath, CmdError> {
    let path = req.path.as_str();
    let vpath = parse_path(path)?;
    if req.size > limits.max_file_size {
        return Err(CmdError::refused(
            ErrorCode::TOO_LARGE,
            format!(
                "file of {} bytes exceeds the limit of {} bytes: {}",
                req.size,
                limits.max_file_size,
                escape(path)
            ),
        ));
    }
    if req.offset > req.size {
        return Err(CmdError::refused(
            ErrorCode::BAD_OFFSET,
            format!(
                "offset {} is past the size {}: {}",
                req.offset,
                req.size,
                escape(path)
            ),
        ));
    }
    Ok(vpath)
}

/// Opens the temp file, or takes over the kept bytes of an interrupted
/// upload (with a reader of them).
async fn open<H: Home>(
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
/// temp file and the hasher.
fn write_all<U: Upload, R: Read>(
    mut upload: U,
    kept: Option<R>,
    offset: u64,
    algorithm: DigestAlgorithm,
    mut chunks: mpsc::Receiver<Bytes>,
) -> Result<(U, Digest), StorageError> {
    let mut hasher = Hasher::new(algorithm);
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
    Ok((upload, hasher.finish()))
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

/// The reply of an upload whose frames have all been read.
async fn finish_refused<U: Upload>(
    conn: &mut Connection,
    outbox: &mut Outbox<U>,
    error: CmdError,
) -> Result<(), CmdError> {
    if error.closes() {
        return Err(error);
    }
    let reply = error.reply().expect("a refusal has a reply");
    outbox.reply(conn, reply).await
}

/// Replies with `error` now (or behind waiting replies), then reads and
/// discards the rest of the upload.
async fn refuse_and_drain<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    limits: &Limits,
    outbox: &mut Outbox<H::Upload>,
    error: CmdError,
) -> Result<(), CmdError> {
    finish_refused(conn, outbox, error).await?;
    loop {
        match outbox.read(conn, home, limits.transfer_timeout).await? {
            Some(Request::Data(_)) => {}
            Some(Request::PutEnd { .. } | Request::PutCancel) => return Ok(()),
            Some(_) => {
                return Err(CmdError::Protocol(
                    "unexpected request during an upload".into(),
                ));
            }
            None => return Ok(()),
        }
    }
}

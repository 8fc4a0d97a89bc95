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
//! `PutEnd` or `PutCancel`. What becomes of the bytes of an upload that did
//! not complete is decided by [`keeps`]. Uploads of up to 64 KiB are gathered
//! in memory and written in one step after `PutEnd`, so their refusals by the
//! filesystem come then.
//!
//! The early checks come in this order: the path (`INVALID_PATH`), the size
//! (`TOO_LARGE`), the offset (`BAD_OFFSET`), the quota (`QUOTA_EXCEEDED`),
//! the file handles (`BUSY`), then the destination (`NOT_FOUND`,
//! `IS_A_DIRECTORY`, `NOT_A_FILE`, ...) and, for a resume, the kept bytes
//! (`BAD_OFFSET`).

mod unsettled;
mod write;

pub use write::hash_reader;

use std::sync::Arc;
use std::time::Instant;

use ftp_shared::message::DigestAlgorithm;
use ftp_shared::text::{escape, log_text};
use ftp_shared::{Digest, ErrorCode, Request};
use ftp_storage::{Home, Upload, VPath};

use crate::Limits;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::handles::Handle;
use crate::outbox::{Finished, Outbox};
use crate::quota::UserQuota;
use unsettled::Unsettled;
use write::{SMALL_FILE, Sink};

/// What the client asked for.
#[derive(Debug)]
pub struct PutRequest {
    pub path: String,
    pub size: u64,
    pub offset: u64,
    pub algorithm: DigestAlgorithm,
}

/// How the upload's frames ended.
enum End {
    /// `PutEnd` with the client's digest.
    Complete(Digest),
    /// The writer stopped on an error before `PutEnd`: the rest is coming.
    WriterStopped,
    /// It failed; `drained`: no more of its frames are coming.
    Failed { error: CmdError, drained: bool },
}

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    limits: &Limits,
    outbox: &mut Outbox<H::Upload>,
    quota: &UserQuota,
    req: PutRequest,
) -> Result<(), CmdError> {
    let started = Instant::now();
    let mut log = Unsettled::new(&quota.user, &req.path);
    let vpath = match check(limits, &req) {
        Ok(vpath) => vpath,
        Err(e) => {
            log.failed(req.offset, 0, &e);
            return refuse_and_drain(conn, home, limits, outbox, e).await;
        }
    };
    let resumed = req.offset > 0;
    if resumed {
        // A cut upload of this file may still be being kept.
        (quota.in_flight())
            .settled(&quota.user, vpath.as_str(), req.size)
            .await;
    }
    let _flight = quota
        .in_flight()
        .start(&quota.user, vpath.as_str(), req.size);
    // Checked before a byte is written; the upload cannot grow past its size.
    let mut reservation = match quota.reserve(req.size - req.offset, &req.path) {
        Ok(reservation) => reservation,
        Err(e) => {
            log.failed(req.offset, 0, &e);
            return refuse_and_drain(conn, home, limits, outbox, e).await;
        }
    };
    let handle = match handle(conn, home, outbox, quota, limits).await {
        Ok(handle) => handle,
        Err(e) => {
            log.failed(req.offset, 0, &e);
            return refuse_and_drain(conn, home, limits, outbox, e).await;
        }
    };
    let small = !resumed && req.size <= SMALL_FILE;
    let mut sink = if small {
        Sink::Buffer(Vec::with_capacity(req.size as usize))
    } else {
        let (upload, kept) = match write::open(home, &req, vpath.clone()).await {
            Ok(started) => started,
            Err(e) => {
                log.failed(req.offset, 0, &e);
                return refuse_and_drain(conn, home, limits, outbox, e).await;
            }
        };
        if let Some(r) = reservation.as_mut() {
            r.absorb(req.offset);
        }
        Sink::stream(upload, kept, &req)
    };

    let mut received = req.offset;
    let end = loop {
        let request = match outbox.read(conn, home, limits.transfer_timeout).await {
            Ok(request) => request,
            Err(error) => {
                break End::Failed {
                    error,
                    drained: true,
                };
            }
        };
        let error = match request {
            None => CmdError::Protocol("connection closed mid-upload".into()),
            Some(Request::Data(data)) => {
                received += data.len() as u64;
                if received > req.size {
                    // The client is still sending the rest.
                    let e = CmdError::refused(
                        ErrorCode::SIZE_MISMATCH,
                        format!(
                            "more than the announced {} bytes: {}",
                            req.size,
                            escape(&req.path)
                        ),
                    );
                    break End::Failed {
                        error: e,
                        drained: false,
                    };
                }
                if !sink.push(data).await {
                    break End::WriterStopped;
                }
                continue;
            }
            Some(Request::PutEnd { digest }) => break End::Complete(digest),
            Some(Request::PutCancel) => CmdError::refused(ErrorCode::CANCELLED, "upload cancelled"),
            Some(_) => CmdError::Protocol("unexpected request during an upload".into()),
        };
        break End::Failed {
            error,
            drained: true,
        };
    };
    let complete = matches!(end, End::Complete(_)) && received == req.size;
    let written = sink.finish(home, vpath, complete, req.algorithm).await;
    let (upload, wrote) = match written {
        Some((upload, wrote)) => (upload, Some(wrote)),
        None => (None, None),
    };
    let (error, drained) = match judge(end, wrote, received, &req) {
        Ok(digest) => {
            let Some(mut upload) = upload else {
                let e = CmdError::refused(ErrorCode::INTERNAL, "internal server error");
                return finish_refused(conn, outbox, e).await;
            };
            upload.record_digest(digest);
            log.settled();
            outbox.commit(Finished {
                upload,
                path: req.path,
                size: req.size,
                digest,
                reservation,
                handle,
                started,
            });
            return Ok(());
        }
        Err(failed) => failed,
    };
    let mut kept = 0;
    if let Some(upload) = upload {
        if keeps(&error, resumed) {
            let suspended = blocking(move || upload.suspend()).await?;
            quota.kept(suspended);
            kept = suspended.kept;
        } else {
            // Gone before the reply says so.
            blocking(move || upload.abort()).await?;
        }
    }
    drop((reservation, handle));
    log.failed(received, kept, &error);
    if drained {
        finish_refused(conn, outbox, error).await
    } else {
        refuse_and_drain(conn, home, limits, outbox, error).await
    }
}

/// Whether the bytes of an upload that did not complete are kept for a
/// resume: the one place that decides it. A cut upload's always (the
/// connection was lost, timed out, broke the protocol, or the server shut
/// down); a resumed upload's whenever it failed for another reason than its
/// bytes (they were not cancelled, too many or wrong), since the bytes kept
/// before it are still good. Otherwise they are removed (what an earlier
/// attempt kept stays: [`Home::create_upload`]).
fn keeps(error: &CmdError, resumed: bool) -> bool {
    if error.closes() {
        return true;
    }
    resumed
        && !matches!(
            error.code(),
            Some(ErrorCode::CANCELLED | ErrorCode::SIZE_MISMATCH | ErrorCode::DIGEST_MISMATCH)
        )
}

/// The digest of a complete, correct upload; or why it failed, and whether
/// its frames were all read.
fn judge(
    end: End,
    wrote: Option<Result<Digest, CmdError>>,
    received: u64,
    req: &PutRequest,
) -> Result<Digest, (CmdError, bool)> {
    let claimed = match end {
        End::Failed { error, drained } => return Err((error, drained)),
        End::WriterStopped => {
            let e = match wrote {
                Some(Err(e)) => e,
                _ => CmdError::refused(ErrorCode::INTERNAL, "internal server error"),
            };
            return Err((e, false));
        }
        End::Complete(claimed) => claimed,
    };
    if received != req.size {
        return Err((size_mismatch(received, req), true));
    }
    let digest = match wrote {
        Some(Ok(digest)) => digest,
        Some(Err(e)) => return Err((e, true)),
        None => return Err((size_mismatch(received, req), true)),
    };
    if claimed != digest {
        tracing::warn!(path = %log_text(&req.path), "digest mismatch: upload discarded");
        let e = CmdError::refused(
            ErrorCode::DIGEST_MISMATCH,
            format!("digest mismatch, upload discarded: {}", escape(&req.path)),
        );
        return Err((e, true));
    }
    Ok(digest)
}

/// A file handle for the upload: when the user has none left, the
/// session's own waiting uploads are published first, which frees theirs.
async fn handle<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    outbox: &mut Outbox<H::Upload>,
    quota: &UserQuota,
    limits: &Limits,
) -> Result<Handle, CmdError> {
    match quota.handles().acquire(&quota.user, limits) {
        Ok(handle) => Ok(handle),
        Err(_) if !outbox.is_empty() => {
            outbox.flush(conn, home).await?;
            quota.handles().acquire(&quota.user, limits)
        }
        Err(e) => Err(e),
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

/// The reply of an upload whose frames have all been read.
async fn finish_refused<U: Upload>(
    conn: &mut Connection,
    outbox: &mut Outbox<U>,
    error: CmdError,
) -> Result<(), CmdError> {
    if error.closes() {
        return Err(error);
    }
    outbox.reply(conn, error.response()).await
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

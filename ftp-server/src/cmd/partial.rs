//! `Partial { path, size, algorithm }`: how much of an interrupted upload of
//! `size` bytes to `path` the server kept, with the digest of those bytes, so
//! the client can check they match its file before it continues from there.
//! An upload of the same path and size still in progress on another
//! connection of the user (one cut a moment ago, not yet kept) is waited
//! for, at most [`crate::inflight::SETTLE_WAIT`].

use std::sync::Arc;

use ftp_shared::Response;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_storage::Home;

use crate::cmd::put::hash_reader;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::quota::UserQuota;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    quota: &UserQuota,
    path: &str,
    size: u64,
    algorithm: DigestAlgorithm,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
    // An upload of this file cut a moment ago may still be being kept.
    (quota.in_flight())
        .settled(&quota.user, vpath.as_str(), size)
        .await;
    let home = home.clone();
    let kept = blocking(move || -> Result<_, ftp_storage::StorageError> {
        let mut hasher = Hasher::new(algorithm);
        let offset = match home.partial(&vpath, size)? {
            Some((mut reader, len)) if len <= size => hash_reader(&mut reader, &mut hasher)?,
            _ => 0,
        };
        if offset == 0 {
            hasher = Hasher::new(algorithm);
        }
        Ok((offset, hasher.finish()))
    })
    .await?
    .map_err(|e| CmdError::storage(e, path))?;
    conn.send(Response::Partial {
        offset: kept.0,
        digest: kept.1,
    })
    .await?;
    Ok(())
}

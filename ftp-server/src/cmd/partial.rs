//! `Partial { path, size, algorithm }`: how much of an interrupted upload of
//! `size` bytes to `path` the server kept, with the digest of those bytes, so
//! the client can check they match its file before it continues from there.

use std::sync::Arc;

use ftp_shared::Response;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_storage::Home;

use crate::cmd::put::hash_reader;
use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    path: &str,
    size: u64,
    algorithm: DigestAlgorithm,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
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

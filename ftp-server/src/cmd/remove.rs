//! `Remove { path }`: delete a file, or a symlink (never what it points to).
//! A directory is refused with `IS_A_DIRECTORY` (see `Rmdir`).

use std::sync::Arc;

use ftp_shared::Response;
use ftp_shared::text::log_text;
use ftp_storage::Home;

use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::quota::UserQuota;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    quota: &UserQuota,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
    let home = home.clone();
    let target = vpath.clone();
    blocking(move || home.remove(&target))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    // The home holds fewer bytes: measured again at the next upload.
    quota.forget_used();
    tracing::info!(path = %log_text(vpath.as_str()), "removed");
    conn.send(Response::Ok).await?;
    Ok(())
}

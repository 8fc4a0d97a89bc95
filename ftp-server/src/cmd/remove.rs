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
    let freed = blocking(move || home.remove(&target))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    quota.freed(freed);
    tracing::info!(user = %quota.user, path = %log_text(vpath.as_str()), freed, "removed");
    conn.send(Response::Ok).await?;
    Ok(())
}

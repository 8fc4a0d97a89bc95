//! `Rmdir { path }`: delete an empty directory (`DIRECTORY_NOT_EMPTY`
//! otherwise; a symlink to a directory is not one).

use std::sync::Arc;

use ftp_shared::Response;
use ftp_shared::text::log_text;
use ftp_storage::Home;

use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
    let home = home.clone();
    let target = vpath.clone();
    blocking(move || home.rmdir(&target))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    tracing::info!(path = %log_text(vpath.as_str()), "rmdir");
    conn.send(Response::Ok).await?;
    Ok(())
}

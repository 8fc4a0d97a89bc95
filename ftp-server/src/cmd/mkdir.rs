//! `Mkdir { path, parents }`: create a directory in the home.

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
    parents: bool,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
    let home = home.clone();
    let target = vpath.clone();
    blocking(move || home.mkdir(&target, parents))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    tracing::info!(path = %log_text(vpath.as_str()), "mkdir");
    conn.send(Response::Ok).await?;
    Ok(())
}

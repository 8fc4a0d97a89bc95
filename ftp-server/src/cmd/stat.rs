//! `Stat { path }`: one entry describing what `path` designates (the home
//! for the empty path), following symlinks that stay inside the home.

use std::sync::Arc;

use ftp_shared::Response;
use ftp_storage::Home;

use crate::cmd::{blocking, parse_path_or_home};
use crate::connection::Connection;
use crate::error::CmdError;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path_or_home(path)?;
    let home = home.clone();
    let entry = blocking(move || home.stat(vpath.as_ref()))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    conn.send(Response::Stat { entry }).await?;
    Ok(())
}

//! `Rename { from, to }`: one atomic rename inside the home. An existing
//! file at `to` is replaced; an existing directory only by a directory, and
//! only when it is empty. Neither the home nor anything outside it can be
//! named.

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
    from: &str,
    to: &str,
) -> Result<(), CmdError> {
    let source = parse_path(from)?;
    let dest = parse_path(to)?;
    let home = home.clone();
    let (s, d) = (source.clone(), dest.clone());
    let freed = blocking(move || home.rename(&s, &d))
        .await?
        .map_err(|e| CmdError::storage(e, &format!("{from} -> {to}")))?;
    // A replaced file no longer counts.
    quota.freed(freed);
    tracing::info!(
        user = %quota.user,
        from = %log_text(source.as_str()),
        to = %log_text(dest.as_str()),
        "renamed"
    );
    conn.send(Response::Ok).await?;
    Ok(())
}

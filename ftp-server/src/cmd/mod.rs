//! One module per request. Each handler sends its own success reply (a
//! download streams many frames) and returns a [`CmdError`] on failure, which
//! the session turns into a reply.

pub mod auth;
pub mod get;
pub mod list;
pub mod mkdir;
pub mod partial;
pub mod put;
pub mod remove;
pub mod rename;
pub mod rmdir;
pub mod stat;

use ftp_shared::ErrorCode;
use ftp_storage::VPath;

use crate::error::CmdError;

/// Runs blocking filesystem work off the async workers. A panic in it fails
/// the request, not the server.
pub async fn blocking<T, F>(work: F) -> Result<T, CmdError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!("storage task failed: {e}");
        CmdError::refused(ErrorCode::INTERNAL, "internal server error")
    })
}

/// Validates a client path.
pub fn parse_path(path: &str) -> Result<VPath, CmdError> {
    VPath::parse(path).map_err(|e| CmdError::path(e, path))
}

/// Validates a client path that may also be empty, for the home itself
/// (`None`); only requests that describe may name the home.
pub fn parse_path_or_home(path: &str) -> Result<Option<VPath>, CmdError> {
    if path.is_empty() {
        Ok(None)
    } else {
        parse_path(path).map(Some)
    }
}

//! Failures of a session and how each one reaches the wire.
//!
//! A command returns [`CmdError`]. [`CmdError::reply`] is the one mapping
//! from a failure to an error code and a message, and [`CmdError::closes`]
//! the one decision between "reply and continue" and "reply and close".
//! Messages name the client's own virtual path at most: never a host path, an
//! OS error string or a backtrace (those go to the log).

use ftp_shared::{
    CodecError, ErrorCode, Response,
    text::{escape, log_text},
};
use ftp_storage::{PathError, StorageError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The request was refused; the session goes on.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// The request was refused and the connection closes (a wrong version,
    /// a command before login, too many failed logins).
    #[error("{message}")]
    Fatal { code: ErrorCode, message: String },
    /// The peer broke the protocol; it is told why and the connection closes.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Reading or writing the connection failed, or a frame was malformed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The peer stopped sending or reading in the middle of something.
    #[error("timed out")]
    Timeout,
}

impl CmdError {
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> CmdError {
        CmdError::Refused {
            code,
            message: message.into(),
        }
    }

    pub fn fatal(code: ErrorCode, message: impl Into<String>) -> CmdError {
        CmdError::Fatal {
            code,
            message: message.into(),
        }
    }

    /// A storage failure on `path` (the client's virtual path).
    pub fn storage(err: StorageError, path: &str) -> CmdError {
        let code = match &err {
            StorageError::InvalidPath(_) => ErrorCode::INVALID_PATH,
            StorageError::NotFound => ErrorCode::NOT_FOUND,
            StorageError::AlreadyExists => ErrorCode::ALREADY_EXISTS,
            StorageError::NotADirectory => ErrorCode::NOT_A_DIRECTORY,
            StorageError::IsADirectory => ErrorCode::IS_A_DIRECTORY,
            StorageError::NotARegularFile => ErrorCode::NOT_A_FILE,
            StorageError::PermissionDenied => ErrorCode::PERMISSION_DENIED,
            StorageError::StorageFull => ErrorCode::NO_SPACE,
            StorageError::DirectoryNotEmpty => ErrorCode::DIRECTORY_NOT_EMPTY,
            // The paths are fine as text, but the move they ask for is not.
            StorageError::InvalidMove | StorageError::MoveBeyondLimits(_) => {
                ErrorCode::INVALID_PATH
            }
            // Out of descriptors: the request may work later, and says so.
            StorageError::Busy => {
                tracing::warn!(path = %escape(path), "out of file descriptors");
                ErrorCode::BUSY
            }
            StorageError::Io(source) => {
                tracing::error!(path = %log_text(path), error = %source, "storage I/O error");
                ErrorCode::INTERNAL
            }
        };
        let message = match &err {
            StorageError::InvalidPath(why) => format!("invalid path ({why}): {}", escape(path)),
            _ => format!("{err}: {}", escape(path)),
        };
        CmdError::refused(code, message)
    }

    /// A path the client sent that is not acceptable.
    pub fn path(err: PathError, path: &str) -> CmdError {
        CmdError::storage(StorageError::InvalidPath(err), path)
    }

    /// The reply the peer gets, if any (none when the connection itself failed).
    pub fn reply(&self) -> Option<Response> {
        match self {
            CmdError::Refused { code, message } | CmdError::Fatal { code, message } => {
                Some(Response::error(*code, message.clone()))
            }
            CmdError::Protocol(why) => Some(Response::error(ErrorCode::BAD_REQUEST, why.clone())),
            CmdError::Codec(e) if e.is_protocol_violation() => {
                Some(Response::error(ErrorCode::BAD_REQUEST, e.to_string()))
            }
            CmdError::Codec(_) => None,
            CmdError::Timeout => Some(Response::error(ErrorCode::TIMEOUT, "timed out")),
        }
    }

    /// The error code the peer is told, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            CmdError::Refused { code, .. } | CmdError::Fatal { code, .. } => Some(*code),
            CmdError::Protocol(_) => Some(ErrorCode::BAD_REQUEST),
            CmdError::Codec(e) if e.is_protocol_violation() => Some(ErrorCode::BAD_REQUEST),
            CmdError::Codec(_) => None,
            CmdError::Timeout => Some(ErrorCode::TIMEOUT),
        }
    }

    /// The reply to a refusal (every error that does not close has one).
    pub fn response(&self) -> Response {
        self.reply()
            .unwrap_or_else(|| Response::error(ErrorCode::INTERNAL, "internal server error"))
    }

    /// Whether the connection closes after this failure.
    pub fn closes(&self) -> bool {
        !matches!(self, CmdError::Refused { .. })
    }
}

impl From<tokio::time::error::Elapsed> for CmdError {
    fn from(_: tokio::time::error::Elapsed) -> CmdError {
        CmdError::Timeout
    }
}

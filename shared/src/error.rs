//! Error codes carried by `Response::Error`.
//!
//! A code is a `u16` on the wire, so a client meets codes newer than itself as
//! a number instead of a decoding failure.

use serde::{Deserialize, Serialize};

/// A typed error code. The human message beside it is for people; programs branch on this.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

macro_rules! codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        impl ErrorCode {
            $(#[doc = $text] pub const $name: ErrorCode = ErrorCode($value);)*

            /// Every code this crate knows, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// A short English name of the code.
            pub fn describe(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown error",
                }
            }

            fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    BAD_REQUEST = 1, "bad request";
    UNSUPPORTED_VERSION = 2, "unsupported protocol version";
    AUTH_FAILED = 3, "authentication failed";
    NOT_LOGGED_IN = 4, "not logged in";
    INVALID_PATH = 5, "invalid path";
    NOT_FOUND = 6, "not found";
    ALREADY_EXISTS = 7, "already exists";
    NOT_A_DIRECTORY = 8, "not a directory";
    IS_A_DIRECTORY = 9, "is a directory";
    NOT_A_FILE = 10, "not a regular file";
    PERMISSION_DENIED = 11, "permission denied";
    NO_SPACE = 12, "no space left on the server";
    TOO_LARGE = 13, "too large";
    DIGEST_MISMATCH = 14, "digest mismatch";
    SIZE_MISMATCH = 15, "size mismatch";
    BUSY = 16, "server busy";
    TIMEOUT = 17, "timed out";
    CANCELLED = 18, "cancelled";
    SHUTTING_DOWN = 19, "server shutting down";
    INTERNAL = 20, "internal server error";
    BAD_OFFSET = 21, "offset out of range";
    QUOTA_EXCEEDED = 22, "quota exceeded";
    DIRECTORY_NOT_EMPTY = 23, "directory not empty";
    TLS_REQUIRED = 24, "this server accepts TLS connections only";
    CHANNEL_BINDING = 25, "channel binding failed";
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

//! Errors of the client, each worded so that a person knows what failed and where.

use std::path::PathBuf;

use ftp_shared::scram::ScramError;
use ftp_shared::text::escape;
use ftp_shared::tls::Fingerprint;
use ftp_shared::{CodecError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {}", io_message(source))]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to the server lost: {}", connection_message(.0))]
    Connection(#[source] std::io::Error),
    /// The server refused the request; `message` is the server's (shown escaped).
    #[error("remote: {}", shown(message))]
    Remote { code: ErrorCode, message: String },
    /// The server did not answer in time (`--timeout`).
    #[error("timed out after {limit} waiting for {waiting}")]
    TimedOut { limit: String, waiting: String },
    /// The server sent more than the client takes (a listing too long, a
    /// tree too deep or too large); nothing more was asked.
    #[error("refused: {0}")]
    TooMuch(String),
    /// The server refused the session at its start (too busy, another
    /// protocol version); `message` is the server's (shown escaped).
    #[error("{addr} refused the session: {}", shown(message))]
    Refused {
        addr: String,
        code: ErrorCode,
        message: String,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("authentication failed")]
    AuthFailed,
    #[error("login: {0}")]
    Scram(#[from] ftp_shared::scram::ScramError),
    #[error(
        "the saved login keys no longer match the server (was the password changed?): run `ftp-client login` again"
    )]
    StaleKeys,
    #[error("{}: {}", escape(&path.to_string_lossy()), io_message(source))]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", escape(&path.to_string_lossy()))]
    LocalFile { path: PathBuf, message: String },
    #[error(
        "download of {} failed verification ({reason}); nothing was saved",
        escape(remote)
    )]
    Verification { remote: String, reason: String },
    /// A wildcard pattern that matched no name.
    #[error("no match: {}", escape(pattern))]
    NoMatch { pattern: String },
    /// A second transfer to a target of the same command; it was not started.
    #[error(
        "{}: is already the target of another transfer in this command",
        escape(target)
    )]
    TargetTwice { target: String },
    /// The TLS handshake failed (nothing was sent).
    #[error("TLS with {addr} failed: {message}")]
    Tls { addr: String, message: String },
    /// The server closed or reset the connection during the TLS handshake
    /// (nothing was sent): a busy server does so to a connection it
    /// replaces before its handshake is done.
    #[error("TLS with {addr} failed: {message}")]
    TlsClosed { addr: String, message: String },
    /// The server answered in something else than TLS.
    #[error(
        "{addr} did not answer with TLS: the server may run with --insecure-plaintext (connect with --insecure-plaintext only on a network you trust); nothing was sent"
    )]
    NotTls { addr: String },
    /// A host seen for the first time, neither pinned nor vouched for by a CA.
    #[error(
        "the certificate of {host} is not signed by a trusted CA and this host is not pinned yet.\n  Its fingerprint is {fingerprint}\n  Compare it with the one the server printed at its start (or `openssl x509 -noout -fingerprint -sha256 -in tls-cert.pem` on the server), then connect again with --accept-new-host, or with --pin {fingerprint}"
    )]
    UnknownHost {
        host: String,
        fingerprint: Fingerprint,
    },
    /// A person declined to trust a new host.
    #[error("{host} is not trusted; nothing was sent")]
    HostNotTrusted { host: String },
    /// A pinned host presented another certificate.
    #[error("{}", changed_message(host, pinned, presented, file.as_deref(), *given))]
    CertificateChanged {
        host: String,
        pinned: Fingerprint,
        presented: Fingerprint,
        file: Option<PathBuf>,
        /// Whether the pin was given with `--pin` (not read from the file).
        given: bool,
    },
    /// The login was bound to a TLS channel that is not the server's.
    /// `message` is the server's (for a mismatch: "the channel binding did
    /// not match: someone may be intercepting this connection").
    #[error("login refused: {}", shown(message))]
    ChannelBinding { message: String },
    /// The server showed the expected certificate without holding its key.
    #[error(
        "{host} showed the expected certificate but could not prove it holds its key: someone may be intercepting this connection; nothing was sent"
    )]
    NotTheKeyHolder { host: String },
    /// A remote path that climbs above the home with `..`; nothing was sent.
    #[error("{}: leads outside the home directory", escape(path))]
    OutsideHome { path: String },
}

/// The most characters of a server's message shown.
const MAX_SHOWN: usize = 512;

/// A server's text as shown to a person: escaped, and cut after
/// [`MAX_SHOWN`] characters.
fn shown(message: &str) -> String {
    let cut = match message.char_indices().nth(MAX_SHOWN) {
        Some((at, _)) => &message[..at],
        None => message,
    };
    let mut text = escape(cut).to_string();
    if cut.len() < message.len() {
        text.push_str(&format!(
            " [{} more bytes not shown]",
            message.len() - cut.len()
        ));
    }
    text
}

impl ClientError {
    /// Whether the session cannot go on after this error: the connection
    /// is gone, or the client stopped reading replies it can no longer
    /// match to its requests (a reply that does not fit, a timeout, a
    /// listing refused midway).
    pub fn ends_session(&self) -> bool {
        matches!(
            self,
            ClientError::Connection(_)
                | ClientError::Protocol(_)
                | ClientError::TimedOut { .. }
                | ClientError::TooMuch(_)
        )
    }

    /// The server's error code, when the server refused the request.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Remote { code, .. } | ClientError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The exit status of a command that failed with this error: 3 when the
    /// server could not be reached, the connection broke or the server ended
    /// the session (idle too long, shutting down), 4 when the login failed,
    /// 1 for everything else (a refusal, a local file, a transfer).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Connect { .. }
            | ClientError::Refused { .. }
            | ClientError::Connection(_)
            | ClientError::TimedOut { .. }
            | ClientError::TooMuch(_)
            | ClientError::Protocol(_) => 3,
            ClientError::Remote {
                code: ErrorCode::TIMEOUT | ErrorCode::SHUTTING_DOWN,
                ..
            } => 3,
            ClientError::Tls { .. }
            | ClientError::TlsClosed { .. }
            | ClientError::NotTls { .. } => 3,
            ClientError::UnknownHost { .. }
            | ClientError::HostNotTrusted { .. }
            | ClientError::CertificateChanged { .. }
            | ClientError::ChannelBinding { .. }
            | ClientError::NotTheKeyHolder { .. }
            | ClientError::Scram(ScramError::ChannelBindingMismatch | ScramError::Downgrade) => 5,
            ClientError::AuthFailed | ClientError::Scram(_) | ClientError::StaleKeys => 4,
            _ => 1,
        }
    }

    pub(crate) fn local(path: impl Into<PathBuf>, source: std::io::Error) -> ClientError {
        ClientError::Local {
            path: path.into(),
            source,
        }
    }
}

/// What a changed certificate is told with: both fingerprints and how to
/// replace the pin.
fn changed_message(
    host: &str,
    pinned: &Fingerprint,
    presented: &Fingerprint,
    file: Option<&std::path::Path>,
    given: bool,
) -> String {
    let source = match (given, file) {
        (true, _) => "given with --pin".to_string(),
        (false, Some(f)) => format!("pinned in {}", f.display()),
        (false, None) => "pinned".to_string(),
    };
    format!(
        "THE CERTIFICATE OF {host} HAS CHANGED; nothing was sent.\n  expected ({source}): {pinned}\n  presented:           {presented}\n  Someone may be intercepting this connection, or the server got a new certificate.\n  If you know it did (compare with what the server printed), replace the pin: `ftp-client forget-host {host}`, then connect with --pin {presented}"
    )
}

/// An I/O error as a person reads it: "No such file or directory", without
/// the "(os error 2)" that follows it.
/// Why a connection broke, as a person reads it: a close without the TLS
/// goodbye (the server went away) is said so, not in the TLS library's words.
fn connection_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => io_message(e),
    }
}

fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> ClientError {
        match e {
            CodecError::Io(io) => ClientError::Connection(io),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: ErrorCode) -> ClientError {
        ClientError::Remote {
            code,
            message: "x".into(),
        }
    }

    #[test]
    fn exit_statuses_follow_the_documented_table() {
        assert_eq!(remote(ErrorCode::NOT_FOUND).exit_code(), 1);
        assert_eq!(remote(ErrorCode::PERMISSION_DENIED).exit_code(), 1);
        // The server ended the session: like a lost connection.
        assert_eq!(remote(ErrorCode::TIMEOUT).exit_code(), 3);
        assert_eq!(remote(ErrorCode::SHUTTING_DOWN).exit_code(), 3);
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(ClientError::Connection(io()).exit_code(), 3);
        let busy = ClientError::Refused {
            addr: "127.0.0.1:1".into(),
            code: ErrorCode::BUSY,
            message: "too many connections".into(),
        };
        assert_eq!(busy.exit_code(), 3);
        assert_eq!(ClientError::AuthFailed.exit_code(), 4);
        assert_eq!(ClientError::StaleKeys.exit_code(), 4);
        assert_eq!(ClientError::local("/x", io()).exit_code(), 1);
    }

    #[test]
    fn local_paths_are_shown_escaped() {
        let e = ClientError::LocalFile {
            path: "out/esc\u{1b}[2J".into(),
            message: "no such directory".into(),
        };
        assert_eq!(e.to_string(), "out/esc\\u{1b}[2J: no such directory");
        let e = ClientError::local("a/b", std::io::Error::from_raw_os_error(2));
        assert_eq!(e.to_string(), "a/b: No such file or directory");
    }
}

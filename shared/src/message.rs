//! Messages: what a client may send ([`Request`]) and what a server answers ([`Response`]).
//!
//! The order of the variants is the wire format (bincode writes the variant
//! index as a `u32`): new variants go at the end, and changing a field means a
//! new [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::Digest as _;

use crate::ErrorCode;

/// The eight bytes that open every session, inside the first `Hello`.
pub const MAGIC: [u8; 8] = *b"MINIFTP\x01";
/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The TCP port a server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 2121;
/// How many bytes of file data a sender puts in one `Data` frame.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// A request from the client. Each request gets exactly one reply, in order,
/// except `Data`, `PutEnd` and `PutCancel`, which belong to the `Put` before them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// First frame of every session.
    Hello { magic: [u8; 8], version: u16 },
    /// SCRAM client-first-message (RFC 5802), e.g. `n,,n=alice,r=<nonce>`.
    AuthStart { client_first: String },
    /// SCRAM client-final-message, e.g. `c=biws,r=<nonce>,p=<proof>`.
    AuthFinish { client_final: String },
    /// Start an upload of exactly `size` bytes to `path`; followed by `Data`
    /// frames carrying those bytes, then `PutEnd` (or `PutCancel`).
    Put { path: String, size: u64 },
    /// A chunk of the file being uploaded (senders use at most [`CHUNK_SIZE`]
    /// bytes; any chunk that fits in a frame is accepted).
    Data(ByteBuf),
    /// End of an upload: the digest of the whole file.
    PutEnd { digest: Digest },
    /// The client gives up on the upload in progress.
    PutCancel,
    /// Download `path`.
    Get { path: String },
    /// Create a directory; with `parents`, create missing parents and accept an existing directory.
    Mkdir { path: String, parents: bool },
    /// End the session.
    Quit,
}

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Hello`: the version the server speaks.
    Hello { version: u16, server: String },
    /// SCRAM server-first-message, e.g. `r=<nonce>,s=<salt>,i=<iterations>`.
    AuthChallenge { server_first: String },
    /// SCRAM server-final-message `v=<signature>`: the login succeeded.
    AuthOk { server_final: String },
    /// The request succeeded.
    Ok,
    /// Answer to `Get`: a file of `size` bytes follows as `Data` frames and one `FileEnd`.
    FileStart { size: u64 },
    /// A chunk of the file being downloaded.
    Data(ByteBuf),
    /// End of a download: the digest of the whole file.
    FileEnd { digest: Digest },
    /// The request failed.
    Error { code: ErrorCode, message: String },
}

impl Response {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

/// The digest of a whole file, named by its algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Digest {
    Sha256([u8; 32]),
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Digest::Sha256(d) => write!(f, "sha256:{}", hex::encode(d)),
        }
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Computes a [`Digest`] incrementally, as the bytes go by.
#[derive(Debug, Clone, Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest::Sha256(self.0.finalize().into())
    }
}

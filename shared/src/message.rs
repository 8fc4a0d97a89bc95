//! Messages: what a client may send ([`Request`]) and what a server answers ([`Response`]).
//!
//! The order of the variants is the wire format (bincode writes the variant
//! index as a `u32`): new variants go at the end, and changing a field means a
//! new [`PROTOCOL_VERSION`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};
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
    /// Upload a file of `size` bytes to `path`; followed by `Data` frames
    /// carrying bytes `offset..size`, then `PutEnd` (or `PutCancel`). An
    /// `offset` above 0 continues the partial upload that `Partial` reported.
    Put {
        path: String,
        size: u64,
        offset: u64,
        algorithm: DigestAlgorithm,
    },
    /// A chunk of the file being uploaded (senders use at most [`CHUNK_SIZE`]
    /// bytes; any chunk that fits in a frame is accepted).
    Data(Bytes),
    /// End of an upload: the digest of the whole file (from byte 0).
    PutEnd { digest: Digest },
    /// The client gives up on the upload in progress.
    PutCancel,
    /// Download `path` from byte `offset` on; the final digest covers the whole file.
    Get {
        path: String,
        offset: u64,
        algorithm: DigestAlgorithm,
    },
    /// Create a directory; with `parents`, create missing parents and accept an existing directory.
    Mkdir { path: String, parents: bool },
    /// End the session.
    Quit,
    /// How much of an interrupted upload of `size` bytes to `path` the server kept.
    Partial {
        path: String,
        size: u64,
        algorithm: DigestAlgorithm,
    },
    /// List a directory (its entries, in batches of `Entries`) or describe a
    /// file (one entry). The empty path is the home itself.
    List { path: String },
    /// Describe one entry, following symlinks that stay inside the home. The
    /// empty path is the home itself.
    Stat { path: String },
    /// Delete a file (or a symlink; never what it points to).
    Remove { path: String },
    /// Delete an empty directory.
    Rmdir { path: String },
    /// Rename `from` to `to` atomically; an existing file at `to` is
    /// replaced, an existing directory only if it is empty.
    Rename { from: String, to: String },
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
    /// Answer to `Get`: the file has `size` bytes; bytes `offset..size` follow
    /// as `Data` frames, then one `FileEnd`.
    FileStart { size: u64 },
    /// A chunk of the file being downloaded.
    Data(Bytes),
    /// End of a download: the digest of the whole file.
    FileEnd { digest: Digest },
    /// The request failed.
    Error { code: ErrorCode, message: String },
    /// Answer to `Partial`: the server holds the first `offset` bytes (0: none),
    /// whose digest is `digest`.
    Partial { offset: u64, digest: Digest },
    /// Answer to `List`: a batch of entries; `more` until the last batch.
    Entries { entries: Vec<Entry>, more: bool },
    /// Answer to `Stat`.
    Stat { entry: Entry },
}

/// The most entries one `Entries` frame carries (a name is at most 255
/// bytes, so a full batch stays well under the frame limit).
pub const ENTRIES_PER_BATCH: usize = 1024;

/// One entry of a directory, as `List` and `Stat` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's name (the last component of its path; empty for the home).
    pub name: String,
    pub kind: EntryKind,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
    /// Last modification, in seconds since 1970-01-01T00:00:00Z.
    pub modified: i64,
    /// Permission bits (`0o7777` at most), as `ls -l` shows them.
    pub mode: u32,
}

/// What an [`Entry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// A FIFO, socket or device: listed, never transferred.
    Other,
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

/// The variant index of `Data` in each direction, and access to its payload,
/// so the codec can move file data without copying it.
pub trait WireMessage: Sized {
    /// The bincode variant index of the `Data` variant.
    const DATA_TAG: u32;
    fn from_data(bytes: Bytes) -> Self;
}

impl WireMessage for Request {
    const DATA_TAG: u32 = 4;
    fn from_data(bytes: Bytes) -> Request {
        Request::Data(bytes)
    }
}

impl WireMessage for Response {
    const DATA_TAG: u32 = 5;
    fn from_data(bytes: Bytes) -> Response {
        Response::Data(bytes)
    }
}

/// A digest algorithm, named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// BLAKE3, 32-byte output: about three times faster than SHA-256 here,
    /// so verification does not cap the transfer rate. The default.
    #[default]
    Blake3,
}

/// The digest of a whole file, named by its algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Digest {
    Sha256([u8; 32]),
    Blake3([u8; 32]),
}

impl Digest {
    pub fn algorithm(&self) -> DigestAlgorithm {
        match self {
            Digest::Sha256(_) => DigestAlgorithm::Sha256,
            Digest::Blake3(_) => DigestAlgorithm::Blake3,
        }
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Digest::Sha256(d) => write!(f, "sha256:{}", hex::encode(d)),
            Digest::Blake3(d) => write!(f, "blake3:{}", hex::encode(d)),
        }
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Computes a [`Digest`] incrementally, as the bytes go by.
#[derive(Debug, Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::Sha256(h.finalize().into()),
            Hasher::Blake3(h) => Digest::Blake3(h.finalize().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_published_values() {
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        h.update(b"abc");
        assert_eq!(
            format!("{}", h.finish()),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let h = Hasher::new(DigestAlgorithm::Blake3);
        assert_eq!(
            format!("{}", h.finish()),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}

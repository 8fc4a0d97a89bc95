//! The wire protocol of the mini-FTP, shared by the server and the client.
//!
//! Nothing in this crate touches a socket or the filesystem; it is the
//! vocabulary both ends agree on, and `PROTOCOL.md` at the top of the
//! repository describes the same bytes for implementers in other languages.
//!
//! - [`message`]: the request and response enums, digests and protocol constants.
//! - [`codec`]: framing (4-byte big-endian length, then bincode) with a length
//!   cap checked before anything is allocated, and the one bincode configuration.
//! - [`error`]: the typed error codes that travel in `Response::Error`.
//! - [`scram`]: SCRAM-SHA-256(-PLUS) (RFC 5802 / RFC 7677 / RFC 9266), the login exchange.
//! - [`tls`]: the ALPN name and certificate fingerprints of the TLS layer.
//! - [`read_ahead`]: batched reads from a socket beneath TLS (an I/O
//!   adapter; it opens nothing itself).
//! - [`text`]: escaping of peer-supplied text before it reaches a log or a terminal.

pub mod codec;
pub mod error;
pub mod message;
pub mod read_ahead;
pub mod scram;
pub mod text;
pub mod tls;
pub mod write_back;

pub use codec::{CodecError, MessageCodec};
pub use error::ErrorCode;
pub use message::{Digest, Request, Response};

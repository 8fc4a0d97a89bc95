//! The mini-FTP client: a library used by the command-line tool and by tests.
//!
//! Module map:
//! - [`client`]: [`Client`], one session: `connect`, `login`, `mkdir`,
//!   `list`, `stat`, `remove`, `rmdir`, `rename`, `quit`.
//! - [`transfer`]: `put_file`/`put_files` and `get_file`/`get_files`:
//!   streamed, verified, pipelined and resumable transfers.
//! - [`wire`]: the two halves of the connection.
//! - [`error`]: [`ClientError`], what can go wrong, worded for people.
//! - [`target`]: `USER@HOST[:PORT]` addresses.
//! - [`credentials`]: login keys cached under the user's config directory
//!   (ClientKey and ServerKey, never the password) with mode 0600.
//! - [`remote_path`]: remote paths as typed (`..`, `/`, a working
//!   directory) turned into home-relative protocol paths.
//! - [`tls`]: TLS 1.3 to the server, the check of its certificate, and the
//!   `tls-exporter` value the login is bound to.
//! - [`known_hosts`]: certificates pinned at the first connection to a host.
//! - [`cli`]: the command line, the interactive shell and batch files.

pub mod cli;
pub mod client;
pub mod credentials;
pub mod error;
pub mod known_hosts;
pub mod remote_path;
pub mod replies;
pub mod retry;
pub mod target;
pub mod tls;
pub mod transfer;
pub mod wire;

pub use client::{Client, SavedKeys, Secret};
pub use error::ClientError;
pub use target::Target;
pub use tls::{NewHost, TlsOptions, Transport};
pub use transfer::{GetItem, PutItem};

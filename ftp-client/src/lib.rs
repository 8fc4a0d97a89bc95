//! The mini-FTP client: a library used by the command-line tool and by tests.
//!
//! Module map:
//! - [`client`]: [`Client`], one logged-in session: `connect`, `login`,
//!   `put_file`, `get_file`, `mkdir`, `quit`.
//! - [`error`]: [`ClientError`], what can go wrong, worded for people.
//! - [`target`]: `USER@HOST[:PORT]` addresses.
//! - [`credentials`]: login keys cached under the user's config directory
//!   (ClientKey and ServerKey, never the password) with mode 0600.
//! - [`cli`]: the command line.

pub mod cli;
pub mod client;
pub mod credentials;
pub mod error;
pub mod target;

pub use client::{Client, SavedKeys, Secret};
pub use error::ClientError;
pub use target::Target;

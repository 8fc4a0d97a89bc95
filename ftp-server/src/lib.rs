//! The mini-FTP server.
//!
//! Module map:
//! - [`server`]: the accept loop, connection limits and graceful shutdown ([`run`]).
//! - [`connection`]: framed reading and writing of one TCP connection.
//! - [`session`]: one client's life: hello, login, then commands until quit.
//! - [`cmd`]: one module per request (`auth`, `put`, `get`, `mkdir`, `partial`,
//!   `list`, `stat`, `remove`, `rmdir`, `rename`).
//! - [`outbox`]: replies in order, with pipelined uploads committed in groups.
//! - [`error`]: the one place that maps failures to wire error codes and
//!   decides between "reply and continue" and "reply and close".
//! - [`users`]: the users file (SCRAM verifiers only, never passwords).
//! - [`limits`]: every bound a peer can run into.
//! - [`cli`]: the command line (`serve`, `check-config`, `user add|remove|list|passwd`).
//! - [`config`]: the configuration file.
//! - [`lockout`]: failed logins counted per user and address, across connections.
//! - [`quota`]: the bytes each user's home may hold.
//!
//! The server never touches `std::fs` for client data: everything goes
//! through the [`ftp_storage::Storage`] trait, whose filesystem back-end keeps
//! each user beneath their home.

pub mod admission;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod error;
pub mod handles;
pub mod inflight;
pub mod limits;
pub mod lockout;
pub mod log_limit;
pub mod outbox;
pub mod private_file;
pub mod quota;
pub mod reload;
pub mod server;
pub mod session;
pub mod tls;
pub mod transport;
pub mod users;
pub mod users_reload;

pub use limits::Limits;
pub use server::{Shared, run};
pub use users::Users;

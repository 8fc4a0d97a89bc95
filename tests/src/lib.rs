//! Harness of the integration tests: the real `ftp-server` and `ftp-client`
//! binaries, started as processes on fresh temp directories, and a raw
//! protocol connection for tests that must send what no well-behaved client
//! would.
//!
//! # Modules
//!
//! - [`bins`]: the binaries ([`server_bin`] / [`client_bin`], built once per
//!   test process with `escargot` in the profile of the tests), commands run
//!   to completion ([`run_cmd`], [`Output`], [`server_cmd`]) and
//!   [`wait_child`].
//! - [`server`]: [`ServerDir`] (a temp directory holding `root/`,
//!   `users.toml` and the sentinel `outside/secret.txt`),
//!   [`write_users_file`], [`TestServer`] (a server process serving it on
//!   `127.0.0.1:0`, killed on drop) and the end-of-scenario checks
//!   ([`TestServer::assert_healthy`], [`HealthCheck`],
//!   [`TestServer::assert_no_debris`]).
//! - [`client`]: [`ClientEnv`] (`ftp-client` commands with their own
//!   `XDG_CONFIG_HOME`, `HOME` and working directory) and the library client
//!   ([`login`], [`no_progress`]).
//! - [`raw`]: [`RawConn`] (frames in and out of a plain TCP stream, SCRAM
//!   login by hand, the exact bytes of every reply) and the frame helpers.
//! - [`tls`]: [`RawStream`] (TLS with a pinned certificate, or plain TCP,
//!   for [`RawConn`]), [`TestCa`] and [`self_signed_pair`] for certificate
//!   tests.
//! - [`cut`]: [`cut_upload`], an upload cut off part way.
//! - [`files`]: test data ([`XorShift`], [`random_bytes`],
//!   [`write_random_file`]), [`files_equal`], [`temp_dir`], [`wait_until`].
//! - [`planted`]: the planted tree of the sandbox tests ([`plant`]),
//!   [`assert_reveals_nothing`], and [`snapshot`]s to prove nothing outside
//!   a home changed.
//! - [`hostile`]: the vectors of `data/hostile-paths.txt`
//!   ([`hostile_paths`], [`decode_escapes`]).
//!
//! `planted` and `hostile` use nothing but std: `ftp-storage`'s own tests
//! include those two files by path (they cannot depend on this package).
//!
//! # Rules
//!
//! - Tests run the real binaries as processes, never the server in-process.
//! - A server listens on `127.0.0.1` port 0 and says its address on stdout;
//!   tests never pick a port.
//! - Every wait has a deadline ([`DEADLINE`], [`POLL_DEADLINE`],
//!   [`READ_TIMEOUT`]); nothing sleeps to guess readiness: a test waits for
//!   what the process says or polls the condition itself.
//! - Every scenario of the adversarial suites (`auth`, `sandbox`, `framing`,
//!   `limits`, `faults`, `lifecycle`) that runs a server ends with
//!   [`TestServer::assert_healthy`]: the server runs, nothing outside its
//!   root changed, no temp or partial file is visible, and a fresh client
//!   logs in and downloads within [`HEALTHY_WITHIN`]. One that stops the
//!   server on purpose ends with [`TestServer::assert_no_debris`].

use std::time::Duration;

pub mod bins;
pub mod client;
pub mod cut;
pub mod fake_run;
pub mod fake_server;
pub mod files;
pub mod hostile;
pub mod planted;
pub mod raw;
pub mod server;
pub mod tls;

pub use bins::{Output, client_bin, run_cmd, server_bin, server_cmd, wait_child};
pub use client::{ClientEnv, alice, login, no_progress, within};
pub use cut::cut_upload;
pub use files::{XorShift, files_equal, random_bytes, temp_dir, wait_until, write_random_file};
pub use hostile::{decode_escapes, hostile_lines, hostile_paths};
pub use planted::{
    BOB_SECRET, Entry, OUTSIDE_SECRET, assert_reveals_nothing, outside_alice, plant, snapshot,
};
pub use raw::{RawConn, RecordedLogin, SentLogin, frame_of, read_frame, read_msg, write_msg};
pub use server::{
    HEALTH_PROBE, HEALTHY_WITHIN, HealthCheck, SENTINEL, ServerDir, TestServer, write_users_file,
};
pub use tls::{RawStream, TestCa, self_signed_pair};

/// PBKDF2 iterations of every test user (the minimum the server accepts).
pub const ITERATIONS: u32 = 4096;
/// Alice's password in the default users file.
pub const ALICE_PASSWORD: &str = "alice-correct-horse-battery";
/// Bob's password in the default users file.
pub const BOB_PASSWORD: &str = "bob-staple-9f2c";
/// The users of [`TestServer::start`].
pub const DEFAULT_USERS: &[(&str, &str)] = &[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)];
/// Deadline for a process to start, a command to finish, a reply to come.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Deadline for a condition polled on disk (e.g. a temp file going away).
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);
/// How long [`RawConn`] waits for one reply before failing the test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

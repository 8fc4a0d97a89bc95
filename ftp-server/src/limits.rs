//! Bounds on everything a peer can make the server hold or wait for.

use std::time::Duration;

/// The limits a server enforces. [`Limits::default`] is safe out of the box.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; one more is told `BUSY` and closed.
    pub max_connections: usize,
    /// Time from connect to a completed login.
    pub handshake_timeout: Duration,
    /// Time a logged-in session may wait between requests.
    pub idle_timeout: Duration,
    /// Time a transfer may wait for the peer's next frame, or for the peer to
    /// take the next one.
    pub transfer_timeout: Duration,
    /// The largest file a client may upload.
    pub max_file_size: u64,
    /// Failed logins after which a connection is closed.
    pub max_auth_failures: u32,
    /// Pause before answering a failed login.
    pub auth_failure_delay: Duration,
    /// How long running transfers may go on after a shutdown request.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            handshake_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(300),
            transfer_timeout: Duration::from_secs(60),
            max_file_size: 64 * 1024 * 1024 * 1024,
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_millis(300),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

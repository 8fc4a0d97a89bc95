//! Bounds on everything a peer can make the server hold or wait for.

use std::time::Duration;

/// The limits a server enforces. [`Limits::default`] is safe out of the box.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; one more is told `BUSY` and closed.
    pub max_connections: usize,
    /// Connections from one IP address at once.
    pub max_connections_per_address: usize,
    /// Connections that have not logged in yet, at once.
    pub max_unauthenticated: usize,
    /// Time from connect to a completed login.
    pub handshake_timeout: Duration,
    /// Time a logged-in session may wait between requests.
    pub idle_timeout: Duration,
    /// Time a transfer may wait for the peer's next frame, or for the peer to
    /// take the next one.
    pub transfer_timeout: Duration,
    /// The largest file a client may upload.
    pub max_file_size: u64,
    /// The bytes each user's home may hold (none: no quota).
    pub quota_bytes: Option<u64>,
    /// Failed logins after which a connection is closed.
    pub max_auth_failures: u32,
    /// Pause before answering a failed login.
    pub auth_failure_delay: Duration,
    /// Failed logins of one user from one address, across connections, after
    /// which that pair is locked out for [`Limits::lockout`].
    pub lockout_failures: u32,
    /// How long a locked user+address pair fails every login.
    pub lockout: Duration,
    /// How long running transfers may go on after a shutdown request.
    pub shutdown_grace: Duration,
    /// Files one user's sessions may hold open at once (uploads in progress
    /// or waiting to be published, downloads); one more is refused `BUSY`.
    pub max_open_files_per_user: usize,
    /// Bytes that listing pages in memory may take at once, across all
    /// connections; a listing waits for room (then `BUSY`).
    pub listing_memory: usize,
    /// Connections from one IP address that have not logged in yet, at once;
    /// one more replaces that address's least advanced, oldest one.
    pub max_unauthenticated_per_address: usize,
    /// Entries each failed-login table holds (pairs and addresses, and
    /// brakes of names); a full table refuses what it cannot record.
    pub lockout_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_connections_per_address: 64,
            max_unauthenticated: 128,
            handshake_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(300),
            transfer_timeout: Duration::from_secs(60),
            max_file_size: 64 * 1024 * 1024 * 1024,
            quota_bytes: None,
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_millis(300),
            lockout_failures: 10,
            lockout: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
            max_open_files_per_user: 256,
            listing_memory: 32 * 1024 * 1024,
            max_unauthenticated_per_address: 16,
            lockout_entries: 100_000,
        }
    }
}

impl Limits {
    /// Refuses settings that would make the server unusable.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("max_connections", self.max_connections as u128),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u128,
            ),
            ("max_unauthenticated", self.max_unauthenticated as u128),
            ("handshake_timeout", self.handshake_timeout.as_millis()),
            ("idle_timeout", self.idle_timeout.as_millis()),
            ("transfer_timeout", self.transfer_timeout.as_millis()),
            ("max_auth_failures", self.max_auth_failures as u128),
            ("lockout_failures", self.lockout_failures as u128),
            (
                "max_open_files_per_user",
                self.max_open_files_per_user as u128,
            ),
            ("listing_memory", self.listing_memory as u128),
            (
                "max_unauthenticated_per_address",
                self.max_unauthenticated_per_address as u128,
            ),
            ("lockout_entries", self.lockout_entries as u128),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}

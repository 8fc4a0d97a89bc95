//! Failed logins of one user from one address, counted across connections.
//!
//! Closing a connection after a few failures only slows a guesser down by a
//! reconnect. After [`Limits::lockout_failures`] failures of the same user
//! name from the same IP address (each within [`Limits::lockout`] of the
//! previous one), that pair fails every login until the lockout expires,
//! whatever the password; other users and other addresses are not affected.
//! Attempts during the lockout do not extend it.
//! A locked login fails exactly like a wrong password, so the lock reveals
//! nothing. The table is bounded: entries expire, and at most
//! [`MAX_ENTRIES`] pairs are tracked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::Limits;

/// Pairs tracked at the most.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// The failed-login table of a server.
#[derive(Debug, Default)]
pub struct Lockouts {
    table: Mutex<HashMap<(String, IpAddr), Entry>>,
}

impl Lockouts {
    /// Whether `user` from `ip` is locked out now.
    pub fn is_locked(&self, user: &str, ip: IpAddr, limits: &Limits) -> bool {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get(&(user.to_string(), ip)).is_some_and(|e| {
            e.failures >= limits.lockout_failures && e.last.elapsed() < limits.lockout
        })
    }

    /// Counts a failed login; true when the pair is now locked.
    pub fn failed(&self, user: &str, ip: IpAddr, limits: &Limits) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if table.len() >= MAX_ENTRIES {
            table.retain(|_, e| now.duration_since(e.last) < limits.lockout);
        }
        let key = (user.to_string(), ip);
        if table.len() >= MAX_ENTRIES && !table.contains_key(&key) {
            return false;
        }
        let entry = table.entry(key).or_insert(Entry {
            failures: 0,
            last: now,
        });
        let since = now.duration_since(entry.last);
        if entry.failures >= limits.lockout_failures && since < limits.lockout {
            // Attempts while locked do not extend the lock: it ends
            // `lockout` after it began, whoever keeps trying meanwhile.
            return true;
        }
        if since >= limits.lockout {
            entry.failures = 0;
        }
        entry.failures += 1;
        entry.last = now;
        entry.failures >= limits.lockout_failures
    }

    /// Forgets the failures of a pair after a successful login.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.remove(&(user.to_string(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn locks_the_pair_only_and_expires() {
        let limits = Limits {
            lockout_failures: 3,
            lockout: Duration::from_millis(200),
            ..Limits::default()
        };
        let table = Lockouts::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(!table.failed("alice", a, &limits));
        assert!(!table.failed("alice", a, &limits));
        assert!(table.failed("alice", a, &limits));
        assert!(table.is_locked("alice", a, &limits));
        assert!(!table.is_locked("alice", b, &limits));
        assert!(!table.is_locked("bob", a, &limits));
        std::thread::sleep(Duration::from_millis(250));
        assert!(!table.is_locked("alice", a, &limits), "the lock expires");
        assert!(
            !table.failed("alice", a, &limits),
            "and the count starts over"
        );
        table.succeeded("alice", a);
        assert!(!table.is_locked("alice", a, &limits));
    }
}

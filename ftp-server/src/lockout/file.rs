//! The locks in force, saved beside the users file so that they survive a
//! restart and the operator can see them (`ftp-server user list`).
//!
//! The server is the only writer of this file (`<users file>.locks`, mode
//! 0600, written whole or not at all): within [`SAVE_DELAY`] of a lock
//! starting or being lifted, and once more at shutdown. It reads the file
//! back at start. The operator lifts a lock through the users file instead
//! (`ftp-server user unlock NAME` records the time of the unlock there), so
//! the server and the operator never write the same file: a lock whose last
//! failure came no later than its user's unlock is not in force, wherever it
//! is read. Failures that have not locked anything yet are not saved.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Count, Lockouts, PAIRS_PER_ADDRESS, locked};
use crate::Limits;
use crate::server::Shared;

/// How long after a change the locks are saved (changes within it are
/// saved together).
pub const SAVE_DELAY: Duration = Duration::from_secs(1);
/// The most locks saved (the newest ones); the rest stay in memory only.
pub const MAX_SAVED: usize = 10_000;

/// One lock in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLock {
    /// The locked user; none: the address is locked for names not in the
    /// users file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub address: IpAddr,
    pub failures: u32,
    /// Unix time of the last failure, in milliseconds.
    pub last_failure_ms: u64,
    /// Unix time at which the lock expires, in milliseconds.
    pub until_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockFile {
    #[serde(default)]
    lock: Vec<SavedLock>,
}

fn millis(t: SystemTime) -> u64 {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn wall(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

impl SavedLock {
    /// Time left at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        wall(self.until_ms)
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    }

    /// Whether the lock holds at `now`, given when its user was last
    /// unlocked.
    pub fn in_force(&self, now: SystemTime, unlocked: Option<SystemTime>) -> bool {
        let lifted =
            self.user.is_some() && unlocked.is_some_and(|u| wall(self.last_failure_ms) <= u);
        !lifted && !self.remaining(now).is_zero()
    }
}

/// The lock file that belongs to the users file `users`.
pub fn path_beside(users: &Path) -> PathBuf {
    let mut name = users
        .file_name()
        .map_or_else(|| "users.toml".into(), |n| n.to_os_string());
    name.push(".locks");
    users.with_file_name(name)
}

/// The saved locks (none when there is no file).
pub fn load(path: &Path) -> anyhow::Result<Vec<SavedLock>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the lock file {}", path.display()));
        }
    };
    let file: LockFile = toml::from_str(&text)
        .with_context(|| format!("the lock file {} is not valid", path.display()))?;
    Ok(file.lock)
}

fn save(path: &Path, locks: Vec<SavedLock>) -> anyhow::Result<()> {
    let text = format!(
        "# Logins locked by ftp-server after repeated failures (written by the server).\n\
         # `ftp-server user list` shows them; `ftp-server user unlock NAME` lifts a user's.\n\
         {}",
        toml::to_string(&LockFile { lock: locks }).context("cannot serialise the locks")?
    );
    crate::private_file::write_atomic(path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write the lock file {}", path.display()))
}

impl Lockouts {
    /// The locks in force, newest first, at most [`MAX_SAVED`]; `unlocked`
    /// tells when a user was last unlocked.
    pub fn snapshot(
        &self,
        limits: &Limits,
        unlocked: impl Fn(&str) -> Option<SystemTime>,
    ) -> Vec<SavedLock> {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let saved = |user: Option<&String>, address: IpAddr, c: &Count| SavedLock {
            user: user.cloned(),
            address,
            failures: c.failures,
            last_failure_ms: millis(c.wall),
            until_ms: millis(c.wall + limits.lockout),
        };
        let pairs = t.pairs.iter().map(|((u, ip), c)| (Some(u), *ip, c));
        let addresses = t.addresses.iter().map(|(ip, c)| (None, *ip, c));
        let mut locks: Vec<SavedLock> = pairs
            .chain(addresses)
            .filter(|(_, _, c)| locked(c, limits, now))
            .map(|(u, ip, c)| saved(u, ip, c))
            .filter(|l| {
                let unlocked = l.user.as_deref().and_then(&unlocked);
                l.in_force(SystemTime::now(), unlocked)
            })
            .collect();
        locks.sort_by_key(|l| std::cmp::Reverse(l.last_failure_ms));
        locks.truncate(MAX_SAVED);
        locks
    }

    /// Takes back saved locks that are still in force (within the tables'
    /// bounds); how many.
    pub fn restore(&self, locks: Vec<SavedLock>, limits: &Limits) -> usize {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let (now, now_wall) = (Instant::now(), SystemTime::now());
        let mut restored = 0;
        for l in locks {
            let age = now_wall
                .duration_since(wall(l.last_failure_ms))
                .unwrap_or(Duration::ZERO);
            if age >= limits.lockout || t.full(limits) {
                continue;
            }
            let c = Count {
                failures: l.failures.max(limits.lockout_failures),
                last: now.checked_sub(age).unwrap_or(now),
                wall: wall(l.last_failure_ms),
            };
            match l.user {
                Some(user) => {
                    let key = (user, l.address);
                    let here = t.pairs_of.get(&l.address).copied().unwrap_or(0);
                    if t.pairs.contains_key(&key) || here >= PAIRS_PER_ADDRESS {
                        continue;
                    }
                    *t.pairs_of.entry(l.address).or_default() += 1;
                    t.pairs.insert(key, c);
                }
                None => {
                    t.addresses.insert(l.address, c);
                }
            }
            restored += 1;
        }
        restored
    }
}

/// Saves the locks in force now (a failure is logged; the server goes on).
pub fn save_now<S>(shared: &Shared<S>) {
    let path = path_beside(shared.users.path());
    let locks = shared
        .lockouts
        .snapshot(&shared.limits, |u| shared.users.unlocked_at(u));
    if locks.is_empty() && !path.exists() {
        return;
    }
    if let Err(e) = save(&path, locks) {
        tracing::warn!("the locks were not saved: {e:#}");
    }
}

/// Reads the saved locks into the server's tables at start.
pub fn restore<S>(shared: &Shared<S>) {
    let path = path_beside(shared.users.path());
    match load(&path) {
        Ok(locks) if locks.is_empty() => {}
        Ok(locks) => {
            let restored = shared.lockouts.restore(locks, &shared.limits);
            tracing::info!(restored, file = %path.display(), "locks restored");
        }
        Err(e) => tracing::warn!("no locks restored: {e:#}"),
    }
}

/// Saves the locks within [`SAVE_DELAY`] of each change, until the runtime
/// ends.
pub async fn keep_saved<S: Send + Sync + 'static>(shared: Arc<Shared<S>>) {
    loop {
        shared.lockouts.changes.notified().await;
        tokio::time::sleep(SAVE_DELAY).await;
        let shared = shared.clone();
        if tokio::task::spawn_blocking(move || save_now(&shared))
            .await
            .is_err()
        {
            return;
        }
    }
}

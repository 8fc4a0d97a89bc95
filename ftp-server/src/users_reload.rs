//! The users of a running server, reloaded when the users file changes.
//!
//! Only a complete file is loaded: its size, modification time and inode
//! must be the same before and after reading it, and a file changed in
//! place (same inode: an editor or a script writing into it) must have been
//! left alone for [`SETTLE`] so that a half-written file that happens to
//! parse is not taken for the new users. A file replaced by a rename (as
//! `ftp-server user add` writes it) is complete when it appears and loads
//! at once. A refused reload keeps the previous users, is logged once per
//! version of the file, and is tried again at a later login.
//!
//! A lookup does the same work for known and unknown names (one map lookup
//! and the fake credentials, always computed), so the time of the challenge
//! does not tell which names exist.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use ftp_shared::scram::{self, StoredCredentials};

use crate::users::UsersFile;

/// How long a file changed in place must be left alone before it loads.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The identity of one version of the users file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl Version {
    fn of(path: &Path) -> std::io::Result<Version> {
        let m = std::fs::metadata(path)?;
        Ok(Version {
            modified: m.modified()?,
            len: m.len(),
            inode: m.ino(),
        })
    }
}

/// What [`Users::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file is the version already loaded.
    Unchanged,
    /// The new users are in effect.
    Reloaded {
        users: usize,
        added: usize,
        removed: usize,
        changed: usize,
        /// Users unlocked (`ftp-server user unlock`) since the last load.
        unlocked: usize,
    },
    /// The previous users are kept; why (retried at a later login).
    Refused(String),
}

/// The users a running server authenticates against.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    state: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    version: Option<Version>,
    refused: Option<Version>,
    /// The version whose refusal was logged last.
    logged: Option<Option<Version>>,
    secret: Vec<u8>,
    users: BTreeMap<String, StoredCredentials>,
    /// The iteration count most users have, so fake challenges blend in.
    typical_iterations: u32,
    /// Users whose credentials changed while this server ran.
    changed: HashSet<String>,
    /// When each unlocked user was last unlocked.
    unlocks: HashMap<String, SystemTime>,
}

impl Users {
    /// Loads the users file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let (version, file) = read_complete(path, false)?;
        let loaded = Loaded::new(version, &file, HashSet::new())?;
        Ok(Users {
            path: path.to_path_buf(),
            state: RwLock::new(loaded),
        })
    }

    /// The users file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.read().users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verifier of `user`, or a deterministic fake one (and `false`) for an
    /// unknown user, so that the exchange looks the same either way.
    pub fn lookup(&self, user: &str) -> (StoredCredentials, bool) {
        self.reload();
        let state = self.read();
        // Both paths compute the fake credentials: the same work either way.
        let fake = scram::fake_credentials(&state.secret, user, state.typical_iterations);
        match state.users.get(user) {
            Some(creds) => (creds.clone(), true),
            None => (fake, false),
        }
    }

    /// When `user` was last unlocked by `ftp-server user unlock`.
    pub fn unlocked_at(&self, user: &str) -> Option<SystemTime> {
        self.read().unlocks.get(user).copied()
    }

    /// Whether `user`'s credentials changed while this server ran (a client
    /// may still hold keys derived from the old salt).
    pub fn recently_changed(&self, user: &str) -> bool {
        self.read().changed.contains(user)
    }

    /// Reloads the users file if it changed and is complete; logs what it
    /// did unless nothing changed. Safe to call at any time (e.g. on SIGHUP).
    pub fn reload(&self) -> Reload {
        let now = Version::of(&self.path).ok();
        {
            let state = self.read();
            if now.is_some() && (now == state.version || now == state.refused) {
                return Reload::Unchanged;
            }
        }
        let previous_inode = self.read().version.map(|v| v.inode);
        let in_place = now.is_some_and(|v| Some(v.inode) == previous_inode);
        let outcome = read_complete(&self.path, in_place).and_then(|(version, file)| {
            let state = self.read();
            let mut changed = state.changed.clone();
            let next = Loaded::new(version, &file, HashSet::new())?;
            let added = next
                .users
                .keys()
                .filter(|n| !state.users.contains_key(*n))
                .count();
            let removed = state
                .users
                .keys()
                .filter(|n| !next.users.contains_key(*n))
                .count();
            for (name, creds) in &next.users {
                if state.users.get(name).is_some_and(|old| old != creds) {
                    changed.insert(name.clone());
                }
            }
            changed.retain(|n| next.users.contains_key(n));
            let count = changed.len();
            let unlocked = next
                .unlocks
                .iter()
                .filter(|(n, at)| state.unlocks.get(*n) != Some(*at))
                .count();
            Ok((Loaded { changed, ..next }, added, removed, count, unlocked))
        });
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok((loaded, added, removed, changed, unlocked)) => {
                let users = loaded.users.len();
                tracing::info!(
                    users,
                    added,
                    removed,
                    changed,
                    unlocked,
                    "users file reloaded"
                );
                *state = loaded;
                Reload::Reloaded {
                    users,
                    added,
                    removed,
                    changed,
                    unlocked,
                }
            }
            Err(e) => {
                let why = format!("{e:#}");
                // A file still settling is retried without a log line each
                // login; any other refusal is logged once per version.
                if why.contains("being written") {
                    tracing::debug!("users file not reloaded yet: {why}");
                } else {
                    if state.logged != Some(now) {
                        state.logged = Some(now);
                        tracing::warn!(
                            "users file not reloaded, keeping the previous users: {why}"
                        );
                    }
                    state.refused = now;
                }
                Reload::Refused(why)
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads the file if it stays the same while read (and, when `in_place`,
/// was last modified at least [`SETTLE`] ago).
fn read_complete(path: &Path, in_place: bool) -> anyhow::Result<(Option<Version>, UsersFile)> {
    let before = Version::of(path).ok();
    if in_place
        && let Some(v) = before
        && v.modified.elapsed().map_or(true, |age| age < SETTLE)
    {
        anyhow::bail!("the users file is being written (modified less than {SETTLE:?} ago)");
    }
    let file = UsersFile::load(path)?;
    let after = Version::of(path).ok();
    if before != after {
        anyhow::bail!("the users file is being written (it changed while read)");
    }
    Ok((after, file))
}

impl Loaded {
    fn new(
        version: Option<Version>,
        file: &UsersFile,
        changed: HashSet<String>,
    ) -> anyhow::Result<Loaded> {
        let (secret, users) = file.parsed()?;
        let mut counts = BTreeMap::<u32, usize>::new();
        for c in users.values() {
            *counts.entry(c.iterations).or_default() += 1;
        }
        let typical_iterations = counts
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .map_or(scram::DEFAULT_ITERATIONS, |(i, _)| i);
        Ok(Loaded {
            version,
            refused: None,
            logged: None,
            secret,
            users,
            typical_iterations,
            changed,
            unlocks: file.unlocks(),
        })
    }
}

#[cfg(test)]
#[path = "users_reload_tests.rs"]
mod tests;

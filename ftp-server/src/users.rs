//! The users file: one SCRAM-SHA-256 verifier per user, never a password.
//!
//! ```toml
//! secret = "<64 hex digits: the server secret that derives fake salts>"
//!
//! [users.alice]
//! salt = "<hex>"
//! iterations = 600000
//! stored_key = "<hex SHA-256(ClientKey)>"
//! server_key = "<hex HMAC(SaltedPassword, 'Server Key')>"
//! unlocked_at_ms = 1764689400123   # optional: `ftp-server user unlock`
//! ```
//!
//! `unlocked_at_ms` (Unix time in milliseconds) lifts every lock and brake
//! of the user whose last failure came no later (see [`crate::lockout`]).
//!
//! The file is written atomically (temp file, fsync, rename) with mode 0600.
//! A running server notices a changed file at the next login and reloads it
//! (see [`crate::users_reload`]), so `ftp-server user add` takes effect
//! without a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ftp_shared::scram::{self, StoredCredentials};
use serde::{Deserialize, Serialize};

pub use crate::users_reload::{Reload, Users};

/// The users file as it is on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsersFile {
    secret: String,
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserEntry {
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unlocked_at_ms: Option<u64>,
}

impl UsersFile {
    /// An empty file with a fresh server secret.
    pub fn new() -> UsersFile {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the OS random number generator failed");
        UsersFile {
            secret: hex::encode(secret),
            users: BTreeMap::new(),
        }
    }

    /// Reads and checks a users file.
    pub fn load(path: &Path) -> anyhow::Result<UsersFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        let file: UsersFile = toml::from_str(&text)
            .with_context(|| format!("the users file {} is not valid", path.display()))?;
        file.check()
            .with_context(|| format!("the users file {} is not valid", path.display()))?;
        Ok(file)
    }

    /// Reads `path`, or starts a new file when it does not exist.
    pub fn load_or_new(path: &Path) -> anyhow::Result<UsersFile> {
        if path.exists() {
            UsersFile::load(path)
        } else {
            Ok(UsersFile::new())
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let secret = hex::decode(&self.secret).context("secret is not hex")?;
        if secret.len() < 16 {
            bail!("secret is shorter than 16 bytes");
        }
        for (name, entry) in &self.users {
            ftp_storage::validate_user_name(name)
                .with_context(|| format!("user name {name:?} is not valid"))?;
            entry
                .credentials()
                .with_context(|| format!("entry of user {name:?} is not valid"))?;
        }
        Ok(())
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!(
            "# Users of the mini-FTP server, managed with `ftp-server user ...`.\n\
             # Only SCRAM-SHA-256 verifiers are stored (salt, iterations, StoredKey, ServerKey).\n\
             {}",
            toml::to_string(self).context("cannot serialise the users file")?
        );
        let written = crate::private_file::write_atomic(path, text.as_bytes(), 0o600);
        written.with_context(|| format!("cannot write the users file {}", path.display()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// Adds a user or replaces their credentials (an unlock stays).
    pub fn set(&mut self, name: &str, creds: &StoredCredentials) -> anyhow::Result<()> {
        ftp_storage::validate_user_name(name)
            .with_context(|| format!("{name:?} is not a valid user name"))?;
        let unlocked_at_ms = self.users.get(name).and_then(|e| e.unlocked_at_ms);
        self.users.insert(
            name.to_string(),
            UserEntry {
                salt: hex::encode(&creds.salt),
                iterations: creds.iterations,
                stored_key: hex::encode(creds.stored_key),
                server_key: hex::encode(creds.server_key),
                unlocked_at_ms,
            },
        );
        Ok(())
    }

    /// Records that `name`'s locks made up to `at` are lifted; false when
    /// there is no such user.
    pub fn unlock(&mut self, name: &str, at: SystemTime) -> bool {
        let Some(entry) = self.users.get_mut(name) else {
            return false;
        };
        let ms = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        entry.unlocked_at_ms = Some(u64::try_from(ms).unwrap_or(u64::MAX));
        true
    }

    /// When each unlocked user was last unlocked.
    pub fn unlocks(&self) -> HashMap<String, SystemTime> {
        self.users
            .iter()
            .filter_map(|(name, e)| {
                let at = UNIX_EPOCH.checked_add(Duration::from_millis(e.unlocked_at_ms?))?;
                Some((name.clone(), at))
            })
            .collect()
    }

    /// Removes a user; false when there was none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// The verifiers of every user, and the server secret.
    pub(crate) fn parsed(&self) -> anyhow::Result<(Vec<u8>, BTreeMap<String, StoredCredentials>)> {
        self.check()?;
        let secret = hex::decode(&self.secret)?;
        let users = self
            .users
            .iter()
            .map(|(n, e)| Ok((n.clone(), e.credentials()?)))
            .collect::<anyhow::Result<_>>()?;
        Ok((secret, users))
    }
}

impl UserEntry {
    fn credentials(&self) -> anyhow::Result<StoredCredentials> {
        fn key(hex_text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
            hex::decode(hex_text)
                .ok()
                .and_then(|v| v.try_into().ok())
                .with_context(|| format!("{what} is not 32 bytes of hex"))
        }
        let salt = hex::decode(&self.salt).context("salt is not hex")?;
        if salt.is_empty() {
            bail!("salt is empty");
        }
        if !(scram::MIN_ITERATIONS..=scram::MAX_ITERATIONS).contains(&self.iterations) {
            bail!(
                "iterations must be between {} and {}",
                scram::MIN_ITERATIONS,
                scram::MAX_ITERATIONS
            );
        }
        Ok(StoredCredentials {
            salt,
            iterations: self.iterations,
            stored_key: key(&self.stored_key, "stored_key")?,
            server_key: key(&self.server_key, "server_key")?,
        })
    }
}

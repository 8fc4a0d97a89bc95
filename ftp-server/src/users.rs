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
//! ```
//!
//! The file is written atomically (temp file, fsync, rename) with mode 0600.
//! A running server notices a changed file at the next login and reloads it,
//! so `ftp-server user add` takes effect without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use anyhow::{Context, bail};
use ftp_shared::scram::{self, StoredCredentials};
use serde::{Deserialize, Serialize};

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

    /// Adds or replaces a user.
    pub fn set(&mut self, name: &str, creds: &StoredCredentials) -> anyhow::Result<()> {
        ftp_storage::validate_user_name(name)
            .with_context(|| format!("{name:?} is not a valid user name"))?;
        self.users.insert(
            name.to_string(),
            UserEntry {
                salt: hex::encode(&creds.salt),
                iterations: creds.iterations,
                stored_key: hex::encode(creds.stored_key),
                server_key: hex::encode(creds.server_key),
            },
        );
        Ok(())
    }

    /// Removes a user; false when there was none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// The verifiers of every user, and the server secret.
    fn parsed(&self) -> anyhow::Result<(Vec<u8>, BTreeMap<String, StoredCredentials>)> {
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

/// The users a running server authenticates against.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    state: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    modified: Option<SystemTime>,
    secret: Vec<u8>,
    users: BTreeMap<String, StoredCredentials>,
}

impl Users {
    /// Loads the users file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let loaded = Loaded::read(path)?;
        Ok(Users {
            path: path.to_path_buf(),
            state: RwLock::new(loaded),
        })
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
        self.reload_if_changed();
        let state = self.read();
        match state.users.get(user) {
            Some(creds) => (creds.clone(), true),
            None => {
                let iterations = state.typical_iterations();
                (
                    scram::fake_credentials(&state.secret, user, iterations),
                    false,
                )
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn reload_if_changed(&self) {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == self.read().modified {
            return;
        }
        match Loaded::read(&self.path) {
            Ok(loaded) => {
                tracing::info!(users = loaded.users.len(), "users file reloaded");
                *self.state.write().unwrap_or_else(|p| p.into_inner()) = loaded;
            }
            Err(e) => tracing::warn!("keeping the previous users: {e:#}"),
        }
    }
}

impl Loaded {
    fn read(path: &Path) -> anyhow::Result<Loaded> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let (secret, users) = UsersFile::load(path)?.parsed()?;
        Ok(Loaded {
            modified,
            secret,
            users,
        })
    }

    /// The iteration count most users have, so fake challenges blend in.
    fn typical_iterations(&self) -> u32 {
        let mut counts = BTreeMap::<u32, usize>::new();
        for c in self.users.values() {
            *counts.entry(c.iterations).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .map_or(scram::DEFAULT_ITERATIONS, |(i, _)| i)
    }
}

impl Users {
    /// Reads the users file again: a short summary of what changed, or why
    /// the file was refused (then the previous users are kept).
    pub fn reload(&self) -> anyhow::Result<String> {
        let loaded = Loaded::read(&self.path)?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let added: Vec<&str> = loaded
            .users
            .keys()
            .filter(|n| !state.users.contains_key(*n))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = state
            .users
            .keys()
            .filter(|n| !loaded.users.contains_key(*n))
            .map(String::as_str)
            .collect();
        let mut summary = format!("{} users", loaded.users.len());
        if !added.is_empty() {
            summary += &format!(" (added {})", added.join(", "));
        }
        if !removed.is_empty() {
            summary += &format!(" (removed {})", removed.join(", "));
        }
        *state = loaded;
        Ok(summary)
    }
}

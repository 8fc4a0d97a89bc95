//! Login keys saved by `ftp-client login`, so later commands need neither a
//! password prompt nor PBKDF2.
//!
//! The file is `$XDG_CONFIG_HOME/ftp-client/credentials.toml` (by default
//! `~/.config/...`), mode 0600 in a 0700 directory. It holds, per
//! `user@host:port`, the salt, the iteration count, ClientKey and ServerKey:
//! enough to log in to that one server as that user (like an SSH key without
//! a passphrase), never the password itself. `ftp-client logout` deletes them.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ftp_shared::scram::ScramKeys;
use serde::{Deserialize, Serialize};

use crate::{SavedKeys, Target};

/// The saved logins.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    /// The login that commands without `--server` use.
    pub default: Option<String>,
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    salt: String,
    iterations: u32,
    client_key: String,
    server_key: String,
}

/// Writes `text` to `path` atomically with mode 0600, in a directory
/// created with mode 0700: a private temp file beside it (removed on any
/// failure), flushed and renamed over it.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("the path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let written = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)?;
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Where the saved logins live.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir().context("cannot tell the config directory (is HOME set?)")?;
    Ok(dir.join("ftp-client").join("credentials.toml"))
}

impl Store {
    /// Reads the store; an absent file is an empty store.
    pub fn load(path: &Path) -> anyhow::Result<Store> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not valid; delete it and log in again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the store atomically with mode 0600 (or deletes it when empty).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if self.servers.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot delete {}", path.display()))
                }
                _ => Ok(()),
            };
        }
        let text = toml::to_string(self)?;
        write_private(path, &text)
    }

    /// Saves the keys of `target` and makes it the default.
    pub fn insert(&mut self, target: &Target, saved: &SavedKeys) {
        self.servers.insert(
            target.to_string(),
            Entry {
                salt: hex::encode(&saved.salt),
                iterations: saved.iterations,
                client_key: hex::encode(saved.keys.client_key),
                server_key: hex::encode(saved.keys.server_key),
            },
        );
        self.default = Some(target.to_string());
    }

    /// The keys saved for `target`, if any.
    pub fn get(&self, target: &Target) -> anyhow::Result<Option<SavedKeys>> {
        let Some(e) = self.servers.get(&target.to_string()) else {
            return Ok(None);
        };
        let key = |h: &str| -> anyhow::Result<[u8; 32]> {
            hex::decode(h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .context("a saved key is damaged; log in again")
        };
        Ok(Some(SavedKeys {
            salt: hex::decode(&e.salt).context("a saved salt is damaged; log in again")?,
            iterations: e.iterations,
            keys: ScramKeys {
                client_key: key(&e.client_key)?,
                server_key: key(&e.server_key)?,
            },
        }))
    }

    /// The default login.
    pub fn default_target(&self) -> anyhow::Result<Option<Target>> {
        match &self.default {
            None => Ok(None),
            Some(t) => match t.parse() {
                Ok(t) => Ok(Some(t)),
                Err(e) => bail!("the saved default login is damaged: {e}"),
            },
        }
    }

    /// Forgets `target`; false when nothing was saved for it.
    pub fn remove(&mut self, target: &Target) -> bool {
        let key = target.to_string();
        if self.default.as_deref() == Some(key.as_str()) {
            self.default = None;
        }
        self.servers.remove(&key).is_some()
    }
}

//! The server's configuration file (`ftp-server --config FILE`).
//!
//! Every command-line option of `serve` has a key here; a value given on the
//! command line wins over the file, and the file over the built-in default.
//! Unknown keys are errors, so a misspelt limit is never silently ignored.
//! Relative paths in the file are relative to the file's own directory.
//!
//! ```toml
//! listen = "0.0.0.0:2121"
//! root = "/srv/ftp-data"
//! users = "/etc/ftp-server/users.toml"
//! fsync = true
//! tls_cert = "/etc/letsencrypt/live/files.example.com/fullchain.pem"
//! tls_key = "/etc/letsencrypt/live/files.example.com/privkey.pem"
//! # insecure_plaintext = true      # no TLS: only on a trusted network
//! home_mode = "0700"               # new homes (octal); existing ones keep theirs
//! file_mode = "0600"               # new files (octal)
//!
//! [limits]
//! max_connections = 512
//! max_connections_per_address = 64
//! max_unauthenticated = 128
//! handshake_timeout_secs = 20
//! idle_timeout_secs = 300
//! transfer_timeout_secs = 60
//! max_file_size = 68719476736
//! quota_bytes = 10737418240        # per user; no quota when absent
//! max_auth_failures = 3
//! auth_failure_delay_ms = 300
//! lockout_failures = 10
//! lockout_secs = 900
//! shutdown_grace_secs = 30
//! max_open_files_per_user = 256
//! listing_memory = 33554432        # bytes of listing pages, all connections
//! max_unauthenticated_per_address = 16
//! lockout_entries = 100000         # per failed-login table
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::Limits;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub root: Option<PathBuf>,
    pub users: Option<PathBuf>,
    pub fsync: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_plaintext: Option<bool>,
    pub home_mode: Option<String>,
    pub file_mode: Option<String>,
    #[serde(default)]
    pub limits: LimitsFile,
}

/// The `[limits]` table; see [`Limits`] for what each one bounds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub max_unauthenticated: Option<usize>,
    pub handshake_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub transfer_timeout_secs: Option<u64>,
    pub max_file_size: Option<u64>,
    pub quota_bytes: Option<u64>,
    pub max_auth_failures: Option<u32>,
    pub auth_failure_delay_ms: Option<u64>,
    pub lockout_failures: Option<u32>,
    pub lockout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
    pub max_open_files_per_user: Option<usize>,
    pub listing_memory: Option<usize>,
    pub max_unauthenticated_per_address: Option<usize>,
    pub lockout_entries: Option<usize>,
}

impl ConfigFile {
    /// Reads and parses `path`; paths in it become relative to its directory.
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let mut file: ConfigFile = toml::from_str(&text)
            .with_context(|| format!("the configuration file {} is not valid", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in [
            &mut file.root,
            &mut file.users,
            &mut file.tls_cert,
            &mut file.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(file)
    }

    /// The limits: the file's values over the defaults.
    pub fn limits(&self) -> Limits {
        let f = &self.limits;
        let d = Limits::default();
        let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        Limits {
            max_connections: f.max_connections.unwrap_or(d.max_connections),
            max_connections_per_address: f
                .max_connections_per_address
                .unwrap_or(d.max_connections_per_address),
            max_unauthenticated: f.max_unauthenticated.unwrap_or(d.max_unauthenticated),
            handshake_timeout: secs(f.handshake_timeout_secs, d.handshake_timeout),
            idle_timeout: secs(f.idle_timeout_secs, d.idle_timeout),
            transfer_timeout: secs(f.transfer_timeout_secs, d.transfer_timeout),
            max_file_size: f.max_file_size.unwrap_or(d.max_file_size),
            quota_bytes: f.quota_bytes.or(d.quota_bytes),
            max_auth_failures: f.max_auth_failures.unwrap_or(d.max_auth_failures),
            auth_failure_delay: f
                .auth_failure_delay_ms
                .map_or(d.auth_failure_delay, Duration::from_millis),
            lockout_failures: f.lockout_failures.unwrap_or(d.lockout_failures),
            lockout: secs(f.lockout_secs, d.lockout),
            shutdown_grace: secs(f.shutdown_grace_secs, d.shutdown_grace),
            max_open_files_per_user: f
                .max_open_files_per_user
                .unwrap_or(d.max_open_files_per_user),
            listing_memory: f.listing_memory.unwrap_or(d.listing_memory),
            max_unauthenticated_per_address: f
                .max_unauthenticated_per_address
                .unwrap_or(d.max_unauthenticated_per_address),
            lockout_entries: f.lockout_entries.unwrap_or(d.lockout_entries),
        }
    }
}

/// A mode in octal (`"0750"`, `"640"`): at most `0777`, with the owner's
/// read and write (and, for a directory, search), and never writable by
/// others.
pub fn parse_mode(text: &str, key: &str, dir: bool) -> anyhow::Result<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|_| !digits.is_empty() && digits.len() <= 4 && !digits.starts_with('+'))
        .filter(|m| *m <= 0o777)
        .with_context(|| {
            format!("{key} = {text:?} is not a mode in octal between 0000 and 0777 (e.g. \"0750\")")
        })?;
    let owner = if dir { 0o700 } else { 0o600 };
    if mode & owner != owner {
        anyhow::bail!(
            "{key} = {text:?} lacks the owner's {}: the server could not use what it creates",
            if dir { "rwx" } else { "rw" }
        );
    }
    if mode & 0o002 != 0 {
        anyhow::bail!("{key} = {text:?} lets any local account write: refused");
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_override_defaults_and_unknown_keys_are_refused() {
        let file: ConfigFile =
            toml::from_str("fsync = false\n[limits]\nidle_timeout_secs = 7\n").unwrap();
        let limits = file.limits();
        assert_eq!(limits.idle_timeout, Duration::from_secs(7));
        assert_eq!(limits.max_connections, Limits::default().max_connections);
        assert_eq!(file.fsync, Some(false));
        let err = toml::from_str::<ConfigFile>("[limits]\nidle_timeout = 7\n").unwrap_err();
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn modes_are_octal_owner_usable_and_not_world_writable() {
        assert_eq!(parse_mode("0750", "home_mode", true).unwrap(), 0o750);
        assert_eq!(parse_mode("640", "file_mode", false).unwrap(), 0o640);
        for bad in ["", "0778", "1777", "abc", "0800", "+640", "07777"] {
            assert!(parse_mode(bad, "file_mode", false).is_err(), "{bad}");
        }
        assert!(parse_mode("0666", "file_mode", false).is_err());
        assert!(parse_mode("0400", "file_mode", false).is_err());
        assert!(parse_mode("0600", "home_mode", true).is_err());
    }
}

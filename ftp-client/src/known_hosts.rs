//! The certificates the client trusts without a CA, like ssh's known_hosts:
//! one line per `HOST:PORT`, its certificate's SHA-256 fingerprint pinned
//! at the first connection (on a terminal after asking, in scripts with
//! `--accept-new-host` or `--pin FINGERPRINT`).
//!
//! The file is `known_hosts` beside the saved logins
//! (`$XDG_CONFIG_HOME/ftp-client/known_hosts`), mode 0600, lines of
//! `HOST:PORT SHA256:AB:CD:...`; `#` starts a comment. `ftp-client
//! forget-host HOST:PORT` removes a line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ftp_shared::tls::Fingerprint;

use crate::credentials::write_private;

/// Where the pins live.
pub fn default_path() -> anyhow::Result<PathBuf> {
    Ok(crate::credentials::default_path()?.with_file_name("known_hosts"))
}

/// The pinned hosts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    hosts: BTreeMap<String, Fingerprint>,
}

impl KnownHosts {
    /// Reads the file; an absent file pins nothing.
    pub fn load(path: &Path) -> anyhow::Result<KnownHosts> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KnownHosts::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut hosts = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .split_once(char::is_whitespace)
                .and_then(|(host, fp)| Some((host, fp.trim().parse::<Fingerprint>().ok()?)));
            let Some((host, fp)) = parsed else {
                bail!(
                    "{} line {}: expected `HOST:PORT SHA256:...`; fix or delete that line",
                    path.display(),
                    n + 1
                );
            };
            hosts.insert(host.to_string(), fp);
        }
        Ok(KnownHosts { hosts })
    }

    /// The fingerprint pinned for `host` (`HOST:PORT`).
    pub fn get(&self, host: &str) -> Option<Fingerprint> {
        self.hosts.get(host).copied()
    }

    pub fn insert(&mut self, host: &str, fingerprint: Fingerprint) {
        self.hosts.insert(host.to_string(), fingerprint);
    }

    /// Forgets `host`; false when it was not pinned.
    pub fn remove(&mut self, host: &str) -> bool {
        self.hosts.remove(host).is_some()
    }

    /// Writes the file atomically, mode 0600 in a 0700 directory.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = String::from(
            "# Certificates pinned by ftp-client at the first connection to each HOST:PORT.\n",
        );
        for (host, fp) in &self.hosts {
            text.push_str(&format!("{host} {fp}\n"));
        }
        write_private(path, &text)
    }

    /// Pins `host` in the file at `path` (read again first, so pins saved
    /// meanwhile by another command are kept).
    pub fn pin(path: &Path, host: &str, fingerprint: Fingerprint) -> anyhow::Result<()> {
        let mut hosts = KnownHosts::load(path)?;
        hosts.insert(host, fingerprint);
        hosts.save(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pins_round_trip_through_the_file_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let a = Fingerprint::of(b"a");
        let b = Fingerprint::of(b"b");
        KnownHosts::pin(&path, "files.example.com:2121", a).unwrap();
        KnownHosts::pin(&path, "[::1]:2121", b).unwrap();
        let hosts = KnownHosts::load(&path).unwrap();
        assert_eq!(hosts.get("files.example.com:2121"), Some(a));
        assert_eq!(hosts.get("[::1]:2121"), Some(b));
        assert_eq!(hosts.get("other:2121"), None);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "# comment\n\nhost:1 SHA256:00\n").unwrap();
        let err = KnownHosts::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}

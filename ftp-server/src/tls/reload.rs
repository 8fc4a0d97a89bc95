//! The certificate in use, and its replacement without a restart: on
//! SIGHUP (see [`crate::reload`]), and when the certificate or key file changes (checked every few
//! seconds), the pair is loaded again; a pair that does not load is logged
//! and the previous one kept. Sessions already running keep their TLS state;
//! new connections get the new certificate.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ftp_shared::tls::Fingerprint;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{Loaded, TlsFiles, load};

/// How often the files are looked at for a change.
pub const POLL: Duration = Duration::from_secs(5);

/// One certificate for every connection.
#[derive(Debug)]
pub struct Fixed(pub Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The certificate loaded from [`TlsFiles`], replaceable while serving.
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    current: RwLock<Current>,
}

#[derive(Debug)]
struct Current {
    loaded: Loaded,
    stamp: Stamp,
}

/// What tells that a file changed: its modification time and size, for both files.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key].map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
}

impl Reloading {
    /// Loads the pair (an error when it does not load).
    pub fn load(files: TlsFiles) -> anyhow::Result<Reloading> {
        let stamp = stamp(&files);
        let loaded = load(&files)?;
        Ok(Reloading {
            files,
            current: RwLock::new(Current { loaded, stamp }),
        })
    }

    /// The fingerprint of the certificate new connections get.
    pub fn fingerprint(&self) -> Fingerprint {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .loaded
            .fingerprint
    }

    /// Loads the files again (`force`), or only when they changed since the
    /// last load. Logs the outcome; a failure keeps the current pair. The
    /// outcome in a few words ("unchanged", "reloaded, fingerprint ...").
    pub fn reload(&self, force: bool) -> String {
        let now = stamp(&self.files);
        if !force && now == self.current.read().unwrap_or_else(|p| p.into_inner()).stamp {
            return "unchanged".to_owned();
        }
        match load(&self.files) {
            Ok(loaded) => {
                let fingerprint = loaded.fingerprint;
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                let changed = current.loaded.fingerprint != fingerprint;
                *current = Current { loaded, stamp: now };
                drop(current);
                if changed {
                    tracing::info!(%fingerprint, "TLS certificate reloaded");
                    format!("reloaded, fingerprint {fingerprint}")
                } else {
                    "unchanged".to_owned()
                }
            }
            Err(e) => {
                // Remember the stamp so a broken pair is reported once, not
                // at every poll.
                self.current
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .stamp = now;
                tracing::error!("keeping the previous TLS certificate: {e:#}");
                "refused, previous certificate kept".to_owned()
            }
        }
    }

    /// Reloads whenever the files change, until the runtime ends (SIGHUP is
    /// [`crate::reload`]'s).
    pub fn watch(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                poll.tick().await;
                let this = this.clone();
                // Reading files is blocking work.
                let _ = tokio::task::spawn_blocking(move || this.reload(false)).await;
            }
        });
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .loaded
                .key
                .clone(),
        )
    }
}

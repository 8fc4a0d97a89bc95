//! SIGHUP, in every mode: the users file, the TLS certificate (when serving
//! TLS) and the configuration file are read again, and one line tells what
//! changed. Users and the certificate are replaced live; a file that does
//! not load is refused and what runs is kept. The configuration's settings
//! (listen address, root, limits, modes...) are copied into the listener and
//! every session at start, so a changed value is checked and reported as
//! taking effect at the next start, never silently ignored.

use std::sync::Arc;

use crate::Shared;
use crate::tls::reload::Reloading;
use crate::users::Reload;

/// The configuration as `(key, value)` pairs, to compare two of them.
pub type Described = Vec<(String, String)>;

/// Reads and checks the configuration again, as `serve` would at start.
pub type Reread = Box<dyn Fn() -> anyhow::Result<Described> + Send + Sync>;

/// What a SIGHUP reloads.
pub struct Reloader<S> {
    /// The configuration the server runs with.
    pub running: Described,
    pub reread: Reread,
    pub shared: Arc<Shared<S>>,
    pub certificate: Option<Arc<Reloading>>,
}

impl<S> std::fmt::Debug for Reloader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Reloader<S> {
    /// Reloads everything once; the summary of what changed.
    pub fn reload(&self) -> String {
        let mut parts = Vec::new();
        match self.shared.users.reload() {
            Reload::Unchanged => parts.push("users: unchanged".to_owned()),
            Reload::Reloaded {
                users,
                added,
                removed,
                changed,
                unlocked,
            } => parts.push(format!(
                "users: {users} users ({added} added, {removed} removed, {changed} changed, {unlocked} unlocked)"
            )),
            Reload::Refused(why) => {
                tracing::error!("reload: users file refused, previous users kept: {why}");
                parts.push("users: refused, previous users kept".to_owned());
            }
        }
        if let Some(certificate) = &self.certificate {
            parts.push(format!("certificate: {}", certificate.reload(true)));
        }
        match (self.reread)() {
            Ok(now) => {
                let changes = changes(&self.running, &now);
                if changes.is_empty() {
                    parts.push("configuration: unchanged".to_owned());
                }
                parts.extend(changes);
            }
            Err(e) => {
                tracing::error!("reload: configuration refused, running configuration kept: {e:#}");
                parts.push("configuration: refused, running configuration kept".to_owned());
            }
        }
        parts.join("; ")
    }

    /// Reloads at every SIGHUP until the runtime ends. The handler is
    /// installed before this returns.
    pub fn watch(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let this = Arc::new(self);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let this = this.clone();
                // Reading files is blocking work.
                let summary = tokio::task::spawn_blocking(move || this.reload()).await;
                match summary {
                    Ok(summary) => tracing::info!("reload: {summary}"),
                    Err(e) => tracing::error!("reload failed: {e}"),
                }
            }
        });
        Ok(())
    }
}

/// `key: before -> after (takes effect at the next start)` for each
/// difference.
fn changes(running: &Described, now: &Described) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in now {
        let before = running.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if before != Some(value) {
            let before = before.map_or("(none)", String::as_str);
            out.push(format!(
                "{key}: {before} -> {value} (takes effect at the next start)"
            ));
        }
    }
    out
}

/// One pair per field of a `{:#?}` struct (e.g. the limits), each key
/// prefixed with `prefix.`.
pub fn fields(prefix: &str, value: &impl std::fmt::Debug) -> Described {
    format!("{value:#?}")
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("    ")?;
            let (key, value) = line.split_once(": ")?;
            (!key.starts_with(' ')).then(|| {
                (
                    format!("{prefix}.{key}"),
                    value.trim_end_matches(',').to_owned(),
                )
            })
        })
        .collect()
}

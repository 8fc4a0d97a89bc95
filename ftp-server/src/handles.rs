//! File handles: how many one user may hold open, and how many the whole
//! server may, so that one user can never starve the others.
//!
//! Every upload in progress or waiting to be published holds its temp file
//! open, every download its file. Each takes a [`Handle`] first: one of the
//! user's ([`Limits::max_open_files_per_user`]) and one of the process's,
//! which are the descriptor limit less a reserve for what every connection
//! needs besides (its socket, its home, the TLS and users files, the log) so
//! that the server can always accept, log in and serve a small request.
//! When none is free the request is refused with `BUSY` (try again), never
//! failed with `INTERNAL`; a session first publishes its own waiting uploads,
//! which gives their handles back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ftp_shared::ErrorCode;

use crate::Limits;
use crate::error::CmdError;

/// Descriptors kept out of the budget besides three per connection (its
/// socket, its home, the directory it may be listing).
const RESERVE: u64 = 256;

/// The handles each user holds.
#[derive(Debug, Default)]
pub struct UserHandles {
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open file, counted against its user and the process until dropped.
#[derive(Debug)]
pub struct Handle {
    held: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
    _global: tokio::sync::OwnedSemaphorePermit,
}

impl UserHandles {
    /// A handle for `user`, or `BUSY` when the user or the server has none to
    /// spare.
    pub fn acquire(&self, user: &str, limits: &Limits) -> Result<Handle, CmdError> {
        let global = process_budget(limits)
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                tracing::warn!("no file handle left for new transfers");
                busy("the server has too many files open")
            })?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(user.to_owned()).or_insert(0);
        if *n >= limits.max_open_files_per_user {
            return Err(busy(&format!(
                "too many files open for this user (at most {})",
                limits.max_open_files_per_user
            )));
        }
        *n += 1;
        Ok(Handle {
            held: self.held.clone(),
            user: user.to_owned(),
            _global: global,
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.user);
            }
        }
    }
}

fn busy(why: &str) -> CmdError {
    CmdError::refused(ErrorCode::BUSY, format!("{why}, try again later"))
}

/// The handles the process may hand out: its descriptor limit (raised to
/// the hard limit first) less the reserve. Decided once.
fn process_budget(limits: &Limits) -> &'static Arc<tokio::sync::Semaphore> {
    static BUDGET: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    BUDGET.get_or_init(|| {
        let limit = raise_descriptor_limit();
        let reserve = RESERVE + 3 * limits.max_connections as u64;
        let budget = limit.saturating_sub(reserve).max(16);
        tracing::info!(limit, budget, "file handles for transfers");
        Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(budget)
                .unwrap_or(usize::MAX)
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        ))
    })
}

/// Raises the soft descriptor limit to the hard one; returns the limit.
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1 << 20)
}

//! Per-user quotas: the bytes a user makes the server keep.
//!
//! Each user with a quota has an account: `used`, the bytes of their files
//! and of their interrupted uploads kept for a resume, and `reserved`, what
//! uploads in progress have set aside. It is measured once, when the user's
//! first session in this process logs in (a walk of the home without
//! recursion; the sessions of that user wait for it), and from then on kept
//! up to date by every operation, from the bytes the storage reports it
//! freed or kept, under the user's namespace lock: no operation measures the
//! whole home again, and no two operations can count the same bytes.
//!
//! An upload reserves its announced size (less what a resume takes over)
//! before a byte is written; it can never write more (a longer upload is
//! refused with `SIZE_MISMATCH`), so uploads at once cannot overshoot
//! together. Published, its reservation becomes used, less what it replaced;
//! kept for a resume, its kept bytes become used; failed, it gives its
//! reservation back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ftp_shared::ErrorCode;
use ftp_shared::text::escape;
use ftp_storage::{Home, Suspended};

use crate::cmd::blocking;
use crate::error::CmdError;
use crate::handles::UserHandles;
use crate::inflight::InFlight;

/// One session's view of its user's account.
#[derive(Debug)]
pub struct UserQuota {
    pub book: Arc<QuotaBook>,
    pub user: String,
    /// The bytes the user may make the server keep; `None`: no quota.
    pub quota: Option<u64>,
}

impl UserQuota {
    /// The account of `user` (measured from `home` if it is the first of
    /// this user's sessions).
    pub async fn open<H: Home>(
        book: Arc<QuotaBook>,
        user: String,
        quota: Option<u64>,
        home: &Arc<H>,
    ) -> Result<UserQuota, CmdError> {
        if quota.is_some() {
            // One measurement at a time; the others find it done.
            let _measuring = book.measuring.lock().await;
            if !book.is_known(&user) {
                let measured = home.clone();
                let used = blocking(move || measured.usage())
                    .await?
                    .map_err(|e| CmdError::storage(e, "~"))?;
                tracing::debug!(user = %user, used, "quota account measured");
                book.set_used(&user, used);
            }
        }
        Ok(UserQuota { book, user, quota })
    }

    /// Reserves `bytes` for an upload to `path`, or refuses it with
    /// `QUOTA_EXCEEDED`. `None` when there is no quota.
    pub fn reserve(&self, bytes: u64, path: &str) -> Result<Option<Reservation>, CmdError> {
        let Some(quota) = self.quota else {
            return Ok(None);
        };
        match self.book.reserve(&self.user, bytes, quota) {
            Some(r) => Ok(Some(r)),
            None => Err(CmdError::refused(
                ErrorCode::QUOTA_EXCEEDED,
                format!("quota of {quota} bytes exceeded: {}", escape(path)),
            )),
        }
    }

    /// An operation freed `bytes` (a file removed or replaced).
    pub fn freed(&self, bytes: u64) {
        if self.quota.is_some() {
            self.book.adjust(&self.user, 0, bytes);
        }
    }

    /// An interrupted upload was kept for a resume.
    pub fn kept(&self, suspended: Suspended) {
        if self.quota.is_some() {
            self.book
                .adjust(&self.user, suspended.kept, suspended.freed);
        }
    }

    /// The in-flight uploads of every user (see [`InFlight`]).
    pub fn in_flight(&self) -> &InFlight {
        &self.book.in_flight
    }

    /// The file handles of every user (see [`UserHandles`]).
    pub fn handles(&self) -> &UserHandles {
        &self.book.handles
    }
}

/// What the server keeps per user: quota accounts, uploads in flight, open
/// file handles.
#[derive(Debug, Default)]
pub struct QuotaBook {
    accounts: Mutex<HashMap<String, Account>>,
    measuring: tokio::sync::Mutex<()>,
    pub in_flight: InFlight,
    pub handles: UserHandles,
}

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    used: u64,
    reserved: u64,
}

/// Bytes set aside for one upload; given back when dropped unless
/// [`Reservation::commit`] counted them as used.
#[derive(Debug)]
pub struct Reservation {
    book: Arc<QuotaBook>,
    user: String,
    bytes: u64,
}

impl QuotaBook {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Account>) -> T) -> T {
        f(&mut self.accounts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether `user`'s account was measured.
    pub fn is_known(&self, user: &str) -> bool {
        self.with(|a| a.contains_key(user))
    }

    /// Records the bytes `user` makes the server keep (measured).
    pub fn set_used(&self, user: &str, used: u64) {
        self.with(|a| a.entry(user.to_string()).or_default().used = used);
    }

    /// The bytes `user` uses and has reserved.
    pub fn usage(&self, user: &str) -> (u64, u64) {
        self.with(|a| a.get(user).map_or((0, 0), |acc| (acc.used, acc.reserved)))
    }

    /// `added` bytes are now kept for `user`, `freed` bytes no longer.
    fn adjust(&self, user: &str, added: u64, freed: u64) {
        self.with(|a| {
            if let Some(account) = a.get_mut(user) {
                account.used = account.used.saturating_add(added).saturating_sub(freed);
            }
        });
    }

    /// Reserves `bytes` for an upload of `user`, if that fits in `quota`.
    pub fn reserve(self: &Arc<Self>, user: &str, bytes: u64, quota: u64) -> Option<Reservation> {
        self.with(|accounts| {
            let account = accounts.entry(user.to_string()).or_default();
            let total = account
                .used
                .saturating_add(account.reserved)
                .saturating_add(bytes);
            if total > quota {
                return None;
            }
            account.reserved += bytes;
            Some(Reservation {
                book: self.clone(),
                user: user.to_string(),
                bytes,
            })
        })
    }
}

impl Reservation {
    /// A resumed upload took over `kept` bytes kept for it: they move from
    /// used to this reservation.
    pub fn absorb(&mut self, kept: u64) {
        self.book.with(|a| {
            if let Some(account) = a.get_mut(&self.user) {
                account.used = account.used.saturating_sub(kept);
                account.reserved += kept;
            }
        });
        self.bytes += kept;
    }

    /// The upload was published, freeing `freed` bytes (what it replaced):
    /// its bytes are now used.
    pub fn commit(self, freed: u64) {
        self.book.with(|a| {
            if let Some(account) = a.get_mut(&self.user) {
                account.used = account
                    .used
                    .saturating_add(self.bytes)
                    .saturating_sub(freed);
            }
        });
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.book.with(|a| {
            if let Some(account) = a.get_mut(&self.user) {
                account.reserved = account.reserved.saturating_sub(self.bytes);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_are_given_back() {
        let book = Arc::new(QuotaBook::default());
        book.set_used("alice", 100);
        let a = book.reserve("alice", 500, 1000).expect("fits");
        let b = book.reserve("alice", 400, 1000).expect("fits");
        assert!(book.reserve("alice", 1, 1000).is_none(), "1001 > 1000");
        drop(b);
        let c = book.reserve("alice", 300, 1000).expect("b was given back");
        a.commit(0);
        drop(c);
        assert_eq!(book.usage("alice"), (600, 0));
        assert!(book.reserve("alice", 401, 1000).is_none(), "600 used");
        assert!(book.reserve("alice", 400, 1000).is_some());
        assert!(
            book.reserve("bob", 1000, 1000).is_some(),
            "accounts are separate"
        );
    }

    #[test]
    fn replaced_kept_and_resumed_bytes_are_counted_once() {
        let book = Arc::new(QuotaBook::default());
        book.set_used("alice", 300);
        // Replacing a 300-byte file with a 200-byte one.
        book.reserve("alice", 200, 1000).unwrap().commit(300);
        assert_eq!(book.usage("alice"), (200, 0));
        // A cut upload keeps 500 bytes, replacing 100 kept before.
        book.set_used("alice", 300);
        book.adjust("alice", 500, 100);
        assert_eq!(book.usage("alice"), (700, 0));
        // Its resume reserves the rest, then takes the kept bytes over.
        let mut r = book.reserve("alice", 300, 1000).expect("700 + 300 fits");
        r.absorb(500);
        assert_eq!(book.usage("alice"), (200, 800));
        r.commit(0);
        assert_eq!(book.usage("alice"), (1000, 0));
        assert!(book.reserve("alice", 1, 1000).is_none());
    }
}

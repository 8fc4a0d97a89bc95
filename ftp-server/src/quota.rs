//! Per-user quotas: the bytes a user's home may hold.
//!
//! Each user has an account: the bytes their files use and the bytes that
//! uploads in progress have reserved. An upload reserves its announced size
//! before a byte is written (it can never write more: a longer upload is
//! refused with `SIZE_MISMATCH`), so several uploads at once cannot overshoot
//! together. A published upload moves its reservation to the used bytes; a
//! failed one gives it back. The used bytes are measured from the home when
//! an account is first needed, and measured again before an upload would be
//! refused, since replacing or resuming files can make the running count
//! too high. Removing or renaming (over) a file forgets the used bytes, so
//! that the next upload measures them again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ftp_shared::ErrorCode;
use ftp_shared::text::escape;
use ftp_storage::Home;

use crate::cmd::blocking;
use crate::error::CmdError;

/// One session's view of its user's quota.
#[derive(Debug)]
pub struct UserQuota {
    pub book: Arc<QuotaBook>,
    pub user: String,
    /// The bytes the home may hold; `None`: no quota.
    pub quota: Option<u64>,
}

impl UserQuota {
    /// Reserves `bytes` for an upload to `path`, or refuses it with
    /// `QUOTA_EXCEEDED`. `None` when there is no quota.
    pub async fn reserve<H: Home>(
        &self,
        home: &Arc<H>,
        bytes: u64,
        path: &str,
    ) -> Result<Option<Reservation>, CmdError> {
        let Some(quota) = self.quota else {
            return Ok(None);
        };
        if !self.book.is_known(&self.user)
            && let Some(r) = self.measure_and_reserve(home, bytes, quota).await?
        {
            return Ok(Some(r));
        }
        if let Some(r) = self.book.reserve(&self.user, bytes, quota) {
            return Ok(Some(r));
        }
        // Replaced or deleted files can make the running count too high:
        // measure again before refusing.
        match self.measure_and_reserve(home, bytes, quota).await? {
            Some(r) => Ok(Some(r)),
            None => Err(CmdError::refused(
                ErrorCode::QUOTA_EXCEEDED,
                format!("quota of {quota} bytes exceeded: {}", escape(path)),
            )),
        }
    }

    /// Files were removed or replaced: the used bytes are measured again
    /// before the next reservation (reservations in progress are kept).
    pub fn forget_used(&self) {
        if self.quota.is_some() {
            self.book.forget_used(&self.user);
        }
    }

    async fn measure_and_reserve<H: Home>(
        &self,
        home: &Arc<H>,
        bytes: u64,
        quota: u64,
    ) -> Result<Option<Reservation>, CmdError> {
        let measured = home.clone();
        let used = blocking(move || measured.usage())
            .await?
            .map_err(|e| CmdError::storage(e, "~"))?;
        self.book.set_used(&self.user, used);
        Ok(self.book.reserve(&self.user, bytes, quota))
    }
}

/// The accounts of every user with a quota.
#[derive(Debug, Default)]
pub struct QuotaBook {
    accounts: Mutex<HashMap<String, Account>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    used: u64,
    /// Whether `used` was measured (and is kept up to date since).
    measured: bool,
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

    /// Whether `user`'s used bytes are known.
    pub fn is_known(&self, user: &str) -> bool {
        self.with(|a| a.get(user).is_some_and(|account| account.measured))
    }

    /// Records the bytes `user`'s home uses now (measured from the disk).
    pub fn set_used(&self, user: &str, used: u64) {
        self.with(|a| {
            let account = a.entry(user.to_string()).or_default();
            account.used = used;
            account.measured = true;
        });
    }

    /// Makes `user`'s used bytes unknown, to be measured again; what uploads
    /// in progress reserved stays reserved.
    pub fn forget_used(&self, user: &str) {
        self.with(|a| {
            if let Some(account) = a.get_mut(user) {
                account.measured = false;
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
    /// The upload was published: its bytes are now used.
    pub fn commit(self) {
        self.book.with(|a| {
            if let Some(account) = a.get_mut(&self.user) {
                account.used = account.used.saturating_add(self.bytes);
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
        a.commit();
        drop(c);
        assert!(book.reserve("alice", 401, 1000).is_none(), "600 used");
        assert!(book.reserve("alice", 400, 1000).is_some());
        assert!(
            book.reserve("bob", 1000, 1000).is_some(),
            "accounts are separate"
        );
    }

    #[test]
    fn forgotten_usage_is_unknown_and_reservations_stay() {
        let book = Arc::new(QuotaBook::default());
        assert!(!book.is_known("alice"));
        book.set_used("alice", 900);
        assert!(book.is_known("alice"));
        let r = book.reserve("alice", 100, 1000).expect("fits");
        book.forget_used("alice");
        assert!(!book.is_known("alice"));
        // Measured again: the files were deleted, the reservation holds.
        book.set_used("alice", 0);
        assert!(book.reserve("alice", 901, 1000).is_none(), "100 reserved");
        assert!(book.reserve("alice", 900, 1000).is_some());
        drop(r);
    }
}

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
//! too high.

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
        self.with(|a| a.contains_key(user))
    }

    /// Records the bytes `user`'s home uses now (measured from the disk).
    pub fn set_used(&self, user: &str, used: u64) {
        self.with(|a| a.entry(user.to_string()).or_default().used = used);
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
}

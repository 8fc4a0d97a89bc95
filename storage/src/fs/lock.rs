//! One lock per user over the changes to their namespace.
//!
//! Sessions of one user run at once, and quotas count bytes incrementally:
//! what an operation freed (a replaced file, superseded kept bytes) must be
//! measured and changed in one step, or two sessions replacing the same file
//! would both subtract its size. Checking what a moved directory holds must
//! not race a `mkdir` beneath it either. So every operation that changes a
//! user's namespace (publishing, renaming, removing, creating directories,
//! keeping bytes for a resume) holds that user's lock for its few system
//! calls; reads never take it. The lock is held on blocking threads only.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

/// A user's namespace lock.
#[derive(Debug, Clone)]
pub(super) struct Namespace(Arc<Mutex<()>>);

static LOCKS: LazyLock<Mutex<HashMap<String, Weak<Mutex<()>>>>> = LazyLock::new(Mutex::default);

/// Entries kept before the map is swept of locks no one holds.
const SWEEP_AT: usize = 1024;

impl Namespace {
    /// The lock of `user`, shared by every home and upload of theirs.
    pub(super) fn of(user: &str) -> Namespace {
        let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = locks.get(user).and_then(Weak::upgrade) {
            return Namespace(lock);
        }
        if locks.len() >= SWEEP_AT {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(Mutex::new(()));
        locks.insert(user.to_owned(), Arc::downgrade(&lock));
        Namespace(lock)
    }

    /// Holds the lock until the guard is dropped.
    pub(super) fn hold(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_user() {
        let a = Namespace::of("lock-test-a");
        let a2 = Namespace::of("lock-test-a");
        let b = Namespace::of("lock-test-b");
        assert!(Arc::ptr_eq(&a.0, &a2.0));
        assert!(!Arc::ptr_eq(&a.0, &b.0));
        let _held = a.hold();
        assert!(b.0.try_lock().is_ok(), "other users are not blocked");
        assert!(a2.0.try_lock().is_err());
    }
}

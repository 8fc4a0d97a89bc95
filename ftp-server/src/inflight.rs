//! Uploads in progress, by user, path and size, so that a client which
//! reconnects at once after a cut finds the bytes kept for it.
//!
//! When a connection is cut in the middle of an upload, its session notices,
//! stops the writer and keeps the bytes for a resume: a few milliseconds of
//! work. A client reconnecting at once could ask `Partial` before that is
//! done, be told nothing was kept and start over. So `Partial`, and a `Put`
//! that resumes, first wait (at most [`SETTLE_WAIT`]) for uploads of the same
//! path and size still in progress on other connections of the user to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How long a `Partial` or resuming `Put` waits for an upload of the same
/// file in progress elsewhere to end.
pub const SETTLE_WAIT: Duration = Duration::from_secs(2);

type Key = (String, String, u64);

/// The uploads in progress of every user.
#[derive(Debug, Default)]
pub struct InFlight {
    uploads: Arc<Mutex<HashMap<Key, watch::Sender<usize>>>>,
}

/// One upload in progress; it ends when this is dropped.
#[derive(Debug)]
pub struct Flight {
    uploads: Arc<Mutex<HashMap<Key, watch::Sender<usize>>>>,
    key: Key,
}

impl InFlight {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, watch::Sender<usize>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an upload of `size` bytes to `path` by `user`.
    pub fn start(&self, user: &str, path: &str, size: u64) -> Flight {
        let key = (user.to_owned(), path.to_owned(), size);
        self.map()
            .entry(key.clone())
            .or_insert_with(|| watch::channel(0).0)
            .send_modify(|n| *n += 1);
        Flight {
            uploads: self.uploads.clone(),
            key,
        }
    }

    /// Waits until no upload of `size` bytes to `path` by `user` is in
    /// progress, or [`SETTLE_WAIT`] has passed.
    pub async fn settled(&self, user: &str, path: &str, size: u64) {
        let key = (user.to_owned(), path.to_owned(), size);
        let Some(mut running) = self.map().get(&key).map(watch::Sender::subscribe) else {
            return;
        };
        let _ = tokio::time::timeout(SETTLE_WAIT, running.wait_for(|n| *n == 0)).await;
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&self.key) {
            tx.send_modify(|n| *n = n.saturating_sub(1));
            if *tx.borrow() == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_same_file_only() {
        let table = InFlight::default();
        let flight = table.start("alice", "a.bin", 10);
        // Another file, or another user's: no wait.
        tokio::time::timeout(
            Duration::from_millis(100),
            table.settled("alice", "a.bin", 11),
        )
        .await
        .expect("another size does not wait");
        tokio::time::timeout(
            Duration::from_millis(100),
            table.settled("bob", "a.bin", 10),
        )
        .await
        .expect("another user does not wait");
        let waiter = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            table.settled("alice", "a.bin", 10).await;
            started.elapsed()
        });
        tokio::task::yield_now().await;
        drop(flight);
        let waited = waiter.await.unwrap();
        assert!(waited < SETTLE_WAIT, "{waited:?}");
    }
}

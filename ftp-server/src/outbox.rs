//! Replies in order, with uploads committed in groups.
//!
//! A client that pipelines many small uploads should not pay one disk flush
//! per file in sequence. A finished upload therefore waits in the outbox, its
//! reply not yet sent, while more requests are already waiting to be read;
//! when none is, or the group is large, every waiting upload is published by
//! one [`Home::commit_all`] (their flushes run in parallel) and the replies go
//! out in the order of the requests. Replies are never reordered and an `Ok`
//! is never sent before its upload is on disk.

use std::sync::Arc;

use ftp_shared::text::escape;
use ftp_shared::{Digest, Response};
use ftp_storage::Home;

use crate::cmd::blocking;
use crate::connection::Connection;
use crate::error::CmdError;

/// Uploads committed together at the most.
const MAX_GROUP: usize = 256;
/// Bytes of waiting uploads that make the group go.
const MAX_GROUP_BYTES: u64 = 64 * 1024 * 1024;

/// A finished upload waiting to be published.
#[derive(Debug)]
pub struct Finished<U> {
    pub upload: U,
    pub path: String,
    pub size: u64,
    pub digest: Digest,
}

#[derive(Debug)]
enum Slot<U> {
    Reply(Response),
    Commit(Finished<U>),
}

/// The replies of a session that have not been sent yet.
#[derive(Debug)]
pub struct Outbox<U> {
    slots: Vec<Slot<U>>,
    commits: usize,
    bytes: u64,
}

impl<U> Default for Outbox<U> {
    fn default() -> Self {
        Outbox {
            slots: Vec::new(),
            commits: 0,
            bytes: 0,
        }
    }
}

impl<U: ftp_storage::Upload> Outbox<U> {
    /// Whether uploads are waiting to be published.
    pub fn has_commits(&self) -> bool {
        self.commits > 0
    }

    /// Whether the waiting group is large enough to publish now.
    pub fn is_full(&self) -> bool {
        self.commits >= MAX_GROUP || self.bytes >= MAX_GROUP_BYTES
    }

    /// Sends `response` now, or queues it behind waiting uploads.
    pub async fn reply(
        &mut self,
        conn: &mut Connection,
        response: Response,
    ) -> Result<(), CmdError> {
        if self.slots.is_empty() {
            conn.send(response).await?;
        } else {
            self.slots.push(Slot::Reply(response));
        }
        Ok(())
    }

    /// Queues a finished upload; its reply is sent when it is published.
    pub fn commit(&mut self, finished: Finished<U>) {
        self.commits += 1;
        self.bytes += finished.size;
        self.slots.push(Slot::Commit(finished));
    }

    /// Publishes the waiting uploads and sends every queued reply, in order.
    pub async fn flush<H: Home<Upload = U>>(
        &mut self,
        conn: &mut Connection,
        home: &Arc<H>,
    ) -> Result<(), CmdError> {
        if self.slots.is_empty() {
            return Ok(());
        }
        let slots = std::mem::take(&mut self.slots);
        self.commits = 0;
        self.bytes = 0;
        let mut uploads = Vec::new();
        let mut order = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Reply(r) => order.push(Ok(r)),
                Slot::Commit(f) => {
                    uploads.push(f.upload);
                    order.push(Err((f.path, f.size, f.digest)));
                }
            }
        }
        let committer = home.clone();
        let mut results = blocking(move || committer.commit_all(uploads))
            .await?
            .into_iter();
        for entry in order {
            let response = match entry {
                Ok(reply) => reply,
                Err((path, size, digest)) => match results.next().expect("one result per upload") {
                    Ok(()) => {
                        tracing::info!(path = %escape(&path), bytes = size, %digest, "stored");
                        Response::Ok
                    }
                    Err(e) => CmdError::storage(e, &path)
                        .reply()
                        .expect("storage errors have a reply"),
                },
            };
            conn.feed(response).await?;
        }
        conn.send_flush().await?;
        Ok(())
    }
}

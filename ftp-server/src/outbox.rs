//! Replies in order, with uploads committed in groups while the next ones
//! arrive.
//!
//! A client that pipelines many small uploads should not pay one disk flush
//! per file in sequence. A finished upload therefore waits in the outbox with
//! its reply unsent. When no commit is running, every waiting upload starts
//! to be published together by one [`Home::commit_all`] on a blocking thread
//! (their flushes run in parallel), while the session goes on receiving the
//! next files, which form the next group. When a group is published, the
//! replies before and of it go out, in the order of the requests. Replies are
//! never reordered and an `Ok` is never sent before its upload is published
//! (and, unless the server runs with `--no-fsync`, on disk).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftp_shared::text::log_text;

use ftp_shared::{Digest, ErrorCode, Request, Response};
use ftp_storage::{Home, StorageError, Upload};
use tokio::task::JoinHandle;

use crate::connection::Connection;
use crate::error::CmdError;
use crate::handles::Handle;
use crate::quota::Reservation;

/// Uploads waiting at the most before the session stops reading until the
/// running commit is done. Each holds its temp file open: this bounds what
/// one session holds (see [`crate::handles`] for one user's sessions).
const MAX_WAITING: usize = 64;

/// A finished upload waiting to be published.
#[derive(Debug)]
pub struct Finished<U> {
    pub upload: U,
    pub path: String,
    pub size: u64,
    pub digest: Digest,
    /// Its bytes set aside under the user's quota, if there is one.
    pub reservation: Option<Reservation>,
    /// Its temp file, counted against the user's and the server's handles.
    pub handle: Handle,
    /// When the `Put` arrived.
    pub started: Instant,
}

/// What a slot being committed keeps until its result is known.
#[derive(Debug)]
struct Committing {
    path: String,
    size: u64,
    digest: Digest,
    reservation: Option<Reservation>,
    _handle: Handle,
    started: Instant,
}

#[derive(Debug)]
enum Slot<U> {
    /// A reply that only waits for the replies before it.
    Reply(Response),
    /// An upload not yet handed to a commit.
    Waiting(Finished<U>),
    /// An upload being committed by the running commit.
    Committing(Committing),
}

type Commit = JoinHandle<Vec<Result<u64, StorageError>>>;

/// The replies of a session that have not been sent yet.
#[derive(Debug)]
pub struct Outbox<U> {
    slots: VecDeque<Slot<U>>,
    waiting: usize,
    running: Option<Commit>,
    /// Whose uploads these are (for the log).
    user: String,
}

impl<U> Outbox<U> {
    /// The outbox of a session of `user`.
    pub fn new(user: &str) -> Self {
        Outbox {
            slots: VecDeque::new(),
            waiting: 0,
            running: None,
            user: user.to_owned(),
        }
    }
}

impl<U: Upload> Outbox<U> {
    /// Nothing is waiting or being committed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// So many uploads wait that the session should not read more for now.
    pub fn is_full(&self) -> bool {
        self.waiting >= MAX_WAITING
    }

    /// Sends `response` now, or queues it behind replies still waiting.
    pub async fn reply(
        &mut self,
        conn: &mut Connection,
        response: Response,
    ) -> Result<(), CmdError> {
        if self.slots.is_empty() {
            conn.send(response).await?;
        } else {
            self.slots.push_back(Slot::Reply(response));
        }
        Ok(())
    }

    /// Queues a finished upload; its reply is sent when it is published.
    pub fn commit(&mut self, finished: Finished<U>) {
        self.waiting += 1;
        self.slots.push_back(Slot::Waiting(finished));
    }

    /// Starts publishing the waiting uploads, unless a commit is running.
    pub fn start<H: Home<Upload = U>>(&mut self, home: &Arc<H>) {
        if self.running.is_some() || self.waiting == 0 {
            return;
        }
        let mut uploads = Vec::with_capacity(self.waiting);
        for slot in self.slots.iter_mut() {
            if !matches!(slot, Slot::Waiting(_)) {
                continue;
            }
            if let Slot::Waiting(f) = std::mem::replace(slot, Slot::Reply(Response::Ok)) {
                uploads.push(f.upload);
                *slot = Slot::Committing(Committing {
                    path: f.path,
                    size: f.size,
                    digest: f.digest,
                    reservation: f.reservation,
                    _handle: f.handle,
                    started: f.started,
                });
            }
        }
        self.waiting = 0;
        let home = home.clone();
        self.running = Some(tokio::task::spawn_blocking(move || {
            home.commit_all(uploads)
        }));
    }

    /// Waits for the running commit (forever when there is none: use in a
    /// `select!` beside other work). Cancel-safe.
    pub async fn committed(&mut self) -> Vec<Result<u64, StorageError>> {
        match &mut self.running {
            Some(commit) => {
                let results = commit.await;
                self.running = None;
                results.unwrap_or_else(|e| {
                    tracing::error!("a commit task failed: {e}");
                    Vec::new()
                })
            }
            None => std::future::pending().await,
        }
    }

    /// Turns the results of a finished commit into replies.
    pub fn settle(&mut self, results: Vec<Result<u64, StorageError>>) {
        let mut results = results.into_iter();
        for slot in self.slots.iter_mut() {
            let Slot::Committing(c) = slot else { continue };
            let response = match results.next() {
                Some(Ok(freed)) => {
                    if let Some(r) = c.reservation.take() {
                        r.commit(freed);
                    }
                    let secs = c.started.elapsed().as_secs_f64();
                    tracing::info!(
                        user = %self.user,
                        path = %log_text(&c.path),
                        bytes = c.size,
                        digest = %c.digest,
                        secs = format_args!("{secs:.3}"),
                        mib_per_sec = format_args!("{:.1}", rate(c.size, secs)),
                        "stored"
                    );
                    Response::Ok
                }
                Some(Err(e)) => {
                    tracing::info!(user = %self.user, path = %log_text(&c.path), error = %e, "upload not published");
                    CmdError::storage(e, &c.path).response()
                }
                None => Response::error(ErrorCode::INTERNAL, "internal server error"),
            };
            *slot = Slot::Reply(response);
        }
    }

    /// Sends the replies at the front that no longer wait for anything.
    pub async fn send_ready(&mut self, conn: &mut Connection) -> Result<(), CmdError> {
        let mut sent = false;
        while let Some(Slot::Reply(_)) = self.slots.front() {
            if let Some(Slot::Reply(response)) = self.slots.pop_front() {
                conn.feed(response).await?;
                sent = true;
            }
        }
        if sent {
            conn.send_flush().await?;
        }
        Ok(())
    }

    /// Reads the next request within `limit`, meanwhile publishing waiting
    /// uploads and sending the replies that become ready (an upload in
    /// progress must not hold back the answers to the requests before it).
    pub async fn read<H: Home<Upload = U>>(
        &mut self,
        conn: &mut Connection,
        home: &Arc<H>,
        limit: Duration,
    ) -> Result<Option<Request>, CmdError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.start(home);
            tokio::select! {
                biased;
                results = self.committed() => {
                    self.settle(results);
                    self.send_ready(conn).await?;
                }
                read = tokio::time::timeout_at(deadline, conn.read()) => return Ok(read??),
            }
        }
    }

    /// Publishes everything and sends every reply.
    pub async fn flush<H: Home<Upload = U>>(
        &mut self,
        conn: &mut Connection,
        home: &Arc<H>,
    ) -> Result<(), CmdError> {
        loop {
            self.send_ready(conn).await?;
            if self.slots.is_empty() {
                return Ok(());
            }
            self.start(home);
            let results = self.committed().await;
            self.settle(results);
        }
    }
}

/// MiB per second of `bytes` in `secs`.
pub fn rate(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs.max(1e-6)
}

//! Waiting on the server: the bound on every wait (`--timeout`), replies
//! read within it, and the bound on what a listing may hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ftp_shared::message::Entry;
use ftp_shared::{CodecError, ErrorCode, Response};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ClientError;
use crate::client::display_path;
use crate::wire::Reader;

/// How long any one wait on the server may take by default: the TCP
/// connect, the TLS handshake, each reply and each frame of a transfer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The wait bound in force, in milliseconds (see [`set_timeout`]).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

/// Sets how long any one wait on the server may take (`--timeout`): a
/// server that stops answering then fails the command instead of hanging it.
pub fn set_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// How long any one wait on the server may take.
pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// The most entries one listing may have: a server whose listing never
/// ends fails it instead of filling the memory.
pub const MAX_LISTING_ENTRIES: usize = 1_000_000;

/// `limit` as a person reads it: "30 s", "1.5 s".
pub(crate) fn seconds(limit: Duration) -> String {
    format!("{} s", limit.as_secs_f64())
}

/// Appends a page of a listing of `path`, within [`MAX_LISTING_ENTRIES`].
pub(crate) fn add_entries(
    all: &mut Vec<Entry>,
    entries: Vec<Entry>,
    path: &str,
) -> Result<(), ClientError> {
    if all.len().saturating_add(entries.len()) > MAX_LISTING_ENTRIES {
        return Err(ClientError::TooMuch(format!(
            "the listing of {} has more than {MAX_LISTING_ENTRIES} entries",
            display_path(path)
        )));
    }
    all.extend(entries);
    Ok(())
}

/// The next response, within [`timeout`]; an `Error` becomes a
/// [`ClientError`].
pub(crate) async fn next_reply(reader: &mut Reader) -> Result<Response, ClientError> {
    next_reply_to(reader, "the last request").await
}

/// [`next_reply`], naming the request waited on (`what`, e.g. "List docs")
/// in the error of a timeout.
pub(crate) async fn next_reply_to(
    reader: &mut Reader,
    what: &str,
) -> Result<Response, ClientError> {
    let limit = timeout();
    match tokio::time::timeout(limit, reader.next()).await {
        Ok(next) => reply_of(next),
        Err(_) => Err(reply_timed_out(limit, what)),
    }
}

/// Where the sending of pipelined requests stands, for the replies to them:
/// a reply cannot be due before its request has gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// Requests are still being sent (each write bounded on its own).
    Busy,
    /// Everything went out at this moment.
    Done(Instant),
    /// The server stopped taking requests: only replies already here count.
    Stalled,
}

/// The next response to requests sent while `sending` tells how far they
/// are: no bound while they are still being sent (the server is taking
/// them, or the local side is slow), then [`timeout`] from the later of the
/// moment they had all gone out and the start of this wait. `what` names
/// the request in the error of a timeout.
pub(crate) async fn next_reply_once_sent(
    reader: &mut Reader,
    sending: &mut watch::Receiver<Sending>,
    what: &str,
) -> Result<Response, ClientError> {
    let (limit, started) = (timeout(), Instant::now());
    let mut next = reader.next();
    // When the sender went away without a word.
    let mut gone = None;
    loop {
        let state = gone.unwrap_or(*sending.borrow_and_update());
        let deadline = match state {
            Sending::Busy => None,
            Sending::Done(at) => Some(at.max(started) + limit),
            Sending::Stalled => Some(started),
        };
        if let Some(deadline) = deadline {
            return match tokio::time::timeout_at(deadline, &mut next).await {
                Ok(next) => reply_of(next),
                Err(_) => Err(reply_timed_out(limit, what)),
            };
        }
        tokio::select! {
            next = &mut next => return reply_of(next),
            changed = sending.changed() => {
                if changed.is_err() {
                    gone = Some(Sending::Done(Instant::now()));
                }
            }
        }
    }
}

fn reply_timed_out(limit: Duration, what: &str) -> ClientError {
    ClientError::TimedOut {
        limit: seconds(limit),
        waiting: format!("the server's reply to {what}"),
    }
}

/// What the reader yielded, as a reply: an `Error` becomes a
/// [`ClientError`], the end of the stream a lost connection.
fn reply_of(next: Option<Result<Response, CodecError>>) -> Result<Response, ClientError> {
    match next {
        Some(Ok(Response::Error { code, message })) => Err(match code {
            ErrorCode::AUTH_FAILED => ClientError::AuthFailed,
            ErrorCode::CHANNEL_BINDING => ClientError::ChannelBinding { message },
            _ => ClientError::Remote { code, message },
        }),
        Some(reply) => Ok(reply?),
        None => Err(ClientError::Connection(
            std::io::ErrorKind::UnexpectedEof.into(),
        )),
    }
}

/// A reply that does not fit the request.
pub(crate) fn unexpected(reply: Response) -> ClientError {
    let what = match reply {
        Response::Error { code, message } => return ClientError::Remote { code, message },
        Response::Hello { .. } => "Hello",
        Response::AuthChallenge { .. } => "AuthChallenge",
        Response::AuthOk { .. } => "AuthOk",
        Response::Ok => "Ok",
        Response::FileStart { .. } => "FileStart",
        Response::Data(_) => "Data",
        Response::FileEnd { .. } => "FileEnd",
        Response::Partial { .. } => "Partial",
        Response::Entries { .. } => "Entries",
        Response::Stat { .. } => "Stat",
    };
    ClientError::Protocol(format!("unexpected reply {what}"))
}

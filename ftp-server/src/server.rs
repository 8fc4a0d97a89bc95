//! The accept loop: one task per connection, admitted by
//! [`crate::admission`], and a graceful shutdown that lets running transfers finish within a grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ftp_shared::ErrorCode;
use ftp_storage::Storage;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::lockout::Lockouts;
use crate::log_limit::LogLimit;
use crate::quota::QuotaBook;
use crate::tls::Transport;
use crate::transport::{accept, refuse};
use crate::{Limits, Users, session};

/// How long a connection refused for a limit may take to complete its TLS
/// handshake and read why.
const REFUSAL_HANDSHAKE: Duration = Duration::from_secs(3);

/// What every session of a server shares.
#[derive(Debug)]
pub struct Shared<S> {
    pub storage: S,
    pub users: Users,
    pub limits: Limits,
    pub lockouts: Lockouts,
    /// Rate limit of repeated log events per peer address.
    pub log_limit: LogLimit,
    pub quotas: Arc<QuotaBook>,
    /// TLS (the default) or plaintext.
    pub transport: Transport,
    /// Room for listing pages, shared by all connections.
    pub listings: crate::cmd::list::ListingBudget,
}

/// Serves connections from `listener` until `shutdown` completes, then stops
/// accepting, tells idle sessions to go, gives running transfers
/// `limits.shutdown_grace` to finish and aborts the rest (their uploads are
/// discarded, never published).
pub async fn run<S: Storage>(
    listener: TcpListener,
    shared: Arc<Shared<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let stop = CancellationToken::new();
    let admission = Admission::new(&shared.limits);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while let Some(done) = sessions.try_join_next() {
            log_session_end(done);
        }
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, then go on.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A full table makes room by closing a connection that has not
        // logged in (see `admission`); only logged-in sessions refuse.
        match admission.admit(peer.ip()) {
            Ok(slot) => {
                let shared = shared.clone();
                let stop = stop.clone();
                sessions.spawn(session::serve(stream, peer, shared, stop, slot));
            }
            Err(why) => {
                let why = why.message();
                tracing::warn!(%peer, "refused: {why}");
                sessions.spawn(refuse_busy(stream, shared.transport.clone(), why));
            }
        }
    }

    drop(listener);
    tracing::info!(sessions = sessions.len(), "shutting down");
    stop.cancel();
    let grace = shared.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = sessions.join_next().await {
            log_session_end(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            sessions = sessions.len(),
            "grace period over: aborting the remaining sessions"
        );
        sessions.shutdown().await;
    }
    tracing::info!("stopped");
}

fn log_session_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a session panicked; only its connection was dropped");
    }
}

/// Tells a connection over a limit why it is being closed, in the
/// transport it speaks (after a TLS handshake, which is bounded in time
/// like the rest of the refusal).
async fn refuse_busy(tcp: TcpStream, transport: Transport, why: &'static str) {
    let _ = tokio::time::timeout(REFUSAL_HANDSHAKE, async {
        if let Ok(mut stream) = accept(tcp, &transport).await {
            refuse(
                &mut stream,
                ErrorCode::BUSY,
                &format!("{why}, try again later"),
            )
            .await;
        }
    })
    .await;
}

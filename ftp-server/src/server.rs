//! The accept loop: one task per connection, a cap on connections, and a
//! graceful shutdown that lets running transfers finish within a grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ftp_shared::codec::encode_frame;
use ftp_shared::{ErrorCode, Response};
use ftp_storage::Storage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Limits, Users, session};

/// What every session of a server shares.
#[derive(Debug)]
pub struct Shared<S> {
    pub storage: S,
    pub users: Users,
    pub limits: Limits,
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
    let permits = Arc::new(Semaphore::new(shared.limits.max_connections));
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
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let shared = shared.clone();
                let stop = stop.clone();
                sessions.spawn(async move {
                    session::serve(stream, peer, shared, stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(%peer, "refused: too many connections");
                sessions.spawn(refuse_busy(stream));
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

/// Tells a connection over the limit why it is being closed. The reply is
/// followed by a FIN, and what the peer sent meanwhile (its hello) is read
/// and dropped for a moment, so that closing with unread data does not reset
/// the connection before the peer has read the reply.
async fn refuse_busy(mut stream: TcpStream) {
    let mut frame = bytes::BytesMut::new();
    let busy = Response::error(ErrorCode::BUSY, "too many connections, try again later");
    if encode_frame(&busy, &mut frame).is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&frame).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

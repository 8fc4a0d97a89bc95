//! One client's session, in phases that are also its states: hello, login
//! (within the handshake deadline), then requests until quit, idle timeout
//! or shutdown. A request that the current phase does not allow is refused
//! and closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use ftp_shared::message::{MAGIC, PROTOCOL_VERSION};
use ftp_shared::{ErrorCode, Request, Response};
use ftp_storage::Storage;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::log_limit::Event;

use crate::admission::{Progress, Slot};
use crate::cmd;
use crate::connection::Connection;
use crate::error::CmdError;
use crate::outbox::Outbox;
use crate::quota::UserQuota;
use crate::server::Shared;
use crate::transport::{AcceptError, accept};

/// The server's name and version, sent in the hello reply.
pub const SERVER_NAME: &str = concat!("ftp-server ", env!("CARGO_PKG_VERSION"));

/// Runs one connection to its end, holding `slot` while it lives; until the
/// login, a newcomer may take the slot, which closes the connection.
pub async fn serve<S: Storage>(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<S>>,
    stop: CancellationToken,
    slot: Slot,
) {
    let span = tracing::info_span!("session", %peer);
    async move {
        tracing::debug!("connected");
        let deadline = tokio::time::Instant::now() + shared.limits.handshake_timeout;
        let accepted = tokio::select! {
            accepted = tokio::time::timeout_at(deadline, accept(tcp, &shared.transport)) => accepted,
            _ = stop.cancelled() => return,
            _ = slot.evicted() => return replaced(),
        };
        let stream = match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(AcceptError::Left)) => return tracing::debug!("left before the handshake"),
            Ok(Err(e)) => return tracing::info!("closed: {e}"),
            Err(_) => return tracing::info!("closed: handshake timeout (TLS)"),
        };
        slot.advance(Progress::Transport);
        let mut conn = Connection::new(stream, peer, shared.limits.transfer_timeout);
        if let Err(e) = run(&mut conn, &shared, &stop, deadline, &slot).await {
            if let Some(reply) = e.reply()
                && conn.send(reply).await.is_ok()
            {
                conn.close().await;
            }
            match e {
                CmdError::Codec(ftp_shared::CodecError::Io(ref io))
                    if io.kind() == std::io::ErrorKind::TimedOut =>
                {
                    tracing::info!("closed: the peer stopped taking replies")
                }
                CmdError::Codec(ref c) if !c.is_protocol_violation() => {
                    tracing::debug!("connection lost: {c}")
                }
                // A peer breaking the protocol in a loop is logged a few
                // times per interval, then summarised.
                _ if shared.log_limit.allow(Event::ProtocolError, peer.ip()) => {
                    tracing::info!("closed: {e}")
                }
                _ => {}
            }
        }
        tracing::debug!("disconnected");
    }
    .instrument(span)
    .await
}

async fn run<S: Storage>(
    conn: &mut Connection,
    shared: &Arc<Shared<S>>,
    stop: &CancellationToken,
    deadline: tokio::time::Instant,
    slot: &Slot,
) -> Result<(), CmdError> {
    let handshake = tokio::time::timeout_at(deadline, async {
        if !hello(conn).await? {
            return Ok(None);
        }
        slot.advance(Progress::Hello);
        cmd::auth::login(conn, shared, slot).await
    });
    let user = tokio::select! {
        user = handshake => user??,
        _ = stop.cancelled() => return Err(shutting_down()),
        _ = slot.evicted() => {
            replaced();
            // Told why if that is cheap: never waiting on a peer that does
            // not read.
            let busy = Response::error(ErrorCode::BUSY, cmd::auth::REPLACED_MESSAGE);
            let _ = tokio::time::timeout(REPLACED_REPLY, conn.send(busy)).await;
            return Ok(());
        }
    };
    let Some(user) = user else { return Ok(()) };
    conn.logged_in();

    let opener = shared.clone();
    let name = user.clone();
    let home = cmd::blocking(move || opener.storage.home(&name)).await?;
    let home = Arc::new(home.map_err(|e| CmdError::storage(e, "~"))?);
    let quota = UserQuota::open(
        shared.quotas.clone(),
        user.clone(),
        shared.limits.quota_bytes,
        &home,
    )
    .await?;

    let mut outbox = Outbox::new(&user);
    loop {
        // Uploads that finished start being published together while the
        // next requests are read; replies go out as soon as they may.
        outbox.start(&home);
        outbox.send_ready(conn).await?;
        if outbox.is_empty() {
            conn.release_buffers();
        }
        let idle = tokio::time::timeout(shared.limits.idle_timeout, conn.read());
        // Biased: once shutdown has begun and no reply is held, no new
        // request is started (held replies are completed first).
        let read = tokio::select! {
            biased;
            _ = stop.cancelled(), if outbox.is_empty() => return Err(shutting_down()),
            results = outbox.committed() => {
                outbox.settle(results);
                continue;
            }
            read = idle, if !outbox.is_full() => read,
        };
        let request = match read {
            Ok(Ok(request)) => request,
            failed => {
                // Whatever ends the session, the replies it holds go first.
                outbox.flush(conn, &home).await?;
                return Err(match failed {
                    Ok(Err(e)) => e.into(),
                    _ => CmdError::fatal(ErrorCode::TIMEOUT, "idle timeout"),
                });
            }
        };
        let Some(request) = request else {
            outbox.flush(conn, &home).await?;
            return Ok(());
        };
        if !matches!(request, Request::Put { .. }) {
            outbox.flush(conn, &home).await?;
        }
        let done = match request {
            Request::Put {
                path,
                size,
                offset,
                algorithm,
            } => {
                let req = cmd::put::PutRequest {
                    path,
                    size,
                    offset,
                    algorithm,
                };
                cmd::put::run(conn, &home, &shared.limits, &mut outbox, &quota, req).await
            }
            Request::Get {
                path,
                offset,
                algorithm,
            } => {
                let req = cmd::get::GetRequest {
                    path,
                    offset,
                    algorithm,
                };
                cmd::get::run(conn, &home, &shared.limits, &quota, req).await
            }
            Request::Mkdir { path, parents } => cmd::mkdir::run(conn, &home, &path, parents).await,
            Request::Partial {
                path,
                size,
                algorithm,
            } => cmd::partial::run(conn, &home, &quota, &path, size, algorithm).await,
            Request::List { path } => {
                cmd::list::run(conn, &home, &shared.listings, &shared.limits, &path).await
            }
            Request::Stat { path } => cmd::stat::run(conn, &home, &path).await,
            Request::Remove { path } => cmd::remove::run(conn, &home, &quota, &path).await,
            Request::Rmdir { path } => cmd::rmdir::run(conn, &home, &path).await,
            Request::Rename { from, to } => cmd::rename::run(conn, &home, &quota, &from, &to).await,
            Request::Quit => {
                conn.send(Response::Ok).await?;
                return Ok(());
            }
            Request::Hello { .. } | Request::AuthStart { .. } | Request::AuthFinish { .. } => {
                Err(CmdError::Protocol("already logged in".into()))
            }
            Request::Data(_) | Request::PutEnd { .. } | Request::PutCancel => {
                Err(CmdError::Protocol("no upload in progress".into()))
            }
        };
        if let Err(e) = done {
            if e.closes() {
                outbox.flush(conn, &home).await?;
                return Err(e);
            }
            outbox.reply(conn, e.response()).await?;
        }
    }
}

/// How long that message may take to go out.
const REPLACED_REPLY: std::time::Duration = std::time::Duration::from_millis(200);

/// Logs that a newcomer took this connection's slot before it logged in
/// (it is closed without a reply).
fn replaced() {
    tracing::debug!("closed: replaced by a newer connection before logging in");
}

fn shutting_down() -> CmdError {
    CmdError::fatal(ErrorCode::SHUTTING_DOWN, "the server is shutting down")
}

/// The opening exchange; false when the peer left before saying anything.
async fn hello(conn: &mut Connection) -> Result<bool, CmdError> {
    match conn.read().await? {
        None => Ok(false),
        Some(Request::Hello { magic, version }) => {
            if magic != MAGIC {
                return Err(CmdError::Protocol("not a mini-FTP client".into()));
            }
            if version != PROTOCOL_VERSION {
                return Err(CmdError::fatal(
                    ErrorCode::UNSUPPORTED_VERSION,
                    format!(
                        "protocol version {version} is not supported; this server speaks version {PROTOCOL_VERSION}"
                    ),
                ));
            }
            conn.send(Response::Hello {
                version: PROTOCOL_VERSION,
                server: SERVER_NAME.into(),
            })
            .await?;
            Ok(true)
        }
        Some(_) => Err(CmdError::Protocol(
            "the session must begin with Hello".into(),
        )),
    }
}

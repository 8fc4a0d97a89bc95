//! The byte stream beneath the frames: TLS 1.3 (the default) or, only when
//! the server runs with `--insecure-plaintext`, plain TCP.
//!
//! [`accept`] looks at the first byte before anything else: a TLS
//! ClientHello always starts with a handshake record (0x16), a frame of
//! this protocol never does. A plaintext client at a TLS server is told so
//! in a plaintext `Error{TLS_REQUIRED}` frame it can read; a TLS client at a
//! plaintext server gets an `Error` frame too, which its TLS stack refuses
//! as "not TLS". Either way no credential has been sent.

use std::io;

use bytes::BytesMut;
use ftp_shared::codec::encode_frame;
use ftp_shared::read_ahead::ReadAhead;
use ftp_shared::scram::{TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
use ftp_shared::tls::TLS_HANDSHAKE_RECORD;
use ftp_shared::{ErrorCode, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use crate::tls::Transport;

/// A connection's stream: plain TCP (left) or TLS (right).
pub type Stream = Either<TcpStream, Box<tokio_rustls::server::TlsStream<ReadAhead<TcpStream>>>>;

/// Why a connection ended before its first frame.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the peer left before the handshake")]
    Left,
    #[error("a plaintext client at this TLS server was told to use TLS")]
    PlaintextClient,
    #[error("a TLS client at this plaintext server was turned away")]
    TlsClient,
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
}

/// Takes a new connection to the point where frames can be read: the TLS
/// handshake done, or the plaintext mode confirmed.
pub async fn accept(tcp: TcpStream, transport: &Transport) -> Result<Stream, AcceptError> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) | Err(_) => return Err(AcceptError::Left),
        Ok(_) => {}
    }
    let is_tls = first[0] == TLS_HANDSHAKE_RECORD;
    match transport {
        Transport::Tls(acceptor) if is_tls => acceptor
            .accept(ReadAhead::new(tcp))
            .await
            .map(|tls| Either::Right(Box::new(tls)))
            .map_err(AcceptError::Handshake),
        Transport::Tls(_) => {
            refuse(
                &mut Either::Left(tcp),
                ErrorCode::TLS_REQUIRED,
                "this server accepts TLS connections only: connect without --insecure-plaintext",
            )
            .await;
            Err(AcceptError::PlaintextClient)
        }
        Transport::InsecurePlaintext if is_tls => {
            refuse(
                &mut Either::Left(tcp),
                ErrorCode::TLS_REQUIRED,
                "this server runs without TLS (--insecure-plaintext)",
            )
            .await;
            Err(AcceptError::TlsClient)
        }
        Transport::InsecurePlaintext => Ok(Either::Left(tcp)),
    }
}

/// The `tls-exporter` channel binding of this connection (RFC 9266):
/// 32 bytes exported with the label `EXPORTER-Channel-Binding` and no
/// context. `None` in plaintext.
pub fn channel_binding(stream: &Stream) -> Option<[u8; TLS_EXPORTER_LEN]> {
    match stream {
        Either::Left(_) => None,
        Either::Right(tls) => tls
            .get_ref()
            .1
            .export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
            .ok(),
    }
}

/// Gives back the read-ahead buffer of a TLS stream before an idle wait.
pub fn release_buffers(stream: &mut Stream) {
    if let Either::Right(tls) = stream {
        tls.get_mut().0.release();
    }
}

/// Writes one `Error` frame, closes the sending side (with a TLS
/// close_notify) and reads what the peer sent meanwhile for a moment, so
/// that closing with unread data does not reset the connection before the
/// peer has read the reply.
pub async fn refuse(stream: &mut Stream, code: ErrorCode, message: &str) {
    let mut frame = BytesMut::new();
    if encode_frame(&Response::error(code, message), &mut frame).is_err() {
        return;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        stream.write_all(&frame).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

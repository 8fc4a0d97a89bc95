//! One client connection: length-prefixed frames in, length-prefixed frames out.

use std::net::SocketAddr;
use std::time::Duration;

use ftp_shared::codec::{MAX_FRAME, PRE_LOGIN_MAX_FRAME, ServerCodec};
use ftp_shared::{CodecError, Request, Response};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A framed connection. Reads are cancel-safe: a partly received frame stays
/// in the read buffer when a `select!` drops the read.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<TcpStream, ServerCodec>,
    peer: SocketAddr,
    send_timeout: Duration,
}

impl Connection {
    /// Wraps an accepted stream. Frames are capped at the pre-login size until
    /// [`Connection::logged_in`]; a peer that does not take a reply within
    /// `send_timeout` is given up on.
    pub fn new(stream: TcpStream, peer: SocketAddr, send_timeout: Duration) -> Connection {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        Connection {
            framed: Framed::with_capacity(
                stream,
                ServerCodec::new(PRE_LOGIN_MAX_FRAME),
                PRE_LOGIN_MAX_FRAME,
            ),
            peer,
            send_timeout,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Raises the frame cap to the post-login size.
    pub fn logged_in(&mut self) {
        self.framed.codec_mut().set_max_frame(MAX_FRAME);
    }

    /// The next request, or `None` when the peer closed the connection cleanly.
    pub async fn read(&mut self) -> Result<Option<Request>, CodecError> {
        self.framed.next().await.transpose()
    }

    /// Sends one response and flushes it, within the send timeout.
    pub async fn send(&mut self, response: Response) -> Result<(), CodecError> {
        match tokio::time::timeout(self.send_timeout, self.framed.send(response)).await {
            Ok(sent) => sent,
            Err(_) => Err(CodecError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
}

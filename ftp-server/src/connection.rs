//! One client connection: length-prefixed frames in, length-prefixed frames out.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ftp_shared::codec::{MAX_FRAME, PRE_LOGIN_MAX_FRAME, ServerCodec, data_header};
use ftp_shared::{CodecError, Request, Response};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Buffers above this size are given back while a session waits idle.
const IDLE_BUFFER: usize = 16 * 1024;

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

    /// Gives back large buffers before a wait of unknown length, so an idle
    /// session costs kilobytes.
    pub fn release_buffers(&mut self) {
        fn shrink(buf: &mut BytesMut) {
            if buf.is_empty() && buf.capacity() > IDLE_BUFFER {
                *buf = BytesMut::new();
            }
        }
        shrink(self.framed.read_buffer_mut());
        shrink(self.framed.write_buffer_mut());
    }

    /// Queues one response without flushing it.
    pub async fn feed(&mut self, response: Response) -> Result<(), CodecError> {
        self.timed(|framed| framed.feed(response)).await
    }

    /// Sends one response and flushes it, within the send timeout.
    pub async fn send(&mut self, response: Response) -> Result<(), CodecError> {
        self.timed(|framed| framed.send(response)).await
    }

    /// Flushes queued responses.
    pub async fn send_flush(&mut self) -> Result<(), CodecError> {
        self.timed(|framed| framed.flush()).await
    }

    /// Sends a `Data` frame straight from `payload`, without copying it into
    /// the write buffer.
    pub async fn send_data(&mut self, payload: Bytes) -> Result<(), CodecError> {
        let header = data_header::<Response>(payload.len());
        self.timed(|framed| async move {
            framed.flush().await?;
            let mut frame = (&header[..]).chain(payload);
            framed.get_mut().write_all_buf(&mut frame).await?;
            Ok(())
        })
        .await
    }

    async fn timed<'a, F, Fut>(&'a mut self, op: F) -> Result<(), CodecError>
    where
        F: FnOnce(&'a mut Framed<TcpStream, ServerCodec>) -> Fut,
        Fut: Future<Output = Result<(), CodecError>> + 'a,
    {
        match tokio::time::timeout(self.send_timeout, op(&mut self.framed)).await {
            Ok(done) => done,
            Err(_) => Err(CodecError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
}

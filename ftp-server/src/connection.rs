//! One client connection: length-prefixed frames in, length-prefixed frames
//! out, over the [`Stream`] that [`crate::transport::accept`] set up.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ftp_shared::codec::{MAX_FRAME, PRE_LOGIN_MAX_FRAME, ServerCodec, data_header};
use ftp_shared::scram::TLS_EXPORTER_LEN;
use ftp_shared::{CodecError, Request, Response};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Framed;

use crate::transport::{Stream, channel_binding, release_buffers};

/// How long [`Connection::close`] waits for the peer to take the end.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Buffers above this size are given back while a session waits idle.
const IDLE_BUFFER: usize = 16 * 1024;

/// A framed connection. Reads are cancel-safe: a partly received frame stays
/// in the read buffer when a `select!` drops the read.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<Stream, ServerCodec>,
    peer: SocketAddr,
    send_timeout: Duration,
    channel_binding: Option<[u8; TLS_EXPORTER_LEN]>,
}

impl Connection {
    /// Wraps an accepted stream (TLS handshake done). Frames are capped at the pre-login size until
    /// [`Connection::logged_in`]; a peer that does not take a reply within
    /// `send_timeout` is given up on.
    pub fn new(stream: Stream, peer: SocketAddr, send_timeout: Duration) -> Connection {
        Connection {
            channel_binding: channel_binding(&stream),
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

    /// The `tls-exporter` value of this connection, `None` in plaintext.
    pub fn channel_binding(&self) -> Option<&[u8; TLS_EXPORTER_LEN]> {
        self.channel_binding.as_ref()
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
        release_buffers(self.framed.get_mut());
    }

    /// Ends the connection after a closing reply: the sending side is
    /// closed (TLS close_notify, then FIN) and what the peer still sends is
    /// read and dropped for a moment, so that unread input does not make
    /// the kernel reset the connection and discard the reply before the
    /// peer has read it.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_DRAIN, async {
            let stream = self.framed.get_mut();
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        })
        .await;
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
            let mut frame = Buf::chain(&header[..], payload);
            let stream = framed.get_mut();
            stream.write_all_buf(&mut frame).await?;
            // TLS keeps records it could not write yet: push them out.
            stream.flush().await?;
            Ok(())
        })
        .await
    }

    async fn timed<'a, F, Fut>(&'a mut self, op: F) -> Result<(), CodecError>
    where
        F: FnOnce(&'a mut Framed<Stream, ServerCodec>) -> Fut,
        Fut: Future<Output = Result<(), CodecError>> + 'a,
    {
        match tokio::time::timeout(self.send_timeout, op(&mut self.framed)).await {
            Ok(done) => done,
            Err(_) => Err(CodecError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
}

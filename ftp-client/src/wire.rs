//! The client's two halves of a connection: a framed reader of responses and
//! a writer that batches small requests and sends file data without copying.
//!
//! Every write is bounded by [`timeout`]: a server that takes none of what is
//! written for that long (it stopped reading, its socket buffer is full)
//! fails the write with [`ClientError::TimedOut`]; one that takes bytes,
//! however slowly, does not.

use bytes::{Buf, Bytes, BytesMut};
use ftp_shared::Request;
use ftp_shared::codec::{ClientCodec, data_header, encode_frame};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

use crate::ClientError;
use crate::replies::{seconds, timeout};
use crate::tls::Stream;

/// Data payloads up to this size are copied into the batch; larger ones are
/// written straight from their buffer.
const SMALL_DATA: usize = 64 * 1024;
/// A batch this large is written out.
const BATCH: usize = 256 * 1024;

/// Responses from the server.
pub type Reader = FramedRead<ReadHalf<Stream>, ClientCodec>;

/// Requests to the server.
#[derive(Debug)]
pub struct Writer {
    half: WriteHalf<Stream>,
    batch: BytesMut,
}

impl Writer {
    pub fn new(half: WriteHalf<Stream>) -> Writer {
        Writer {
            half,
            batch: BytesMut::new(),
        }
    }

    /// Queues a request; it is written at the next [`Writer::flush`] or when
    /// the batch is full.
    pub async fn feed(&mut self, request: &Request) -> Result<(), ClientError> {
        encode_frame(request, &mut self.batch)?;
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues a `Data` frame; a large payload is written without a copy.
    pub async fn feed_data(&mut self, payload: Bytes) -> Result<(), ClientError> {
        let header = data_header::<Request>(payload.len());
        if payload.len() <= SMALL_DATA {
            self.batch.extend_from_slice(&header);
            self.batch.extend_from_slice(&payload);
            if self.batch.len() >= BATCH {
                self.flush().await?;
            }
            return Ok(());
        }
        self.flush().await?;
        let mut frame = (&header[..]).chain(payload);
        write_all(&mut self.half, &mut frame).await?;
        flush(&mut self.half).await
    }

    /// Writes what is queued (through the TLS layer to the socket).
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        write_all(&mut self.half, &mut self.batch).await?;
        flush(&mut self.half).await
    }

    /// Queues and writes one request.
    pub async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        encode_frame(request, &mut self.batch)?;
        self.flush().await
    }
}

/// Writes all of `buf`, each write within [`timeout`]: the bound is on a
/// wait without progress, not on the whole.
async fn write_all(half: &mut WriteHalf<Stream>, buf: &mut impl Buf) -> Result<(), ClientError> {
    let limit = timeout();
    while buf.has_remaining() {
        match tokio::time::timeout(limit, half.write_buf(buf)).await {
            Ok(Ok(0)) => {
                return Err(ClientError::Connection(
                    std::io::ErrorKind::WriteZero.into(),
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ClientError::Connection(e)),
            Err(_) => return Err(stalled(limit)),
        }
    }
    Ok(())
}

/// Pushes what the TLS layer holds to the socket, within [`timeout`] (the
/// writes before left it a bounded amount, which a server that reads at
/// all takes well within that).
async fn flush(half: &mut WriteHalf<Stream>) -> Result<(), ClientError> {
    let limit = timeout();
    match tokio::time::timeout(limit, half.flush()).await {
        Ok(flushed) => flushed.map_err(ClientError::Connection),
        Err(_) => Err(stalled(limit)),
    }
}

/// The error of a write the server took nothing of for `limit`; callers
/// that know what was being sent name it (see [`ClientError::TimedOut`]).
fn stalled(limit: std::time::Duration) -> ClientError {
    ClientError::TimedOut {
        limit: seconds(limit),
        waiting: "the server to take more of the requests".into(),
    }
}

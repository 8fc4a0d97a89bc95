//! The client's two halves of a connection: a framed reader of responses and
//! a writer that batches small requests and sends file data without copying.

use bytes::{Buf, Bytes, BytesMut};
use ftp_shared::Request;
use ftp_shared::codec::{ClientCodec, data_header, encode_frame};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::codec::FramedRead;

use crate::ClientError;
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
        self.half
            .write_all_buf(&mut frame)
            .await
            .map_err(ClientError::Connection)?;
        self.half.flush().await.map_err(ClientError::Connection)
    }

    /// Writes what is queued (through the TLS layer to the socket).
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.batch.is_empty() {
            self.half
                .write_all_buf(&mut self.batch)
                .await
                .map_err(ClientError::Connection)?;
        }
        self.half.flush().await.map_err(ClientError::Connection)
    }

    /// Queues and writes one request.
    pub async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        encode_frame(request, &mut self.batch)?;
        self.flush().await
    }
}

//! [`ReadAhead`]: fewer, larger reads from a socket beneath TLS.
//!
//! rustls asks its transport for at most 4 KiB at a time, so a TLS stream
//! read straight from a socket costs four or more `read` system calls per
//! 16 KiB record: about 260,000 per GiB. This adapter reads up to
//! [`READ_AHEAD`] bytes per call into a buffer and serves the small reads
//! from it, which cuts the system calls 16-fold for the price of one memcpy
//! of what is read. The buffer is kept while data streams in and given back
//! by [`ReadAhead::release`] before an idle wait; after that, reads go
//! straight to the caller's memory until one brings data, so an idle
//! connection holds no buffer. Writes pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at a time (below the allocator's mmap
/// threshold, so taking and giving back the buffer stays cheap).
pub const READ_AHEAD: usize = 64 * 1024;

/// A stream whose reads are batched; see the module documentation.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Read from `inner` and not yet handed out.
    buf: BytesMut,
    /// Since [`ReadAhead::release`], no data came: read without a buffer.
    quiet: bool,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> ReadAhead<S> {
        ReadAhead {
            inner,
            buf: BytesMut::new(),
            quiet: false,
        }
    }

    /// Gives the buffer back if nothing is buffered, before a wait of
    /// unknown length; the next reads need none until data comes.
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
            self.quiet = true;
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The bytes of the buffer, for tests: none while nothing is buffered.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            // A caller that asks for as much as the buffer holds reads
            // straight into its own memory, and so does a quiet connection
            // (until data comes, it needs no buffer).
            if out.remaining() >= READ_AHEAD || this.quiet {
                let before = out.filled().len();
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                this.quiet = out.filled().len() == before && this.quiet;
                return Poll::Ready(Ok(()));
            }
            // Empty: the allocation is reused in place.
            this.buf.reserve(READ_AHEAD);
            std::task::ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.buf
            ))?;
            if this.buf.is_empty() {
                return Poll::Ready(Ok(())); // end of stream
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_and_large_reads_bypass() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut tx, rx) = tokio::io::duplex(8192);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await.unwrap();
        });
        let mut reader = ReadAhead::new(rx);
        let mut got = Vec::new();
        let mut small = [0u8; 4096];
        let mut large = vec![0u8; READ_AHEAD];
        let mut turn = 0;
        loop {
            turn += 1;
            let n = if turn % 3 == 0 {
                reader.read(&mut large).await.unwrap()
            } else {
                let n = reader.read(&mut small).await.unwrap();
                got.extend_from_slice(&small[..n]);
                if n == 0 {
                    break;
                }
                continue;
            };
            if n == 0 {
                break;
            }
            got.extend_from_slice(&large[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, data);
        reader.release();
        assert_eq!(reader.buffered_capacity(), 0, "memory held at the end");
    }

    #[tokio::test]
    async fn a_quiet_peer_costs_no_buffer() {
        let (mut tx, rx) = tokio::io::duplex(8192);
        let mut reader = ReadAhead::new(rx);
        tx.write_all(b"hello").await.unwrap();
        let mut small = [0u8; 4096];
        assert_eq!(reader.read(&mut small).await.unwrap(), 5);
        // Released before a wait, the next read finds nothing and waits:
        // no buffer meanwhile.
        reader.release();
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            reader.read(&mut small),
        )
        .await;
        assert!(waiting.is_err(), "nothing was sent");
        assert_eq!(reader.buffered_capacity(), 0);
        tx.write_all(b"again").await.unwrap();
        assert_eq!(reader.read(&mut small).await.unwrap(), 5);
        assert_eq!(&small[..5], b"again");
    }
}

//! `Get { path }`: answered with `FileStart { size }`, `Data` frames and
//! `FileEnd { digest }`, or with an error.
//!
//! A blocking reader thread reads the opened file (a snapshot: uploads
//! replace files by rename, never in place) and hashes it, a few chunks ahead
//! of the network. If the file cannot be read to its announced size, an
//! `Error` takes the place of the remaining frames.

use std::io::Read;
use std::sync::Arc;

use ftp_shared::message::{CHUNK_SIZE, Hasher};
use ftp_shared::text::escape;
use ftp_shared::{Digest, Response};
use ftp_storage::{Home, StorageError};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::cmd::{blocking, parse_path};
use crate::connection::Connection;
use crate::error::CmdError;

const QUEUE: usize = 4;

enum Piece {
    Chunk(Vec<u8>),
    End(Digest),
    Failed(StorageError),
}

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path(path)?;
    let opener = home.clone();
    let (file, size) = blocking(move || opener.open_read(&vpath))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    conn.send(Response::FileStart { size }).await?;

    let (tx, mut pieces) = mpsc::channel(QUEUE);
    tokio::task::spawn_blocking(move || read_all(file, size, tx));
    while let Some(piece) = pieces.recv().await {
        let response = match piece {
            Piece::Chunk(bytes) => Response::Data(ByteBuf::from(bytes)),
            Piece::End(digest) => {
                tracing::info!(path = %escape(path), bytes = size, %digest, "sent");
                Response::FileEnd { digest }
            }
            // The announced size can no longer be kept: the error ends the
            // download and the session goes on.
            Piece::Failed(e) => CmdError::storage(e, path)
                .reply()
                .expect("storage errors have a reply"),
        };
        conn.send(response).await?;
    }
    Ok(())
}

/// The reader thread: exactly `size` bytes in chunks, then the digest.
fn read_all<R: Read>(mut file: R, size: u64, tx: mpsc::Sender<Piece>) {
    let mut hasher = Hasher::new();
    let mut left = size;
    while left > 0 {
        let want = left.min(CHUNK_SIZE as u64) as usize;
        let mut chunk = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => {
                    let _ = tx.blocking_send(Piece::Failed(StorageError::Io(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    )));
                    return;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Piece::Failed(e.into()));
                    return;
                }
            }
        }
        hasher.update(&chunk);
        left -= want as u64;
        if tx.blocking_send(Piece::Chunk(chunk)).is_err() {
            return; // the connection is gone
        }
    }
    let _ = tx.blocking_send(Piece::End(hasher.finish()));
}

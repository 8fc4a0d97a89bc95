//! Downloads. [`Client::get_files`] sends every `Get` at once, then takes the
//! files in order. Each lands in `LOCAL.part`; only when its size and digest
//! match is it fsynced and renamed to `LOCAL`. A `.part` left by a lost
//! connection can be continued with `resume`; an existing `.part` is never
//! overwritten otherwise.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::{Digest, Request, Response};
use tokio::sync::mpsc;

use super::put::hash_exactly;
use super::{Progress, QUEUE, WINDOW};
use crate::client::{next_reply, unexpected};
use crate::{Client, ClientError};

/// One file to download.
#[derive(Debug, Clone)]
pub struct GetItem {
    pub remote: String,
    pub local: PathBuf,
}

/// Where a download is written until it is verified: `NAME.part` beside `local`.
pub fn part_path(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    local.with_file_name(name)
}

/// The `.part` file of one download.
#[derive(Debug)]
struct Part {
    path: PathBuf,
    file: File,
    /// Bytes already in it (a resumed download).
    offset: u64,
    /// Whether this download created it (and may delete it on failure).
    created: bool,
}

impl Part {
    fn prepare(local: &Path, resume: bool) -> Result<Part, ClientError> {
        let path = part_path(local);
        match OpenOptions::new().append(true).open(&path) {
            Ok(file) if resume => {
                let offset = file.metadata().map_err(|e| ClientError::local(&path, e))?.len();
                Ok(Part {
                    path,
                    file,
                    offset,
                    created: false,
                })
            }
            Ok(_) => Err(ClientError::LocalFile {
                path,
                message: "already exists (left by an interrupted download?): continue it with --resume, or delete it"
                    .into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = File::create_new(&path).map_err(|e| ClientError::local(&path, e))?;
                Ok(Part {
                    path,
                    file,
                    offset: 0,
                    created: true,
                })
            }
            Err(e) => Err(ClientError::local(&path, e)),
        }
    }

    fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Client {
    /// Downloads `remote` into the local file `local` (through `local.part`,
    /// renamed after the size and digest checked out). An existing
    /// `local.part` is never overwritten: the download is refused instead.
    /// Returns the size.
    pub async fn get_file(
        &mut self,
        remote: &str,
        local: &Path,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        let items = [GetItem {
            remote: remote.to_string(),
            local: local.to_path_buf(),
        }];
        let mut results = self
            .get_files(&items, false, &mut |_, done, total| progress(done, total))
            .await?;
        results.pop().expect("one result per file")
    }

    /// Downloads every item, pipelined. With `resume`, an existing
    /// `LOCAL.part` is continued from its end (the digest still covers the
    /// whole file). The outer error is a lost connection (a `.part` it cut
    /// short is kept for a resume); each file has its result.
    pub async fn get_files(
        &mut self,
        items: &[GetItem],
        resume: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
        // Two downloads into one local file would write one `.part`.
        let mut targets = std::collections::HashSet::new();
        let repeated: Vec<bool> = items
            .iter()
            .map(|item| !targets.insert(item.local.as_path()))
            .collect();
        let mut results = Vec::with_capacity(items.len());
        for (w, window) in items.chunks(WINDOW).enumerate() {
            let first = w * WINDOW;
            let repeated = &repeated[first..first + window.len()];
            let mut progress = |i, done, total| progress(first + i, done, total);
            results.extend(
                self.get_window(window, repeated, resume, &mut progress)
                    .await?,
            );
        }
        Ok(results)
    }

    /// [`Client::get_files`] for at most [`WINDOW`] files, whose `.part`
    /// files are all open at once.
    async fn get_window(
        &mut self,
        items: &[GetItem],
        repeated: &[bool],
        resume: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
        let parts: Vec<_> = items
            .iter()
            .zip(repeated)
            .map(|(item, &repeated)| {
                if repeated {
                    return Err(ClientError::LocalFile {
                        path: item.local.clone(),
                        message: "is already the target of another download in this command".into(),
                    });
                }
                Part::prepare(&item.local, resume)
            })
            .collect();
        for (item, part) in items.iter().zip(&parts) {
            if let Ok(part) = part {
                self.writer
                    .feed(&Request::Get {
                        path: item.remote.clone(),
                        offset: part.offset,
                        algorithm: self.algorithm,
                    })
                    .await?;
            }
        }
        self.writer.flush().await?;

        let mut results = Vec::with_capacity(items.len());
        let mut parts = parts.into_iter().enumerate();
        while let Some((i, part)) = parts.next() {
            let part = match part {
                Ok(part) => part,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let (created, part_path) = (part.created, part.path.clone());
            match self
                .receive(&items[i], part, &mut |done, total| progress(i, done, total))
                .await
            {
                Err(e @ (ClientError::Connection(_) | ClientError::Protocol(_))) => {
                    // The connection is gone: what arrived stays for a resume;
                    // the empty `.part` files of downloads that never started go.
                    let unstarted = parts.filter_map(|(_, p)| p.ok().filter(|p| p.created));
                    for p in unstarted {
                        p.discard();
                    }
                    if created && std::fs::metadata(&part_path).is_ok_and(|m| m.len() == 0) {
                        let _ = std::fs::remove_file(&part_path);
                    }
                    return Err(e);
                }
                result => results.push(result),
            }
        }
        Ok(results)
    }

    /// One download: `FileStart`, `Data`..., `FileEnd`.
    async fn receive(
        &mut self,
        item: &GetItem,
        part: Part,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        let size = match next_reply(&mut self.reader).await {
            Ok(Response::FileStart { size }) => size,
            Ok(other) => return Err(unexpected(other)),
            Err(e) => {
                if part.created {
                    part.discard();
                }
                return Err(e);
            }
        };
        let offset = part.offset;
        if offset > size {
            return Err(ClientError::Protocol(format!(
                "the server sent a file of {size} bytes from offset {offset}"
            )));
        }
        progress(offset, size);
        let (tx, rx) = mpsc::channel(QUEUE);
        let part_path = part.path.clone();
        let (algorithm, durable) = (self.algorithm, self.durable);
        let writer =
            tokio::task::spawn_blocking(move || write_chunks(part, algorithm, durable, rx));
        let mut writing = Some(tx);
        let mut received = offset;
        let claimed = loop {
            match next_reply(&mut self.reader).await {
                Ok(Response::Data(data)) => {
                    received += data.len() as u64;
                    if received > size {
                        return Err(ClientError::Protocol(format!(
                            "the server sent more than the announced {size} bytes"
                        )));
                    }
                    // After a local write error, keep reading to the end of
                    // the download so the session stays usable.
                    if let Some(tx) = &writing
                        && tx.send(data).await.is_err()
                    {
                        writing = None;
                    }
                    progress(received, size);
                }
                Ok(Response::FileEnd { digest }) => break Ok(digest),
                Ok(other) => return Err(unexpected(other)),
                Err(e @ ClientError::Remote { .. }) => break Err(e),
                Err(e) => return Err(e),
            }
        };
        drop(writing);
        let written = writer
            .await
            .map_err(|e| ClientError::Protocol(format!("writing the file failed: {e}")))?;
        let discard = || {
            let _ = std::fs::remove_file(&part_path);
        };
        let (claimed, computed) = match (claimed, written) {
            (Err(e), _) => {
                discard();
                return Err(e);
            }
            (Ok(_), Err(e)) => {
                discard();
                return Err(ClientError::local(&part_path, e));
            }
            (Ok(claimed), Ok(computed)) => (claimed, computed),
        };
        let reason = if received != size {
            Some(format!("received {received} of {size} bytes"))
        } else if computed != claimed {
            Some(format!("digest {computed} instead of {claimed}"))
        } else {
            None
        };
        if let Some(reason) = reason {
            discard();
            return Err(ClientError::Verification {
                remote: item.remote.clone(),
                reason,
            });
        }
        std::fs::rename(&part_path, &item.local).map_err(|e| ClientError::local(&item.local, e))?;
        Ok(size)
    }
}

/// The disk side of a download: hash what the `.part` already holds, then
/// write and hash every chunk, then (when durable) fsync.
fn write_chunks(
    mut part: Part,
    algorithm: DigestAlgorithm,
    durable: bool,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    if part.offset > 0 {
        let mut kept = File::open(&part.path)?;
        hash_exactly(&mut kept, part.offset, &mut hasher)?;
    }
    while let Some(chunk) = rx.blocking_recv() {
        part.file.write_all(&chunk)?;
        hasher.update(&chunk);
    }
    if durable {
        part.file.sync_all()?;
    }
    Ok(hasher.finish())
}

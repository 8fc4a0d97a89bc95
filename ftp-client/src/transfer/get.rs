//! Downloads. [`Client::get_files`] sends every `Get` at once, then takes the
//! files in order. Each lands in `LOCAL.part`; only when its size and digest
//! match is it fsynced and renamed to `LOCAL`. A `.part` left by a lost
//! connection can be continued with `resume`; an existing `.part` is never
//! overwritten otherwise.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::write_back::WriteBack;
use ftp_shared::{Digest, Request, Response};
use tokio::sync::mpsc;

use super::put::hash_exactly;
use super::{Outcome, Progress, QUEUE, by_windows};
use crate::client::{next_reply_to, unexpected};
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

/// For each item, whether an earlier item writes the same file: the same
/// target (both would write one `.part`), a target that is the other's
/// `.part`, or a `.part` that is the other's target (one rename would
/// replace the other's `.part` midway).
fn clashing_targets(items: &[GetItem]) -> Vec<bool> {
    // The targets and `.part` files of the items taken so far.
    let mut taken: HashSet<PathBuf> = HashSet::new();
    items
        .iter()
        .map(|item| {
            let part = part_path(&item.local);
            let clash = taken.contains(&item.local) || taken.contains(&part);
            if !clash {
                taken.insert(item.local.clone());
                taken.insert(part);
            }
            clash
        })
        .collect()
}

/// The `.part` files a window created: those still empty when the window
/// ends (however it ends, a dropped future too) are removed; one holding
/// bytes of a download cut short is kept for a resume.
struct CreatedParts(Vec<PathBuf>);

impl Drop for CreatedParts {
    fn drop(&mut self) {
        for path in &self.0 {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(path);
            }
        }
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
        self.get_many(items, resume, progress).await.into_result()
    }

    /// [`Client::get_files`], telling also the results of the files done
    /// before a lost connection. Two downloads that would write one file
    /// (one target, or a target that is the other's `.part`) are refused;
    /// so is a `.part` already there without `resume`. The `.part` files of
    /// downloads that did not start are removed, also when the transfer is
    /// dropped midway.
    pub async fn get_many(
        &mut self,
        items: &[GetItem],
        resume: bool,
        progress: Progress<'_>,
    ) -> Outcome {
        let clashing = clashing_targets(items);
        by_windows(
            items,
            &clashing,
            progress,
            async |window, repeated, results, progress| {
                self.get_window(window, repeated, resume, results, progress)
                    .await
            },
        )
        .await
    }

    /// [`Client::get_many`] for at most [`WINDOW`](super::WINDOW) files,
    /// whose `.part` files are all open at once: their results are appended
    /// to `results`; returns the error that lost the connection.
    async fn get_window(
        &mut self,
        items: &[GetItem],
        repeated: &[bool],
        resume: bool,
        results: &mut Vec<Result<u64, ClientError>>,
        progress: Progress<'_>,
    ) -> Option<ClientError> {
        let parts: Vec<_> = items
            .iter()
            .zip(repeated)
            .map(|(item, &repeated)| {
                if repeated {
                    return Err(ClientError::TargetTwice {
                        target: item.local.to_string_lossy().into_owned(),
                    });
                }
                Part::prepare(&item.local, resume)
            })
            .collect();
        let _created = CreatedParts(
            parts
                .iter()
                .filter_map(|p| p.as_ref().ok().filter(|p| p.created))
                .map(|p| p.path.clone())
                .collect(),
        );
        let requests = async {
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
            self.writer.flush().await
        };
        if let Err(e) = requests.await {
            return Some(e);
        }

        for (i, part) in parts.into_iter().enumerate() {
            let part = match part {
                Ok(part) => part,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let result = self
                .receive(&items[i], part, &mut |done, total| progress(i, done, total))
                .await;
            match result {
                // The connection is gone: what arrived stays for a resume.
                Err(e) if e.ends_session() => return Some(e),
                result => results.push(result),
            }
        }
        None
    }

    /// One download: `FileStart`, `Data`..., `FileEnd`.
    async fn receive(
        &mut self,
        item: &GetItem,
        part: Part,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        let what = format!("Get {}", ftp_shared::text::escape(&item.remote));
        let size = match next_reply_to(&mut self.reader, &what).await {
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
        let (part_path, created) = (part.path.clone(), part.created);
        let (algorithm, durable) = (self.algorithm, self.durable);
        let writer =
            tokio::task::spawn_blocking(move || write_chunks(part, algorithm, durable, rx));
        let mut writing = Some(tx);
        let mut received = offset;
        // The digest, a refusal, a lost connection or a reply that does not fit.
        let claimed = loop {
            match next_reply_to(&mut self.reader, &what).await {
                Ok(Response::Data(data)) => {
                    received += data.len() as u64;
                    if received > size {
                        break Err(ClientError::Protocol(format!(
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
                Ok(other) => break Err(unexpected(other)),
                Err(e) => break Err(e),
            }
        };
        // Every byte received is on disk before anything is decided.
        drop(writing);
        let written = writer
            .await
            .map_err(|e| ClientError::Protocol(format!("writing the file failed: {e}")))?;
        // What arrived before the connection broke stays for a resume.
        let claimed = match claimed {
            Err(e) if e.ends_session() => return Err(e),
            claimed => claimed,
        };
        let discard = || {
            let _ = std::fs::remove_file(&part_path);
        };
        // A failure that says nothing against the bytes: the `.part` goes
        // back to what it was before this download (a resumed one keeps the
        // bytes it had).
        let restore = || {
            if created {
                discard();
            } else {
                let _ = OpenOptions::new()
                    .write(true)
                    .open(&part_path)
                    .and_then(|f| f.set_len(offset));
            }
        };
        let (claimed, computed) = match (claimed, written) {
            (Err(e), _) => {
                restore();
                return Err(e);
            }
            (Ok(_), Err(e)) => {
                restore();
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
        if let Err(e) = std::fs::rename(&part_path, &item.local) {
            restore();
            return Err(ClientError::local(&item.local, e));
        }
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
    let mut write_back = WriteBack::new(part.offset);
    while let Some(chunk) = rx.blocking_recv() {
        part.file.write_all(&chunk)?;
        hasher.update(&chunk);
        if durable {
            write_back.wrote(&part.file, chunk.len() as u64);
        }
    }
    if durable {
        part.file.sync_all()?;
    }
    Ok(hasher.finish())
}

//! Uploads. [`Client::put_files`] sends every file without waiting for the
//! replies (a sender and a receiver run at once on the two halves of the
//! connection), so many small files do not pay a round trip each; the server
//! commits them in groups. A reply that comes while its file is still being
//! sent is an early refusal: the rest of that file is not sent.
//!
//! Every wait on the server is bounded by [`timeout`](crate::client::timeout):
//! each write of the upload (a server that takes nothing of it for that long
//! fails it), and each reply once everything was sent. A transfer that takes
//! longer than that in all, the server taking bytes all along, goes on.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::{Request, Response};
use tokio::sync::{mpsc, watch};

use self::source::{Source, read_chunks};
use super::{Outcome, Progress, QUEUE, RESUME_MIN, by_windows};
use crate::client::{display_path, next_reply_to, unexpected};
use crate::replies::{Sending, next_reply_once_sent};
use crate::wire::{Reader, Writer};
use crate::{Client, ClientError};

mod source;

pub(crate) use self::source::hash_exactly;

/// One file to upload.
#[derive(Debug, Clone)]
pub struct PutItem {
    pub local: PathBuf,
    pub remote: String,
}

impl Client {
    /// Uploads the local file `local` to `remote`, continuing an interrupted
    /// upload of it when the server kept one; `progress` is told the bytes
    /// done and the total. Returns the size.
    pub async fn put_file(
        &mut self,
        local: &Path,
        remote: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        let items = [PutItem {
            local: local.to_path_buf(),
            remote: remote.to_string(),
        }];
        let mut results = self
            .put_files(&items, true, &mut |_, done, total| progress(done, total))
            .await?;
        results.pop().expect("one result per file")
    }

    /// Uploads every item, pipelined. With `resume`, files of
    /// [`RESUME_MIN`] bytes or more continue where an interrupted upload
    /// stopped, once the server's kept bytes are checked against the local
    /// file. The outer error is a lost connection; each file has its result.
    pub async fn put_files(
        &mut self,
        items: &[PutItem],
        resume: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<Result<u64, ClientError>>, ClientError> {
        self.put_many(items, resume, progress).await.into_result()
    }

    /// [`Client::put_files`], telling also the results of the files done
    /// before a lost connection. Two uploads to one remote path are refused:
    /// which of them would be kept depends on the order of the server's
    /// commits, so the second is not sent.
    pub async fn put_many(
        &mut self,
        items: &[PutItem],
        resume: bool,
        progress: Progress<'_>,
    ) -> Outcome {
        let repeated = repeated_targets(items);
        by_windows(
            items,
            &repeated,
            progress,
            async |window, repeated, results, progress| {
                self.put_window(window, repeated, resume, results, progress)
                    .await
            },
        )
        .await
    }

    /// [`Client::put_many`] for at most [`WINDOW`](super::WINDOW) files,
    /// whose local files are all open at once: the results whose fate is
    /// known are appended to `results`; returns the error that lost the
    /// connection.
    async fn put_window(
        &mut self,
        items: &[PutItem],
        repeated: &[bool],
        resume: bool,
        results: &mut Vec<Result<u64, ClientError>>,
        progress: Progress<'_>,
    ) -> Option<ClientError> {
        let algorithm = self.algorithm;
        let mut sources: Vec<_> = items
            .iter()
            .zip(repeated)
            .map(|(item, &repeated)| {
                if repeated {
                    return Err(ClientError::TargetTwice {
                        target: item.remote.clone(),
                    });
                }
                Source::open(&item.local, algorithm)
            })
            .collect();
        if resume {
            for (item, source) in items.iter().zip(sources.iter_mut()) {
                if let Ok(opened) = source
                    && opened.size >= RESUME_MIN
                {
                    match self.resume_point(item, opened).await {
                        Ok(()) => {}
                        Err(e @ (ClientError::Local { .. } | ClientError::LocalFile { .. })) => {
                            *source = Err(e)
                        }
                        Err(e) => return Some(e),
                    }
                }
            }
        }

        let replied = AtomicUsize::new(0);
        let (expect, expected) = mpsc::unbounded_channel();
        let (sending, sent) = watch::channel(Sending::Busy);
        let mut remote: Vec<_> = (0..items.len()).map(|_| None).collect();
        let Client { reader, writer, .. } = self;
        let signals = Signals {
            replied: &replied,
            expect,
            sending,
        };
        let sending = send_all(writer, items, sources, algorithm, signals, progress);
        let receiving = receive_all(reader, items, expected, sent, &replied, &mut remote);
        let ((local, sent), received) = tokio::join!(sending, receiving);
        let lost = sent.and(received).err();
        let mut local = local.into_iter();
        for (item, remote) in items.iter().zip(remote) {
            results.push(match (local.next(), remote) {
                (Some(Err(e)), _) => Err(e),
                (Some(Ok(size)), Some(Ok(()))) => Ok(size),
                (Some(Ok(_)), Some(Err(e))) => Err(e),
                // Sent but not answered, or not sent: unknown when the
                // connection was lost, from here on.
                _ if lost.is_some() => break,
                _ => Err(ClientError::Protocol(format!(
                    "no reply for {}",
                    item.remote
                ))),
            });
        }
        lost
    }

    /// Asks the server what it kept of an earlier upload of this file and,
    /// when the kept bytes match the start of the local file, moves the
    /// source past them.
    async fn resume_point(
        &mut self,
        item: &PutItem,
        source: &mut Source,
    ) -> Result<(), ClientError> {
        self.writer
            .send(&Request::Partial {
                path: item.remote.clone(),
                size: source.size,
                algorithm: self.algorithm,
            })
            .await
            .map_err(|e| stalled(e, format!("Partial {}", display_path(&item.remote))))?;
        let what = format!("Partial {}", display_path(&item.remote));
        let (offset, digest) = match next_reply_to(&mut self.reader, &what).await {
            Ok(Response::Partial { offset, digest }) => (offset, digest),
            Ok(other) => return Err(unexpected(other)),
            // A refused path: the upload itself reports it.
            Err(ClientError::Remote { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if offset == 0 || offset > source.size {
            return Ok(());
        }
        let mut file = source
            .file
            .try_clone()
            .map_err(|e| ClientError::local(&item.local, e))?;
        let algorithm = self.algorithm;
        let prefix = tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::new(algorithm);
            file.seek(SeekFrom::Start(0))?;
            hash_exactly(&mut file, offset, &mut hasher)?;
            std::io::Result::Ok(hasher)
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("reading the file failed: {e}")))?
        .map_err(|e| ClientError::local(&item.local, e))?;
        let start = if prefix.clone().finish() == digest {
            source.offset = offset;
            source.hasher = prefix;
            offset
        } else {
            0
        };
        source
            .file
            .seek(SeekFrom::Start(start))
            .map_err(|e| ClientError::local(&item.local, e))?;
        Ok(())
    }
}

/// For each item, whether an earlier item uploads to the same remote path.
fn repeated_targets(items: &[PutItem]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .map(|item| !seen.insert(item.remote.as_str()))
        .collect()
}

/// What the two halves tell each other.
struct Signals<'a> {
    /// How many files have their reply (the receiver's count).
    replied: &'a AtomicUsize,
    /// The index of each file whose `Put` was sent: its reply will come.
    expect: mpsc::UnboundedSender<usize>,
    /// Whether everything was sent: the replies are due from then on.
    sending: watch::Sender<Sending>,
}

/// A [`ClientError::TimedOut`] of a write, naming `what` was being sent
/// (other errors as they are).
fn stalled(e: ClientError, what: String) -> ClientError {
    match e {
        ClientError::TimedOut { limit, .. } => ClientError::TimedOut {
            limit,
            waiting: format!("the server to take {what}"),
        },
        e => e,
    }
}

/// The sending half: each file's `Put`, its data and its `PutEnd` (or
/// `PutCancel`), telling the receiver which replies to expect and when all
/// was sent. Returns the local result of each file it came to (the bytes
/// sent, or why the file could not be read) and whether the connection held.
async fn send_all(
    writer: &mut Writer,
    items: &[PutItem],
    sources: Vec<Result<Source, ClientError>>,
    algorithm: DigestAlgorithm,
    signals: Signals<'_>,
    progress: Progress<'_>,
) -> (Vec<Result<u64, ClientError>>, Result<(), ClientError>) {
    let Signals {
        replied,
        expect,
        sending,
    } = signals;
    let mut results = Vec::with_capacity(items.len());
    // The file being sent, to name in the error of a stalled write.
    let mut current = None;
    let sent = async {
        for (i, (item, source)) in items.iter().zip(sources).enumerate() {
            let source = match source {
                Ok(source) => source,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let (size, offset) = (source.size, source.offset);
            current = Some(i);
            writer
                .feed(&Request::Put {
                    path: item.remote.clone(),
                    size,
                    offset,
                    algorithm,
                })
                .await?;
            let _ = expect.send(i);
            progress(i, offset, size);

            let (tx, mut chunks) = mpsc::channel(QUEUE);
            let path = item.local.clone();
            let (file, hasher) = (source.file, source.hasher);
            let reader = tokio::task::spawn_blocking(move || {
                read_chunks(file, size - offset, hasher, &path, tx)
            });
            let mut sent = offset;
            let mut refused = false;
            while let Some(chunk) = chunks.recv().await {
                // A reply for this file while it is being sent: refused early.
                if replied.load(Ordering::Acquire) > i {
                    refused = true;
                    break;
                }
                sent += chunk.len() as u64;
                writer.feed_data(chunk).await?;
                progress(i, sent, size);
            }
            drop(chunks);
            let read = reader
                .await
                .map_err(|e| ClientError::Protocol(format!("reading the file failed: {e}")))?;
            match read {
                _ if refused => {
                    writer.feed(&Request::PutCancel).await?;
                    results.push(Ok(size));
                }
                Ok(digest) => {
                    writer.feed(&Request::PutEnd { digest }).await?;
                    results.push(Ok(size));
                }
                Err(e) => {
                    writer.feed(&Request::PutCancel).await?;
                    results.push(Err(e));
                }
            }
            if size >= RESUME_MIN {
                writer.flush().await?;
            }
        }
        writer.flush().await
    }
    .await
    .map_err(|e| match current {
        Some(i) => stalled(
            e,
            format!("more of the upload of {}", display_path(&items[i].remote)),
        ),
        None => e,
    });
    let _ = sending.send(match &sent {
        // The server took nothing for the whole timeout: replies not
        // already here are not waited for.
        Err(ClientError::TimedOut { .. }) => Sending::Stalled,
        _ => Sending::Done(tokio::time::Instant::now()),
    });
    (results, sent)
}

/// The receiving half: one reply per expected file, in order, into `results`.
async fn receive_all(
    reader: &mut Reader,
    items: &[PutItem],
    mut expected: mpsc::UnboundedReceiver<usize>,
    mut sent: watch::Receiver<Sending>,
    replied: &AtomicUsize,
    results: &mut [Option<Result<(), ClientError>>],
) -> Result<(), ClientError> {
    while let Some(i) = expected.recv().await {
        // The reply comes after the whole file was sent, however long that
        // takes (the writes are bounded meanwhile); once all was sent, each
        // reply is due within the timeout.
        let what = format!(
            "the end of the upload of {}",
            display_path(&items[i].remote)
        );
        let result = match next_reply_once_sent(reader, &mut sent, &what).await {
            Ok(Response::Ok) => Ok(()),
            Ok(other) => return Err(unexpected(other)),
            Err(e @ ClientError::Remote { .. }) => Err(e),
            Err(e) => return Err(e),
        };
        results[i] = Some(result);
        replied.store(i + 1, Ordering::Release);
    }
    Ok(())
}

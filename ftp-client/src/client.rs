//! [`Client`]: one session with a server.
//!
//! Transfers stream in chunks through a blocking disk thread and a small
//! bounded channel, so memory stays constant whatever the file size, and
//! every byte is hashed on the way: an upload ends with the digest the
//! server checks, a download lands in `NAME.part` and is renamed only after
//! its digest matched.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ftp_shared::codec::{ClientCodec, MAX_FRAME};
use ftp_shared::message::{CHUNK_SIZE, Hasher, MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::{ClientFirst, ScramKeys};
use ftp_shared::{Digest, ErrorCode, Request, Response};
use futures::{SinkExt, StreamExt};
use serde_bytes::ByteBuf;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use crate::ClientError;

/// Chunks in flight between the disk thread and the network.
const QUEUE: usize = 4;

/// Login keys that stand in for the password with one server: the salt and
/// iteration count they were derived with, and ClientKey/ServerKey.
#[derive(Clone, Debug)]
pub struct SavedKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub keys: ScramKeys,
}

/// What proves who the user is.
#[derive(Debug, Clone, Copy)]
pub enum Secret<'a> {
    Password(&'a str),
    Keys(&'a SavedKeys),
}

/// A connection to a server, logged in after [`Client::login`].
#[derive(Debug)]
pub struct Client {
    conn: Framed<TcpStream, ClientCodec>,
    server: String,
}

impl Client {
    /// Connects and exchanges hellos.
    pub async fn connect(
        addr: impl ToSocketAddrs + std::fmt::Display,
    ) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        stream.set_nodelay(true).map_err(ClientError::Connection)?;
        let mut client = Client {
            conn: Framed::new(stream, ClientCodec::new(MAX_FRAME)),
            server: String::new(),
        };
        client
            .conn
            .send(Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            })
            .await?;
        match client.reply().await? {
            Response::Hello { version, server } if version == PROTOCOL_VERSION => {
                client.server = server;
                Ok(client)
            }
            Response::Hello { version, .. } => Err(ClientError::Protocol(format!(
                "the server speaks protocol version {version}, this client {PROTOCOL_VERSION}"
            ))),
            other => Err(unexpected(other)),
        }
    }

    /// The server's name and version from its hello.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Logs in with SCRAM-SHA-256 and checks that the server knows the
    /// user's verifier. Returns the keys, for saving in place of the password.
    pub async fn login(
        &mut self,
        user: &str,
        secret: Secret<'_>,
    ) -> Result<SavedKeys, ClientError> {
        let first = ClientFirst::new(user);
        self.conn
            .send(Request::AuthStart {
                client_first: first.message(),
            })
            .await?;
        let server_first = match self.reply().await? {
            Response::AuthChallenge { server_first } => server_first,
            other => return Err(unexpected(other)),
        };
        let challenge = first.handle_server_first(&server_first)?;
        let saved = match secret {
            Secret::Keys(saved) => {
                if saved.salt != challenge.salt() || saved.iterations != challenge.iterations() {
                    return Err(ClientError::StaleKeys);
                }
                saved.clone()
            }
            Secret::Password(password) => {
                let (password, salt, iterations) = (
                    password.to_string(),
                    challenge.salt().to_vec(),
                    challenge.iterations(),
                );
                // PBKDF2 is deliberately slow: keep it off the async workers.
                tokio::task::spawn_blocking(move || SavedKeys {
                    keys: ScramKeys::derive(password.as_bytes(), &salt, iterations),
                    salt,
                    iterations,
                })
                .await
                .map_err(|e| ClientError::Protocol(format!("key derivation failed: {e}")))?
            }
        };
        let (last, client_final) = challenge.finish(&saved.keys);
        self.conn.send(Request::AuthFinish { client_final }).await?;
        match self.reply().await? {
            Response::AuthOk { server_final } => {
                last.verify_server_final(&server_final)?;
                Ok(saved)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Creates a directory (with `parents`, like `mkdir -p`).
    pub async fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), ClientError> {
        self.conn
            .send(Request::Mkdir {
                path: path.to_string(),
                parents,
            })
            .await?;
        self.expect_ok().await
    }

    /// Uploads the local file `local` to `remote`; `progress` is told the
    /// bytes sent so far and the total. Returns the size.
    pub async fn put_file(
        &mut self,
        local: &Path,
        remote: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        let file = File::open(local).map_err(|e| ClientError::local(local, e))?;
        let meta = file.metadata().map_err(|e| ClientError::local(local, e))?;
        if !meta.is_file() {
            return Err(ClientError::LocalFile {
                path: local.into(),
                message: "not a regular file".into(),
            });
        }
        let size = meta.len();
        self.conn
            .send(Request::Put {
                path: remote.to_string(),
                size,
            })
            .await?;
        progress(0, size);

        let (tx, mut chunks) = mpsc::channel(QUEUE);
        let path = local.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || read_chunks(file, size, &path, tx));
        let mut sent = 0;
        loop {
            tokio::select! {
                biased;
                // A reply before the end is an early refusal (bad path, disk full, ...).
                early = self.conn.next() => {
                    drop(chunks);
                    let reply = early.ok_or(ClientError::Connection(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ))??;
                    self.conn.send(Request::PutCancel).await?;
                    return Err(match reply {
                        Response::Error { code, message } => ClientError::Remote { code, message },
                        other => unexpected(other),
                    });
                }
                chunk = chunks.recv() => match chunk {
                    Some(chunk) => {
                        sent += chunk.len() as u64;
                        self.conn.send(Request::Data(ByteBuf::from(chunk))).await?;
                        progress(sent, size);
                    }
                    None => break,
                },
            }
        }
        let digest = match reader.await {
            Ok(Ok(digest)) => digest,
            Ok(Err(e)) => {
                self.conn.send(Request::PutCancel).await?;
                // The server answers the cancelled upload (CANCELLED); the
                // local error is what the user needs to hear.
                match self.reply().await {
                    Ok(_) | Err(ClientError::Remote { .. }) => return Err(e),
                    Err(lost) => return Err(lost),
                }
            }
            Err(e) => {
                return Err(ClientError::Protocol(format!(
                    "reading the file failed: {e}"
                )));
            }
        };
        self.conn.send(Request::PutEnd { digest }).await?;
        self.expect_ok().await?;
        Ok(size)
    }

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
        let part = part_path(local);
        let file = match File::create_new(&part) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ClientError::LocalFile {
                    path: part,
                    message:
                        "already exists (left by an interrupted download?); move or delete it first"
                            .into(),
                });
            }
            Err(e) => return Err(ClientError::local(&part, e)),
        };
        let result = self.receive(remote, file, &part, progress).await;
        match result {
            Ok(size) => {
                std::fs::rename(&part, local).map_err(|e| ClientError::local(local, e))?;
                Ok(size)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err(e)
            }
        }
    }

    async fn receive(
        &mut self,
        remote: &str,
        file: File,
        part: &Path,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, ClientError> {
        self.conn
            .send(Request::Get {
                path: remote.to_string(),
            })
            .await?;
        let size = match self.reply().await? {
            Response::FileStart { size } => size,
            other => return Err(unexpected(other)),
        };
        progress(0, size);
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx));
        let mut writing = Some(tx);
        let mut received = 0u64;
        let claimed = loop {
            match self.reply().await? {
                Response::Data(data) => {
                    received += data.len() as u64;
                    if received > size {
                        return Err(ClientError::Protocol(format!(
                            "the server sent more than the announced {size} bytes"
                        )));
                    }
                    // After a local write error, keep reading to the end of
                    // the download so the session stays usable.
                    if let Some(tx) = &writing
                        && tx.send(data.into_vec()).await.is_err()
                    {
                        writing = None;
                    }
                    progress(received, size);
                }
                Response::FileEnd { digest } => break digest,
                other => return Err(unexpected(other)),
            }
        };
        drop(writing);
        let computed = match writer.await {
            Ok(Ok(digest)) => digest,
            Ok(Err(e)) => return Err(ClientError::local(part, e)),
            Err(e) => {
                return Err(ClientError::Protocol(format!(
                    "writing the file failed: {e}"
                )));
            }
        };
        let reason = if received != size {
            Some(format!("received {received} of {size} bytes"))
        } else if computed != claimed {
            Some(format!("digest {computed} instead of {claimed}"))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ClientError::Verification {
                remote: remote.to_string(),
                reason,
            });
        }
        Ok(size)
    }

    /// Ends the session politely.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.conn.send(Request::Quit).await?;
        self.expect_ok().await
    }

    async fn reply(&mut self) -> Result<Response, ClientError> {
        match self.conn.next().await {
            Some(Ok(Response::Error { code, message })) => Err(match code {
                ErrorCode::AUTH_FAILED => ClientError::AuthFailed,
                _ => ClientError::Remote { code, message },
            }),
            Some(reply) => Ok(reply?),
            None => Err(ClientError::Connection(
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
        }
    }

    async fn expect_ok(&mut self) -> Result<(), ClientError> {
        match self.reply().await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Response) -> ClientError {
    let what = match reply {
        Response::Error { code, message } => return ClientError::Remote { code, message },
        Response::Hello { .. } => "Hello",
        Response::AuthChallenge { .. } => "AuthChallenge",
        Response::AuthOk { .. } => "AuthOk",
        Response::Ok => "Ok",
        Response::FileStart { .. } => "FileStart",
        Response::Data(_) => "Data",
        Response::FileEnd { .. } => "FileEnd",
    };
    ClientError::Protocol(format!("unexpected reply {what}"))
}

/// Where a download is written until it is verified: `NAME.part` beside `local`.
pub fn part_path(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    local.with_file_name(name)
}

/// The disk side of an upload: exactly `size` bytes, hashed, then the digest.
fn read_chunks(
    mut file: File,
    size: u64,
    path: &Path,
    tx: mpsc::Sender<Vec<u8>>,
) -> Result<Digest, ClientError> {
    let changed = || ClientError::LocalFile {
        path: path.into(),
        message: "the file changed while it was being sent".into(),
    };
    let mut hasher = Hasher::new();
    let mut left = size;
    while left > 0 {
        let want = left.min(CHUNK_SIZE as u64) as usize;
        let mut chunk = vec![0u8; want];
        file.read_exact(&mut chunk).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => changed(),
            _ => ClientError::local(path, e),
        })?;
        hasher.update(&chunk);
        left -= want as u64;
        if tx.blocking_send(chunk).is_err() {
            break; // the upload was refused; the caller reports why
        }
    }
    if left == 0
        && file
            .read(&mut [0u8; 1])
            .map_err(|e| ClientError::local(path, e))?
            != 0
    {
        return Err(changed());
    }
    Ok(hasher.finish())
}

/// The disk side of a download: write and hash every chunk, then fsync.
fn write_chunks(mut file: File, mut rx: mpsc::Receiver<Vec<u8>>) -> std::io::Result<Digest> {
    let mut hasher = Hasher::new();
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        hasher.update(&chunk);
    }
    file.sync_all()?;
    Ok(hasher.finish())
}

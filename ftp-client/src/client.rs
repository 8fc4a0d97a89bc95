//! [`Client`]: one session with a server: connect, log in, then requests.
//!
//! The connection is split into a reader of responses and a writer of
//! requests (see [`crate::wire`]), so a transfer can send while it watches
//! for replies, and many requests can be in flight at once (pipelining).
//! File transfers live in [`crate::transfer`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ftp_shared::codec::{ClientCodec, MAX_FRAME};
use ftp_shared::message::{DigestAlgorithm, Entry, MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::{ChannelBinding, ClientFirst, ScramKeys, TLS_EXPORTER_LEN};
use ftp_shared::{ErrorCode, Request, Response};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::either::Either;

use crate::ClientError;
use crate::tls::{self, Transport};
use crate::wire::{Reader, Writer};

/// How long any one wait on the server may take by default: the TCP
/// connect, the TLS handshake, each reply and each frame of a transfer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The wait bound in force, in milliseconds (see [`set_timeout`]).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

/// Sets how long any one wait on the server may take (`--timeout`): a
/// server that stops answering then fails the command instead of hanging it.
pub fn set_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// How long any one wait on the server may take.
pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// The most entries one listing may have: a server whose listing never
/// ends fails it instead of filling the memory.
pub const MAX_LISTING_ENTRIES: usize = 1_000_000;

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
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    server: String,
    /// The digest algorithm transfers ask for.
    pub(crate) algorithm: DigestAlgorithm,
    /// Whether a download is flushed to disk before it is renamed into place.
    pub(crate) durable: bool,
    /// The `tls-exporter` value the login is bound to (`None` in plaintext).
    channel_binding: Option<[u8; TLS_EXPORTER_LEN]>,
}

impl Client {
    /// Connects to `addr` (`HOST:PORT`), sets up `transport` (the TLS
    /// handshake and the check of the server's certificate) and exchanges
    /// hellos. The TCP connect and the TLS handshake each get
    /// [`timeout`] (a question about a new host, none).
    pub async fn connect(addr: &str, transport: &Transport) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr).await?;
        let (stream, channel_binding) = match transport {
            Transport::InsecurePlaintext => (Either::Left(tcp), None),
            Transport::Tls(options) => {
                let (stream, binding) = match tls::handshake(tcp, addr, options).await? {
                    Some(done) => done,
                    // A person was asked about a new host and may have
                    // taken longer than the server waits for a login: the
                    // host is pinned now, and a fresh connection checked
                    // against the pin starts the login in time.
                    None => tls::handshake(tcp_connect(addr).await?, addr, options)
                        .await?
                        .ok_or_else(|| ClientError::Tls {
                            addr: addr.to_string(),
                            message: "the certificate could not be pinned".into(),
                        })?,
                };
                (stream, Some(binding))
            }
        };
        let (read, write) = tokio::io::split(stream);
        let mut client = Client {
            reader: FramedRead::new(read, ClientCodec::new(MAX_FRAME)),
            writer: Writer::new(write),
            server: String::new(),
            algorithm: DigestAlgorithm::default(),
            durable: true,
            channel_binding,
        };
        client
            .writer
            .send(&Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            })
            .await?;
        let reply = match client.reply().await {
            Err(ClientError::Remote { code, message }) => {
                return Err(ClientError::Refused {
                    addr: addr.to_string(),
                    code,
                    message,
                });
            }
            reply => reply?,
        };
        match reply {
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

    /// Chooses the digest algorithm of later transfers (BLAKE3 by default).
    pub fn set_digest_algorithm(&mut self, algorithm: DigestAlgorithm) {
        self.algorithm = algorithm;
    }

    /// With `false`, downloads are renamed into place without waiting for the
    /// disk: faster, but a power loss soon after can leave a file empty.
    pub fn set_durable_downloads(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// Logs in with SCRAM-SHA-256, over TLS bound to the channel
    /// (SCRAM-SHA-256-PLUS, `tls-exporter`), and checks that the server
    /// knows the user's verifier. Returns the keys, for saving in place of
    /// the password.
    ///
    /// Over TLS the binding is always used: a server that refuses it is an
    /// error, never a reason to log in unbound (RFC 5802 section 6).
    pub async fn login(
        &mut self,
        user: &str,
        secret: Secret<'_>,
    ) -> Result<SavedKeys, ClientError> {
        let first = match self.channel_binding {
            Some(data) => ClientFirst::bound(user, ChannelBinding::TlsExporter(data)),
            None => ClientFirst::new(user),
        };
        self.writer
            .send(&Request::AuthStart {
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
        self.writer
            .send(&Request::AuthFinish { client_final })
            .await?;
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
        self.writer
            .send(&Request::Mkdir {
                path: path.to_string(),
                parents,
            })
            .await?;
        self.expect_ok().await
    }

    /// Lists a directory (sorted by name), or describes a file as a
    /// one-entry list. The empty path is the home.
    pub async fn list(&mut self, path: &str) -> Result<Vec<Entry>, ClientError> {
        self.writer
            .send(&Request::List {
                path: path.to_string(),
            })
            .await?;
        let what = format!("List {}", display_path(path));
        let mut all = Vec::new();
        loop {
            match next_reply_to(&mut self.reader, &what).await? {
                Response::Entries { entries, more } => {
                    add_entries(&mut all, entries, path)?;
                    if !more {
                        break;
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Describes one entry, following symlinks that stay in the home. The
    /// empty path is the home.
    pub async fn stat(&mut self, path: &str) -> Result<Entry, ClientError> {
        self.writer
            .send(&Request::Stat {
                path: path.to_string(),
            })
            .await?;
        match self.reply().await? {
            Response::Stat { entry } => Ok(entry),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes a file (a symlink itself, never its target).
    pub async fn remove(&mut self, path: &str) -> Result<(), ClientError> {
        self.writer
            .send(&Request::Remove {
                path: path.to_string(),
            })
            .await?;
        self.expect_ok().await
    }

    /// Deletes an empty directory.
    pub async fn rmdir(&mut self, path: &str) -> Result<(), ClientError> {
        self.writer
            .send(&Request::Rmdir {
                path: path.to_string(),
            })
            .await?;
        self.expect_ok().await
    }

    /// Renames `from` to `to` atomically (an existing file at `to` is replaced).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), ClientError> {
        self.writer
            .send(&Request::Rename {
                from: from.to_string(),
                to: to.to_string(),
            })
            .await?;
        self.expect_ok().await
    }

    /// Whether the server closed the session while it was idle (after its
    /// idle timeout, or at shutdown): a server sends nothing unasked but the
    /// reason it closes. Does not wait for the network.
    pub async fn closed_by_server(&mut self) -> bool {
        use futures::FutureExt as _;
        // Let the runtime take in what the network said meanwhile.
        tokio::task::yield_now().await;
        self.reader.next().now_or_never().is_some()
    }

    /// Ends the session politely.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.writer.send(&Request::Quit).await?;
        self.expect_ok().await
    }

    pub(crate) async fn reply(&mut self) -> Result<Response, ClientError> {
        next_reply(&mut self.reader).await
    }

    pub(crate) async fn expect_ok(&mut self) -> Result<(), ClientError> {
        match self.reply().await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// A TCP connection to `addr` with `TCP_NODELAY`, within [`timeout`].
async fn tcp_connect(addr: &str) -> Result<TcpStream, ClientError> {
    let limit = timeout();
    let connecting = tokio::time::timeout(limit, TcpStream::connect(addr));
    let tcp = match connecting.await {
        Ok(connected) => connected,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer in {}", seconds(limit)),
        )),
    }
    .map_err(|source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    tcp.set_nodelay(true).map_err(ClientError::Connection)?;
    Ok(tcp)
}

/// `path` as shown in a message (the home for `""`), escaped.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the home".into()
    } else {
        ftp_shared::text::escape(path).to_string()
    }
}

/// `limit` as a person reads it: "30 s", "1.5 s".
pub(crate) fn seconds(limit: Duration) -> String {
    format!("{} s", limit.as_secs_f64())
}

/// Appends a page of a listing of `path`, within [`MAX_LISTING_ENTRIES`].
pub(crate) fn add_entries(
    all: &mut Vec<Entry>,
    entries: Vec<Entry>,
    path: &str,
) -> Result<(), ClientError> {
    if all.len().saturating_add(entries.len()) > MAX_LISTING_ENTRIES {
        return Err(ClientError::TooMuch(format!(
            "the listing of {} has more than {MAX_LISTING_ENTRIES} entries",
            display_path(path)
        )));
    }
    all.extend(entries);
    Ok(())
}

/// The next response, within [`timeout`]; an `Error` becomes a
/// [`ClientError`].
pub(crate) async fn next_reply(reader: &mut Reader) -> Result<Response, ClientError> {
    next_reply_to(reader, "the last request").await
}

/// [`next_reply`], naming the request waited on (`what`, e.g. "List docs")
/// in the error of a timeout.
pub(crate) async fn next_reply_to(
    reader: &mut Reader,
    what: &str,
) -> Result<Response, ClientError> {
    let limit = timeout();
    match tokio::time::timeout(limit, next_reply_untimed(reader)).await {
        Ok(reply) => reply,
        Err(_) => Err(ClientError::TimedOut {
            limit: seconds(limit),
            waiting: format!("the server's reply to {what}"),
        }),
    }
}

/// The next response, however long it takes: for a reply that comes only
/// after a transfer of unknown length (an upload's), whose progress is
/// bounded elsewhere.
pub(crate) async fn next_reply_untimed(reader: &mut Reader) -> Result<Response, ClientError> {
    match reader.next().await {
        Some(Ok(Response::Error { code, message })) => Err(match code {
            ErrorCode::AUTH_FAILED => ClientError::AuthFailed,
            ErrorCode::CHANNEL_BINDING => ClientError::ChannelBinding { message },
            _ => ClientError::Remote { code, message },
        }),
        Some(reply) => Ok(reply?),
        None => Err(ClientError::Connection(
            std::io::ErrorKind::UnexpectedEof.into(),
        )),
    }
}

/// A reply that does not fit the request.
pub(crate) fn unexpected(reply: Response) -> ClientError {
    let what = match reply {
        Response::Error { code, message } => return ClientError::Remote { code, message },
        Response::Hello { .. } => "Hello",
        Response::AuthChallenge { .. } => "AuthChallenge",
        Response::AuthOk { .. } => "AuthOk",
        Response::Ok => "Ok",
        Response::FileStart { .. } => "FileStart",
        Response::Data(_) => "Data",
        Response::FileEnd { .. } => "FileEnd",
        Response::Partial { .. } => "Partial",
        Response::Entries { .. } => "Entries",
        Response::Stat { .. } => "Stat",
    };
    ClientError::Protocol(format!("unexpected reply {what}"))
}

//! [`Client`]: one session with a server: connect, log in, then requests.
//!
//! The connection is split into a reader of responses and a writer of
//! requests (see [`crate::wire`]), so a transfer can send while it watches
//! for replies, and many requests can be in flight at once (pipelining).
//! File transfers live in [`crate::transfer`].

use ftp_shared::codec::{ClientCodec, MAX_FRAME};
use ftp_shared::message::{DigestAlgorithm, Entry, MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::{ChannelBinding, ClientFirst, ScramKeys, TLS_EXPORTER_LEN};
use ftp_shared::{Request, Response};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::either::Either;

use crate::ClientError;
use crate::tls::{self, Transport};
use crate::wire::{Reader, Writer};

pub use crate::replies::{DEFAULT_TIMEOUT, MAX_LISTING_ENTRIES, set_timeout, timeout};
pub(crate) use crate::replies::{add_entries, next_reply, next_reply_to, seconds, unexpected};

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
pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the home".into()
    } else {
        ftp_shared::text::escape(path).to_string()
    }
}

//! The protocol by hand, for tests that send what no well-behaved client
//! would: frame helpers ([`frame_of`], [`write_msg`], [`read_frame`],
//! [`read_msg`]) and [`RawConn`] (a stream to the server, TLS with its
//! certificate pinned unless the server runs in plaintext, with a SCRAM
//! login done step by step, bound to the channel, and the exact bytes of
//! every reply).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use bytes::Bytes;
use bytes::BytesMut;
use ftp_shared::codec::{LENGTH_PREFIX, MAX_FRAME, decode_body, encode_frame};
use ftp_shared::message::{
    CHUNK_SIZE, DigestAlgorithm, ENTRIES_PER_BATCH, Entry, Hasher, MAGIC, PROTOCOL_VERSION,
};
use ftp_shared::scram::{ChannelBinding, ClientFinal, ClientFirst, ScramKeys};
use ftp_shared::tls::Fingerprint;
use ftp_shared::{Digest, ErrorCode, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::READ_TIMEOUT;
use crate::server::TestServer;
use crate::tls::RawStream;

/// The frame (length prefix and body) holding `msg`.
pub fn frame_of<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf).expect("encode a frame");
    buf.to_vec()
}

/// Writes one frame holding `msg`.
pub fn write_msg<T: Serialize>(stream: &mut impl Write, msg: &T) -> std::io::Result<()> {
    stream.write_all(&frame_of(msg))
}

/// Reads one whole frame (length prefix included); `None` at EOF or reset.
/// Panics on a timeout or a length over [`MAX_FRAME`].
pub fn read_frame(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    if let Err(e) = stream.read_exact(&mut prefix) {
        return closed_or_panic(e);
    }
    let len = u32::from_be_bytes(prefix) as usize;
    assert!(len <= MAX_FRAME, "the peer sent a frame of {len} bytes");
    let mut frame = vec![0u8; LENGTH_PREFIX + len];
    frame[..LENGTH_PREFIX].copy_from_slice(&prefix);
    if let Err(e) = stream.read_exact(&mut frame[LENGTH_PREFIX..]) {
        return closed_or_panic(e);
    }
    Some(frame)
}

fn closed_or_panic<T>(e: std::io::Error) -> Option<T> {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => None,
        WouldBlock | TimedOut => panic!("no frame within {READ_TIMEOUT:?}"),
        _ => panic!("read failed: {e}"),
    }
}

/// Reads and decodes one message; `None` at EOF.
pub fn read_msg<T: DeserializeOwned>(stream: &mut impl Read) -> Option<T> {
    read_frame(stream)
        .map(|f| decode_body(&f[LENGTH_PREFIX..]).expect("a well-formed message from the peer"))
}

/// A raw connection to the server: whatever frames or bytes a test wants to send.
#[derive(Debug)]
pub struct RawConn {
    stream: RawStream,
}

/// What a recorded successful login sent.
#[derive(Debug, Clone)]
pub struct RecordedLogin {
    pub client_first: String,
    pub client_final: String,
}

/// What [`RawConn::send_login`] sent, and what it needs to check the reply.
#[derive(Debug)]
pub struct SentLogin {
    pub recorded: RecordedLogin,
    /// The iteration count of the server's challenge.
    pub iterations: u32,
    /// Checks the server's `AuthOk`.
    pub last: ClientFinal,
}

impl RawConn {
    /// Connects (no hello yet). Reads time out after [`READ_TIMEOUT`].
    pub fn connect(server: &TestServer) -> RawConn {
        RawConn::connect_addr(server.addr(), server.fingerprint())
    }

    /// Connects to `addr`: TLS trusting exactly `pin`, or plain TCP
    /// without one (a server in plaintext mode).
    pub fn connect_addr(addr: SocketAddr, pin: Option<Fingerprint>) -> RawConn {
        RawConn::over(TcpStream::connect(addr).expect("connect"), pin)
    }

    /// A raw connection over an already connected `tcp` (e.g. from another
    /// loopback address), TLS trusting exactly `pin` unless it is `None`.
    pub fn over(tcp: TcpStream, pin: Option<Fingerprint>) -> RawConn {
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream = match pin {
            Some(pin) => RawStream::tls(tcp, pin),
            None => RawStream::Plain(tcp),
        };
        RawConn { stream }
    }

    /// Connects and exchanges hellos.
    pub fn connect_hello(server: &TestServer) -> RawConn {
        let mut conn = RawConn::connect(server);
        conn.hello();
        conn
    }

    /// Connects, exchanges hellos and logs in (which must succeed).
    pub fn connect_login(server: &TestServer, user: &str, password: &str) -> RawConn {
        let mut conn = RawConn::connect_hello(server);
        conn.login(user, password)
            .unwrap_or_else(|r| panic!("raw login as {user}: {r:?}"));
        conn
    }

    /// Sends one request; an error means the server closed the connection.
    pub fn send(&mut self, request: &Request) -> std::io::Result<()> {
        write_msg(&mut self.stream, request)
    }

    /// Sends arbitrary bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next reply, decoded; `None` when the server closed the connection.
    pub fn recv(&mut self) -> Option<Response> {
        read_msg(&mut self.stream)
    }

    /// The next reply as the exact bytes of its frame (length prefix included).
    pub fn recv_raw(&mut self) -> Option<Vec<u8>> {
        read_frame(&mut self.stream)
    }

    /// The next reply, which must be there.
    #[track_caller]
    pub fn expect_reply(&mut self) -> Response {
        self.recv()
            .expect("a reply, but the server closed the connection")
    }

    /// Reads until the server closes the connection (within [`READ_TIMEOUT`]
    /// per frame), returning the replies received on the way.
    pub fn expect_closed(&mut self) -> Vec<Response> {
        let mut replies = Vec::new();
        while let Some(r) = self.recv() {
            replies.push(r);
            assert!(replies.len() < 10_000, "the server keeps talking");
        }
        replies
    }

    /// Reads until the server closes the connection and asserts that its only
    /// reply on the way was an error with `code`.
    #[track_caller]
    pub fn expect_error_then_closed(&mut self, code: ErrorCode, what: &str) {
        let replies = self.expect_closed();
        assert!(
            matches!(
                replies.as_slice(),
                [Response::Error { code: got, .. }] if *got == code
            ),
            "{what}: expected one {code:?} error and a close, got {replies:?}"
        );
    }

    /// Reads until the server closes the connection and asserts that it said
    /// at most one thing on the way, an error; returns its code.
    #[track_caller]
    pub fn expect_closed_with_error(mut self, what: &str) -> Option<ErrorCode> {
        let replies = self.expect_closed();
        match replies.as_slice() {
            [] => None,
            [Response::Error { code, .. }] => Some(*code),
            other => panic!("{what}: expected an error and a close, got {other:?}"),
        }
    }

    /// Whether the server still answers: sends an invalid `Mkdir` (an empty
    /// path) and expects a reply. Only valid after login.
    pub fn is_alive(&mut self) -> bool {
        if self
            .send(&Request::Mkdir {
                path: String::new(),
                parents: true,
            })
            .is_err()
        {
            return false;
        }
        self.recv().is_some()
    }

    /// Sends `Hello` with the current version and expects the server's hello.
    #[track_caller]
    pub fn hello(&mut self) {
        self.send(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        })
        .expect("send hello");
        match self.recv() {
            Some(Response::Hello { version, .. }) => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("expected the server's hello, got {other:?}"),
        }
    }

    /// A full SCRAM login. `Err` holds the server's reply when it is not `AuthOk`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Response> {
        self.login_recorded(user, password).map(|_| ())
    }

    /// The client's half of a SCRAM login: `AuthStart`, the challenge (whose
    /// absence is returned as `Err` with the reply), then the `AuthFinish` of
    /// `password`. The server's answer to `AuthFinish` is left unread.
    pub fn send_login(&mut self, user: &str, password: &str) -> Result<SentLogin, Response> {
        let first = match self.stream.channel_binding() {
            Some(data) => ClientFirst::bound(user, ChannelBinding::TlsExporter(data)),
            None => ClientFirst::new(user),
        };
        let client_first = first.message();
        self.send(&Request::AuthStart {
            client_first: client_first.clone(),
        })
        .expect("send AuthStart");
        let server_first = match self.recv() {
            Some(Response::AuthChallenge { server_first }) => server_first,
            Some(other) => return Err(other),
            None => panic!("the server closed the connection instead of a challenge"),
        };
        let challenge = first
            .handle_server_first(&server_first)
            .expect("a valid server-first-message");
        let iterations = challenge.iterations();
        let keys = ScramKeys::derive(password.as_bytes(), challenge.salt(), iterations);
        let (last, client_final) = challenge.finish(&keys);
        self.send(&Request::AuthFinish {
            client_final: client_final.clone(),
        })
        .expect("send AuthFinish");
        Ok(SentLogin {
            recorded: RecordedLogin {
                client_first,
                client_final,
            },
            iterations,
            last,
        })
    }

    /// A full SCRAM login that returns the messages the client sent, for replaying.
    /// The server's signature is verified.
    pub fn login_recorded(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<RecordedLogin, Response> {
        let sent = self.send_login(user, password)?;
        match self.recv() {
            Some(Response::AuthOk { server_final }) => {
                sent.last
                    .verify_server_final(&server_final)
                    .expect("the server proves it knows the verifier");
                Ok(sent.recorded)
            }
            Some(other) => Err(other),
            None => panic!("the server closed the connection instead of answering the login"),
        }
    }

    /// Sends `Put { path, size, offset }` (SHA-256) and nothing after it.
    pub fn send_put(&mut self, path: &str, size: u64, offset: u64) {
        self.send(&Request::Put {
            path: path.into(),
            size,
            offset,
            algorithm: DigestAlgorithm::Sha256,
        })
        .expect("send Put");
    }

    /// Sends `Put { path, size: data.len() }`, the data in [`CHUNK_SIZE`]
    /// frames and `PutEnd` with `digest` (the true digest when `None`), and
    /// returns the reply. Must be logged in.
    pub fn put(&mut self, path: &str, data: &[u8], digest: Option<Digest>) -> Response {
        self.put_sized(path, data.len() as u64, data, digest)
    }

    /// Like [`RawConn::put`], but announces `size` whatever the length of
    /// `data`, to upload fewer or more bytes than announced.
    pub fn put_sized(
        &mut self,
        path: &str,
        size: u64,
        data: &[u8],
        digest: Option<Digest>,
    ) -> Response {
        self.send_put(path, size, 0);
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        for chunk in data.chunks(CHUNK_SIZE) {
            hasher.update(chunk);
            self.send(&Request::Data(Bytes::from(chunk.to_vec())))
                .expect("send Data");
        }
        let digest = digest.unwrap_or_else(|| hasher.finish());
        self.send(&Request::PutEnd { digest }).expect("send PutEnd");
        self.expect_reply()
    }

    /// Sends `Get { path }` and collects the file; `Err` holds the refusal.
    /// Must be logged in.
    pub fn get(&mut self, path: &str) -> Result<Vec<u8>, Response> {
        self.send(&Request::Get {
            path: path.into(),
            offset: 0,
            algorithm: DigestAlgorithm::Sha256,
        })
        .expect("send Get");
        let size = match self.expect_reply() {
            Response::FileStart { size } => size,
            other => return Err(other),
        };
        let mut data = Vec::new();
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        loop {
            match self.expect_reply() {
                Response::Data(chunk) => {
                    hasher.update(&chunk);
                    data.extend_from_slice(&chunk);
                }
                Response::FileEnd { digest } => {
                    assert_eq!(data.len() as u64, size, "{path}: size");
                    assert_eq!(digest, hasher.finish(), "{path}: digest");
                    return Ok(data);
                }
                other => return Err(other),
            }
        }
    }

    /// Sends `List { path }` and reads its whole reply: the entries of
    /// every `Entries` batch (checked to hold at most [`ENTRIES_PER_BATCH`]
    /// each, `more` on all but the last) and the size of each batch, or the
    /// refusal. Must be logged in.
    #[track_caller]
    pub fn list(&mut self, path: &str) -> Result<(Vec<Entry>, Vec<usize>), Response> {
        self.send(&Request::List { path: path.into() })
            .expect("send List");
        let (mut all, mut batches) = (Vec::new(), Vec::new());
        loop {
            match self.expect_reply() {
                Response::Entries { entries, more } => {
                    assert!(
                        entries.len() <= ENTRIES_PER_BATCH,
                        "list {path:?}: a batch of {} entries",
                        entries.len()
                    );
                    batches.push(entries.len());
                    all.extend(entries);
                    if !more {
                        return Ok((all, batches));
                    }
                }
                other if batches.is_empty() => return Err(other),
                other => panic!("list {path:?}: {other:?} in the middle of a listing"),
            }
        }
    }

    /// Sends `Stat { path }`; the entry, or the refusal. Must be logged in.
    pub fn stat(&mut self, path: &str) -> Result<Entry, Response> {
        self.send(&Request::Stat { path: path.into() })
            .expect("send Stat");
        match self.expect_reply() {
            Response::Stat { entry } => Ok(entry),
            other => Err(other),
        }
    }

    /// Sends `request` and expects `Ok`; `Err` holds any other reply.
    pub fn request_ok(&mut self, request: &Request) -> Result<(), Response> {
        self.send(request).expect("send a request");
        match self.expect_reply() {
            Response::Ok => Ok(()),
            other => Err(other),
        }
    }

    /// `Remove { path }`: `Ok(())` or the refusal.
    pub fn remove(&mut self, path: &str) -> Result<(), Response> {
        self.request_ok(&Request::Remove { path: path.into() })
    }

    /// `Rmdir { path }`: `Ok(())` or the refusal.
    pub fn rmdir(&mut self, path: &str) -> Result<(), Response> {
        self.request_ok(&Request::Rmdir { path: path.into() })
    }

    /// `Rename { from, to }`: `Ok(())` or the refusal.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Response> {
        self.request_ok(&Request::Rename {
            from: from.into(),
            to: to.into(),
        })
    }

    /// Closes both directions at once (an abrupt cut, as far as TCP allows).
    pub fn cut(self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
    }

    /// The TCP stream beneath (for socket options and half-closes).
    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// The stream the frames travel on.
    pub fn stream(&mut self) -> &mut RawStream {
        &mut self.stream
    }

    /// The `tls-exporter` value of this connection (`None` in plaintext).
    pub fn channel_binding(&self) -> Option<[u8; ftp_shared::scram::TLS_EXPORTER_LEN]> {
        self.stream.channel_binding()
    }
}

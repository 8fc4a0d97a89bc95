//! A hostile server for the client's tests: real TLS (a self-signed
//! certificate), the real framing and a real SCRAM login (bound to the
//! channel), then replies that misbehave as told ([`Misbehaviour`]). It
//! knows one user, [`USER`] with [`PASSWORD`], every path `Stat`s as a
//! directory and every `Mkdir` succeeds. An upload it reads to the end is
//! checked against its digest.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ftp_shared::message::{Entry, EntryKind, Hasher, PROTOCOL_VERSION};
use ftp_shared::scram::{
    ServerFirst, StoredCredentials, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN, parse_client_first,
};
use ftp_shared::tls::{ALPN, Fingerprint};
use ftp_shared::{ErrorCode, Request, Response};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::raw::{read_msg, write_msg};
use crate::tls::{cert_der, self_signed_pair};

/// The one user of a [`FakeServer`].
pub const USER: &str = "alice";
/// Her password.
pub const PASSWORD: &str = "fake-server-password";

/// How a [`FakeServer`] answers once the client is logged in.
#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// A `Get` is answered with a file of `size` bytes of which only the
    /// first `sent` come; then nothing more.
    StallGet { size: u64, sent: usize },
    /// A `List` is never answered.
    SilentList,
    /// Every directory holds one more directory, `d`, without end.
    EndlessTree,
    /// Every page of a listing says that more follow, without end (pages of
    /// 1,024 files with names of `name_len` bytes).
    EndlessPages { name_len: usize },
    /// A listing holds directories of these names.
    Names(Vec<String>),
    /// Every request but `Quit` is refused with a message of this text.
    Refuse(String),
    /// Uploads are read until `after` bytes of file data came in the
    /// session; then nothing more is read, nor answered, the connection
    /// held open (for [`STALL`]).
    StallPut { after: u64 },
    /// Uploads are read to the end and never answered.
    SilentPutEnd,
    /// The first `slow` bytes of file data of the session are read in
    /// bursts of `burst` bytes with a pause of `pause` after each; the rest
    /// at full speed (what the socket buffers hold when the client has
    /// written its last byte goes at once). Uploads are answered.
    SlowPut {
        burst: u64,
        pause: Duration,
        slow: u64,
    },
}

/// How long a stalled session holds its connection: longer than any run
/// of the client in the tests.
pub const STALL: Duration = Duration::from_secs(60);

/// What a session knows of the upload under way.
#[derive(Default)]
struct Session {
    /// The digest of the current upload's bytes so far.
    hasher: Option<Hasher>,
    /// Bytes of file data read in the session, in all uploads.
    taken: u64,
}

/// A hostile server on 127.0.0.1, port chosen by the system; each
/// connection is served by a thread of its own, which ends when the client
/// closes.
#[derive(Debug)]
pub struct FakeServer {
    port: u16,
    fingerprint: Fingerprint,
}

impl FakeServer {
    pub fn start(behaviour: Misbehaviour) -> FakeServer {
        let (cert, key) = self_signed_pair();
        let fingerprint = Fingerprint::of(&cert_der(&cert));
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("the key of the pair");
        let mut config = ServerConfig::builder_with_provider(ftp_shared::tls::provider())
            .with_protocol_versions(ftp_shared::tls::VERSIONS)
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der(&cert)], key)
            .expect("a usable certificate");
        config.alpn_protocols = vec![ALPN.to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, behaviour) = (config.clone(), behaviour.clone());
                std::thread::spawn(move || serve(tcp, config, &behaviour));
            }
        });
        FakeServer { port, fingerprint }
    }

    /// `alice@127.0.0.1:PORT`, for `--server`.
    pub fn target(&self) -> String {
        format!("{USER}@127.0.0.1:{}", self.port)
    }

    /// The fingerprint of its certificate, for `--pin`.
    pub fn pin(&self) -> String {
        self.fingerprint.to_string()
    }
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// One session: the handshake, the login, then the misbehaviour. Any
/// failure (mostly: the client went away) ends it quietly.
fn serve(mut tcp: TcpStream, config: Arc<ServerConfig>, behaviour: &Misbehaviour) {
    let Ok(mut conn) = ServerConnection::new(config) else {
        return;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    let Ok(exporter) =
        conn.export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
    else {
        return;
    };
    let mut tls = StreamOwned::new(conn, tcp);
    if login(&mut tls, &exporter).is_none() {
        return;
    }
    let mut session = Session::default();
    while let Some(request) = read_msg::<Request>(&mut tls) {
        let answered = match request {
            Request::Put { .. }
            | Request::Data(_)
            | Request::PutEnd { .. }
            | Request::PutCancel => upload(&mut tls, request, behaviour, &mut session),
            request => answer(&mut tls, request, behaviour),
        };
        if answered.is_none() {
            return;
        }
    }
}

/// Hello and a SCRAM-SHA-256-PLUS login of [`USER`]; `None` when it fails.
fn login(tls: &mut Tls, exporter: &[u8; TLS_EXPORTER_LEN]) -> Option<()> {
    let Request::Hello { .. } = read_msg(tls)? else {
        return None;
    };
    let hello = Response::Hello {
        version: PROTOCOL_VERSION,
        server: "fake-server".into(),
    };
    write_msg(tls, &hello).ok()?;
    let Request::AuthStart { client_first } = read_msg(tls)? else {
        return None;
    };
    let parsed = parse_client_first(&client_first, Some(exporter)).ok()?;
    let first = ServerFirst::new(&parsed, StoredCredentials::new(PASSWORD.as_bytes(), 4096));
    let server_first = first.message();
    write_msg(tls, &Response::AuthChallenge { server_first }).ok()?;
    let Request::AuthFinish { client_final } = read_msg(tls)? else {
        return None;
    };
    let server_final = first.verify_client_final(&client_final).ok()?;
    write_msg(tls, &Response::AuthOk { server_final }).ok()
}

fn entry(name: &str, kind: EntryKind) -> Entry {
    Entry {
        name: name.to_string(),
        kind,
        size: 0,
        modified: 0,
        mode: 0o755,
    }
}

/// Answers one request as `behaviour` says; `None` once the client is gone
/// (or the session should end).
fn answer(tls: &mut Tls, request: Request, behaviour: &Misbehaviour) -> Option<()> {
    let reply = |tls: &mut Tls, response: Response| write_msg(tls, &response).ok();
    match (request, behaviour) {
        (Request::Quit, _) => reply(tls, Response::Ok).and(None),
        (_, Misbehaviour::Refuse(message)) => {
            let message = message.clone();
            reply(
                tls,
                Response::Error {
                    code: ErrorCode::NOT_FOUND,
                    message,
                },
            )
        }
        (Request::Mkdir { .. }, _) => reply(tls, Response::Ok),
        (Request::Stat { path }, _) => {
            let name = path.rsplit('/').next().unwrap_or_default();
            reply(
                tls,
                Response::Stat {
                    entry: entry(name, EntryKind::Directory),
                },
            )
        }
        (Request::Get { .. }, Misbehaviour::StallGet { size, sent }) => {
            reply(tls, Response::FileStart { size: *size })?;
            reply(tls, Response::Data(Bytes::from(vec![b'x'; *sent])))
        }
        (Request::List { .. }, Misbehaviour::SilentList) => Some(()),
        (Request::List { .. }, Misbehaviour::EndlessTree) => reply(
            tls,
            Response::Entries {
                entries: vec![entry("d", EntryKind::Directory)],
                more: false,
            },
        ),
        (Request::List { .. }, Misbehaviour::EndlessPages { name_len }) => {
            for page in 0u64.. {
                let entries = (0..1024u64)
                    .map(|i| {
                        let name = format!("{:0>width$}", page * 1024 + i, width = *name_len);
                        entry(&name, EntryKind::File)
                    })
                    .collect();
                reply(
                    tls,
                    Response::Entries {
                        entries,
                        more: true,
                    },
                )?;
            }
            None
        }
        (Request::List { path }, Misbehaviour::Names(names)) => {
            let entries = if path.contains('/') {
                Vec::new()
            } else {
                names
                    .iter()
                    .map(|n| entry(n, EntryKind::Directory))
                    .collect()
            };
            reply(
                tls,
                Response::Entries {
                    entries,
                    more: false,
                },
            )
        }
        _ => reply(
            tls,
            Response::Error {
                code: ErrorCode::NOT_FOUND,
                message: "not served here".into(),
            },
        ),
    }
}

/// One request of an upload, as `behaviour` says; `None` once the session
/// should end.
fn upload(
    tls: &mut Tls,
    request: Request,
    behaviour: &Misbehaviour,
    session: &mut Session,
) -> Option<()> {
    let reply = |tls: &mut Tls, response: Response| write_msg(tls, &response).ok();
    match request {
        Request::Put { algorithm, .. } => {
            session.hasher = Some(Hasher::new(algorithm));
            Some(())
        }
        Request::Data(data) => {
            let before = session.taken;
            session.taken += data.len() as u64;
            if let Some(hasher) = &mut session.hasher {
                hasher.update(&data);
            }
            match behaviour {
                Misbehaviour::StallPut { after } if session.taken >= *after => {
                    std::thread::sleep(STALL);
                    None
                }
                Misbehaviour::SlowPut { burst, pause, slow } => {
                    let upto = session.taken.min(*slow);
                    for _ in before.min(upto) / burst..upto / burst {
                        std::thread::sleep(*pause);
                    }
                    Some(())
                }
                _ => Some(()),
            }
        }
        Request::PutEnd { digest } => {
            let computed = session.hasher.take().map(Hasher::finish);
            match behaviour {
                Misbehaviour::SilentPutEnd => Some(()),
                _ if computed == Some(digest) => reply(tls, Response::Ok),
                _ => reply(
                    tls,
                    Response::Error {
                        code: ErrorCode::DIGEST_MISMATCH,
                        message: "the upload does not match its digest".into(),
                    },
                ),
            }
        }
        _ => {
            session.hasher = None;
            reply(
                tls,
                Response::Error {
                    code: ErrorCode::CANCELLED,
                    message: "cancelled".into(),
                },
            )
        }
    }
}

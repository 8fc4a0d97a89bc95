//! TLS for the raw connections of the tests: [`RawStream`] (a blocking
//! std stream, TLS 1.3 with the server's certificate pinned, or plain TCP
//! for a server in plaintext mode), and the certificates tests make
//! ([`TestCa`], [`self_signed_pair`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use ftp_client::tls::verify::{HostVerifier, Roots};
use ftp_shared::scram::{TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
use ftp_shared::tls::{ALPN, Fingerprint};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

/// A blocking stream to the server, in the transport the server speaks.
#[derive(Debug)]
pub enum RawStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// The TLS handshake failed (the server closed or refused): reads see
    /// the end of the stream, writes a broken pipe.
    Failed(TcpStream),
}

impl RawStream {
    /// Runs a TLS handshake on `tcp` trusting exactly `pin`, completing it
    /// before returning (so the exporter is ready); a failed handshake gives
    /// [`RawStream::Failed`].
    pub fn tls(tcp: TcpStream, pin: Fingerprint) -> RawStream {
        let provider = ftp_client::tls::provider();
        let verifier = HostVerifier::new(provider.clone(), Roots::System, Some(pin), false, false);
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN.to_vec()];
        let name = ServerName::try_from("localhost").expect("a server name");
        let conn = ClientConnection::new(Arc::new(config), name).expect("a TLS client");
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            if stream.conn.complete_io(&mut stream.sock).is_err() {
                return RawStream::Failed(stream.sock);
            }
        }
        RawStream::Tls(Box::new(stream))
    }

    /// The TCP stream beneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            RawStream::Plain(s) | RawStream::Failed(s) => s,
            RawStream::Tls(s) => &s.sock,
        }
    }

    /// The `tls-exporter` channel binding of this connection (RFC 9266),
    /// `None` in plaintext.
    pub fn channel_binding(&self) -> Option<[u8; TLS_EXPORTER_LEN]> {
        match self {
            RawStream::Tls(s) => s
                .conn
                .export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
                .ok(),
            RawStream::Plain(_) | RawStream::Failed(_) => None,
        }
    }
}

impl Read for RawStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            RawStream::Plain(s) => s.read(buf),
            RawStream::Tls(s) => s.read(buf),
            RawStream::Failed(_) => Ok(0),
        }
    }
}

impl Write for RawStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            RawStream::Plain(s) => s.write(buf),
            RawStream::Tls(s) => {
                let n = s.write(buf)?;
                // Every write goes out at once, as a test expects of a socket.
                s.flush()?;
                Ok(n)
            }
            RawStream::Failed(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            RawStream::Plain(s) => s.flush(),
            RawStream::Tls(s) => s.flush(),
            RawStream::Failed(_) => Ok(()),
        }
    }
}

/// A new self-signed certificate and key (PEM), as the server makes them.
pub fn self_signed_pair() -> (String, String) {
    ftp_server::tls::self_signed().expect("a self-signed certificate")
}

/// A certificate authority of the tests, for `--ca`.
pub struct TestCa {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ftp test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let issuer = rcgen::Issuer::new(params, key);
        TestCa { cert, issuer }
    }

    /// The CA certificate (PEM), for `--ca`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` signed by this CA, and its key (PEM).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

// ---------------------------------------------------------------------------
// Helpers of the TLS scenarios (`tests/tests/tls.rs`, `tls_pinning.rs`):
// certificate files to renew, a reload by SIGHUP, a proxy that records the
// bytes on the wire, and a man in the middle that relays decrypted bytes.
// ---------------------------------------------------------------------------

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::server::TestServer;
use crate::{DEADLINE, POLL_DEADLINE, READ_TIMEOUT};

/// The DER of the first certificate in `pem`.
pub fn cert_der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate in the PEM text")
        .expect("a well-formed PEM certificate")
}

/// The fingerprint of the first certificate in `pem`, computed here (the
/// SHA-256 of its DER), not taken from anything the server says.
pub fn fingerprint_of_pem(pem: &str) -> Fingerprint {
    Fingerprint::of(&cert_der(pem))
}

/// A certificate and its key as PEM files in a temp directory of their
/// own, for `--tls-cert` / `--tls-key`. They live outside any
/// [`crate::ServerDir`], so renewing them is not a change beside the root
/// for [`TestServer::assert_healthy`].
#[derive(Debug)]
pub struct CertFiles {
    dir: tempfile::TempDir,
}

impl CertFiles {
    /// Writes `cert` and `key` (PEM).
    pub fn new(cert: &str, key: &str) -> CertFiles {
        let files = CertFiles {
            dir: crate::files::temp_dir("ftp-tls-"),
        };
        files.replace(cert, key);
        files
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// `--tls-cert CERT --tls-key KEY`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert().display().to_string(),
            "--tls-key".into(),
            self.key().display().to_string(),
        ]
    }

    /// Replaces both files, each by a rename as a renewal tool does (the
    /// server never reads half a file), the key first.
    pub fn replace(&self, cert: &str, key: &str) {
        for (path, text) in [(self.key(), key), (self.cert(), cert)] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).expect("write a certificate file");
            std::fs::rename(&tmp, &path).expect("rename a certificate file into place");
        }
    }
}

/// `server.start_args` takes `&str`s.
pub fn str_args(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Sends SIGHUP to the server (reload the certificate).
pub fn sighup(server: &TestServer) {
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

/// How many lines of the server's log contain every one of `needles`.
pub fn log_lines(server: &TestServer, needles: &[&str]) -> usize {
    server
        .stderr()
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .count()
}

/// Polls until the server's log has more than `before` lines holding every
/// one of `needles`; panics with the log after [`POLL_DEADLINE`].
#[track_caller]
pub fn wait_log(server: &TestServer, needles: &[&str], before: usize) {
    let end = std::time::Instant::now() + POLL_DEADLINE;
    while log_lines(server, needles) <= before {
        assert!(
            std::time::Instant::now() < end,
            "no new log line with {needles:?} within {POLL_DEADLINE:?}; log:\n{}",
            server.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Renews `files` with `cert` and `key`, sends SIGHUP, and waits until the
/// server logs that it reloaded that certificate; returns its fingerprint.
#[track_caller]
pub fn reload(server: &TestServer, files: &CertFiles, cert: &str, key: &str) -> Fingerprint {
    let fingerprint = fingerprint_of_pem(cert);
    let shown = format!("fingerprint={fingerprint}");
    let needles = ["TLS certificate reloaded", shown.as_str()];
    let before = log_lines(server, &needles);
    files.replace(cert, key);
    sighup(server);
    wait_log(server, &needles, before);
    fingerprint
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first `n` bytes of `bytes` as lines of 16: hex, then ASCII.
pub fn hex_excerpt(bytes: &[u8], n: usize) -> String {
    bytes[..bytes.len().min(n)]
        .chunks(16)
        .map(|row| {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = row
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("  {:<47}  |{ascii}|", hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Accepts connections on `127.0.0.1:0` and hands each to a handler on a
/// thread of its own, until dropped.
#[derive(Debug)]
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    fn spawn(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Acceptor {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a proxy");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = Arc::new(handle);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(DEADLINE));
                let _ = stream.set_write_timeout(Some(DEADLINE));
                let handle = handle.clone();
                std::thread::spawn(move || handle(stream));
            }
        });
        Acceptor { addr, stop }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A TCP proxy to `upstream` that passes every byte both ways and keeps a
/// copy of each direction, for as many connections as come.
#[derive(Debug)]
pub struct RecordingProxy {
    acceptor: Acceptor,
    from_client: Arc<Mutex<Vec<u8>>>,
    from_server: Arc<Mutex<Vec<u8>>>,
}

impl RecordingProxy {
    pub fn new(upstream: SocketAddr) -> RecordingProxy {
        let from_client = Arc::new(Mutex::new(Vec::new()));
        let from_server = Arc::new(Mutex::new(Vec::new()));
        let (up, down) = (from_client.clone(), from_server.clone());
        let acceptor = Acceptor::spawn(move |client| {
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let _ = server.set_read_timeout(Some(DEADLINE));
            let _ = server.set_write_timeout(Some(DEADLINE));
            let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = up.clone();
            let forward = std::thread::spawn(move || pump(c, s, &up));
            pump(server, client, &down);
            let _ = forward.join();
        });
        RecordingProxy {
            acceptor,
            from_client,
            from_server,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr
    }

    /// Every byte the clients sent so far, connection after connection.
    pub fn from_client(&self) -> Vec<u8> {
        self.from_client.lock().unwrap().clone()
    }

    /// Every byte the server sent so far.
    pub fn from_server(&self) -> Vec<u8> {
        self.from_server.lock().unwrap().clone()
    }
}

/// Copies `from` to `to`, recording each chunk before passing it on; at
/// the end of `from`, ends the sending side of `to`.
fn pump(mut from: TcpStream, mut to: TcpStream, record: &Mutex<Vec<u8>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A man in the middle: it terminates the client's TLS with a certificate
/// of its own choosing, opens its own TLS connection to `upstream` (trusting
/// exactly `upstream_pin`) and relays the decrypted bytes both ways, for as
/// many connections as come. Whatever the client trusts it to be, the two
/// TLS connections are distinct, so their `tls-exporter` values differ.
#[derive(Debug)]
pub struct Mitm {
    acceptor: Acceptor,
    fingerprint: Fingerprint,
}

impl Mitm {
    /// A man in the middle with a new self-signed certificate.
    pub fn new(upstream: SocketAddr, upstream_pin: Fingerprint) -> Mitm {
        let (cert, key) = self_signed_pair();
        let loaded = ftp_server::tls::from_pem(&cert, &key).expect("the proxy's certificate");
        Mitm::presenting(upstream, upstream_pin, loaded.key)
    }

    /// A man in the middle that presents `key` (its certificate chain and
    /// signing key, which need not belong together).
    pub fn presenting(
        upstream: SocketAddr,
        upstream_pin: Fingerprint,
        key: Arc<CertifiedKey>,
    ) -> Mitm {
        let fingerprint = Fingerprint::of(key.cert.first().expect("a certificate"));
        let mut config = rustls::ServerConfig::builder_with_provider(ftp_server::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(ftp_server::tls::reload::Fixed(key)));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        let config = Arc::new(config);
        let acceptor = Acceptor::spawn(move |client| {
            intercept(client, config.clone(), upstream, upstream_pin);
        });
        Mitm {
            acceptor,
            fingerprint,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr
    }

    /// The fingerprint of the certificate the proxy presents.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// One end of the man in the middle: a TLS connection and its socket.
struct End {
    conn: Mutex<rustls::Connection>,
    sock: TcpStream,
}

fn intercept(
    mut client: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: SocketAddr,
    pin: Fingerprint,
) {
    let mut conn = rustls::ServerConnection::new(config).expect("a TLS server connection");
    while conn.is_handshaking() {
        if conn.complete_io(&mut client).is_err() {
            return;
        }
    }
    let Ok(tcp) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = tcp.set_read_timeout(Some(READ_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(READ_TIMEOUT));
    let RawStream::Tls(up) = RawStream::tls(tcp, pin) else {
        return;
    };
    let StreamOwned {
        conn: up_conn,
        sock: up_sock,
    } = *up;
    let down = Arc::new(End {
        conn: Mutex::new(rustls::Connection::Server(conn)),
        sock: client,
    });
    let up = Arc::new(End {
        conn: Mutex::new(rustls::Connection::Client(up_conn)),
        sock: up_sock,
    });
    let (d, u) = (down.clone(), up.clone());
    let forward = std::thread::spawn(move || relay(&d, &u));
    relay(&up, &down);
    let _ = forward.join();
}

/// Passes the plaintext that arrives at `from` on to `to`, until `from`
/// closes or fails; then closes `to` (close_notify and FIN).
fn relay(from: &End, to: &End) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    let mut open = true;
    while open {
        {
            // What rustls holds already (a handshake may read past its end).
            let mut conn = from.conn.lock().unwrap();
            open = drain_plaintext(&mut conn, &mut plain) && flush_tls(&mut conn, &from.sock);
        }
        if !plain.is_empty() {
            let mut conn = to.conn.lock().unwrap();
            if conn.writer().write_all(&plain).is_err() || !flush_tls(&mut conn, &to.sock) {
                break;
            }
            plain.clear();
        }
        if !open {
            break;
        }
        let n = match (&from.sock).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut conn = from.conn.lock().unwrap();
        let mut rest = &buf[..n];
        while open && !rest.is_empty() {
            open = conn.read_tls(&mut rest).is_ok()
                && conn.process_new_packets().is_ok()
                && drain_plaintext(&mut conn, &mut plain);
        }
    }
    // Whatever was decrypted before the end still goes through.
    let mut conn = to.conn.lock().unwrap();
    if !plain.is_empty() {
        let _ = conn.writer().write_all(&plain);
    }
    conn.send_close_notify();
    flush_tls(&mut conn, &to.sock);
    let _ = to.sock.shutdown(std::net::Shutdown::Write);
}

/// Moves the decrypted bytes of `conn` to `out`; false once the peer has
/// closed (close_notify) or the connection failed.
fn drain_plaintext(conn: &mut rustls::Connection, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Writes what `conn` has to send; false when the socket failed.
fn flush_tls(conn: &mut rustls::Connection, mut sock: &TcpStream) -> bool {
    while conn.wants_write() {
        if conn.write_tls(&mut sock).is_err() {
            return false;
        }
    }
    true
}

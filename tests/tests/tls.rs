//! TLS on the wire, through the real binaries: what an eavesdropper on the
//! network sees (nothing of the user, file names or contents; in plaintext
//! mode all of it), what a man in the middle gets (a refused login, thanks to
//! the `tls-exporter` channel binding, even when the client trusts its
//! certificate; a refused handshake when it shows the server's certificate
//! without its key), a plaintext client at a TLS server and the other way
//! round (both refused before any credential is sent), the server's checks
//! of the SCRAM GS2 header and binding data on raw connections (and a bound
//! login built by hand from the RFCs), and TLS 1.3 with ALPN `miniftp/1`
//! as the only thing the server speaks.
//!
//! Pinning, `--ca`, certificate reloads, `check-config` and the certificate
//! of the first start are in `tls_pinning.rs`.

use std::fs;
use std::net::TcpStream;
use std::sync::Arc;

use ftp_client::{Client, ClientError, Secret, TlsOptions, Transport};
use ftp_shared::scram::{ChannelBinding, ClientFinal, ClientFirst, ScramKeys};
use ftp_shared::{ErrorCode, Request, Response};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tests::tls::{Mitm, RecordingProxy, cert_der, contains_bytes, hex_excerpt, wait_log};
use tests::{
    ALICE_PASSWORD, ClientEnv, POLL_DEADLINE, RawConn, RawStream, ServerDir, TestServer,
    random_bytes, wait_until, within,
};

/// The marker inside the uploaded file.
const MARKER: &str = "MARKER-7d41c9-the-quarterly-numbers";
/// A file name no TLS record can hold by chance.
const FILE_NAME: &str = "plans-for-world-domination-q3.txt";
/// What the client says of a login bound to another TLS connection.
const BINDING_MISMATCH: &str =
    "the channel binding did not match: someone may be intercepting this connection";
/// What the server logs of it.
const REFUSED: &str = "login refused: the channel binding did not match";

/// The content of the uploaded file: the marker at the start, in the middle
/// and at the end of 64 KiB of noise.
fn marked_content() -> Vec<u8> {
    let mut data = MARKER.as_bytes().to_vec();
    data.extend(random_bytes(11, 32 * 1024));
    data.extend(MARKER.as_bytes());
    data.extend(random_bytes(12, 32 * 1024));
    data.extend(MARKER.as_bytes());
    data
}

/// Logs in as alice through `proxy` and uploads the marked file as
/// [`FILE_NAME`], with `options` before each command; checks that it
/// arrived intact.
fn login_and_upload_through(proxy: &RecordingProxy, server: &TestServer, options: &[&str]) {
    let client = ClientEnv::new();
    let content = marked_content();
    fs::write(client.work().join(FILE_NAME), &content).unwrap();
    let target = format!("alice@{}", proxy.addr());
    let mut login = options.to_vec();
    login.extend(["login", &target, "--password-stdin"]);
    client
        .run_stdin(login, &format!("{ALICE_PASSWORD}\n"))
        .assert_success();
    let mut put = options.to_vec();
    put.extend(["put", FILE_NAME]);
    client.run(put).assert_success();
    let stored = fs::read(server.home("alice").join(FILE_NAME)).expect("the upload arrived");
    assert!(stored == content, "the upload arrived different");
}

/// Which of the secrets (user name, file name, marker) occur in `bytes`.
fn secrets_in(bytes: &[u8]) -> Vec<&'static str> {
    ["alice", FILE_NAME, MARKER]
        .into_iter()
        .filter(|s| contains_bytes(bytes, s.as_bytes()))
        .collect()
}

/// Over TLS, an eavesdropper who records every byte of a login and an
/// upload, both directions, finds neither the user name, nor the file name,
/// nor the file's contents; the same scenario with `--insecure-plaintext` at
/// both ends shows all three, so the search does find them when they are
/// there. The capture is TLS from its first byte both ways.
#[test]
fn an_eavesdropper_sees_no_user_file_name_or_contents() {
    let server = TestServer::start();
    let proxy = RecordingProxy::new(server.addr());
    login_and_upload_through(&proxy, &server, &[]);
    let (up, down) = (proxy.from_client(), proxy.from_server());
    eprintln!(
        "TLS capture: {} bytes client->server, {} bytes server->client\nclient->server, first bytes:\n{}\nserver->client, first bytes:\n{}",
        up.len(),
        down.len(),
        hex_excerpt(&up, 64),
        hex_excerpt(&down, 64)
    );
    assert!(up.len() > 64 * 1024, "the upload went through the proxy");
    assert_eq!(
        up.first(),
        Some(&0x16),
        "the client starts with a TLS handshake record"
    );
    assert_eq!(
        down.first(),
        Some(&0x16),
        "the server answers with a TLS handshake record"
    );
    // The search finds what TLS leaves in clear (the ALPN name of the ClientHello).
    assert!(contains_bytes(&up, b"miniftp/1"), "ALPN in the ClientHello");
    assert_eq!(secrets_in(&up), Vec::<&str>::new(), "client->server leaks");
    assert_eq!(
        secrets_in(&down),
        Vec::<&str>::new(),
        "server->client leaks"
    );
    server.assert_healthy();

    // Positive control: the same in plaintext shows everything.
    let plain = ServerDir::with_users(tests::DEFAULT_USERS).start_args(&["--insecure-plaintext"]);
    let proxy = RecordingProxy::new(plain.addr());
    login_and_upload_through(&proxy, &plain, &["--insecure-plaintext"]);
    assert_eq!(
        secrets_in(&proxy.from_client()),
        ["alice", FILE_NAME, MARKER],
        "the plaintext capture must show the secrets"
    );
    plain.assert_healthy();
}

/// A man in the middle with its own certificate, which the client was told
/// to trust (`--pin`), relays a faithful session (an unbound raw login gets
/// through it), yet `ftp-client login` and `put` through it fail with exit 5
/// and the channel binding message, nothing is uploaded, the server logs the
/// refusal, and the library client gets `ClientError::ChannelBinding`.
#[test]
fn a_trusted_man_in_the_middle_cannot_log_in_for_the_client() {
    let server = TestServer::start();
    let mitm = Mitm::new(server.addr(), server.fingerprint().unwrap());
    assert_ne!(Some(mitm.fingerprint()), server.fingerprint());
    let target = format!("alice@{}", mitm.addr());
    let pin = mitm.fingerprint().to_string();

    let client = ClientEnv::strict();
    let pw = format!("{ALICE_PASSWORD}\n");
    let out = client.run_stdin(["--pin", &pin, "login", &target, "--password-stdin"], &pw);
    out.assert_code(5);
    assert!(out.stderr.contains(BINDING_MISMATCH), "{}", out.stderr);
    assert!(!client.credentials_path().exists(), "keys saved");
    wait_log(&server, &[REFUSED], 0);

    fs::write(client.work().join(FILE_NAME), marked_content()).unwrap();
    let put = ["--pin", &pin, "--server", &target, "--password-stdin"];
    let out = client.run_stdin([&put[..], &["put", FILE_NAME]].concat(), &pw);
    out.assert_code(5);
    assert!(out.stderr.contains(BINDING_MISMATCH), "{}", out.stderr);
    wait_log(&server, &[REFUSED], 1);
    assert!(!server.home("alice").join(FILE_NAME).exists(), "uploaded");

    // The library client.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(within("a login through the MITM", async {
        let transport = Transport::Tls(TlsOptions::pinned(mitm.fingerprint()));
        let mut client = Client::connect(&mitm.addr().to_string(), &transport)
            .await
            .expect("the MITM's certificate is trusted");
        client
            .login("alice", Secret::Password(ALICE_PASSWORD))
            .await
            .expect_err("a login through a MITM")
    }));
    assert!(matches!(err, ClientError::ChannelBinding { .. }), "{err:?}");
    wait_log(&server, &[REFUSED], 2);
    let log = server.stderr();
    assert!(!log.contains("logged in"), "someone logged in:\n{log}");

    // Control (last, as it logs in): the relay is faithful; a login that is
    // not bound to the channel gets through it.
    let mut raw = RawConn::over(
        TcpStream::connect(mitm.addr()).unwrap(),
        Some(mitm.fingerprint()),
    );
    raw.hello();
    let (reply, last) = scram_by_hand(&mut raw, ClientFirst::new("alice"), ALICE_PASSWORD);
    match reply {
        Some(Response::AuthOk { server_final }) => last.verify_server_final(&server_final).unwrap(),
        other => panic!("an unbound login through the relay: {other:?}"),
    }
    assert!(raw.is_alive(), "a session through the relay");
    server.assert_healthy();
}

/// A man in the middle that presents the server's own (pinned) certificate
/// but, lacking its private key, signs the handshake with another key: the
/// client checks the handshake signature against the pinned certificate and
/// refuses before sending anything.
#[test]
fn the_servers_certificate_without_its_key_is_refused() {
    let server = TestServer::start();
    let cert = fs::read_to_string(server.base().join("tls-cert.pem")).unwrap();
    let (_, other_key) = tests::self_signed_pair();
    let key = PrivateKeyDer::from_pem_slice(other_key.as_bytes()).unwrap();
    let signer = ftp_server::tls::provider()
        .key_provider
        .load_private_key(key)
        .unwrap();
    let stolen = Arc::new(rustls::sign::CertifiedKey::new(
        vec![cert_der(&cert)],
        signer,
    ));
    let mitm = Mitm::presenting(server.addr(), server.fingerprint().unwrap(), stolen);
    assert_eq!(Some(mitm.fingerprint()), server.fingerprint());

    let client = ClientEnv::strict();
    let pin = mitm.fingerprint().to_string();
    let target = format!("alice@{}", mitm.addr());
    let out = client.run_stdin(
        ["--pin", &pin, "login", &target, "--password-stdin"],
        &format!("{ALICE_PASSWORD}\n"),
    );
    // The identity is not established: exit 5, before anything was sent.
    out.assert_code(5);
    assert!(
        out.stderr.contains("could not prove it holds its key"),
        "{}",
        out.stderr
    );
    assert!(
        !client.known_hosts_path().exists(),
        "pinned after a bad handshake"
    );
    assert!(!client.credentials_path().exists());
    let log = server.stderr();
    assert!(
        ["login failed", "login refused", "logged in"]
            .iter()
            .all(|line| !log.contains(line)),
        "the server saw a login:\n{log}"
    );
    server.assert_healthy();
}

/// Sends `first` as `AuthStart` and, after the challenge, the `AuthFinish`
/// of `password`; returns the server's answer to it (`None`: closed) and
/// what checks an `AuthOk`.
fn scram_by_hand(
    conn: &mut RawConn,
    first: ClientFirst,
    password: &str,
) -> (Option<Response>, ClientFinal) {
    conn.send(&Request::AuthStart {
        client_first: first.message(),
    })
    .unwrap();
    let server_first = match conn.recv() {
        Some(Response::AuthChallenge { server_first }) => server_first,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let challenge = first.handle_server_first(&server_first).unwrap();
    let keys = ScramKeys::derive(
        password.as_bytes(),
        challenge.salt(),
        challenge.iterations(),
    );
    let (last, client_final) = challenge.finish(&keys);
    conn.send(&Request::AuthFinish { client_final }).unwrap();
    (conn.recv(), last)
}

/// Reads to the close and asserts that the only reply was an error with
/// `code` whose message holds `text`.
#[track_caller]
fn assert_error_then_closed(conn: &mut RawConn, code: ErrorCode, text: &str) {
    match conn.expect_closed().as_slice() {
        [Response::Error { code: got, message }] if *got == code && message.contains(text) => {}
        other => panic!("expected one {code:?} error with {text:?}, then a close; got {other:?}"),
    }
}

/// Waits for the server to log `line`, then asserts that it logged no
/// login attempt at all.
#[track_caller]
fn assert_no_login_after(server: &TestServer, line: &str) {
    wait_until(POLL_DEADLINE, line, || server.stderr().contains(line));
    let log = server.stderr();
    assert!(
        !log.contains("login failed") && !log.contains("logged in"),
        "a login was attempted:\n{log}"
    );
}

/// A default (TLS) client at a server run with `--insecure-plaintext`
/// exits 3 ("did not answer with TLS"), and a client with
/// `--insecure-plaintext` at a TLS server exits 3 ("accepts TLS connections
/// only"); either way the user name never crosses the wire and the server
/// sees no login. A raw plaintext hello at a TLS server gets
/// `Error{TLS_REQUIRED}` in clear, then the close.
#[test]
fn plaintext_and_tls_ends_refuse_each_other_before_any_credential() {
    let pw = format!("{ALICE_PASSWORD}\n");
    let plain = ServerDir::with_users(tests::DEFAULT_USERS).start_args(&["--insecure-plaintext"]);
    assert_eq!(plain.fingerprint(), None);
    let proxy = RecordingProxy::new(plain.addr());
    let client = ClientEnv::new();
    let out = client.try_login(&format!("alice@{}", proxy.addr()), ALICE_PASSWORD);
    out.assert_code(3);
    assert!(
        out.stderr.contains("did not answer with TLS"),
        "{}",
        out.stderr
    );
    assert!(
        !client.known_hosts_path().exists(),
        "pinned a plaintext server"
    );
    assert!(
        !contains_bytes(&proxy.from_client(), b"alice"),
        "the user name was sent"
    );
    assert_no_login_after(
        &plain,
        "a TLS client at this plaintext server was turned away",
    );
    // The harness's raw TLS stream fails its handshake too.
    let tcp = TcpStream::connect(plain.addr()).unwrap();
    let any_pin = ftp_shared::tls::Fingerprint([7; 32]);
    assert!(matches!(RawStream::tls(tcp, any_pin), RawStream::Failed(_)));
    plain.assert_healthy();

    let server = TestServer::start();
    let proxy = RecordingProxy::new(server.addr());
    let target = format!("alice@{}", proxy.addr());
    let out = client.run_stdin(
        ["--insecure-plaintext", "login", &target, "--password-stdin"],
        &pw,
    );
    out.assert_code(3);
    assert!(
        out.stderr.contains("accepts TLS connections only"),
        "{}",
        out.stderr
    );
    assert!(
        !contains_bytes(&proxy.from_client(), b"alice"),
        "the user name was sent"
    );
    assert_no_login_after(
        &server,
        "a plaintext client at this TLS server was told to use TLS",
    );

    let mut raw = RawConn::over(TcpStream::connect(server.addr()).unwrap(), None);
    raw.send(&Request::Hello {
        magic: ftp_shared::message::MAGIC,
        version: ftp_shared::message::PROTOCOL_VERSION,
    })
    .unwrap();
    assert_error_then_closed(
        &mut raw,
        ErrorCode::TLS_REQUIRED,
        "accepts TLS connections only",
    );
    server.assert_healthy();
}

/// On a real server over TLS: a client-first with `y,,` (a downgrade: the
/// client believes the server cannot bind) and one with an unknown binding
/// type are refused with `CHANNEL_BINDING` and closed; a bound login whose
/// binding data is not this connection's (one bit flipped) is refused with
/// `CHANNEL_BINDING` after `AuthFinish`, with the right password, logged as
/// such, and closed; the correctly bound login and an unbound `n,,` login
/// (a client that cannot bind) succeed.
#[test]
fn the_server_checks_the_gs2_header_and_the_binding_data() {
    let server = TestServer::start();

    let mut conn = RawConn::connect_hello(&server);
    conn.send(&Request::AuthStart {
        client_first: ClientFirst::bound("alice", ChannelBinding::Unoffered).message(),
    })
    .unwrap();
    assert_error_then_closed(&mut conn, ErrorCode::CHANNEL_BINDING, "downgrade");

    let mut conn = RawConn::connect_hello(&server);
    conn.send(&Request::AuthStart {
        client_first: "p=tls-unique,,n=alice,r=abcdefghijklmnop".into(),
    })
    .unwrap();
    assert_error_then_closed(&mut conn, ErrorCode::CHANNEL_BINDING, "tls-exporter");

    let mut conn = RawConn::connect_hello(&server);
    let mut other = conn.channel_binding().expect("a TLS connection");
    other[17] ^= 0x01;
    let first = ClientFirst::bound("alice", ChannelBinding::TlsExporter(other));
    let (reply, _) = scram_by_hand(&mut conn, first, ALICE_PASSWORD);
    match reply {
        Some(Response::Error { code, message }) => {
            assert_eq!(code, ErrorCode::CHANNEL_BINDING, "{message}");
            assert!(message.contains("did not match"), "{message}");
        }
        other => panic!("a login bound to another channel: {other:?}"),
    }
    assert_eq!(conn.expect_closed(), [], "the connection closes");
    wait_log(&server, &[REFUSED], 0);
    assert!(
        !server.stderr().contains("logged in"),
        "{}",
        server.stderr()
    );

    // The binding of this very connection (RawConn binds by itself).
    let mut conn = RawConn::connect_hello(&server);
    conn.login("alice", ALICE_PASSWORD)
        .expect("a login bound to this connection");
    assert!(conn.is_alive());

    let mut conn = RawConn::connect_hello(&server);
    let (reply, last) = scram_by_hand(&mut conn, ClientFirst::new("alice"), ALICE_PASSWORD);
    match reply {
        Some(Response::AuthOk { server_final }) => last.verify_server_final(&server_final).unwrap(),
        other => panic!("an unbound login over TLS: {other:?}"),
    }
    assert!(conn.is_alive(), "the unbound session works");
    server.assert_healthy();
}

/// In plaintext mode there is no channel to bind to: a bound client-first
/// (`p=tls-exporter`) is refused with `CHANNEL_BINDING` and closed, while
/// `y,,` (the client could bind, but the server cannot) logs in.
#[test]
fn over_plaintext_a_bound_login_is_refused_and_y_is_accepted() {
    let server = ServerDir::with_users(tests::DEFAULT_USERS).start_args(&["--insecure-plaintext"]);
    let mut conn = RawConn::connect_hello(&server);
    assert_eq!(conn.channel_binding(), None);
    let first = ClientFirst::bound("alice", ChannelBinding::TlsExporter([1; 32]));
    conn.send(&Request::AuthStart {
        client_first: first.message(),
    })
    .unwrap();
    assert_error_then_closed(&mut conn, ErrorCode::CHANNEL_BINDING, "not encrypted");

    let mut conn = RawConn::connect_hello(&server);
    let first = ClientFirst::bound("alice", ChannelBinding::Unoffered);
    let (reply, last) = scram_by_hand(&mut conn, first, ALICE_PASSWORD);
    match reply {
        Some(Response::AuthOk { server_final }) => last.verify_server_final(&server_final).unwrap(),
        other => panic!("a y,, login in plaintext: {other:?}"),
    }
    server.assert_healthy();
}

/// Standard base64 with padding (RFC 4648), written here so that the
/// binding below is built independently of the product's SCRAM code.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (at(0) << 16) | (at(1) << 8) | at(2);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A SCRAM-SHA-256-PLUS login built by hand from the RFCs: the exporter
/// taken from the TLS connection with the literal label
/// `EXPORTER-Channel-Binding` and no context (RFC 9266), `c=` the base64 of
/// `p=tls-exporter,,` and those 32 bytes, the proof over the AuthMessage of
/// RFC 5802; the server accepts it and proves it knows the verifier.
#[test]
fn a_login_bound_by_hand_as_the_rfcs_say_is_accepted() {
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    let server = TestServer::start();
    let mut conn = RawConn::connect_hello(&server);
    let exporter = match conn.stream() {
        RawStream::Tls(tls) => tls
            .conn
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .unwrap(),
        other => panic!("not TLS: {other:?}"),
    };
    let (gs2, nonce) = ("p=tls-exporter,,", "hand-made-nonce-5KpQ2xZ8");
    let bare = format!("n=alice,r={nonce}");
    conn.send(&Request::AuthStart {
        client_first: format!("{gs2}{bare}"),
    })
    .unwrap();
    let server_first = match conn.recv() {
        Some(Response::AuthChallenge { server_first }) => server_first,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let combined = server_first
        .split(',')
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .unwrap()
        .to_owned();
    assert!(combined.starts_with(nonce) && combined.len() > nonce.len());
    // The salt and count are read with the library; the rest is by hand.
    let challenge = ClientFirst::with_nonce("alice", nonce)
        .handle_server_first(&server_first)
        .unwrap();
    let keys = ScramKeys::derive(
        ALICE_PASSWORD.as_bytes(),
        challenge.salt(),
        challenge.iterations(),
    );
    let cbind = [gs2.as_bytes(), &exporter].concat();
    let without_proof = format!("c={},r={combined}", base64(&cbind));
    let auth = format!("{bare},{server_first},{without_proof}");
    let signature = ftp_shared::scram::client_signature(&keys.stored_key(), &auth);
    let proof: Vec<u8> = keys
        .client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    conn.send(&Request::AuthFinish {
        client_final: format!("{without_proof},p={}", base64(&proof)),
    })
    .unwrap();
    let expected = ftp_shared::scram::server_signature(&keys.server_key, &auth);
    match conn.recv() {
        Some(Response::AuthOk { server_final }) => {
            assert_eq!(server_final, format!("v={}", base64(&expected)));
        }
        other => panic!("a login bound by hand: {other:?}"),
    }
    assert!(conn.is_alive());
    server.assert_healthy();
}

/// A TLS 1.2-only ClientHello (no supported_versions extension), written
/// byte by byte.
fn tls12_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend(random_bytes(5, 32));
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]); // ECDHE-ECDSA/RSA-AES128-GCM-SHA256
    body.extend([0x01, 0x00]); // no compression
    let extensions: [&[u8]; 3] = [
        &[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17], // supported_groups: secp256r1
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],             // ec_point_formats: uncompressed
        &[0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03], // signature_algorithms: ecdsa_secp256r1_sha256
    ];
    let extensions = extensions.concat();
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// A rustls client to `server` trusting its certificate and offering
/// `alpn`; the handshake's outcome.
fn handshake_offering(
    server: &TestServer,
    alpn: &[&[u8]],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    use ftp_client::tls::verify::{HostVerifier, Roots};
    let provider = ftp_client::tls::provider();
    let verifier = HostVerifier::new(
        provider.clone(),
        Roots::System,
        server.fingerprint(),
        false,
        false,
    );
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(tests::READ_TIMEOUT)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// The server speaks TLS 1.3 and nothing older, and only `miniftp/1`: a
/// TLS 1.2-only ClientHello gets a fatal `protocol_version` alert, a client
/// that offers only another ALPN protocol fails its handshake, and a normal
/// handshake ends in TLS 1.3 with ALPN `miniftp/1`.
#[test]
fn the_server_speaks_only_tls_1_3_and_miniftp_1() {
    use std::io::{Read, Write};
    let server = TestServer::start();

    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(tests::READ_TIMEOUT)).unwrap();
    tcp.write_all(&tls12_client_hello()).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        answer.len() == 7 && answer[0] == 0x15 && answer[5..] == [0x02, 0x46],
        "expected one fatal protocol_version alert, got {answer:02x?}"
    );

    let err = handshake_offering(&server, &[b"h2"]).expect_err("another ALPN protocol");
    assert!(err.contains("NoApplicationProtocol"), "{err}");

    let stream = handshake_offering(&server, &[b"h2", ftp_shared::tls::ALPN]).unwrap();
    assert_eq!(
        stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(stream.conn.alpn_protocol(), Some(ftp_shared::tls::ALPN));
    drop(stream);
    server.assert_healthy();
}

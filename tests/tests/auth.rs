//! Authentication at the protocol level: what a wrong password, an unknown
//! user, a replay, a command before (or half-way through) login and a wrong
//! version or magic get, byte for byte; three failures closing a connection;
//! the delay of a failure; user names that try to forge log lines; and the
//! client's check that the server knows the verifier (against a fake server).
//! Every scenario against the real server ends with
//! [`tests::TestServer::assert_healthy`]; the two against the fake server
//! (which runs no `ftp-server`) check instead that the client went no further.

use std::net::TcpListener;

use bytes::Bytes;
use ftp_client::{Client, ClientError, Secret, Transport};
use ftp_shared::message::{MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::{ScramError, ServerFirst, StoredCredentials, parse_client_first};
use ftp_shared::{Digest, ErrorCode, Request, Response};
use tests::{ALICE_PASSWORD, RawConn, TestServer, read_msg, snapshot, write_msg};

/// Runs a failed login on a fresh connection and returns the exact bytes of
/// the failure reply (the challenge must come first).
fn failed_login_reply(server: &TestServer, user: &str, password: &str) -> Vec<u8> {
    let mut conn = RawConn::connect_hello(server);
    let iterations = conn
        .send_login(user, password)
        .expect("a challenge")
        .iterations;
    assert_eq!(iterations, tests::ITERATIONS, "{user}: iterations");
    conn.recv_raw().expect("a reply to the failed login")
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_bytes() {
    let server = TestServer::start();
    let wrong_password = failed_login_reply(&server, "alice", "not-alice's");
    let unknown_user = failed_login_reply(&server, "mallory", "not-alice's");
    assert_eq!(
        wrong_password, unknown_user,
        "a wrong password and an unknown user must be indistinguishable"
    );
    let reply: Response = ftp_shared::codec::decode_body(&wrong_password[4..]).unwrap();
    assert_eq!(
        reply,
        Response::error(ErrorCode::AUTH_FAILED, "authentication failed")
    );

    // An unknown user's challenge is stable (no oracle by asking twice) and has a salt.
    let challenge = |user: &str| {
        let mut conn = RawConn::connect_hello(&server);
        conn.send(&Request::AuthStart {
            client_first: ftp_shared::scram::ClientFirst::with_nonce(user, "fixednonce").message(),
        })
        .unwrap();
        match conn.recv() {
            Some(Response::AuthChallenge { server_first }) => {
                server_first.split(',').nth(1).unwrap().to_owned()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(challenge("mallory"), challenge("mallory"));
    assert_eq!(challenge("alice"), challenge("alice"));
    assert_ne!(challenge("mallory"), challenge("trudy"));
    server.assert_healthy();
}

#[test]
fn replayed_login_messages_are_refused() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_hello(&server);
    let recorded = conn
        .login_recorded("alice", ALICE_PASSWORD)
        .expect("the genuine login succeeds");
    drop(conn);

    let mut replay = RawConn::connect_hello(&server);
    replay
        .send(&Request::AuthStart {
            client_first: recorded.client_first.clone(),
        })
        .unwrap();
    match replay.recv() {
        Some(Response::AuthChallenge { server_first }) => {
            let nonce = server_first.split(',').next().unwrap();
            assert!(
                !recorded.client_final.contains(nonce),
                "the server reused its nonce"
            );
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
    replay
        .send(&Request::AuthFinish {
            client_final: recorded.client_final.clone(),
        })
        .unwrap();
    match replay.recv() {
        Some(Response::Error { code, .. }) => assert_eq!(code, ErrorCode::AUTH_FAILED),
        other => panic!("a replayed login must fail with AUTH_FAILED, got {other:?}"),
    }
    // Not logged in: a command is still refused.
    replay
        .send(&Request::Mkdir {
            path: "replayed".into(),
            parents: false,
        })
        .unwrap();
    match replay.recv() {
        Some(Response::Error { code, .. }) => assert_eq!(code, ErrorCode::NOT_LOGGED_IN),
        other => panic!("{other:?}"),
    }
    assert!(!server.home("alice").join("replayed").exists());
    server.assert_healthy();
}

#[test]
fn commands_before_login_are_refused_and_close_the_connection() {
    let server = TestServer::start();
    let before = snapshot(server.base(), &[]);
    let requests = [
        Request::Put {
            path: "early.txt".into(),
            size: 5,
            offset: 0,
            algorithm: ftp_shared::message::DigestAlgorithm::Sha256,
        },
        Request::Get {
            path: "early.txt".into(),
            offset: 0,
            algorithm: ftp_shared::message::DigestAlgorithm::Sha256,
        },
        Request::Mkdir {
            path: "early".into(),
            parents: true,
        },
        Request::Data(Bytes::from(b"early".to_vec())),
        Request::PutEnd {
            digest: Digest::Sha256([0; 32]),
        },
    ];
    for request in &requests {
        let mut conn = RawConn::connect_hello(&server);
        conn.send(request).unwrap();
        // Whatever follows must not be acted upon either.
        let _ = conn.send(&Request::Data(Bytes::from(b"early".to_vec())));
        let _ = conn.send(&Request::PutEnd {
            digest: Digest::Sha256([0; 32]),
        });
        conn.expect_error_then_closed(
            ErrorCode::NOT_LOGGED_IN,
            &format!("{request:?} before login"),
        );

        // Halfway through a login is not logged in either.
        let mut conn = RawConn::connect_hello(&server);
        conn.send(&Request::AuthStart {
            client_first: ftp_shared::scram::ClientFirst::new("alice").message(),
        })
        .unwrap();
        assert!(matches!(conn.recv(), Some(Response::AuthChallenge { .. })));
        conn.send(request).unwrap();
        let replies = conn.expect_closed();
        assert!(
            matches!(replies.first(), Some(Response::Error { .. })),
            "{request:?} mid-login got {replies:?}"
        );
    }
    // Before the hello, too.
    let mut conn = RawConn::connect(&server);
    conn.send(&requests[2]).unwrap();
    let replies = conn.expect_closed();
    assert!(
        matches!(replies.as_slice(), [Response::Error { .. }]),
        "{replies:?}"
    );

    assert_eq!(
        before,
        snapshot(server.base(), &[]),
        "something was created on disk"
    );
    server.assert_healthy();
}

#[test]
fn three_failed_logins_close_the_connection() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_hello(&server);
    for attempt in 1..=2 {
        match conn.login("alice", "wrong") {
            Err(Response::Error { code, .. }) => assert_eq!(code, ErrorCode::AUTH_FAILED),
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // The third failure is answered, then the connection closes.
    conn.send_login("alice", "wrong").expect("a challenge");
    conn.expect_error_then_closed(ErrorCode::AUTH_FAILED, "third failure");

    // Other connections are not affected: the right password still works.
    let mut ok = RawConn::connect_hello(&server);
    ok.login("alice", ALICE_PASSWORD)
        .expect("a fresh connection logs in");

    // A success after failures on the same connection is fine.
    let mut conn = RawConn::connect_hello(&server);
    assert!(conn.login("alice", "wrong").is_err());
    assert!(conn.login("alice", "wrong").is_err());
    conn.login("alice", ALICE_PASSWORD)
        .expect("the third attempt may succeed");
    server.assert_healthy();
}

#[test]
fn failed_logins_are_delayed() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_hello(&server);
    let started = std::time::Instant::now();
    assert!(conn.login("alice", "wrong").is_err());
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "a failed login was answered after {:?}",
        started.elapsed()
    );
    server.assert_healthy();
}

#[test]
fn wrong_version_or_magic_is_refused_and_closed() {
    let server = TestServer::start();
    let mut conn = RawConn::connect(&server);
    conn.send(&Request::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION + 1,
    })
    .unwrap();
    conn.expect_error_then_closed(ErrorCode::UNSUPPORTED_VERSION, "next version");

    let mut conn = RawConn::connect(&server);
    conn.send(&Request::Hello {
        magic: *b"NOTFTP\x00\x01",
        version: PROTOCOL_VERSION,
    })
    .unwrap();
    conn.expect_error_then_closed(ErrorCode::BAD_REQUEST, "wrong magic");
    server.assert_healthy();
}

/// A fake server that knows alice's StoredKey (so it can check her proof) but
/// not her ServerKey: it answers `AuthOk` with a signature that cannot match.
/// It speaks plaintext (the client is told to): what is tested is SCRAM's
/// mutual authentication, which holds without TLS too.
fn fake_server(password: &str) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut creds = StoredCredentials::new(password.as_bytes(), tests::ITERATIONS);
    creds.server_key = [0x42; 32];
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(tests::READ_TIMEOUT)).unwrap();
        let Some(Request::Hello { .. }) = read_msg(&mut stream) else {
            panic!("no hello")
        };
        write_msg(
            &mut stream,
            &Response::Hello {
                version: PROTOCOL_VERSION,
                server: "impostor".into(),
            },
        )
        .unwrap();
        let Some(Request::AuthStart { client_first }) = read_msg(&mut stream) else {
            panic!("no AuthStart")
        };
        let parsed = parse_client_first(&client_first, None).unwrap();
        let exchange = ServerFirst::new(&parsed, creds);
        write_msg(
            &mut stream,
            &Response::AuthChallenge {
                server_first: exchange.message(),
            },
        )
        .unwrap();
        let Some(Request::AuthFinish { client_final }) = read_msg(&mut stream) else {
            panic!("no AuthFinish")
        };
        let server_final = exchange
            .verify_client_final(&client_final)
            .expect("the client's proof is right");
        write_msg(&mut stream, &Response::AuthOk { server_final }).unwrap();
        // The client must not go on: anything it sends now is a failure of the test.
        let next: Option<Request> = read_msg(&mut stream);
        assert!(
            matches!(next, None | Some(Request::Quit)),
            "the client trusted the impostor and sent {next:?}"
        );
    });
    (addr, handle)
}

#[tokio::test]
async fn client_refuses_a_server_that_cannot_prove_the_verifier() {
    let (addr, fake) = fake_server(ALICE_PASSWORD);
    let mut client = Client::connect(&addr.to_string(), &Transport::InsecurePlaintext)
        .await
        .expect("connect to the impostor");
    let err = client
        .login("alice", Secret::Password(ALICE_PASSWORD))
        .await
        .expect_err("the login must fail against an impostor");
    assert!(
        matches!(err, ClientError::Scram(ScramError::ServerSignatureMismatch)),
        "{err:?}"
    );
    drop(client);
    tokio::task::spawn_blocking(move || fake.join())
        .await
        .unwrap()
        .expect("the fake server saw nothing after AuthOk");
}

#[test]
fn cli_refuses_a_server_that_cannot_prove_the_verifier() {
    let (addr, fake) = fake_server(ALICE_PASSWORD);
    let client = tests::ClientEnv::new();
    let out = client.run_stdin(
        [
            "login",
            &format!("alice@{addr}"),
            "--password-stdin",
            "--insecure-plaintext",
        ],
        &format!("{ALICE_PASSWORD}\n"),
    );
    out.assert_code(4);
    assert!(
        out.stderr.contains("server signature mismatch"),
        "{:?}",
        out.stderr
    );
    assert!(
        !client.credentials_path().exists(),
        "keys saved for an impostor"
    );
    fake.join()
        .expect("the fake server saw nothing after AuthOk");
}

#[tokio::test]
async fn library_login_reports_auth_failed() {
    let server = TestServer::start();
    let mut client = Client::connect(&server.addr().to_string(), &server.transport())
        .await
        .unwrap();
    let err = client
        .login("alice", Secret::Password("wrong"))
        .await
        .expect_err("wrong password");
    assert!(matches!(err, ClientError::AuthFailed), "{err:?}");
    // The session is still usable for another attempt.
    client
        .login("alice", Secret::Password(ALICE_PASSWORD))
        .await
        .expect("second attempt");
    client.mkdir("after-retry", false).await.unwrap();
    client.quit().await.unwrap();
    assert!(server.home("alice").join("after-retry").is_dir());
    server.assert_healthy();
}

#[test]
fn user_supplied_text_cannot_forge_log_lines() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_hello(&server);
    // A user name carrying a newline, an escape sequence and a fake log line.
    let forged = "evil\n2026-01-01T00:00:00Z  INFO forged: logged in user=admin\u{1b}[2J";
    assert!(conn.login(forged, "whatever").is_err());
    tests::wait_until(tests::POLL_DEADLINE, "the failed login in the log", || {
        server.stderr().contains("login failed")
    });
    let log = server.stderr();
    assert!(
        !log.lines()
            .any(|l| l.contains("forged: logged in") && !l.contains("login failed")),
        "a forged line reached the log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "an escape sequence reached the log"
    );
    assert!(
        log.contains("evil\\u{a}2026"),
        "the name is shown escaped:\n{log}"
    );
    server.assert_healthy();
}

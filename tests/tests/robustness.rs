//! A hostile or broken peer costs only its own connection: absurd lengths,
//! garbage, empty frames, trailing bytes, cut uploads and wrong digests; two
//! transfers at once; a clean exit on SIGTERM.

use std::time::Duration;

use bytes::Bytes;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher, MAGIC, PROTOCOL_VERSION};
use ftp_shared::{Digest, ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, RawConn, TestServer, frame_of, login, no_progress, random_bytes,
    wait_until, write_random_file,
};

/// Asserts that the server closes `conn`, saying at most one error first.
#[track_caller]
fn assert_closed_with_error(mut conn: RawConn, what: &str) -> Option<ErrorCode> {
    let replies = conn.expect_closed();
    match replies.as_slice() {
        [] => None,
        [Response::Error { code, .. }] => Some(*code),
        other => panic!("{what}: expected an error and a close, got {other:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn huge_length_prefix_closes_only_that_connection_without_allocating() {
    let server = TestServer::start();
    let rt = runtime();
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("f");
    std::fs::write(&file, random_bytes(1, 300_000)).unwrap();

    // A logged-in client that must keep working, warmed up by one transfer.
    let mut alice = rt.block_on(login(&server, "alice", ALICE_PASSWORD));
    rt.block_on(alice.put_file(&file, "warm", &mut no_progress()))
        .unwrap();
    let rss_before = server.rss_kib();

    for round in 0..3 {
        // Before login.
        let mut conn = RawConn::connect_hello(&server);
        conn.send_raw(&[0xFF; 4]).unwrap();
        let code = assert_closed_with_error(conn, "0xFFFFFFFF before login");
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        // After login, with some bytes of the claimed body following.
        let mut conn = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
        conn.send_raw(&[0xFF; 4]).unwrap();
        let _ = conn.send_raw(&vec![0xAB; 64 * 1024]);
        let code = assert_closed_with_error(conn, "0xFFFFFFFF after login");
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        // Just over the caps.
        let mut conn = RawConn::connect(&server);
        conn.send_raw(&(4 * 1024 + 1u32).to_be_bytes()).unwrap();
        assert_closed_with_error(conn, "pre-login cap + 1");
        let mut conn = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
        conn.send_raw(&(1024 * 1024 + 1u32).to_be_bytes()).unwrap();
        assert_closed_with_error(conn, "post-login cap + 1");

        let back = local.path().join(format!("back{round}"));
        rt.block_on(alice.get_file("warm", &back, &mut no_progress()))
            .expect("the other session keeps working");
        assert!(tests::files_equal(&file, &back));
    }
    let rss_after = server.rss_kib();
    assert!(
        rss_after < rss_before + 8 * 1024,
        "the server's RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    rt.block_on(alice.quit()).unwrap();
}

#[test]
fn garbage_after_hello_closes_the_connection() {
    let server = TestServer::start();
    let garbage: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        // A small frame whose variant index does not exist.
        &[0, 0, 0, 5, 0xFF, 0xFF, 0xFF, 0x7F, 0x00],
        // A Put whose path claims 2^40 bytes.
        &[
            0, 0, 0, 17, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, b'a', b'b', b'c', b'd', b'e',
        ],
    ];
    for bytes in garbage {
        let mut conn = RawConn::connect_hello(&server);
        conn.send_raw(bytes).unwrap();
        let code = assert_closed_with_error(conn, &format!("{bytes:?} after hello"));
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_raw(bytes).unwrap();
        let code = assert_closed_with_error(conn, &format!("{bytes:?} after login"));
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );
    }
    // Garbage instead of a hello.
    let mut conn = RawConn::connect(&server);
    conn.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .unwrap();
    assert_closed_with_error(conn, "TLS hello");
    assert!(!server.home("alice").join("abcde").exists());
}

#[test]
fn empty_frames_and_trailing_bytes_are_refused() {
    let server = TestServer::start();
    // Quit with one byte too many in its frame: must not be taken as Quit.
    let mut trailing = frame_of(&Request::Quit);
    trailing[3] += 1;
    trailing.push(0);
    let mut mkdir_trailing = frame_of(&Request::Mkdir {
        path: "trailing".into(),
        parents: false,
    });
    mkdir_trailing[3] += 2;
    mkdir_trailing.extend_from_slice(b"xx");

    for (what, bytes) in [
        ("empty frame", vec![0u8, 0, 0, 0]),
        ("Quit + trailing byte", trailing),
        ("Mkdir + trailing bytes", mkdir_trailing),
    ] {
        let mut conn = RawConn::connect_hello(&server);
        conn.send_raw(&bytes).unwrap();
        assert_eq!(
            assert_closed_with_error(conn, what),
            Some(ErrorCode::BAD_REQUEST),
            "{what} before login"
        );
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_raw(&bytes).unwrap();
        assert_eq!(
            assert_closed_with_error(conn, what),
            Some(ErrorCode::BAD_REQUEST),
            "{what} after login"
        );
    }
    assert!(!server.home("alice").join("trailing").exists());
}

#[test]
fn concurrent_put_and_get_are_both_byte_identical() {
    const SIZE: u64 = 8 * 1024 * 1024;
    let server = TestServer::start();
    let rt = runtime();
    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up.bin");
    let down_src = local.path().join("down-src.bin");
    let down = local.path().join("down.bin");
    write_random_file(&up, 11, SIZE);
    write_random_file(&down_src, 22, SIZE + 12345);

    rt.block_on(async {
        let mut bob = login(&server, "bob", BOB_PASSWORD).await;
        bob.put_file(&down_src, "shared.bin", &mut no_progress())
            .await
            .unwrap();
        let mut alice = login(&server, "alice", ALICE_PASSWORD).await;
        // Both transfers are under way at the same time.
        let (put, get) = tokio::join!(
            async {
                alice
                    .put_file(&up, "dir-less.bin", &mut no_progress())
                    .await
            },
            async { bob.get_file("shared.bin", &down, &mut no_progress()).await },
        );
        put.expect("concurrent put");
        get.expect("concurrent get");
        alice.quit().await.unwrap();
        bob.quit().await.unwrap();
    });
    assert!(tests::files_equal(
        &up,
        &server.home("alice").join("dir-less.bin")
    ));
    assert!(tests::files_equal(&down_src, &down));
    assert!(server.incoming_entries().is_empty());
}

#[test]
fn cut_upload_publishes_nothing_and_keeps_the_old_version() {
    let server = TestServer::start();
    let old = random_bytes(3, 100_000);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("doc.bin", &old, None), Response::Ok);
    drop(setup);
    let home = server.home("alice");
    let size = 10 * 1024 * 1024;
    let start_put = |conn: &mut RawConn, name: &str| {
        conn.send(&Request::Put {
            path: name.into(),
            size,
            offset: 0,
            algorithm: DigestAlgorithm::Sha256,
        })
        .unwrap();
    };

    let mut kept = Vec::new();
    for name in ["doc.bin", "fresh.bin"] {
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        start_put(&mut conn, name);
        let chunk = random_bytes(4, CHUNK_SIZE);
        for _ in 0..4 {
            conn.send(&Request::Data(Bytes::from(chunk.clone())))
                .unwrap();
        }
        // The upload is under way: its temp file exists.
        wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
            !server.upload_temps().is_empty()
        });
        conn.cut();
        // Nothing published; what arrived is kept aside for a resume.
        kept.push(4 * CHUNK_SIZE as u64);
        server.wait_uploads_settled(&kept);
        assert!(!home.join(format!("{name}.part")).exists());
    }
    assert_eq!(
        std::fs::read(home.join("doc.bin")).unwrap(),
        old,
        "the old version changed"
    );
    assert!(
        !home.join("fresh.bin").exists(),
        "a cut upload was published"
    );

    // Same when the connection just goes away without a shutdown; the newer
    // interrupted upload of doc.bin replaces the older one.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(&mut conn, "doc.bin");
    let head = vec![1u8; 1000];
    conn.send(&Request::Data(Bytes::from(head.clone())))
        .unwrap();
    wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    drop(conn);
    server.wait_uploads_settled(&[1000, 4 * CHUNK_SIZE as u64]);
    assert_eq!(std::fs::read(home.join("doc.bin")).unwrap(), old);

    // The kept bytes are offered for a resume, with their digest; the resumed
    // upload's digest covers the whole file.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(conn.get("doc.bin").unwrap(), old);
    conn.send(&Request::Partial {
        path: "doc.bin".into(),
        size,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    let mut prefix = Hasher::new(DigestAlgorithm::Sha256);
    prefix.update(&head);
    assert_eq!(
        conn.expect_reply(),
        Response::Partial {
            offset: 1000,
            digest: prefix.clone().finish()
        }
    );
    let mut whole = head;
    whole.extend(random_bytes(9, size as usize - 1000));
    conn.send(&Request::Put {
        path: "doc.bin".into(),
        size,
        offset: 1000,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    for chunk in whole[1000..].chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .unwrap();
    }
    let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
    hasher.update(&whole);
    conn.send(&Request::PutEnd {
        digest: hasher.finish(),
    })
    .unwrap();
    assert_eq!(conn.expect_reply(), Response::Ok);
    assert!(std::fs::read(home.join("doc.bin")).unwrap() == whole);
    server.wait_uploads_settled(&[4 * CHUNK_SIZE as u64]);

    // A resume from an offset the server does not hold is refused.
    conn.send(&Request::Put {
        path: "doc.bin".into(),
        size,
        offset: 5,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    match conn.expect_reply() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::BAD_OFFSET),
        other => panic!("a resume without kept bytes got {other:?}"),
    }
}

#[test]
fn wrong_digest_or_size_publishes_nothing() {
    let server = TestServer::start();
    let home = server.home("alice");
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let old = random_bytes(5, 1000);
    assert_eq!(conn.put("kept.bin", &old, None), Response::Ok);
    let data = random_bytes(6, 3 * CHUNK_SIZE + 17);

    for name in ["kept.bin", "new.bin"] {
        match conn.put(name, &data, Some(Digest::Sha256([0x5A; 32]))) {
            Response::Error { code, message } => {
                assert_eq!(code, ErrorCode::DIGEST_MISMATCH, "{message}");
                assert!(message.contains(name), "{message}");
            }
            other => panic!("a wrong digest was accepted: {other:?}"),
        }
        assert!(
            server.incoming_entries().is_empty(),
            "temp left after the refusal"
        );
    }
    assert_eq!(std::fs::read(home.join("kept.bin")).unwrap(), old);
    assert!(!home.join("new.bin").exists());
    assert!(conn.get("new.bin").is_err());

    // Fewer bytes than announced, with the digest of what was sent; then more
    // bytes than announced.
    for (path, size, digest, what) in [
        ("short.bin", 100, None, "short"),
        ("long.bin", 10, Some(Digest::Sha256([0; 32])), "long"),
    ] {
        match conn.put_sized(path, size, &[7u8; 60], digest) {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::SIZE_MISMATCH),
            other => panic!("a {what} upload was accepted: {other:?}"),
        }
    }
    assert!(!home.join("short.bin").exists());
    assert!(!home.join("long.bin").exists());
    server.wait_incoming_empty();

    // The session goes on and a correct upload works.
    assert_eq!(conn.put("new.bin", &data, None), Response::Ok);
    assert_eq!(conn.get("new.bin").unwrap(), data);
}

/// SIGTERM, then a clean exit (status 0) within a few seconds.
#[track_caller]
fn assert_sigterm_exits_zero(server: &mut TestServer) {
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM; log:\n{}", server.stderr()));
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM; log:\n{}",
        server.stderr()
    );
}

#[test]
fn sigterm_on_an_idle_server_exits_zero() {
    let mut server = TestServer::start();
    drop(RawConn::connect_hello(&server));
    assert_sigterm_exits_zero(&mut server);
}

/// A supervisor may stop the server as soon as it printed `listening on`.
/// The server installs its SIGTERM handler only when the accept loop first
/// polls the shutdown future, after printing the line (and `select!` may
/// take a pending connection without polling it, so even a served hello does
/// not close the window), so an early SIGTERM kills it with the default
/// action (killed by signal 15, not exit 0).
#[test]
fn sigterm_right_after_listening_exits_zero() {
    for _ in 0..30 {
        let mut server = TestServer::start();
        assert_sigterm_exits_zero(&mut server);
    }
}

#[test]
fn sigterm_with_an_idle_session_tells_it_and_exits_zero() {
    let mut server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert!(conn.is_alive());
    let mut fresh = RawConn::connect(&server);
    fresh
        .send(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        })
        .unwrap();
    assert!(matches!(fresh.recv(), Some(Response::Hello { .. })));
    server.terminate();
    assert_eq!(
        assert_closed_with_error(conn, "idle session at shutdown"),
        Some(ErrorCode::SHUTTING_DOWN)
    );
    assert_eq!(
        assert_closed_with_error(fresh, "session in its handshake at shutdown"),
        Some(ErrorCode::SHUTTING_DOWN)
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM; log:\n{}", server.stderr()));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_lets_a_running_upload_finish_then_exits_zero() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let mut server = dir.start_args(&["--shutdown-grace", "10"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let data = random_bytes(9, 2 * CHUNK_SIZE + 5);
    conn.send(&Request::Put {
        path: "during-shutdown.bin".into(),
        size: data.len() as u64,
        offset: 0,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    conn.send(&Request::Data(Bytes::from(data[..CHUNK_SIZE].to_vec())))
        .unwrap();
    wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
        !server.incoming_entries().is_empty()
    });
    server.terminate();
    // The listener goes away at once...
    wait_until(tests::POLL_DEADLINE, "the listener to close", || {
        std::net::TcpStream::connect(server.addr()).is_err()
    });
    // ...but the running upload may finish within the grace period.
    conn.send(&Request::Data(Bytes::from(data[CHUNK_SIZE..].to_vec())))
        .unwrap();
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    h.update(&data);
    conn.send(&Request::PutEnd { digest: h.finish() }).unwrap();
    assert_eq!(
        conn.expect_reply(),
        Response::Ok,
        "the upload was cut by SIGTERM"
    );
    assert_eq!(
        assert_closed_with_error(conn, "session after its upload at shutdown"),
        Some(ErrorCode::SHUTTING_DOWN)
    );
    assert_eq!(
        std::fs::read(server.home("alice").join("during-shutdown.bin")).unwrap(),
        data
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after SIGTERM; log:\n{}", server.stderr()));
    assert!(status.success(), "exit status {status:?}");
    assert!(server.incoming_entries().is_empty());
}

#[test]
fn sigterm_aborts_an_upload_that_outlasts_the_grace_period() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let mut server = dir.start_args(&["--shutdown-grace", "1"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    conn.send(&Request::Put {
        path: "too-slow.bin".into(),
        size: 10 * CHUNK_SIZE as u64,
        offset: 0,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    conn.send(&Request::Data(Bytes::from(random_bytes(10, CHUNK_SIZE))))
        .unwrap();
    wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    server.terminate();
    // The client never finishes: after the grace period the upload is
    // aborted, nothing is published, its temp file is gone, exit status 0.
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "still running after the grace period; log:\n{}",
                server.stderr()
            )
        });
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.stderr()
    );
    assert!(!server.home("alice").join("too-slow.bin").exists());
    assert!(
        server.upload_temps().is_empty(),
        "{:?}",
        server.upload_temps()
    );
    drop(conn);
}

#[test]
fn connections_over_the_limit_are_told_busy() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start_args(&["--max-connections", "2"]);
    let first = RawConn::connect_hello(&server);
    let mut second = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let third = RawConn::connect(&server);
    assert_eq!(
        assert_closed_with_error(third, "third connection"),
        Some(ErrorCode::BUSY)
    );
    assert!(second.is_alive(), "a served session was disturbed");
    drop(first);
    // The freed slot is reused (the server notices the close asynchronously).
    let end = std::time::Instant::now() + tests::POLL_DEADLINE;
    loop {
        let mut conn = RawConn::connect(&server);
        conn.send(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        })
        .unwrap();
        match conn.recv() {
            Some(Response::Hello { .. }) => break,
            Some(Response::Error { code, .. }) if code == ErrorCode::BUSY => {}
            other => panic!("{other:?}"),
        }
        assert!(std::time::Instant::now() < end, "the slot was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refused_and_cancelled_uploads_keep_the_session_usable() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // Too large: refused at once; the client then cancels.
    conn.send(&Request::Put {
        path: "huge.bin".into(),
        size: 1 << 50,
        offset: 0,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    match conn.expect_reply() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::TOO_LARGE),
        other => panic!("{other:?}"),
    }
    conn.send(&Request::PutCancel).unwrap();
    // Cancelled by the client mid-way.
    conn.send(&Request::Put {
        path: "cancelled.bin".into(),
        size: 1000,
        offset: 0,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    conn.send(&Request::Data(Bytes::from(vec![1u8; 500])))
        .unwrap();
    conn.send(&Request::PutCancel).unwrap();
    match conn.expect_reply() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::CANCELLED),
        other => panic!("{other:?}"),
    }
    // A Data frame outside an upload is a protocol violation.
    assert_eq!(conn.put("after.bin", b"fine", None), Response::Ok);
    conn.send(&Request::Data(Bytes::from(vec![1u8; 10])))
        .unwrap();
    assert_eq!(
        assert_closed_with_error(conn, "Data outside an upload"),
        Some(ErrorCode::BAD_REQUEST)
    );
    let home = server.home("alice");
    assert!(!home.join("huge.bin").exists());
    assert!(!home.join("cancelled.bin").exists());
    assert_eq!(std::fs::read(home.join("after.bin")).unwrap(), b"fine");
    server.wait_incoming_empty();
}

#[test]
fn idle_sessions_time_out() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start_args(&["--idle-timeout", "1"]);
    let conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let started = std::time::Instant::now();
    assert_eq!(
        assert_closed_with_error(conn, "idle session"),
        Some(ErrorCode::TIMEOUT)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

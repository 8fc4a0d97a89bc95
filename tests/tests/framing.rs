//! Framing: a hostile or broken peer costs only its own connection. Absurd
//! length prefixes (before and after login, just over each cap) without the
//! server allocating them, garbage instead of a frame (HTTP, TLS, unknown
//! variants, lengths inside a message that claim terabytes), empty frames,
//! trailing bytes after a message, and messages out of order (a `Data` frame
//! outside an upload, `PutCancel` after a refusal or mid-upload). Every
//! scenario ends with [`tests::TestServer::assert_healthy`].

use bytes::Bytes;
use ftp_shared::{ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, RawConn, TestServer, frame_of, login, no_progress, random_bytes,
};

/// A runtime for the library client in a synchronous test.
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
        let code = conn.expect_closed_with_error("0xFFFFFFFF before login");
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        // After login, with some bytes of the claimed body following.
        let mut conn = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
        conn.send_raw(&[0xFF; 4]).unwrap();
        let _ = conn.send_raw(&vec![0xAB; 64 * 1024]);
        let code = conn.expect_closed_with_error("0xFFFFFFFF after login");
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        // Just over the caps.
        let mut conn = RawConn::connect(&server);
        conn.send_raw(&(4 * 1024 + 1u32).to_be_bytes()).unwrap();
        conn.expect_closed_with_error("pre-login cap + 1");
        let mut conn = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
        conn.send_raw(&(1024 * 1024 + 1u32).to_be_bytes()).unwrap();
        conn.expect_closed_with_error("post-login cap + 1");

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
    server.assert_healthy();
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
        let code = conn.expect_closed_with_error(&format!("{bytes:?} after hello"));
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );

        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_raw(bytes).unwrap();
        let code = conn.expect_closed_with_error(&format!("{bytes:?} after login"));
        assert!(
            matches!(code, None | Some(ErrorCode::BAD_REQUEST)),
            "{code:?}"
        );
    }
    // Garbage instead of a hello.
    let mut conn = RawConn::connect(&server);
    conn.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .unwrap();
    conn.expect_closed_with_error("TLS hello");
    assert!(!server.home("alice").join("abcde").exists());
    server.assert_healthy();
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
            conn.expect_closed_with_error(what),
            Some(ErrorCode::BAD_REQUEST),
            "{what} before login"
        );
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_raw(&bytes).unwrap();
        assert_eq!(
            conn.expect_closed_with_error(what),
            Some(ErrorCode::BAD_REQUEST),
            "{what} after login"
        );
    }
    assert!(!server.home("alice").join("trailing").exists());
    server.assert_healthy();
}

#[test]
fn refused_and_cancelled_uploads_keep_the_session_usable() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // Too large: refused at once; the client then cancels.
    conn.send_put("huge.bin", 1 << 50, 0);
    match conn.expect_reply() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::TOO_LARGE),
        other => panic!("{other:?}"),
    }
    conn.send(&Request::PutCancel).unwrap();
    // Cancelled by the client mid-way.
    conn.send_put("cancelled.bin", 1000, 0);
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
        conn.expect_closed_with_error("Data outside an upload"),
        Some(ErrorCode::BAD_REQUEST)
    );
    let home = server.home("alice");
    assert!(!home.join("huge.bin").exists());
    assert!(!home.join("cancelled.bin").exists());
    assert_eq!(std::fs::read(home.join("after.bin")).unwrap(), b"fine");
    server.wait_incoming_empty();
    server.assert_healthy();
}

//! Lifecycle: how sessions and the server end. SIGTERM on an idle server,
//! right after `listening on`, with an idle session and one in its
//! handshake (both told `SHUTTING_DOWN`), with an upload that finishes within
//! the grace period and one that outlasts it; connections over the limit told
//! `BUSY` and the slot reused once freed; idle sessions timed out. A scenario
//! that stops the server ends with [`tests::TestServer::assert_no_debris`],
//! the others with [`tests::TestServer::assert_healthy`].

use std::time::Duration;

use bytes::Bytes;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher, MAGIC, PROTOCOL_VERSION};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{ALICE_PASSWORD, RawConn, TestServer, random_bytes, wait_until};

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
    server.assert_no_debris();
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
        server.assert_no_debris();
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
        conn.expect_closed_with_error("idle session at shutdown"),
        Some(ErrorCode::SHUTTING_DOWN)
    );
    assert_eq!(
        fresh.expect_closed_with_error("session in its handshake at shutdown"),
        Some(ErrorCode::SHUTTING_DOWN)
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM; log:\n{}", server.stderr()));
    assert!(status.success(), "exit status {status:?}");
    server.assert_no_debris();
}

#[test]
fn sigterm_lets_a_running_upload_finish_then_exits_zero() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let mut server = dir.start_args(&["--shutdown-grace", "10"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let data = random_bytes(9, 2 * CHUNK_SIZE + 5);
    conn.send_put("during-shutdown.bin", data.len() as u64, 0);
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
        conn.expect_closed_with_error("session after its upload at shutdown"),
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
    server.assert_no_debris();
}

#[test]
fn sigterm_aborts_an_upload_that_outlasts_the_grace_period() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let mut server = dir.start_args(&["--shutdown-grace", "1"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    conn.send_put("too-slow.bin", 10 * CHUNK_SIZE as u64, 0);
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
    server.assert_no_debris();
}

#[test]
fn connections_over_the_limit_are_told_busy() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start_args(&["--max-connections", "2"]);
    // Both logged in: a connection waiting to log in would be replaced.
    let first = RawConn::connect_login(&server, "bob", tests::BOB_PASSWORD);
    let mut second = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let third = RawConn::connect(&server);
    assert_eq!(
        third.expect_closed_with_error("third connection"),
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
    // The health check needs a slot of its own.
    drop(second);
    server.assert_healthy();
}

#[test]
fn idle_sessions_time_out() {
    let dir = tests::ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start_args(&["--idle-timeout", "1"]);
    let conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let started = std::time::Instant::now();
    assert_eq!(
        conn.expect_closed_with_error("idle session"),
        Some(ErrorCode::TIMEOUT)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.assert_healthy();
}

#[test]
fn the_accept_loop_survives_running_out_of_file_descriptors() {
    let mut server = TestServer::start();
    // A low descriptor limit on the running server: the connections below
    // exhaust it, and accept(2) starts failing with EMFILE. It is below what
    // the server holds plus one address's share of connections not logged
    // in (16), as newcomers beyond that share replace the oldest.
    let pid = server.pid().to_string();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("the soft limit of open files")
        .to_string();
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=24:"])
        .status();
    if !lowered.is_ok_and(|s| s.success()) {
        eprintln!("skipped: prlimit cannot lower the server's file limit here");
        return;
    }
    let hogs: Vec<std::net::TcpStream> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(server.addr()).ok())
        .collect();
    wait_until(tests::POLL_DEADLINE, "accept to fail with EMFILE", || {
        server.stderr().contains("accept failed")
    });
    assert!(server.is_running(), "the server died of EMFILE");
    // Once the descriptors are free again, the server serves as before.
    drop(hogs);
    let restored = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={soft}:")])
        .status()
        .expect("run prlimit");
    assert!(restored.success());
    server.assert_healthy();
}

//! Exhaustion and the limits against it, with the configuration behind them:
//! `check-config` on good and broken files (which it must refuse without
//! writing anything), the command line over the file over the defaults, the
//! caps on connections per address and not yet logged in, the lockout of a
//! user and address after failed logins across connections, and slow
//! clients cut by the handshake deadline while a normal client is served.
//! Every scenario that runs a server ends with
//! [`tests::TestServer::assert_healthy`] (after closing its own connections,
//! so that a cap leaves a slot for the check).

use std::path::Path;
use std::time::{Duration, Instant};

use ftp_shared::message::{MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::ClientFirst;
use ftp_shared::{ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_USERS, Output, POLL_DEADLINE, READ_TIMEOUT, RawConn,
    ServerDir, TestServer, frame_of, random_bytes, run_cmd, server_cmd, snapshot, temp_dir,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `ftp-server check-config --config CONFIG --users USERS`, run from an
/// unrelated working directory (so relative paths must be taken relative to
/// the file, not to the working directory).
///
/// Whatever its verdict, checking writes nothing: the directory of the
/// configuration file and the working directory are the same afterwards.
#[track_caller]
fn check_config(config: &Path, users: &Path) -> Output {
    let cwd = temp_dir("ftp-check-cwd-");
    let dir = config.parent().expect("the configuration file's directory");
    let before = snapshot(dir, &[]);
    let mut cmd = server_cmd();
    cmd.arg("check-config")
        .arg("--config")
        .arg(config)
        .arg("--users")
        .arg(users)
        .current_dir(cwd.path());
    let out = run_cmd(cmd, None);
    assert!(
        snapshot(dir, &[]) == before,
        "check-config changed {}: {out:#?}",
        dir.display()
    );
    assert!(
        snapshot(cwd.path(), &[]).is_empty(),
        "check-config wrote in its working directory: {out:#?}"
    );
    out
}

/// Asserts that `check-config` refused the configuration: a non-zero exit,
/// no "valid" claim, and every one of `needles` in its error output.
#[track_caller]
fn assert_refused(out: &Output, what: &str, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "{what}: check-config accepted it: {out:#?}"
    );
    assert_eq!(out.code(), 1, "{what}: exit status: {out:#?}");
    assert!(
        !out.stdout.contains("configuration is valid"),
        "{what}: {out:#?}"
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{what}: the message does not name {needle:?}: {:?}",
            out.stderr
        );
    }
    assert!(
        !out.stderr.contains("panicked"),
        "{what}: check-config panicked: {:?}",
        out.stderr
    );
}

/// Asserts that `conn` is refused with `BUSY` (and closed), with a message
/// that contains `why`.
#[track_caller]
fn assert_busy(mut conn: RawConn, why: &str) {
    match conn.expect_closed().as_slice() {
        [Response::Error { code, message }] => {
            assert_eq!(*code, ErrorCode::BUSY, "{message}");
            assert!(
                message.contains(why),
                "the BUSY message does not say {why:?}: {message:?}"
            );
        }
        other => panic!("expected one BUSY error and a close, got {other:?}"),
    }
}

/// Sends `Hello` on a connection; `Ok` with the connection when the server
/// greets it, `Err` with its reply when it refuses.
fn try_hello(mut conn: RawConn) -> Result<RawConn, Option<Response>> {
    conn.send(&Request::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .map_err(|_| None)?;
    match conn.recv() {
        Some(Response::Hello { .. }) => Ok(conn),
        other => Err(other),
    }
}

/// Connects until the server admits a connection (says hello) instead of
/// answering `BUSY`: a slot given back is noticed asynchronously.
#[track_caller]
fn admitted(server: &TestServer, what: &str) -> RawConn {
    let end = Instant::now() + POLL_DEADLINE;
    loop {
        match try_hello(RawConn::connect(server)) {
            Ok(conn) => return conn,
            Err(Some(Response::Error { code, .. })) if code == ErrorCode::BUSY => {}
            Err(other) => panic!("{what}: {other:?}"),
        }
        assert!(
            Instant::now() < end,
            "{what}: still BUSY after {POLL_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection to `server` from the local address `src` (another
/// loopback address, e.g. 127.0.0.2), TLS as the server speaks it; `None`
/// when this host cannot bind it.
fn connect_from(src: &str, server: &TestServer) -> Option<RawConn> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr();
    let connected = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(format!("{src}:0").parse().unwrap())?;
        let stream = tokio::time::timeout(READ_TIMEOUT, socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??;
        stream.into_std()
    });
    let stream = match connected {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot connect from {src}: {e}; that part is skipped");
            return None;
        }
    };
    stream.set_nonblocking(false).unwrap();
    Some(RawConn::over(stream, server.fingerprint()))
}

/// Hello on a raw connection; the server's reply.
fn hello_on(conn: &mut RawConn) -> Option<Response> {
    conn.send(&Request::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .ok()?;
    conn.recv()
}

/// A SCRAM login on a raw connection; `Err` holds the reply that is not `AuthOk`.
fn login_on(conn: &mut RawConn, user: &str, password: &str) -> Result<(), Option<Response>> {
    conn.login(user, password).map_err(Some)
}

/// Sends `AuthStart` for `user` and, after the challenge (which must come),
/// the `AuthFinish` of `password`; returns the exact bytes of the reply.
#[track_caller]
fn login_reply_bytes(conn: &mut RawConn, user: &str, password: &str) -> Vec<u8> {
    conn.send_login(user, password).expect("a challenge");
    conn.recv_raw().expect("a reply to the login")
}

// ---------------------------------------------------------------------------
// check-config
// ---------------------------------------------------------------------------

#[test]
fn check_config_accepts_a_good_file_and_resolves_paths_against_it() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config(
        "listen = \"127.0.0.1:0\"\n\
         root = \"data/root\"\n\
         users = \"users.toml\"\n\
         fsync = false\n\
         \n\
         [limits]\n\
         max_connections = 10\n\
         max_connections_per_address = 3\n\
         max_unauthenticated = 4\n\
         handshake_timeout_secs = 5\n\
         idle_timeout_secs = 60\n\
         transfer_timeout_secs = 30\n\
         max_file_size = 1048576\n\
         max_auth_failures = 2\n\
         auth_failure_delay_ms = 10\n\
         lockout_failures = 5\n\
         lockout_secs = 60\n\
         shutdown_grace_secs = 1\n",
    );
    std::fs::create_dir(dir.base().join("data")).unwrap();
    let out = check_config(&config, &dir.users_path());
    out.assert_success();
    assert!(
        out.stdout.contains("configuration is valid"),
        "{:?}",
        out.stdout
    );
    // `root` is relative to the file's directory, not to the working directory.
    let root = dir.base().join("data/root");
    assert!(
        out.stdout.contains(&root.display().to_string()),
        "the root was not resolved against the file: {:?}",
        out.stdout
    );
    assert!(out.stdout.contains("2 user(s)"), "{:?}", out.stdout);
    assert!(out.stdout.contains("fsync off"), "{:?}", out.stdout);
    // Checking creates nothing.
    assert!(!root.exists(), "check-config created the root");

    // The file's `users` is used when the command line gives none.
    let mut cmd = server_cmd();
    cmd.arg("check-config").arg("--config").arg(&config);
    let out = run_cmd(cmd, None);
    out.assert_success();
    assert!(
        out.stdout.contains(&dir.users_path().display().to_string()),
        "{:?}",
        out.stdout
    );
}

#[test]
fn check_config_refuses_unknown_keys_and_wrong_types() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let users = dir.users_path();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "a misspelt limit",
            "[limits]\nidle_timeout = 7\n",
            &["unknown field", "idle_timeout"],
        ),
        (
            "an unknown top-level key",
            "rot = \"root\"\n",
            &["unknown field", "rot"],
        ),
        (
            "an unknown table",
            "[limit]\nmax_connections = 5\n",
            &["unknown field", "limit"],
        ),
        (
            "a string for a number",
            "[limits]\nmax_connections = \"many\"\n",
            &["max_connections", "invalid type"],
        ),
        (
            "a negative number",
            "[limits]\nlockout_secs = -5\n",
            &["lockout_secs"],
        ),
        (
            "a string for a bool",
            "fsync = \"yes\"\n",
            &["fsync", "invalid type"],
        ),
        (
            "a number for a path",
            "root = 5\n",
            &["root", "invalid type"],
        ),
        ("not TOML at all", "[limits\nmax = \n", &["config.toml"]),
    ];
    let missing = dir.base().join("missing.toml");
    assert_refused(
        &check_config(&missing, &users),
        "a missing configuration file",
        &[
            "cannot read the configuration file",
            &missing.display().to_string(),
        ],
    );
    for (what, text, needles) in cases {
        let config = dir.write_config(text);
        let out = check_config(&config, &users);
        assert_refused(&out, what, needles);
        // Every file error names the file.
        assert!(
            out.stderr.contains(&config.display().to_string()),
            "{what}: the file is not named: {:?}",
            out.stderr
        );
    }
}

#[test]
fn check_config_refuses_zero_limits() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    for key in [
        "max_connections",
        "max_connections_per_address",
        "max_unauthenticated",
        "handshake_timeout_secs",
        "idle_timeout_secs",
        "max_auth_failures",
        "lockout_failures",
        "max_unauthenticated_per_address",
    ] {
        let config = dir.write_config(&format!("[limits]\n{key} = 0\n"));
        let out = check_config(&config, &dir.users_path());
        let name = key.trim_end_matches("_secs");
        assert_refused(&out, key, &[name, "greater than 0"]);
    }
    // Zero on the command line is refused the same way, and wins over a
    // valid file.
    let config = dir.write_config("[limits]\nmax_connections = 5\n");
    let mut cmd = server_cmd();
    cmd.arg("check-config")
        .arg("--config")
        .arg(&config)
        .arg("--users")
        .arg(dir.users_path())
        .arg("--max-connections")
        .arg("0");
    let out = run_cmd(cmd, None);
    assert_refused(
        &out,
        "--max-connections 0",
        &["max_connections", "greater than 0"],
    );
    // `serve` refuses it too instead of starting a server nobody can use.
    let mut cmd = server_cmd();
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--root")
        .arg(dir.root())
        .arg("--users")
        .arg(dir.users_path())
        .arg("--max-unauthenticated")
        .arg("0");
    let out = run_cmd(cmd, None);
    assert_refused(
        &out,
        "serve --max-unauthenticated 0",
        &["max_unauthenticated"],
    );
    assert!(
        !dir.root().exists(),
        "serve created the root before refusing"
    );
}

#[test]
fn check_config_refuses_a_missing_or_broken_users_file() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("root = \"root\"\n");

    let missing = dir.base().join("nobody.toml");
    let out = check_config(&config, &missing);
    assert_refused(
        &out,
        "a missing users file",
        &["users file", &missing.display().to_string()],
    );
    assert!(!missing.exists(), "check-config created the users file");

    // alice's stored_key is not hex.
    let text = std::fs::read_to_string(dir.users_path()).unwrap();
    let alice = text.find("[users.alice]").expect("alice's entry");
    let key = alice + text[alice..].find("stored_key = ").unwrap();
    let end = key + text[key..].find('\n').unwrap();
    let broken = format!("{}stored_key = \"not-hex\"{}", &text[..key], &text[end..]);
    let path = dir.base().join("broken-users.toml");
    std::fs::write(&path, broken).unwrap();
    let out = check_config(&config, &path);
    assert_refused(
        &out,
        "a broken users entry",
        &["alice", "stored_key", &path.display().to_string()],
    );

    // Iterations below the minimum.
    let low = text.replacen(
        &format!("iterations = {}", tests::ITERATIONS),
        "iterations = 1",
        1,
    );
    assert_ne!(low, text, "the users file has no iterations line");
    std::fs::write(&path, low).unwrap();
    assert_refused(
        &check_config(&config, &path),
        "too few iterations",
        &["iterations"],
    );

    // Not TOML.
    std::fs::write(&path, "this is [not toml").unwrap();
    assert_refused(
        &check_config(&config, &path),
        "a garbled users file",
        &[&path.display().to_string()],
    );
}

#[test]
fn check_config_refuses_a_root_that_is_a_regular_file() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    std::fs::write(dir.base().join("afile"), b"not a directory").unwrap();
    let config = dir.write_config("root = \"afile\"\n");
    let out = check_config(&config, &dir.users_path());
    assert_refused(
        &out,
        "a root that is a file",
        &[
            "not a directory",
            &dir.base().join("afile").display().to_string(),
        ],
    );
    // A root under a regular file can never be created.
    let config = dir.write_config("root = \"afile/root\"\n");
    let out = check_config(&config, &dir.users_path());
    assert_refused(&out, "a root beneath a file", &["afile"]);
}

/// `check-config` checks what `serve` would load: `serve` creates a missing
/// root with all its parents, so a root whose parents do not exist yet is
/// valid.
#[test]
fn check_config_accepts_a_root_that_serve_would_create() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("root = \"new/deeper/root\"\n");
    let out = check_config(&config, &dir.users_path());
    // serve itself starts on this configuration and creates the root.
    let config_arg = config.to_str().unwrap().to_owned();
    let mut cmd = std::process::Command::new(tests::server_bin());
    cmd.args([
        "serve",
        "--config",
        &config_arg,
        "--listen",
        "127.0.0.1:0",
        "--users",
    ])
    .arg(dir.users_path())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The lines before it tell of the certificate made at first start.
        let listening = std::io::BufRead::lines(std::io::BufReader::new(stdout))
            .map_while(Result::ok)
            .find(|line| line.starts_with("listening on "))
            .unwrap_or_default();
        let _ = tx.send(listening);
    });
    let line = rx.recv_timeout(tests::DEADLINE).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on "), "serve: {line:?}");
    assert!(dir.base().join("new/deeper/root").is_dir());
    std::fs::remove_dir_all(dir.base().join("new")).unwrap();
    out.assert_success();
}

/// `check-config` refuses a `listen` whose port can never be bound, which
/// `serve` would refuse too ("invalid port value").
#[test]
fn check_config_refuses_a_listen_address_with_an_invalid_port() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    for listen in ["127.0.0.1:99999", "127.0.0.1:http", ":", "localhost:-1"] {
        let config = dir.write_config(&format!("root = \"root\"\nlisten = \"{listen}\"\n"));
        let out = check_config(&config, &dir.users_path());
        assert_refused(&out, listen, &["listen"]);
    }
}

// ---------------------------------------------------------------------------
// Command line over file over defaults
// ---------------------------------------------------------------------------

/// Logs in, then waits for the idle timeout to close the session; returns
/// how long that took.
#[track_caller]
fn idle_close_after(server: &TestServer) -> Duration {
    let mut conn = RawConn::connect_login(server, "alice", ALICE_PASSWORD);
    let started = Instant::now();
    let replies = conn.expect_closed();
    let took = started.elapsed();
    assert!(
        matches!(
            replies.as_slice(),
            [Response::Error { code, .. }] if *code == ErrorCode::TIMEOUT
        ),
        "expected one TIMEOUT and a close, got {replies:?}"
    );
    took
}

#[test]
fn command_line_idle_timeout_wins_over_the_file() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("[limits]\nidle_timeout_secs = 1000\n");
    let config = config.to_str().unwrap().to_owned();
    let server = dir.start_args(&["--config", &config, "--idle-timeout", "1"]);
    let took = idle_close_after(&server);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    server.assert_healthy();
}

#[test]
fn file_idle_timeout_applies_when_not_overridden() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("[limits]\nidle_timeout_secs = 1\n");
    let config = config.to_str().unwrap().to_owned();
    let server = dir.start_args(&["--config", &config]);
    let took = idle_close_after(&server);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    server.assert_healthy();
}

#[test]
fn command_line_cap_wins_while_the_files_other_cap_applies() {
    // The file says one connection per address and two waiting to log in;
    // the command line raises the per-address cap to three.
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config =
        dir.write_config("[limits]\nmax_connections_per_address = 1\nmax_unauthenticated = 2\n");
    let config = config.to_str().unwrap().to_owned();
    let server = dir.start_args(&["--config", &config, "--max-connections-per-address", "3"]);
    // Two from 127.0.0.1: the file's per-address cap of 1 is overridden.
    let first = RawConn::connect_hello(&server);
    let second = RawConn::connect_hello(&server);
    // The third is within the per-address cap of 3 but over the file's cap
    // on connections waiting to log in: it replaces the oldest.
    let third = RawConn::connect_hello(&server);
    assert_busy(first, "replaced");
    // The health check needs a slot of its own.
    drop((second, third));
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Admission caps
// ---------------------------------------------------------------------------

#[test]
fn per_address_cap_replaces_a_waiting_one_then_refuses_and_frees_on_close() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let server = dir.start_args(&["--max-connections-per-address", "2"]);
    let first = RawConn::connect_hello(&server);
    let mut second = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // At the cap, a newcomer takes the place of its address's own connection
    // that has not logged in (told BUSY), never of a logged-in session.
    let mut third = RawConn::connect_hello(&server);
    assert_busy(first, "replaced");
    third
        .login("bob", BOB_PASSWORD)
        .expect("bob in the freed slot");
    // Logged-in sessions count against their address: now it is refused.
    assert_busy(RawConn::connect(&server), "address");
    assert_busy(RawConn::connect(&server), "address");
    assert!(second.is_alive(), "a served session was disturbed");

    // Another address is not affected by 127.0.0.1 being at its cap.
    if let Some(mut other) = connect_from("127.0.0.2", &server) {
        match hello_on(&mut other) {
            Some(Response::Hello { .. }) => {}
            reply => panic!("a connection from 127.0.0.2 was refused: {reply:?}"),
        }
        login_on(&mut other, "bob", BOB_PASSWORD).expect("bob from 127.0.0.2");
    }

    // A closed connection gives its slot back; then the cap holds again.
    third.cut();
    let mut third = admitted(&server, "after one of two closed");
    third.login("bob", BOB_PASSWORD).expect("bob again");
    assert_busy(RawConn::connect(&server), "address");
    assert!(second.is_alive());

    // A refused connection does not take a slot: after many refusals, closing
    // one connection still admits exactly one more.
    for _ in 0..20 {
        assert_busy(RawConn::connect(&server), "address");
    }
    drop(second);
    let mut fourth = admitted(&server, "after the logged-in one closed");
    fourth.login("alice", ALICE_PASSWORD).expect("alice again");
    assert_busy(RawConn::connect(&server), "address");
    // The health check needs a slot of its own.
    drop((third, fourth));
    server.assert_healthy();
}

#[test]
fn unauthenticated_cap_counts_only_connections_not_logged_in() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let server = dir.start_args(&["--max-unauthenticated", "2"]);

    // A logged-in session does not count...
    let mut logged = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let waiting_one = RawConn::connect_hello(&server);
    let mut waiting_two = RawConn::connect_hello(&server);
    // ...but two that only said hello hold both slots: a third replaces
    // the oldest (told BUSY), not the logged-in session.
    let mut waiting_three = RawConn::connect_hello(&server);
    assert_busy(waiting_one, "replaced");
    assert!(logged.is_alive());

    // A waiting connection that logs in frees its slot: the next one
    // replaces nobody.
    waiting_two
        .login("bob", BOB_PASSWORD)
        .expect("bob logs in on a waiting connection");
    let next = RawConn::connect_hello(&server);
    waiting_three
        .login("alice", ALICE_PASSWORD)
        .expect("the waiter that was not replaced logs in");
    assert!(waiting_two.is_alive());
    assert!(logged.is_alive());
    // The health check needs a slot of its own.
    drop((next, waiting_two, waiting_three, logged));
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Lockout
// ---------------------------------------------------------------------------

#[test]
fn lockout_after_failures_across_connections_then_expiry() {
    const LOCKOUT: Duration = Duration::from_secs(3);
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config(
        "[limits]\n\
         lockout_failures = 4\n\
         lockout_secs = 3\n\
         max_auth_failures = 2\n\
         auth_failure_delay_ms = 10\n",
    );
    let config = config.to_str().unwrap().to_owned();
    let server = dir.start_args(&["--config", &config]);

    // 4 failures over 2 connections (each closed after its second failure).
    let mut wrong_reply = None;
    for round in 0..2 {
        let mut conn = RawConn::connect_hello(&server);
        let first = login_reply_bytes(&mut conn, "alice", "wrong-password");
        let second = login_reply_bytes(&mut conn, "alice", "also-wrong");
        let expected = wrong_reply.get_or_insert_with(|| first.clone());
        assert_eq!(&first, expected, "round {round}: the failures differ");
        assert_eq!(
            &second, expected,
            "round {round}: the closing failure differs"
        );
        assert!(
            conn.expect_closed().is_empty(),
            "round {round}: more after the closing failure"
        );
    }
    let wrong_reply = wrong_reply.unwrap();
    let decoded: Response = ftp_shared::codec::decode_body(&wrong_reply[4..]).unwrap();
    assert!(
        matches!(decoded, Response::Error { code, .. } if code == ErrorCode::AUTH_FAILED),
        "{decoded:?}"
    );

    // Locked: the correct password fails exactly like a wrong one.
    let mut conn = RawConn::connect_hello(&server);
    let locked = login_reply_bytes(&mut conn, "alice", ALICE_PASSWORD);
    let last_failure = Instant::now();
    assert_eq!(
        locked, wrong_reply,
        "a locked login must be indistinguishable from a wrong password"
    );
    // Other users from the same address are not affected, even on the same
    // connection.
    conn.login("bob", BOB_PASSWORD)
        .expect("bob is not locked out");
    assert!(conn.is_alive());
    // The same user from another address is not affected.
    if let Some(mut other) = connect_from("127.0.0.2", &server) {
        assert!(matches!(hello_on(&mut other), Some(Response::Hello { .. })));
        login_on(&mut other, "alice", ALICE_PASSWORD).expect("alice from 127.0.0.2");
    }

    // The lock expires LOCKOUT after the last failure. A login attempt during
    // the lock counts as a failure itself (it may extend the lock), so this
    // waits for the known expiry instead of polling with logins.
    let expiry = last_failure + LOCKOUT + Duration::from_millis(100);
    let wait = expiry.saturating_duration_since(Instant::now());
    assert!(wait <= LOCKOUT + Duration::from_millis(100));
    std::thread::sleep(wait);
    let mut conn = RawConn::connect_hello(&server);
    conn.login("alice", ALICE_PASSWORD)
        .expect("alice logs in once the lockout has expired");
    assert!(conn.is_alive());

    // The success reset the count: one more failure does not lock again.
    let mut conn = RawConn::connect_hello(&server);
    assert_eq!(login_reply_bytes(&mut conn, "alice", "wrong"), wrong_reply);
    conn.login("alice", ALICE_PASSWORD)
        .expect("one failure after a success does not lock");
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------

#[test]
fn slow_handshakes_are_cut_while_a_normal_client_is_served() {
    const SLOW: usize = 20;
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let server = dir.start_args(&["--handshake-timeout", "1"]);
    let payload = random_bytes(77, 1024 * 1024 + 3);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("payload.bin", &payload, None), Response::Ok);
    drop(setup);

    let hello = frame_of(&Request::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    });
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut conn = RawConn::connect(&server);
        conn.send_raw(&hello[..1]).unwrap();
        slow.push(conn);
    }
    // A slowloris that keeps sending, one byte of a login at a time: the
    // deadline is for the whole handshake, not for each read.
    let mut dribbler = RawConn::connect_hello(&server);
    let auth = frame_of(&Request::AuthStart {
        client_first: ClientFirst::new("alice").message(),
    });
    let dribble = std::thread::spawn(move || {
        let start = Instant::now();
        for byte in auth.iter().cycle() {
            if dribbler.send_raw(&[*byte]).is_err() || start.elapsed() > Duration::from_secs(4) {
                break;
            }
            // Pacing of the attack, not a wait for readiness.
            std::thread::sleep(Duration::from_millis(50));
        }
        dribbler.expect_closed()
    });

    // Meanwhile a normal client logs in and downloads.
    let normal = Instant::now();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let got = conn.get("payload.bin").expect("download during the attack");
    let took = normal.elapsed();
    assert!(got == payload, "the download differs");
    assert!(
        took < Duration::from_secs(2),
        "login and download took {took:?}"
    );

    for (i, mut conn) in slow.into_iter().enumerate() {
        let replies = conn.expect_closed();
        // (BUSY: replaced by a newer connection from the same address.)
        assert!(
            matches!(
                replies.as_slice(),
                [] | [Response::Error {
                    code: ErrorCode::TIMEOUT | ErrorCode::BUSY,
                    ..
                }]
            ),
            "slow client {i}: {replies:?}"
        );
    }
    let cut_after = started.elapsed();
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(4),
        "the slow clients were closed after {cut_after:?}"
    );
    let replies = dribble.join().unwrap();
    assert!(
        matches!(
            replies.as_slice(),
            [] | [Response::Error {
                code: ErrorCode::TIMEOUT,
                ..
            }]
        ),
        "the dribbling client: {replies:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the dribbling client was not cut by the handshake deadline"
    );
    // The logged-in session is past its handshake: not cut.
    assert!(conn.is_alive());
    // And the slots of the cut connections are free again.
    let _ = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    server.assert_healthy();
}

#[test]
fn quota_refuses_uploads_past_it_before_storing_anything() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let server = dir.start_args(&["--quota-bytes", "1000000"]);
    let home = server.home("alice");
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(
        conn.put("a.bin", &random_bytes(1, 600_000), None),
        Response::Ok
    );

    // 600,000 + 500,000 bytes would pass the quota: refused, nothing stored.
    match conn.put("b.bin", &random_bytes(2, 500_000), None) {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::QUOTA_EXCEEDED, "{message}");
            assert!(
                message.contains("1000000") && message.contains("b.bin"),
                "{message}"
            );
        }
        other => panic!("an upload past the quota got {other:?}"),
    }
    assert!(!home.join("b.bin").exists());

    // Replacing a file with a smaller one frees the difference.
    let smaller = random_bytes(3, 300_000);
    assert_eq!(conn.put("a.bin", &smaller, None), Response::Ok);
    let b = random_bytes(4, 600_000);
    assert_eq!(conn.put("b.bin", &b, None), Response::Ok);
    assert_eq!(std::fs::read(home.join("a.bin")).unwrap(), smaller);
    assert_eq!(std::fs::read(home.join("b.bin")).unwrap(), b);
    // Now 900,000 bytes are used: 100,001 more do not fit, 100,000 do.
    match conn.put("c.bin", &random_bytes(5, 100_001), None) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::QUOTA_EXCEEDED),
        other => panic!("an upload past the quota got {other:?}"),
    }
    assert_eq!(
        conn.put("c.bin", &random_bytes(6, 100_000), None),
        Response::Ok
    );

    // Each user has a quota of their own.
    let mut bob = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    assert_eq!(
        bob.put("big.bin", &random_bytes(7, 900_000), None),
        Response::Ok
    );
    drop(bob);
    drop(conn);
    server.assert_healthy();
}

#[test]
fn stalled_transfers_are_cut_by_the_transfer_timeout() {
    use bytes::Bytes;
    use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm};
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let server = dir.start_args(&["--transfer-timeout", "1"]);
    let home = server.home("alice");

    // A peer that stops sending in the middle of an upload.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    conn.send_put("stalled.bin", 10 * CHUNK_SIZE as u64, 0);
    conn.send(&Request::Data(Bytes::from(random_bytes(1, CHUNK_SIZE))))
        .unwrap();
    let started = Instant::now();
    conn.expect_error_then_closed(ErrorCode::TIMEOUT, "a stalled upload");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "cut after {waited:?}"
    );
    assert!(!home.join("stalled.bin").exists());

    // A peer that stops reading in the middle of a download far larger than
    // the socket buffers.
    let big = random_bytes(2, 64 * 1024 * 1024);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("big.bin", &big, None), Response::Ok);
    drop(setup);
    let mut reader = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    reader
        .send(&Request::Get {
            path: "big.bin".into(),
            offset: 0,
            algorithm: DigestAlgorithm::Sha256,
        })
        .unwrap();
    tests::wait_until(Duration::from_secs(10), "the server to give up", || {
        server.stderr().contains("the peer stopped taking replies")
    });
    // What was already in flight can be read, then the connection ends short.
    let mut received = 0usize;
    while let Some(reply) = reader.recv() {
        if let Response::Data(d) = reply {
            received += d.len();
        }
    }
    assert!(received < big.len(), "the whole file arrived: {received}");
    server.assert_healthy();
}

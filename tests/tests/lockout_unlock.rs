//! The operator's view of lockouts: `ftp-server user list` shows the locks
//! in force (from where, how long, after how many failures), they survive a
//! restart, `ftp-server user unlock NAME` lifts them on a running server,
//! and the log says when a lock started and when it was lifted.

use std::path::Path;

use ftp_shared::{ErrorCode, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_USERS, POLL_DEADLINE, RawConn, ServerDir, TestServer,
    run_cmd, server_cmd, wait_until,
};

fn user_cmd(users: &Path, args: &[&str]) -> tests::Output {
    let mut cmd = server_cmd();
    cmd.arg("user").args(args).arg("--users").arg(users);
    run_cmd(cmd, None)
}

fn list(users: &Path) -> String {
    let out = user_cmd(users, &["list"]);
    out.assert_success();
    out.stdout
}

/// A login of `user`: Ok, or the error code it was refused with.
fn login(server: &TestServer, user: &str, password: &str) -> Result<(), ErrorCode> {
    let mut conn = RawConn::connect_hello(server);
    match conn.login(user, password) {
        Ok(()) => Ok(()),
        Err(Response::Error { code, .. }) => Err(code),
        Err(other) => panic!("a login got {other:?}"),
    }
}

/// Three wrong passwords for alice; then even the right one is refused.
#[track_caller]
fn lock_alice(server: &TestServer) {
    for _ in 0..3 {
        assert_eq!(login(server, "alice", "wrong"), Err(ErrorCode::AUTH_FAILED));
    }
    assert_eq!(
        login(server, "alice", ALICE_PASSWORD),
        Err(ErrorCode::AUTH_FAILED),
        "locked: the right password is refused"
    );
}

#[test]
fn locks_are_listed_survive_a_restart_and_unlock_lifts_them_at_once() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("[limits]\nlockout_failures = 3\nauth_failure_delay_ms = 0\n");
    let args = ["--config", config.to_str().unwrap()];
    let mut server = dir.start_args(&args);
    let users = server.users_path();

    lock_alice(&server);
    assert_eq!(
        login(&server, "bob", BOB_PASSWORD),
        Ok(()),
        "bob is not locked"
    );
    let started = server
        .stderr()
        .lines()
        .find(|l| l.contains("lockout started"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        started.contains("alice") && started.contains("127.0.0.1"),
        "the log names the user and the address: {started:?}"
    );

    // The server saves the lock within a second; the list shows it.
    wait_until(POLL_DEADLINE, "alice listed as locked", || {
        list(&users).contains("alice  (locked: from 127.0.0.1 for ")
    });
    let listed = list(&users);
    eprintln!("user list:\n{listed}");
    assert!(listed.contains("after 3 failures"), "{listed}");
    assert!(listed.lines().any(|l| l == "bob"), "{listed}");
    let lock_file = users.with_file_name("users.toml.locks");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&lock_file)
            .expect("the lock file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the lock file is owner-only");

    // A killed and restarted server keeps the lock.
    server.restart(&args);
    assert_eq!(
        login(&server, "alice", ALICE_PASSWORD),
        Err(ErrorCode::AUTH_FAILED),
        "still locked after a restart"
    );
    assert!(server.stderr().contains("locks restored"));

    // Unlocking a user that does not exist is an error and changes nothing.
    let before = std::fs::read(&users).unwrap();
    let nobody = user_cmd(&users, &["unlock", "nobody"]);
    assert_ne!(nobody.code(), 0);
    assert!(nobody.stderr.contains("no user \"nobody\""), "{nobody:?}");
    assert_eq!(std::fs::read(&users).unwrap(), before);

    let unlocked = user_cmd(&users, &["unlock", "alice"]);
    unlocked.assert_success();
    assert!(
        unlocked.stderr.contains("unlocked alice: from 127.0.0.1"),
        "{unlocked:?}"
    );
    assert!(list(&users).lines().any(|l| l == "alice"), "no lock listed");
    // The running server applies it at the next login: no restart.
    assert_eq!(login(&server, "alice", ALICE_PASSWORD), Ok(()));
    assert!(server.stderr().contains("lockout lifted"));

    // Failures after the unlock count again, and lock again.
    lock_alice(&server);
    let again = user_cmd(&users, &["unlock", "alice"]);
    again.assert_success();
    assert_eq!(login(&server, "alice", ALICE_PASSWORD), Ok(()));
    let quiet = user_cmd(&users, &["unlock", "bob"]);
    quiet.assert_success();
    assert!(quiet.stderr.contains("bob was not locked"), "{quiet:?}");
    server.outside_root_changed_by_test();
    server.assert_healthy();
}

#[test]
fn addresses_locked_for_made_up_names_are_listed_apart() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("[limits]\nlockout_failures = 2\nauth_failure_delay_ms = 0\n");
    let server = dir.start_args(&["--config", config.to_str().unwrap()]);
    for i in 0..3 {
        assert_eq!(
            login(&server, &format!("made-up-{i}"), "guess"),
            Err(ErrorCode::AUTH_FAILED)
        );
    }
    let users = server.users_path();
    wait_until(POLL_DEADLINE, "the address listed as locked", || {
        list(&users).contains("address 127.0.0.1 locked for names not in the users file")
    });
    let listed = list(&users);
    assert!(
        !listed.contains("made-up"),
        "made-up names are not listed: {listed}"
    );
    assert_eq!(login(&server, "alice", ALICE_PASSWORD), Ok(()));

    // A damaged lock file hides no user: the list warns and goes on.
    let lock_file = users.with_file_name("users.toml.locks");
    let saved = std::fs::read(&lock_file).unwrap();
    std::fs::write(&lock_file, "[[lock]\n").unwrap();
    let out = user_cmd(&users, &["list"]);
    out.assert_success();
    assert_eq!(out.stdout, "alice\nbob\n");
    assert!(out.stderr.contains("warning: the lock file"), "{out:?}");
    std::fs::write(&lock_file, saved).unwrap();
    server.assert_healthy();
}

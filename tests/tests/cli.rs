//! The command-line tools end to end: `ftp-server user ...`, `ftp-server serve`,
//! `ftp-client login|logout|put|get|mkdir`, exit codes and messages.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tests::{
    ALICE_PASSWORD, ClientEnv, DEFAULT_USERS, ITERATIONS, ServerDir, TestServer, run_cmd,
    server_cmd,
};

/// `ftp-server user ACTION NAME --users FILE [--password-stdin --iterations 4096]`.
fn user_cmd(
    users: &Path,
    action: &str,
    name: Option<&str>,
    password: Option<&str>,
) -> tests::Output {
    let mut cmd = server_cmd();
    cmd.arg("user").arg(action);
    if let Some(name) = name {
        cmd.arg(name);
    }
    cmd.arg("--users").arg(users);
    if password.is_some() {
        cmd.args(["--password-stdin", "--iterations", &ITERATIONS.to_string()]);
    }
    run_cmd(cmd, password.map(|p| format!("{p}\n")).as_deref())
}

#[test]
fn login_saves_keys_not_password_and_logout_forgets_them() {
    let dir = ServerDir::new();
    user_cmd(
        &dir.users_path(),
        "add",
        Some("alice"),
        Some(ALICE_PASSWORD),
    )
    .assert_success();
    let server = dir.start();
    let client = ClientEnv::new();
    let target = server.target("alice");

    let out = client.try_login(&target, ALICE_PASSWORD);
    out.assert_success();
    let creds = client.credentials_path();
    let meta = std::fs::metadata(&creds).expect("the credentials file exists after login");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "credentials file mode"
    );
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(
        !text.contains(ALICE_PASSWORD),
        "the credentials file holds the password"
    );
    assert!(
        text.contains(&target),
        "the login is saved for {target}: {text}"
    );

    // Later commands need no password: no stdin, no FTP_PASSWORD.
    let work = client.work();
    std::fs::write(work.join("hello.txt"), b"hello, world\n").unwrap();
    client.run(["mkdir", "docs"]).assert_success();
    client
        .run(["put", "hello.txt", "docs/hello.txt"])
        .assert_success();
    assert_eq!(
        std::fs::read(server.home("alice").join("docs/hello.txt")).unwrap(),
        b"hello, world\n"
    );
    client
        .run(["get", "docs/hello.txt", "back.txt"])
        .assert_success();
    assert_eq!(
        std::fs::read(work.join("back.txt")).unwrap(),
        b"hello, world\n"
    );

    client.run(["logout"]).assert_success();
    let left = std::fs::read_to_string(&creds).unwrap_or_default();
    assert!(
        !left.contains("client_key"),
        "keys left after logout: {left}"
    );
    let out = client.run(["put", "hello.txt", "again.txt"]);
    out.assert_code(4);
    assert!(
        out.stderr.starts_with("error: not logged in"),
        "unclear error after logout: {:?}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    assert!(!server.home("alice").join("again.txt").exists());
}

#[test]
fn server_flag_logs_in_with_env_password_or_stdin_without_saving() {
    let server = TestServer::start();
    let client = ClientEnv::new();
    let target = server.target("alice");
    std::fs::write(client.work().join("a.txt"), b"via FTP_PASSWORD").unwrap();

    let mut cmd = client.cmd(["--server", &target, "put", "a.txt", "a.txt"]);
    cmd.env("FTP_PASSWORD", ALICE_PASSWORD);
    run_cmd(cmd, None).assert_success();
    assert_eq!(
        std::fs::read(server.home("alice").join("a.txt")).unwrap(),
        b"via FTP_PASSWORD"
    );

    // `--server TARGET --password-stdin ARGS...`, alice's password on stdin.
    let with_password_stdin = |args: &[&str]| {
        let mut all = vec!["--server", &target, "--password-stdin"];
        all.extend_from_slice(args);
        client.run_stdin(all, &format!("{ALICE_PASSWORD}\n"))
    };
    with_password_stdin(&["get", "a.txt", "b.txt"]).assert_success();
    assert_eq!(
        std::fs::read(client.work().join("b.txt")).unwrap(),
        b"via FTP_PASSWORD"
    );
    with_password_stdin(&["mkdir", "-p", "x/y"]).assert_success();
    assert!(server.home("alice").join("x/y").is_dir());
    assert!(
        !client.credentials_path().exists(),
        "--server must not save a login"
    );

    // Without a password or a saved login, and no terminal: a clear failure.
    let out = client.run(["--server", &target, "get", "a.txt", "c.txt"]);
    out.assert_code(4);
    assert!(
        out.stderr.starts_with("error: no password"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn wrong_password_fails_with_authentication_failed() {
    let server = TestServer::start();
    let client = ClientEnv::new();
    let target = server.target("alice");

    let out = client.try_login(&target, "not-the-password");
    out.assert_code(4);
    assert_eq!(out.stderr, "error: authentication failed\n");
    assert!(
        !client.credentials_path().exists(),
        "a failed login saved keys"
    );

    std::fs::write(client.work().join("f"), b"x").unwrap();
    let mut cmd = client.cmd(["--server", &target, "put", "f", "f"]);
    cmd.env("FTP_PASSWORD", "wrong");
    let out = run_cmd(cmd, None);
    out.assert_code(4);
    assert_eq!(out.stderr, "error: authentication failed\n");

    // An unknown user reads exactly the same.
    let out = client.try_login(&server.target("mallory"), "whatever");
    out.assert_code(4);
    assert_eq!(out.stderr, "error: authentication failed\n");
    assert!(!server.home("alice").join("f").exists());
}

#[test]
fn usage_errors_exit_2() {
    let client = ClientEnv::new();
    assert_eq!(client.run(["put"]).code(), 2);
    assert_eq!(client.run(["frobnicate"]).code(), 2);
    assert_eq!(client.run(["login", "no-at-sign"]).code(), 2);
}

#[test]
fn first_start_creates_admin_with_the_printed_password() {
    let dir = ServerDir::new();
    let users = dir.users_path();
    assert!(!users.exists());
    let server = dir.start();
    let line = server
        .startup_output()
        .iter()
        .find(|l| l.starts_with("created "))
        .unwrap_or_else(|| panic!("no 'created' line: {:?}", server.startup_output()));
    let expected_prefix = format!("created {} with user 'admin', password: ", users.display());
    let password = line
        .strip_prefix(&expected_prefix)
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .trim();
    assert!(password.len() >= 16, "weak password {password:?}");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "users file mode");
    assert!(!std::fs::read_to_string(&users).unwrap().contains(password));

    let client = ClientEnv::new();
    client.login(&server.target("admin"), password);
    client.run(["mkdir", "made-by-admin"]).assert_success();
    assert!(server.home("admin").join("made-by-admin").is_dir());
    let out = client.try_login(&server.target("admin"), "wrong");
    out.assert_code(4);
}

#[test]
fn user_list_remove_and_passwd_apply_to_a_running_server() {
    let dir = ServerDir::new();
    for (name, password) in DEFAULT_USERS {
        user_cmd(&dir.users_path(), "add", Some(name), Some(password)).assert_success();
    }
    let out = user_cmd(&dir.users_path(), "add", Some("alice"), Some("again"));
    out.assert_code(1);
    let listed = user_cmd(&dir.users_path(), "list", None, None);
    listed.assert_success();
    assert_eq!(listed.stdout, "alice\nbob\n");

    let server = dir.start();
    let dir_users = server.users_path();
    let client = ClientEnv::new();
    let login = |user: &str, password: &str| client.try_login(&server.target(user), password);
    login("alice", ALICE_PASSWORD).assert_success();
    login("bob", tests::BOB_PASSWORD).assert_success();

    // passwd: the old password stops working, the new one works, no restart.
    user_cmd(
        &dir_users,
        "passwd",
        Some("alice"),
        Some("new-alice-password"),
    )
    .assert_success();
    let out = login("alice", ALICE_PASSWORD);
    out.assert_code(4);
    assert_eq!(out.stderr, "error: authentication failed\n");
    login("alice", "new-alice-password").assert_success();

    // The keys saved before the password change no longer work.
    user_cmd(
        &dir_users,
        "passwd",
        Some("alice"),
        Some("third-alice-password"),
    )
    .assert_success();
    let out = client.run(["mkdir", "-p", "stale"]);
    out.assert_code(4);
    assert!(out.stderr.starts_with("error: "), "{:?}", out.stderr);
    assert!(!server.home("alice").join("stale").exists());

    // remove: bob can no longer log in; his files stay.
    user_cmd(&dir_users, "remove", Some("bob"), None).assert_success();
    let out = login("bob", tests::BOB_PASSWORD);
    out.assert_code(4);
    assert_eq!(out.stderr, "error: authentication failed\n");
    let listed = user_cmd(&dir_users, "list", None, None);
    listed.assert_success();
    assert_eq!(listed.stdout, "alice\n");
    user_cmd(&dir_users, "remove", Some("bob"), None).assert_code(1);
}

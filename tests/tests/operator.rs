//! The operator's side: SIGHUP reloads (users, certificate, configuration)
//! in every mode, owner-only modes on disk, a start that cannot bind creates
//! nothing, `check-config` refuses bad or busy listen addresses, and the
//! systemd unit names options the binary accepts.

use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ftp_shared::Response;
use tests::{
    ALICE_PASSWORD, DEFAULT_USERS, ITERATIONS, POLL_DEADLINE, RawConn, ServerDir, TestServer,
    run_cmd, server_cmd, temp_dir, wait_child, wait_until, write_users_file,
};

fn sighup(server: &TestServer) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

fn user_add(users: &Path, name: &str, password: &str) {
    let mut cmd = server_cmd();
    cmd.args(["user", "add", name, "--users"]).arg(users).args([
        "--password-stdin",
        "--iterations",
        &ITERATIONS.to_string(),
    ]);
    run_cmd(cmd, Some(&format!("{password}\n"))).assert_success();
}

/// Waits for the `n`th log line containing `needle`; returns that line.
#[track_caller]
fn wait_log(server: &TestServer, needle: &str, n: usize) -> String {
    wait_until(POLL_DEADLINE, needle, || {
        server
            .stderr()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
            >= n
    });
    let log = server.stderr();
    log.lines()
        .filter(|l| l.contains(needle))
        .nth(n - 1)
        .unwrap_or_default()
        .to_owned()
}

/// The users file and the configuration live in another directory, reached
/// through symlinks, so the test can change them while the checks of
/// `assert_healthy` (nothing outside the root changed) still hold.
fn sighup_scenario(extra: &[&str]) {
    let state = temp_dir("ftp-ops-state-");
    let users = state.path().join("users.toml");
    let config = state.path().join("config.toml");
    write_users_file(&users, DEFAULT_USERS);
    std::fs::write(&config, "[limits]\nidle_timeout_secs = 300\n").unwrap();
    let dir = ServerDir::new();
    symlink(&users, dir.users_path()).unwrap();
    let config_link = dir.base().join("config.toml");
    symlink(&config, &config_link).unwrap();
    let mut args = vec!["--config", config_link.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut server = dir.start_args(&args);

    user_add(&users, "carol", "carol-pass-1234");
    std::fs::write(&config, "[limits]\nidle_timeout_secs = 60\n").unwrap();
    let started = Instant::now();
    sighup(&server);
    let line = wait_log(&server, "reload: users:", 1);
    eprintln!("SIGHUP to log line: {:?}", started.elapsed());
    assert!(
        server.is_running(),
        "died on SIGHUP; log:\n{}",
        server.stderr()
    );
    for needle in [
        "users: 3 users (1 added, 0 removed, 0 changed, 0 unlocked)",
        "limits.idle_timeout: 300s -> 60s (takes effect at the next start)",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
    assert_eq!(
        line.contains("certificate: unchanged"),
        server.fingerprint().is_some(),
        "{line}"
    );
    RawConn::connect_login(&server, "carol", "carol-pass-1234");

    // A broken configuration is refused; the server keeps serving.
    std::fs::write(&config, "[limits]\nidle_timeout_secs = \"soon\"\n").unwrap();
    sighup(&server);
    let line = wait_log(&server, "reload: users:", 2);
    assert!(
        line.contains("configuration: refused, running configuration kept"),
        "{line}"
    );
    assert!(
        server.stderr().contains("idle_timeout_secs"),
        "the error names the key; log:\n{}",
        server.stderr()
    );
    assert!(server.is_running());
    server.assert_healthy();
}

#[test]
fn sighup_reloads_users_and_configuration_with_tls() {
    sighup_scenario(&[]);
}

#[test]
fn sighup_reloads_users_and_configuration_in_plaintext() {
    sighup_scenario(&["--insecure-plaintext"]);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn upload_and_modes(server: &TestServer) -> (u32, u32) {
    let mut conn = RawConn::connect_login(server, "alice", ALICE_PASSWORD);
    assert_eq!(conn.put("m.txt", b"private", None), Response::Ok);
    let file = server.home("alice").join("m.txt");
    (mode(&server.home("alice")), mode(&file))
}

#[test]
fn homes_and_files_are_owner_only_by_default() {
    let server = TestServer::start();
    assert_eq!(upload_and_modes(&server), (0o700, 0o600));
    assert_eq!(mode(&server.root()), 0o700);
    assert_eq!(mode(&server.incoming()), 0o700);
    server.assert_healthy();
}

#[test]
fn configured_modes_are_applied() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let config = dir.write_config("home_mode = \"0750\"\nfile_mode = \"0640\"\n");
    let server = dir.start_args(&["--config", config.to_str().unwrap()]);
    assert_eq!(upload_and_modes(&server), (0o750, 0o640));
    server.assert_healthy();
}

#[test]
fn bad_modes_are_refused_by_serve_and_check_config() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    for (option, value, needle) in [
        ("--file-mode", "0666", "lets any local account write"),
        ("--file-mode", "0400", "lacks the owner's rw"),
        ("--home-mode", "0600", "lacks the owner's rwx"),
        ("--home-mode", "0899", "not a mode in octal"),
    ] {
        for command in ["serve", "check-config"] {
            let mut cmd = server_cmd();
            cmd.args([command, "--listen", "127.0.0.1:0", option, value, "--root"])
                .arg(dir.root())
                .arg("--users")
                .arg(dir.users_path());
            let out = run_cmd(cmd, None);
            assert_ne!(out.code(), 0, "{command} {option} {value}");
            assert!(
                out.stderr.contains(needle),
                "{command} {option} {value}: {}",
                out.stderr
            );
        }
    }
    assert!(!dir.root().exists(), "a refused start created the root");
}

/// `serve` on a port in use: an error naming the address, exit non-zero,
/// and nothing created (no users file, no certificate, no root).
#[test]
fn a_start_that_cannot_bind_creates_nothing() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let dir = temp_dir("ftp-ops-bind-");
    let mut child = server_cmd()
        .current_dir(dir.path())
        .args(["serve", "--listen", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, Duration::from_secs(10));
    let _ = child.kill();
    let status = status.expect("the server did not exit");
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

#[test]
fn check_config_refuses_bad_and_busy_listen_addresses() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().to_string();
    for (listen, needle) in [
        ("1.2.3.4.5:99", "1.2.3.4.5 is not an IPv4 address"),
        ("127.0.0.1:99999", "is not HOST:PORT"),
        (busy.as_str(), "cannot listen on"),
    ] {
        let mut cmd = server_cmd();
        cmd.args(["check-config", "--listen", listen, "--root"])
            .arg(dir.root())
            .arg("--users")
            .arg(dir.users_path());
        let out = run_cmd(cmd, None);
        assert_ne!(out.code(), 0, "{listen}");
        assert!(out.stderr.contains(needle), "{listen}: {}", out.stderr);
    }
}

/// The unit's `ExecStart=` runs a subcommand with options the binary
/// accepts: `check-config` with the same options (the state directory
/// mapped to a temp dir, the port to a free one) passes.
#[test]
fn the_systemd_unit_runs_options_the_binary_accepts() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/ftp-server.service"),
    )
    .unwrap();
    for key in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "StateDirectory=ftp-server",
        "ReadWritePaths=/var/lib/ftp-server",
    ] {
        assert!(unit.contains(key), "{key:?} missing from the unit");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let mut words = exec.split_whitespace();
    assert!(words.next().unwrap().ends_with("/ftp-server"));
    assert_eq!(words.next(), Some("serve"));
    let state = temp_dir("ftp-ops-unit-");
    write_users_file(&state.path().join("users.toml"), DEFAULT_USERS);
    let mut options: Vec<String> = Vec::new();
    for word in words {
        let word = if options.last().is_some_and(|o| o == "--listen") {
            "127.0.0.1:0".to_owned()
        } else {
            word.replace("/var/lib/ftp-server", state.path().to_str().unwrap())
        };
        options.push(word);
    }
    assert!(options.iter().any(|o| o == "--listen"), "{exec}");
    let mut cmd = server_cmd();
    cmd.arg("check-config").args(&options);
    let out = run_cmd(cmd, None);
    out.assert_success();
    assert!(
        out.stdout.contains("configuration is valid"),
        "{}",
        out.stdout
    );
}

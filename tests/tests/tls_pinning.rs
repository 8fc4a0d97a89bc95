//! Whose certificate the client trusts, and the server's certificate over
//! its life: pinning on first use (refused without `--accept-new-host`, a
//! changed certificate refused with both fingerprints, `forget-host`, a
//! wrong `--pin`), `--ca` (only that CA, for the host name), a reload by
//! SIGHUP with a session running (and a broken pair kept out) or by the
//! periodic look at the files,
//! `check-config` on good and bad pairs, and the self-signed certificate of
//! the first start.
//!
//! Scenarios that renew the certificate serve it from [`CertFiles`] (a
//! directory outside the server's), and renew it back to the first pair
//! before the end-of-scenario check, which pins the fingerprint the server
//! printed at its start.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ftp_shared::tls::Fingerprint;
use tests::tls::{CertFiles, fingerprint_of_pem, log_lines, reload, sighup, str_args, wait_log};
use tests::{
    ALICE_PASSWORD, ClientEnv, Output, RawConn, RawStream, ServerDir, TestCa, TestServer, run_cmd,
    self_signed_pair, server_cmd, temp_dir, wait_until,
};

/// A server with alice and bob serving `files`.
fn serve(files: &CertFiles) -> TestServer {
    ServerDir::with_users(tests::DEFAULT_USERS).start_args(&str_args(&files.args()))
}

/// `ftp-client ARGS --password-stdin` with alice's password on stdin.
fn with_password(client: &ClientEnv, args: &[&str]) -> Output {
    let mut args = args.to_vec();
    args.push("--password-stdin");
    client.run_stdin(args, &format!("{ALICE_PASSWORD}\n"))
}

/// The known_hosts file, which must exist with mode 0600.
#[track_caller]
fn known_hosts(client: &ClientEnv) -> String {
    let path = client.known_hosts_path();
    let mode = fs::metadata(&path)
        .expect("known_hosts")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of {}", path.display());
    fs::read_to_string(path).unwrap()
}

/// The fingerprints pinned for `host` in known_hosts.
fn pins_of(client: &ClientEnv, host: &str) -> Vec<Fingerprint> {
    known_hosts(client)
        .lines()
        .filter_map(|l| l.strip_prefix(host)?.strip_prefix(' '))
        .map(|fp| fp.parse().expect("a fingerprint in known_hosts"))
        .collect()
}

/// Trust on first use, with `ClientEnv::strict`: a first login without an
/// option fails with exit 5 showing the server's fingerprint and pins
/// nothing; `--accept-new-host` pins `127.0.0.1:PORT SHA256:...` (mode
/// 0600), and later commands need no option. After the server's certificate
/// is renewed (SIGHUP), the next command fails with exit 5 showing both
/// fingerprints and `forget-host`, even with `--accept-new-host`; after
/// `forget-host`, a wrong `--pin` fails with exit 5 and `--pin NEW` passes
/// and pins the new one.
#[test]
fn first_use_pins_and_a_changed_certificate_is_refused_until_forgotten() {
    let (cert_a, key_a) = self_signed_pair();
    let files = CertFiles::new(&cert_a, &key_a);
    let server = serve(&files);
    let old = server.fingerprint().expect("a TLS server");
    assert_eq!(old, fingerprint_of_pem(&cert_a));
    let client = ClientEnv::strict();
    let target = server.target("alice");
    let host = server.addr().to_string();

    let out = with_password(&client, &["login", &target]);
    out.assert_code(5);
    assert!(out.stderr.contains(&old.to_string()), "{}", out.stderr);
    assert!(out.stderr.contains("not pinned yet"), "{}", out.stderr);
    assert!(
        !client.known_hosts_path().exists(),
        "pinned without consent"
    );
    assert!(!client.credentials_path().exists());

    with_password(&client, &["--accept-new-host", "login", &target]).assert_success();
    assert_eq!(pins_of(&client, &host), [old]);
    assert!(
        known_hosts(&client).contains(&format!("{host} {old}\n")),
        "{}",
        known_hosts(&client)
    );
    client.run(["ls"]).assert_success();

    let (cert_b, key_b) = self_signed_pair();
    let new = reload(&server, &files, &cert_b, &key_b);
    let out = client.run(["ls"]);
    out.assert_code(5);
    for needle in [
        format!("THE CERTIFICATE OF {host} HAS CHANGED"),
        old.to_string(),
        new.to_string(),
        format!("ftp-client forget-host {host}"),
    ] {
        assert!(out.stderr.contains(&needle), "{needle:?} in {}", out.stderr);
    }
    assert_eq!(pins_of(&client, &host), [old], "the old pin stays");
    let out = client.run(["--accept-new-host", "ls"]);
    out.assert_code(5);
    assert!(out.stderr.contains("HAS CHANGED"), "{}", out.stderr);
    assert_eq!(
        pins_of(&client, &host),
        [old],
        "--accept-new-host replaces no pin"
    );

    client.run(["forget-host", &host]).assert_success();
    assert_eq!(pins_of(&client, &host), []);
    let out = client.run(["ls"]);
    out.assert_code(5);
    assert!(out.stderr.contains("not pinned yet"), "{}", out.stderr);
    let wrong = Fingerprint([0xAB; 32]).to_string();
    let out = client.run(["--pin", &wrong, "ls"]);
    out.assert_code(5);
    for needle in ["HAS CHANGED", "given with --pin", &wrong, &new.to_string()] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
    assert_eq!(pins_of(&client, &host), [], "a wrong --pin pins nothing");
    client
        .run(["--pin", &new.to_string(), "ls"])
        .assert_success();
    assert_eq!(pins_of(&client, &host), [new]);
    client.run(["ls"]).assert_success();

    reload(&server, &files, &cert_a, &key_a);
    server.assert_healthy();
}

/// `--ca`: a server whose certificate a test CA issued for `localhost` is
/// trusted for `alice@localhost:PORT` with `--ca ca.pem`, and nothing is
/// pinned (without `--ca` the same host is unknown: exit 5). The same CA's
/// certificate for `other.example`, and a self-signed server even when its
/// certificate is pinned, fail with exit 3 ("not trusted by the given CA").
#[test]
fn with_ca_only_that_ca_counts_for_the_host_name() {
    let ca = TestCa::new();
    let dir = temp_dir("ftp-ca-");
    let ca_path = dir.path().join("ca.pem");
    fs::write(&ca_path, ca.pem()).unwrap();
    let ca_arg = ca_path.display().to_string();
    let client = ClientEnv::strict();

    let (cert, key) = ca.issue(&["localhost"]);
    let good = serve(&CertFiles::new(&cert, &key));
    let target = format!("alice@localhost:{}", good.port());
    with_password(&client, &["login", &target]).assert_code(5);
    with_password(&client, &["--ca", &ca_arg, "login", &target]).assert_success();
    client.run(["--ca", &ca_arg, "ls"]).assert_success();
    assert!(!client.known_hosts_path().exists(), "--ca pins nothing");
    good.assert_healthy();

    let (cert, key) = ca.issue(&["other.example"]);
    let other = serve(&CertFiles::new(&cert, &key));
    let target = format!("alice@localhost:{}", other.port());
    let out = with_password(&client, &["--ca", &ca_arg, "login", &target]);
    out.assert_code(3);
    assert!(
        out.stderr.contains("not trusted by the given CA"),
        "{}",
        out.stderr
    );
    other.assert_healthy();

    let own = TestServer::start();
    let target = format!("alice@localhost:{}", own.port());
    let pin = own.fingerprint().unwrap().to_string();
    with_password(&client, &["--pin", &pin, "login", &target]).assert_success();
    let out = with_password(
        &client,
        &["--ca", &ca_arg, "--accept-new-host", "login", &target],
    );
    out.assert_code(3);
    assert!(
        out.stderr.contains("not trusted by the given CA"),
        "{}",
        out.stderr
    );
    own.assert_healthy();
}

/// Whether a fresh TLS connection trusting exactly `pin` completes its
/// handshake with `server`.
fn handshake_with(server: &TestServer, pin: Fingerprint) -> bool {
    let tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(tests::READ_TIMEOUT)).unwrap();
    !matches!(RawStream::tls(tcp, pin), RawStream::Failed(_))
}

/// A certificate renewed on SIGHUP while a library session is logged in:
/// new connections get the new certificate (the old fingerprint is refused,
/// the new one logs in), and the running session goes on. A broken pair
/// (the key of another certificate) is logged as `keeping the previous TLS
/// certificate`, and new connections still get the previous one.
#[test]
fn a_certificate_reload_serves_new_connections_and_keeps_sessions() {
    let (cert_a, key_a) = self_signed_pair();
    let files = CertFiles::new(&cert_a, &key_a);
    let server = serve(&files);
    let first = server.fingerprint().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut session = runtime.block_on(tests::login(&server, "alice", ALICE_PASSWORD));

    let (cert_b, key_b) = self_signed_pair();
    let second = reload(&server, &files, &cert_b, &key_b);
    assert!(
        !handshake_with(&server, first),
        "the old certificate is still served"
    );
    let mut conn = RawConn::connect_addr(server.addr(), Some(second));
    conn.hello();
    conn.login("alice", ALICE_PASSWORD)
        .expect("a login with the new certificate");
    runtime.block_on(tests::within("the running session", async {
        session.mkdir("after-reload", false).await.unwrap();
        let names: Vec<String> = session
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&"after-reload".to_string()), "{names:?}");
    }));
    assert!(server.home("alice").join("after-reload").is_dir());

    // A broken pair: the certificate of one pair, the key of another.
    let keeping = ["keeping the previous TLS certificate"];
    let before = log_lines(&server, &keeping);
    let (cert_c, _) = self_signed_pair();
    let (_, key_d) = self_signed_pair();
    files.replace(&cert_c, &key_d);
    sighup(&server);
    wait_log(&server, &keeping, before);
    assert!(
        handshake_with(&server, second),
        "the previous certificate is served"
    );
    assert!(!handshake_with(&server, fingerprint_of_pem(&cert_c)));
    assert!(conn.is_alive(), "a session of the new certificate goes on");
    runtime.block_on(tests::within("the running session", async {
        session.mkdir("after-broken", false).await.unwrap();
        session.quit().await.unwrap();
    }));

    reload(&server, &files, &cert_a, &key_a);
    server.assert_healthy();
}

/// Renews `files` with `cert` and `key` and, sending no signal, waits until
/// the server's periodic look at them has reloaded that certificate.
fn renew_unsignalled(server: &TestServer, files: &CertFiles, cert: &str, key: &str) {
    let shown = format!("fingerprint={}", fingerprint_of_pem(cert));
    let needles = ["TLS certificate reloaded", shown.as_str()];
    let before = log_lines(server, &needles);
    files.replace(cert, key);
    let deadline = ftp_server::tls::reload::POLL + tests::POLL_DEADLINE;
    wait_until(deadline, "the renewed files found by the poll", || {
        log_lines(server, &needles) > before
    });
}

/// Renewed certificate files are found without a signal, by the server's
/// periodic look at them (no SIGHUP is ever sent to this server): new
/// connections get the new certificate, and a renewal back is found too.
#[test]
fn renewed_files_are_found_without_a_signal() {
    let (cert_a, key_a) = self_signed_pair();
    let files = CertFiles::new(&cert_a, &key_a);
    let server = serve(&files);
    let (cert_b, key_b) = self_signed_pair();
    renew_unsignalled(&server, &files, &cert_b, &key_b);
    assert!(handshake_with(&server, fingerprint_of_pem(&cert_b)));
    assert!(!handshake_with(&server, server.fingerprint().unwrap()));
    renew_unsignalled(&server, &files, &cert_a, &key_a);
    server.assert_healthy();
}

/// `ftp-server check-config` for `root` and `users` with `extra` options.
fn check_config(root: &Path, users: &Path, extra: &[&str]) -> Output {
    let mut cmd = server_cmd();
    cmd.arg("check-config")
        .arg("--root")
        .arg(root)
        .arg("--users")
        .arg(users)
        .args(extra);
    run_cmd(cmd, None)
}

/// Asserts that `check-config` refused the pair with exit 1, naming `what`.
#[track_caller]
fn assert_refused(out: &Output, what: &[&str]) {
    out.assert_code(1);
    assert!(!out.stdout.contains("configuration is valid"), "{out:#?}");
    for needle in what {
        assert!(
            out.stderr.contains(needle),
            "{needle:?} in {:?}",
            out.stderr
        );
    }
}

/// `check-config` accepts the pair the server made at its first start and
/// prints its fingerprint; it refuses (exit 1, with a message naming the
/// problem) a key that does not match the certificate, a configured
/// certificate that is missing or is not a readable file, and certificates
/// that expired or are not valid yet.
#[test]
fn check_config_checks_the_certificate_and_its_key() {
    let server = TestServer::start();
    let (root, users) = (server.root(), server.users_path());
    let out = check_config(&root, &users, &[]);
    out.assert_success();
    let fp = server.fingerprint().unwrap().to_string();
    assert!(
        out.stdout.contains(&format!("fingerprint: {fp}")),
        "{out:#?}"
    );

    let dir = temp_dir("ftp-check-tls-");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (cert_a, key_a) = self_signed_pair();
    let (_, key_b) = self_signed_pair();
    fs::write(path("a.pem"), &cert_a).unwrap();
    fs::write(path("a.key"), &key_a).unwrap();
    fs::write(path("b.key"), &key_b).unwrap();
    fs::create_dir(path("dir.pem")).unwrap();
    let pair = |cert: &str, key: &str| {
        check_config(&root, &users, &["--tls-cert", cert, "--tls-key", key])
    };

    let out = pair(&path("a.pem"), &path("a.key"));
    out.assert_success();
    assert!(
        out.stdout
            .contains(&fingerprint_of_pem(&cert_a).to_string()),
        "{out:#?}"
    );
    assert_refused(
        &pair(&path("a.pem"), &path("b.key")),
        &["b.key", "cannot serve", "a.pem"],
    );
    assert_refused(
        &pair(&path("missing.pem"), &path("a.key")),
        &["missing.pem", "no such file"],
    );
    assert_refused(&pair(&path("dir.pem"), &path("a.key")), &["dir.pem"]);

    for (name, from, to, says) in [
        ("expired", (2000, 1, 1), (2001, 1, 1), "expired"),
        ("future", (2990, 1, 1), (2999, 1, 1), "not valid before"),
    ] {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (path(&format!("{name}.pem")), path(&format!("{name}.key")));
        fs::write(&cert_path, cert.pem()).unwrap();
        fs::write(&key_path, key.serialize_pem()).unwrap();
        assert_refused(&pair(&cert_path, &key_path), &[says, &cert_path]);
    }
    server.assert_healthy();
}

/// At its first start on a directory without TLS files the server creates
/// `tls-cert.pem` and `tls-key.pem` (mode 0600) beside the users file and
/// prints a fingerprint that is the SHA-256 of the certificate's DER; a
/// restart keeps that pair.
#[test]
fn the_first_start_creates_a_certificate_whose_fingerprint_it_prints() {
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let (cert_path, key_path) = (
        dir.base().join("tls-cert.pem"),
        dir.base().join("tls-key.pem"),
    );
    assert!(!cert_path.exists() && !key_path.exists());
    let mut server = dir.start();
    let mode = fs::metadata(&key_path)
        .expect("tls-key.pem")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of tls-key.pem");
    let computed = fingerprint_of_pem(&fs::read_to_string(&cert_path).expect("tls-cert.pem"));
    assert_eq!(server.fingerprint(), Some(computed));
    let startup = server.startup_output().join("\n");
    assert!(
        startup.contains("created a self-signed TLS certificate")
            && startup.contains(&format!("fingerprint: {computed}")),
        "{startup}"
    );

    server.restart(&[]);
    assert_eq!(server.fingerprint(), Some(computed), "the pair is kept");
    let startup = server.startup_output().join("\n");
    assert!(!startup.contains("created"), "{startup}");
    server.assert_healthy();
}

/// `--insecure-plaintext` with `--pin` or `--ca`, and `--ca` with `--pin`,
/// contradict each other: each pair is a usage error (exit 2, which the
/// exit-status table gives to bad options, as clap does for the server's
/// `--insecure-plaintext --tls-cert`), refused before anything is sent.
#[test]
fn contradictory_trust_options_are_a_usage_error() {
    let server = TestServer::start();
    let client = ClientEnv::new();
    let dir = temp_dir("ftp-ca-");
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, TestCa::new().pem()).unwrap();
    let ca = ca.display().to_string();
    let pin = server.fingerprint().unwrap().to_string();
    let target = server.target("alice");
    let pairs: [&[&str]; 3] = [
        &["--insecure-plaintext", "--pin", &pin],
        &["--insecure-plaintext", "--ca", &ca],
        &["--ca", &ca, "--pin", &pin],
    ];
    for options in pairs {
        let mut args = options.to_vec();
        args.extend(["login", &target]);
        let out = with_password(&client, &args);
        assert!(
            out.stderr.contains("cannot go with"),
            "{options:?}: {out:#?}"
        );
        assert_eq!(out.status.code(), Some(2), "{options:?}: {out:#?}");
    }
    assert!(!client.credentials_path().exists());
    assert!(!client.known_hosts_path().exists());
    server.assert_healthy();
}

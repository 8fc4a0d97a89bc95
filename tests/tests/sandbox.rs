//! Paths: each user stays in their home, through the real client and
//! server: paths with `..`, absolute paths, symlinks planted in the home that
//! point outside, another user's files, and every line of
//! `data/hostile-paths.txt` as a put target, a get source and a mkdir target.
//! Every scenario ends with [`tests::TestServer::assert_healthy`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ftp_client::{Client, ClientError};
use ftp_shared::ErrorCode;
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, BOB_SECRET, ClientEnv, DEFAULT_USERS, Entry, OUTSIDE_SECRET,
    ServerDir, TestServer, assert_reveals_nothing, login, no_progress, plant, snapshot,
};

const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server whose temp dir holds the planted tree ([`tests::plant`]):
/// `outside/secret.txt` (beside the root), bob's `secret.txt`, and in alice's
/// home ordinary files and the planted entries of the hostile-path list
/// (symlinks out of the home, a FIFO, a hard link to the outside secret).
fn planted_server() -> TestServer {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    plant(dir.base());
    dir.start()
}

/// Everything in the server's temp dir except alice's home and the temp area.
fn outside_alice(server: &TestServer) -> BTreeMap<PathBuf, Entry> {
    tests::outside_alice(server.base())
}

/// A one-line, clear error that shows no host path and no OS message.
#[track_caller]
fn assert_clean_cli_error(out: &tests::Output, base: &Path, what: &str) {
    assert_eq!(out.code(), 1, "{what}: {out:#?}");
    assert!(
        out.stderr.starts_with("error: "),
        "{what}: {:?}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{what}: {:?}", out.stderr);
    assert!(
        !out.stderr.contains(&*base.to_string_lossy()),
        "{what}: shows a host path: {:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("os error"), "{what}: {:?}", out.stderr);
}

#[test]
fn cli_refuses_traversal_and_escaping_symlinks() {
    let server = planted_server();
    let before = outside_alice(&server);
    let client = ClientEnv::new();
    client.login(&server.target("alice"), ALICE_PASSWORD);
    std::fs::write(client.work().join("payload"), b"PWNED").unwrap();
    let base = server.base().to_path_buf();

    let traversal = [
        "..",
        "../x",
        "/etc/passwd",
        "a/../../x",
        "../bob/secret.txt",
    ];
    let through_links = [
        "link_to_outside/secret.txt",
        "link_to_outside/new.txt",
        "link_to_outside_rel/new.txt",
        "link_to_bob/secret.txt",
        "link_to_bob/new.txt",
        "link_to_parent/bob/secret.txt",
        "link_to_etc/passwd",
    ];
    for path in traversal.iter().chain(&through_links) {
        let out = client.run(["put", "payload", path]);
        assert_clean_cli_error(&out, &base, &format!("put {path}"));
        assert!(
            out.stderr.starts_with("error: remote: "),
            "put {path}: {:?}",
            out.stderr
        );

        let out = client.run(["get", path, "downloaded"]);
        assert_clean_cli_error(&out, &base, &format!("get {path}"));
        assert!(
            !client.work().join("downloaded").exists(),
            "get {path} saved a file"
        );
        assert!(!client.work().join("downloaded.part").exists());

        for args in [vec!["mkdir", path], vec!["mkdir", "-p", path]] {
            let out = client.run(&args);
            assert_clean_cli_error(&out, &base, &args.join(" "));
        }
        let dir_inside = format!("{path}/d");
        let out = client.run(["mkdir", "-p", &dir_inside]);
        assert_clean_cli_error(&out, &base, &format!("mkdir -p {dir_inside}"));
    }
    // A path that tries to forge a second line or colour the terminal is shown escaped.
    for path in [
        "x\r\n226 fake reply",
        "\u{1b}[31mred\u{1b}[0m",
        "a\u{7}b/../../c",
    ] {
        let out = client.run(["mkdir", path]);
        assert_clean_cli_error(&out, &base, &format!("mkdir {path:?}"));
        assert!(
            !out.stderr.contains(['\r', '\u{1b}', '\u{7}']),
            "raw control characters reach the terminal: {:?}",
            out.stderr
        );
    }
    assert_eq!(
        before,
        outside_alice(&server),
        "something outside alice's home changed"
    );
    assert!(server.incoming_entries().is_empty());

    // Her own files are still served.
    client.run(["get", "sub/file.txt", "own"]).assert_success();
    assert_eq!(
        std::fs::read(client.work().join("own")).unwrap(),
        b"alice sub file"
    );
    server.assert_healthy();
}

/// The error code of a refused operation (panics on success).
#[track_caller]
fn refused_code<T: std::fmt::Debug>(what: &str, r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("{what} succeeded: {v:?}"),
        Err(e) => e
            .remote_code()
            .unwrap_or_else(|| panic!("{what}: not a remote refusal: {e}")),
    }
}

/// Putting `payload` to `path` and getting `path` into `dl` are both refused
/// with `code`.
async fn assert_put_get_refused(
    client: &mut Client,
    payload: &Path,
    dl: &Path,
    path: &str,
    code: ErrorCode,
) {
    let got = refused_code(
        path,
        client.put_file(payload, path, &mut no_progress()).await,
    );
    assert_eq!(got, code, "put {path}");
    let got = refused_code(path, client.get_file(path, dl, &mut no_progress()).await);
    assert_eq!(got, code, "get {path}");
}

#[tokio::test]
async fn library_gets_invalid_path_or_permission_denied() {
    let server = planted_server();
    let before = outside_alice(&server);
    let local = tempfile::tempdir().unwrap();
    let payload = local.path().join("payload");
    std::fs::write(&payload, b"PWNED").unwrap();
    let dl = local.path().join("dl");
    let mut alice = login(&server, "alice", ALICE_PASSWORD).await;

    for path in [
        "..",
        "../x",
        "/etc/passwd",
        "a/../../x",
        "../bob/secret.txt",
        "sub/../../x",
    ] {
        assert_put_get_refused(&mut alice, &payload, &dl, path, ErrorCode::INVALID_PATH).await;
        for parents in [false, true] {
            let code = refused_code(path, alice.mkdir(path, parents).await);
            assert_eq!(code, ErrorCode::INVALID_PATH, "mkdir {path}");
        }
    }
    for path in [
        "link_to_outside/secret.txt",
        "link_to_outside/new.txt",
        "link_to_outside_rel/secret.txt",
        "link_to_bob/secret.txt",
        "link_to_bob/new.txt",
        "link_to_parent/bob/secret.txt",
        "link_to_root_self/etc/passwd",
    ] {
        assert_put_get_refused(
            &mut alice,
            &payload,
            &dl,
            path,
            ErrorCode::PERMISSION_DENIED,
        )
        .await;
        let dir = format!("{path}.d");
        let code = refused_code(&dir, alice.mkdir(&dir, true).await);
        assert!(
            [ErrorCode::PERMISSION_DENIED, ErrorCode::NOT_A_DIRECTORY].contains(&code),
            "mkdir -p {dir}: {code:?}"
        );
    }
    for dir in [
        "link_to_outside/d",
        "link_to_bob/d",
        "link_to_outside_rel/d",
    ] {
        let code = refused_code(dir, alice.mkdir(dir, true).await);
        assert_eq!(code, ErrorCode::PERMISSION_DENIED, "mkdir -p {dir}");
        let code = refused_code(dir, alice.mkdir(dir, false).await);
        assert_eq!(code, ErrorCode::PERMISSION_DENIED, "mkdir {dir}");
    }
    assert!(!dl.exists());
    alice.quit().await.unwrap();
    assert_eq!(before, outside_alice(&server));
    assert!(server.incoming_entries().is_empty());
    server.assert_healthy();
}

#[tokio::test]
async fn alice_cannot_read_or_write_bobs_files() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let secret = local.path().join("secret");
    std::fs::write(&secret, BOB_SECRET).unwrap();
    let mut bob = login(&server, "bob", BOB_PASSWORD).await;
    bob.mkdir("private", false).await.unwrap();
    bob.put_file(&secret, "private/secret.txt", &mut no_progress())
        .await
        .unwrap();
    bob.quit().await.unwrap();
    let bob_before = snapshot(&server.home("bob"), &[]);

    let mut alice = login(&server, "alice", ALICE_PASSWORD).await;
    let dl = local.path().join("dl");
    let payload = local.path().join("payload");
    std::fs::write(&payload, b"PWNED").unwrap();
    for path in [
        "private/secret.txt",
        "bob/private/secret.txt",
        "../bob/private/secret.txt",
    ] {
        let r = alice.get_file(path, &dl, &mut no_progress()).await;
        assert!(r.is_err(), "alice read {path}");
        assert!(!dl.exists());
    }
    for path in [
        "../bob/private/secret.txt",
        "../bob/new.txt",
        "/bob/new.txt",
    ] {
        let code = refused_code(
            path,
            alice.put_file(&payload, path, &mut no_progress()).await,
        );
        assert_eq!(code, ErrorCode::INVALID_PATH, "put {path}");
    }
    // A "bob" directory in alice's home is just hers.
    alice.mkdir("bob/private", true).await.unwrap();
    alice
        .put_file(&payload, "bob/private/secret.txt", &mut no_progress())
        .await
        .unwrap();
    alice.quit().await.unwrap();
    assert_eq!(
        std::fs::read(server.home("alice").join("bob/private/secret.txt")).unwrap(),
        b"PWNED"
    );
    assert_eq!(
        bob_before,
        snapshot(&server.home("bob"), &[]),
        "bob's home changed"
    );

    // And bob still reads his own file.
    let mut bob = login(&server, "bob", BOB_PASSWORD).await;
    bob.get_file("private/secret.txt", &dl, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dl).unwrap(), BOB_SECRET);
    bob.quit().await.unwrap();
    server.assert_healthy();
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Put,
    Get,
    Mkdir,
    MkdirParents,
}

/// Every valid-UTF-8 hostile path as a put target, a get source and a mkdir
/// target (with and without parents), through the client library. Anything
/// may be refused or act inside alice's home; nothing else may change, no
/// secret may come back, no temp may stay, and no message may show a host
/// path or an OS error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_through_client_and_server() {
    let server = planted_server();
    let base = server.base().to_string_lossy().into_owned();
    let before = outside_alice(&server);
    let passwd = std::fs::read("/etc/passwd").ok();
    let local = tempfile::tempdir().unwrap();
    let payload = local.path().join("payload");
    std::fs::write(&payload, b"PWNED").unwrap();
    let dl = local.path().join("dl");
    let paths = tests::hostile_paths();
    let mut client: Option<Client> = None;
    let (mut refused, mut accepted, mut reconnects) = (0, 0, 0);

    for op in [Op::Put, Op::Get, Op::Mkdir, Op::MkdirParents] {
        for (label, path) in &paths {
            let session = match client.as_mut() {
                Some(c) => c,
                None => client.insert(login(&server, "alice", ALICE_PASSWORD).await),
            };
            let _ = std::fs::remove_file(&dl);
            let work = async {
                match op {
                    Op::Put => session
                        .put_file(&payload, path, &mut no_progress())
                        .await
                        .map(|_| ()),
                    Op::Get => session
                        .get_file(path, &dl, &mut no_progress())
                        .await
                        .map(|_| ()),
                    Op::Mkdir => session.mkdir(path, false).await,
                    Op::MkdirParents => session.mkdir(path, true).await,
                }
            };
            let result = tokio::time::timeout(OP_TIMEOUT, work)
                .await
                .unwrap_or_else(|_| panic!("{op:?} {label:?} hung"));
            match result {
                Ok(()) => {
                    accepted += 1;
                    if let Op::Get = op {
                        let data = std::fs::read(&dl).unwrap();
                        assert_reveals_nothing(&data, passwd.as_deref(), &format!("get {label:?}"));
                    }
                }
                Err(e) => {
                    refused += 1;
                    let shown = e.to_string();
                    assert!(
                        !shown.contains(&base),
                        "{op:?} {label:?}: the error shows a host path: {shown}"
                    );
                    assert!(
                        !shown.contains("os error"),
                        "{op:?} {label:?}: the error shows an OS message: {shown}"
                    );
                    if e.remote_code().is_none() {
                        // Not a refusal: the session may be gone; start a new one.
                        assert!(
                            matches!(e, ClientError::Connection(_) | ClientError::Protocol(_)),
                            "{op:?} {label:?}: {e:?}"
                        );
                        reconnects += 1;
                        client = None;
                    }
                }
            }
            assert!(
                !local.path().join("dl.part").exists(),
                "{label:?}: .part left"
            );
        }
    }
    if let Some(c) = client {
        c.quit().await.unwrap();
    }
    eprintln!(
        "{} paths x 4 operations: {refused} refused, {accepted} acted inside the home, {reconnects} reconnects",
        paths.len()
    );
    assert!(
        refused > paths.len() * 2,
        "suspiciously few refusals: {refused}"
    );
    assert_eq!(
        before,
        outside_alice(&server),
        "something outside alice's home changed"
    );
    assert_eq!(
        passwd,
        std::fs::read("/etc/passwd").ok(),
        "/etc/passwd changed"
    );
    server.wait_incoming_empty();
    assert_eq!(
        std::fs::read(server.base().join("outside/secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
    // The vectors that name a `.part` file may have made one in alice's home
    // (the test asked for it: it is not a temp shown to a user).
    let mut health = server.health();
    for (_, path) in paths.iter().filter(|(_, p)| p.ends_with(".part")) {
        health = health.allow_part(Path::new("alice").join(path));
    }
    health.assert();
}

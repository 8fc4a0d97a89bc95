//! Paths: each user stays in their home, through the real client and
//! server: paths with `..`, absolute paths, symlinks planted in the home that
//! point outside, another user's files, and every line of
//! `data/hostile-paths.txt` as a put target, a get source, a mkdir target, a
//! path to list, describe, remove or rmdir, and either side of a rename.
//! Every scenario ends with [`tests::TestServer::assert_healthy`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ftp_client::{Client, ClientError};
use ftp_shared::message::EntryKind;
use ftp_shared::{ErrorCode, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, BOB_SECRET, ClientEnv, DEFAULT_USERS, Entry, OUTSIDE_SECRET,
    RawConn, ServerDir, TestServer, assert_reveals_nothing, login, no_progress, plant, snapshot,
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

    let traversal = ["..", "../x", "a/../../x", "../bob/secret.txt"];
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
        // Refused by the server, or (`..` above the home) by the client
        // before anything is sent.
        assert!(
            out.stderr.starts_with("error: remote: ")
                || out.stderr.ends_with(": leads outside the home directory\n"),
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

    // A leading '/' is the home, never the host's root.
    client.run(["mkdir", "-p", "/etc"]).assert_success();
    client
        .run(["put", "payload", "/etc/passwd"])
        .assert_success();
    assert_eq!(
        std::fs::read(server.home("alice").join("etc/passwd")).unwrap(),
        b"PWNED"
    );
    client.run(["rm", "/etc/passwd"]).assert_success();
    client.run(["rmdir", "/etc"]).assert_success();
    assert_eq!(before, outside_alice(&server));

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

/// Paths through the planted entries, beside the lines of the vector file
/// (`empty` is an empty directory made beside them).
const PLANTED: &[&str] = &[
    "link_to_etc",
    "link_to_etc/passwd",
    "link_to_outside",
    "link_to_outside/",
    "link_to_outside/secret.txt",
    "link_to_outside/new.txt",
    "link_to_outside_rel",
    "link_to_outside_rel/secret.txt",
    "link_to_parent",
    "link_to_parent/bob",
    "link_to_parent/bob/secret.txt",
    "link_to_parent/outside/secret.txt",
    "link_to_root_self",
    "link_to_root_self/etc/passwd",
    "link_to_root_self/tmp",
    "link_to_bob",
    "link_to_bob/",
    "link_to_bob/secret.txt",
    "loop_link",
    "loop_link/x",
    "proc_link",
    "proc_link/root/etc/passwd",
    "proc_link/cwd",
    "hardlink.txt",
    "fifo",
    "fifo/x",
    "ok.txt",
    "sub",
    "sub/file.txt",
    "empty",
];

#[derive(Clone, Copy, Debug)]
enum NsOp {
    List,
    Stat,
    Remove,
    Rmdir,
    /// The path renamed to a fresh name.
    RenameFrom,
    /// A fresh file renamed to the path.
    RenameTo,
}

/// Every name in `dir` and below (symlinks not followed): the only names a
/// listing of alice's may show.
fn names_below(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        names.insert(entry.file_name().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            names.extend(names_below(&entry.path()));
        }
    }
    names
}

/// A refusal that keeps the session, with a message that shows no host path
/// and no OS error.
#[track_caller]
fn assert_clean_refusal(reply: &Response, base: &str, what: &str) {
    match reply {
        Response::Error { code, message } => {
            assert!(
                !message.contains(base),
                "{what}: the error shows a host path: {message}"
            );
            assert!(
                !message.contains("os error"),
                "{what}: the error shows an OS message: {message}"
            );
            assert!(
                ![
                    ErrorCode::BAD_REQUEST,
                    ErrorCode::INTERNAL,
                    ErrorCode::TIMEOUT
                ]
                .contains(code),
                "{what}: {code:?} {message}"
            );
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Performs `op` on `path` (case number `i`) by hand; true when it acted
/// (inside the home, as the checks here make sure).
fn perform_ns(conn: &mut RawConn, server: &TestServer, op: NsOp, path: &str, i: usize) -> bool {
    let home = server.home("alice");
    let base = server.base().to_string_lossy().into_owned();
    let what = format!("{op:?} {path:?}");
    let refused = |reply: Response| {
        assert_clean_refusal(&reply, &base, &what);
        false
    };
    match op {
        NsOp::List => {
            let known = names_below(&home);
            match conn.list(path) {
                Ok((entries, _)) => {
                    for entry in &entries {
                        assert!(
                            known.contains(&entry.name),
                            "{what}: listed {:?}, which is not in alice's home",
                            entry.name
                        );
                    }
                    let shown: Vec<u8> = entries
                        .iter()
                        .flat_map(|e| e.name.bytes().chain([b'\n']))
                        .collect();
                    assert_reveals_nothing(&shown, None, &what);
                    true
                }
                Err(reply) => refused(reply),
            }
        }
        NsOp::Stat => match conn.stat(path) {
            Ok(entry) => {
                // What was described is alice's: resolved by the host, the
                // path stays in her home.
                // (One trailing '/' is dropped: "f/" is "f", section 8.1.)
                let resolved =
                    std::fs::canonicalize(home.join(path.strip_suffix('/').unwrap_or(path)))
                        .unwrap_or_else(|e| panic!("{what}: described {entry:?}, but: {e}"));
                let inside = std::fs::canonicalize(&home).unwrap();
                assert!(
                    resolved.starts_with(&inside),
                    "{what}: described {} outside the home",
                    resolved.display()
                );
                true
            }
            Err(reply) => refused(reply),
        },
        NsOp::Remove => conn.remove(path).map_or_else(refused, |()| true),
        NsOp::Rmdir => conn.rmdir(path).map_or_else(refused, |()| true),
        NsOp::RenameFrom => conn
            .rename(path, &format!("renamed-{i}"))
            .map_or_else(refused, |()| true),
        NsOp::RenameTo => {
            let victim = format!("victim-{i}");
            std::fs::write(home.join(&victim), b"PWNED").unwrap();
            conn.rename(&victim, path).map_or_else(refused, |()| true)
        }
    }
}

/// Every valid-UTF-8 hostile path and every path through a planted entry as
/// the path of `List`, `Stat`, `Remove`, `Rmdir` and either side of
/// `Rename`, sent as is (no client in between to tidy it up), each phase on
/// a freshly planted server. Anything may be refused or act inside alice's
/// home; nothing else may change, no listing may show a name from outside
/// it, no described entry may lie outside it, and no message may show a host
/// path or an OS error.
#[test]
fn hostile_paths_as_list_stat_remove_rmdir_and_rename() {
    let mut paths: Vec<String> = tests::hostile_paths().into_iter().map(|(_, p)| p).collect();
    paths.extend(PLANTED.iter().map(|p| p.to_string()));
    let passwd = std::fs::read("/etc/passwd").ok();
    for op in [
        NsOp::List,
        NsOp::Stat,
        NsOp::Remove,
        NsOp::Rmdir,
        NsOp::RenameFrom,
        NsOp::RenameTo,
    ] {
        let server = planted_server();
        std::fs::create_dir(server.home("alice").join("empty")).unwrap();
        let before = outside_alice(&server);
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        let (mut acted, mut refused) = (0, 0);
        for (i, path) in paths.iter().enumerate() {
            let started = Instant::now();
            if perform_ns(&mut conn, &server, op, path, i) {
                acted += 1;
            } else {
                refused += 1;
            }
            assert!(
                started.elapsed() < OP_TIMEOUT,
                "{op:?} {path:?} took {:?}",
                started.elapsed()
            );
        }
        assert!(conn.is_alive(), "{op:?}: the session ended");
        eprintln!(
            "{op:?}: {} paths: {refused} refused, {acted} acted inside the home",
            paths.len()
        );
        assert!(refused > paths.len() / 2, "{op:?}: few refusals: {refused}");
        assert_eq!(
            before,
            outside_alice(&server),
            "{op:?}: something outside alice's home changed"
        );
        assert_eq!(
            std::fs::read(server.base().join("outside/secret.txt")).unwrap(),
            OUTSIDE_SECRET
        );
        assert_eq!(
            passwd,
            std::fs::read("/etc/passwd").ok(),
            "/etc/passwd changed"
        );
        drop(conn);
        // Renaming to a vector that names a `.part` file made one (the test
        // asked for it: it is not a temp shown to a user).
        let mut health = server.health();
        for path in paths.iter().filter(|p| p.ends_with(".part")) {
            health = health.allow_part(Path::new("alice").join(path));
        }
        health.assert();
    }
}

/// The code of a refusal (panics on anything else).
#[track_caller]
fn code_of<T: std::fmt::Debug>(what: &str, r: Result<T, Response>) -> ErrorCode {
    match r {
        Err(Response::Error { code, .. }) => code,
        other => panic!("{what}: {other:?}"),
    }
}

/// The planted symlinks out of the home are listed and removed as the links
/// they are, never followed: their targets are not listed, described,
/// removed or renamed.
#[test]
fn planted_symlinks_are_handled_as_links_and_never_followed_out() {
    let server = planted_server();
    let before = outside_alice(&server);
    let bob_before = snapshot(&server.home("bob"), &[]);
    let home = server.home("alice");
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let escaping = [
        "link_to_etc",
        "link_to_outside",
        "link_to_outside_rel",
        "link_to_parent",
        "link_to_root_self",
        "link_to_bob",
        "loop_link",
        "proc_link",
    ];
    for link in escaping {
        for path in [link.to_string(), format!("{link}/")] {
            let (entries, batches) = conn.list(&path).unwrap();
            assert_eq!(batches, [1], "list {path}");
            assert_eq!(entries[0].name, link, "list {path}");
            assert_eq!(entries[0].kind, EntryKind::Symlink, "list {path}");
            let target = std::fs::read_link(home.join(link)).unwrap();
            assert_eq!(entries[0].size, target.as_os_str().len() as u64);
        }

        assert_eq!(
            code_of(link, conn.stat(link)),
            ErrorCode::PERMISSION_DENIED,
            "stat {link}"
        );
        assert_eq!(
            code_of(link, conn.rmdir(link)),
            ErrorCode::NOT_A_DIRECTORY,
            "rmdir {link}"
        );
    }
    for path in [
        "link_to_outside/secret.txt",
        "link_to_outside_rel/secret.txt",
        "link_to_bob/secret.txt",
        "link_to_parent/bob/secret.txt",
        "link_to_root_self/etc/passwd",
    ] {
        for (what, reply) in [
            ("list", conn.list(path).map(|_| ())),
            ("stat", conn.stat(path).map(|_| ())),
            ("rm", conn.remove(path)),
            ("mv from", conn.rename(path, "stolen")),
            ("mv to", conn.rename("ok.txt", path)),
        ] {
            match reply {
                Err(Response::Error { code, .. }) => {
                    assert_eq!(code, ErrorCode::PERMISSION_DENIED, "{what} {path}")
                }
                other => panic!("{what} {path}: {other:?}"),
            }
        }
    }
    assert!(!home.join("stolen").exists());
    assert!(home.join("ok.txt").exists());

    // Renamed and removed as links; the targets stay.
    conn.rename("link_to_bob", "bobs").unwrap();
    assert!(home.join("bobs").symlink_metadata().unwrap().is_symlink());
    conn.rename("ok.txt", "link_to_outside").unwrap();
    assert_eq!(
        std::fs::read(home.join("link_to_outside")).unwrap(),
        b"alice ok"
    );
    for link in [
        "bobs",
        "link_to_etc",
        "link_to_outside_rel",
        "link_to_parent",
        "link_to_root_self",
        "loop_link",
        "proc_link",
        "hardlink.txt",
        "fifo",
    ] {
        conn.remove(link)
            .unwrap_or_else(|r| panic!("rm {link}: {r:?}"));
    }
    let (left, _) = conn.list("").unwrap();
    let left: Vec<&str> = left.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(left, ["link_to_outside", "sub"]);
    assert_eq!(before, outside_alice(&server), "something outside changed");
    assert_eq!(
        bob_before,
        snapshot(&server.home("bob"), &[]),
        "bob's home changed"
    );
    assert_eq!(
        std::fs::read(server.base().join("outside/secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
    drop(conn);
    server.assert_healthy();
}

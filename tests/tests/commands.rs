//! Listing, describing, removing, removing directories and renaming, through
//! the real server: `List`, `Stat`, `Remove`, `Rmdir` and `Rename` with the
//! library client and by hand ([`RawConn`]). Every scenario ends with
//! [`TestServer::assert_healthy`].

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use bytes::Bytes;
use ftp_client::ClientError;
use ftp_shared::message::{CHUNK_SIZE, Entry, EntryKind};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, DEFAULT_USERS, OUTSIDE_SECRET, POLL_DEADLINE, RawConn, ServerDir,
    TestServer, login, random_bytes, wait_until,
};

/// A server, and alice logged in by hand (her home exists once this returns).
fn alice_raw() -> (TestServer, RawConn) {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert!(conn.is_alive());
    (server, conn)
}

/// The code and message of an `Error` reply (panics on anything else).
#[track_caller]
fn error_of(what: &str, reply: Response) -> (ErrorCode, String) {
    match reply {
        Response::Error { code, message } => (code, message),
        other => panic!("{what}: expected an error, got {other:?}"),
    }
}

/// Asserts that `result` is a refusal with `code` whose message ends with
/// `shown` (the client's path, as the messages give it).
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, Response>,
    code: ErrorCode,
    shown: &str,
) {
    let reply = match result {
        Ok(v) => panic!("{what}: succeeded with {v:?}"),
        Err(reply) => reply,
    };
    let (got, message) = error_of(what, reply);
    assert_eq!(got, code, "{what}: {message}");
    assert!(
        message.ends_with(&format!(": {shown}")),
        "{what}: message {message:?} does not name {shown:?}"
    );
    assert!(!message.contains("os error"), "{what}: {message}");
    assert!(!message.contains("/tmp"), "{what}: {message}");
}

/// The names of a listing, sorted (listings come in directory order).
fn names(entries: &[Entry]) -> Vec<&str> {
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names
}

/// The entry that a listing gives for a file or directory on disk.
fn expected(name: &str, path: &Path) -> Entry {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Directory
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    Entry {
        name: name.into(),
        kind,
        size: meta.len(),
        modified: meta.mtime(),
        mode: meta.mode() & 0o7777,
    }
}

#[test]
fn list_describes_the_home_a_directory_a_file_and_refuses_a_missing_path() {
    let (server, mut conn) = alice_raw();
    let home = server.home("alice");
    assert_eq!(conn.list(""), Ok((vec![], vec![0])), "an empty home");

    assert_eq!(conn.put("up.txt", b"uploaded", None), Response::Ok);
    std::fs::create_dir_all(home.join("docs/deeper")).unwrap();
    std::fs::write(home.join("docs/a.txt"), b"12345").unwrap();
    std::fs::set_permissions(home.join("docs/a.txt"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::set_permissions(home.join("docs/deeper"), PermissionsExt::from_mode(0o750)).unwrap();
    std::fs::write(home.join("报告.txt"), "季度".as_bytes()).unwrap();
    symlink("docs/a.txt", home.join("link")).unwrap();
    // An old time, before 1970 even: modified is signed.
    let old = std::process::Command::new("touch")
        .args(["-h", "-d", "1969-07-20 20:17:40 UTC"])
        .arg(home.join("link"))
        .status()
        .unwrap();
    assert!(old.success());

    let (entries, batches) = conn.list("").unwrap();
    assert_eq!(batches, [4]);
    assert_eq!(names(&entries), ["docs", "link", "up.txt", "报告.txt"]);
    for entry in &entries {
        assert_eq!(*entry, expected(&entry.name, &home.join(&entry.name)));
    }
    let link = &entries[1];
    assert_eq!(
        (link.kind, link.size, link.modified),
        (EntryKind::Symlink, "docs/a.txt".len() as u64, -14_182_940)
    );
    assert_eq!(entries[2].size, 8);

    let (docs, _) = conn.list("docs").unwrap();
    assert_eq!(
        docs,
        [
            expected("a.txt", &home.join("docs/a.txt")),
            expected("deeper", &home.join("docs/deeper")),
        ]
    );
    assert_eq!((docs[0].mode, docs[0].size), (0o640, 5));
    assert_eq!((docs[1].kind, docs[1].mode), (EntryKind::Directory, 0o750));
    assert_eq!(conn.list("docs/").unwrap().0, docs, "a trailing '/'");
    assert_eq!(conn.list("docs/deeper").unwrap(), (vec![], vec![0]));

    // A file, and a symlink to one: the one entry of the thing itself.
    assert_eq!(
        conn.list("docs/a.txt").unwrap(),
        (vec![expected("a.txt", &home.join("docs/a.txt"))], vec![1])
    );
    assert_eq!(conn.list("link").unwrap().0, std::slice::from_ref(link));

    assert_refused(
        "list missing",
        conn.list("missing"),
        ErrorCode::NOT_FOUND,
        "missing",
    );
    assert_refused(
        "list docs/missing/x",
        conn.list("docs/missing/x"),
        ErrorCode::NOT_FOUND,
        "docs/missing/x",
    );
    assert_refused(
        "list through a file",
        conn.list("up.txt/x"),
        ErrorCode::NOT_A_DIRECTORY,
        "up.txt/x",
    );
    assert_refused("list ..", conn.list(".."), ErrorCode::INVALID_PATH, "..");
    assert_refused("list /", conn.list("/"), ErrorCode::INVALID_PATH, "/");
    drop(conn);
    server.assert_healthy();
}

#[test]
fn a_listing_of_2500_entries_arrives_whole_in_three_batches() {
    let (server, mut conn) = alice_raw();
    let dir = server.home("alice").join("many");
    std::fs::create_dir(&dir).unwrap();
    let mut want: Vec<String> = (0..2500).map(|i| format!("file-{i:05}.bin")).collect();
    for (i, name) in want.iter().enumerate() {
        std::fs::write(dir.join(name), vec![b'x'; i % 7]).unwrap();
    }
    want.sort();

    let (entries, batches) = conn.list("many").unwrap();
    assert_eq!(batches, [1024, 1024, 452]);
    assert_eq!(names(&entries), want);
    for entry in &entries {
        let i: usize = entry.name[5..10].parse().unwrap();
        assert_eq!((entry.kind, entry.size), (EntryKind::File, (i % 7) as u64));
    }
    // Exactly 1024: one full batch and nothing more.
    for name in &want[1024..] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    assert_eq!(conn.list("many").unwrap().1, [1024]);
    // The connection is in step: the next request gets its own reply.
    assert!(conn.is_alive());
    drop(conn);
    server.assert_healthy();
}

#[tokio::test]
async fn the_library_client_reads_every_batch() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    client.mkdir("many", false).await.unwrap();
    let dir = server.home("alice").join("many");
    for i in 0..2100 {
        std::fs::write(dir.join(format!("{i}")), b"").unwrap();
    }
    let entries = client.list("many").await.unwrap();
    assert_eq!(entries.len(), 2100);
    assert!(entries.iter().all(|e| e.kind == EntryKind::File));
    let home = client.list("").await.unwrap();
    assert_eq!(names(&home), ["many"]);
    // The session goes on after a multi-frame reply.
    client.mkdir("after", false).await.unwrap();
    client.quit().await.unwrap();
    server.assert_healthy();
}

#[test]
fn an_upload_in_progress_is_not_listed() {
    let (server, mut lister) = alice_raw();
    let mut uploader = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let data = random_bytes(9, 3 * CHUNK_SIZE);
    uploader.send_put("coming.bin", data.len() as u64, 0);
    uploader
        .send(&Request::Data(Bytes::copy_from_slice(&data[..CHUNK_SIZE])))
        .unwrap();
    // The server is writing it: its temp exists, outside the home.
    wait_until(POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    let (entries, _) = lister.list("").unwrap();
    assert!(
        entries.is_empty(),
        "an upload in progress is listed: {entries:?}"
    );
    assert_refused(
        "stat of an upload in progress",
        lister.stat("coming.bin"),
        ErrorCode::NOT_FOUND,
        "coming.bin",
    );

    for chunk in data[CHUNK_SIZE..].chunks(CHUNK_SIZE) {
        uploader
            .send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .unwrap();
    }
    let digest = {
        let mut h = ftp_shared::message::Hasher::new(ftp_shared::message::DigestAlgorithm::Sha256);
        h.update(&data);
        h.finish()
    };
    uploader.send(&Request::PutEnd { digest }).unwrap();
    assert_eq!(uploader.expect_reply(), Response::Ok);
    let (entries, _) = lister.list("").unwrap();
    assert_eq!(
        entries,
        [expected(
            "coming.bin",
            &server.home("alice").join("coming.bin")
        )]
    );
    assert_eq!(entries[0].size, data.len() as u64);
    drop((lister, uploader));
    server.assert_healthy();
}

#[test]
fn a_list_after_pipelined_uploads_sees_them_published() {
    let (server, mut conn) = alice_raw();
    let mut frames = Vec::new();
    for i in 0..20 {
        let data = format!("file {i}").into_bytes();
        let mut h = ftp_shared::message::Hasher::new(ftp_shared::message::DigestAlgorithm::Blake3);
        h.update(&data);
        for request in [
            Request::Put {
                path: format!("p{i:02}"),
                size: data.len() as u64,
                offset: 0,
                algorithm: ftp_shared::message::DigestAlgorithm::Blake3,
            },
            Request::Data(Bytes::from(data)),
            Request::PutEnd { digest: h.finish() },
        ] {
            frames.extend(tests::frame_of(&request));
        }
    }
    frames.extend(tests::frame_of(&Request::List {
        path: String::new(),
    }));
    conn.send_raw(&frames).unwrap();
    for i in 0..20 {
        assert_eq!(conn.expect_reply(), Response::Ok, "upload {i}");
    }
    match conn.expect_reply() {
        Response::Entries { entries, more } => {
            assert!(!more);
            let want: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
            assert_eq!(names(&entries), want);
        }
        other => panic!("expected the listing, got {other:?}"),
    }
    drop(conn);
    server.assert_healthy();
}

#[test]
fn stat_describes_files_directories_the_home_and_in_home_symlinks_only() {
    let (server, mut conn) = alice_raw();
    let home = server.home("alice");
    std::fs::create_dir(home.join("d")).unwrap();
    std::fs::write(home.join("d/f.txt"), b"abc").unwrap();
    symlink("d/f.txt", home.join("to_f")).unwrap();
    symlink("d", home.join("to_d")).unwrap();
    symlink(server.base().join("outside"), home.join("out_dir")).unwrap();
    symlink("../../outside/secret.txt", home.join("out_file")).unwrap();
    symlink("nowhere", home.join("broken")).unwrap();

    let root = conn.stat("").unwrap();
    assert_eq!(root, expected("", &home));
    assert_eq!(root.kind, EntryKind::Directory);
    assert_eq!(
        conn.stat("d/f.txt").unwrap(),
        expected("f.txt", &home.join("d/f.txt"))
    );
    assert_eq!(conn.stat("d").unwrap(), expected("d", &home.join("d")));
    assert_eq!(conn.stat("d/").unwrap().name, "d");
    // In-home symlinks are followed; the name stays the one asked for.
    assert_eq!(
        conn.stat("to_f").unwrap(),
        expected("to_f", &home.join("d/f.txt"))
    );
    assert_eq!(
        conn.stat("to_d").unwrap(),
        expected("to_d", &home.join("d"))
    );
    assert_eq!(conn.stat("to_d/f.txt").unwrap().size, 3);

    for link in ["out_dir", "out_file", "out_dir/secret.txt"] {
        assert_refused(
            &format!("stat {link}"),
            conn.stat(link),
            ErrorCode::PERMISSION_DENIED,
            link,
        );
    }
    assert_refused(
        "stat broken",
        conn.stat("broken"),
        ErrorCode::NOT_FOUND,
        "broken",
    );
    assert_refused(
        "stat missing",
        conn.stat("missing"),
        ErrorCode::NOT_FOUND,
        "missing",
    );
    assert_refused(
        "stat a/../b",
        conn.stat("a/../b"),
        ErrorCode::INVALID_PATH,
        "a/../b",
    );
    drop(conn);
    server.assert_healthy();
}

#[test]
fn remove_deletes_files_and_symlinks_never_directories_or_targets() {
    let (server, mut conn) = alice_raw();
    let home = server.home("alice");
    assert_eq!(conn.put("f.txt", b"bye", None), Response::Ok);
    std::fs::create_dir(home.join("dir")).unwrap();
    std::fs::write(home.join("dir/inner"), b"kept").unwrap();
    symlink(server.base().join("outside/secret.txt"), home.join("out")).unwrap();
    symlink(server.base().join("outside"), home.join("out_dir")).unwrap();
    symlink("dir", home.join("to_dir")).unwrap();

    conn.remove("f.txt").unwrap();
    assert!(!home.join("f.txt").exists());
    assert_refused(
        "rm again",
        conn.remove("f.txt"),
        ErrorCode::NOT_FOUND,
        "f.txt",
    );
    assert_refused(
        "rm dir",
        conn.remove("dir"),
        ErrorCode::IS_A_DIRECTORY,
        "dir",
    );
    assert_refused(
        "rm dir/",
        conn.remove("dir/"),
        ErrorCode::IS_A_DIRECTORY,
        "dir/",
    );
    assert!(home.join("dir/inner").exists());
    assert_refused(
        "rm missing/x",
        conn.remove("missing/x"),
        ErrorCode::NOT_FOUND,
        "missing/x",
    );
    assert_refused(
        "rm of the home",
        conn.remove(""),
        ErrorCode::INVALID_PATH,
        "",
    );
    assert_refused(
        "rm through an escaping link",
        conn.remove("out_dir/secret.txt"),
        ErrorCode::PERMISSION_DENIED,
        "out_dir/secret.txt",
    );

    // Links go; what they point to stays.
    for link in ["out", "out_dir", "to_dir"] {
        conn.remove(link).unwrap();
        assert!(
            home.join(link).symlink_metadata().is_err(),
            "{link} is still there"
        );
    }
    assert_eq!(
        std::fs::read(server.base().join("outside/secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
    assert_eq!(std::fs::read(home.join("dir/inner")).unwrap(), b"kept");
    assert_eq!(names(&conn.list("").unwrap().0), ["dir"]);
    drop(conn);
    server.assert_healthy();
}

#[test]
fn rmdir_removes_empty_directories_only() {
    let (server, mut conn) = alice_raw();
    let home = server.home("alice");
    std::fs::create_dir_all(home.join("full/sub")).unwrap();
    std::fs::create_dir(home.join("empty")).unwrap();
    std::fs::write(home.join("file"), b"x").unwrap();
    symlink("empty", home.join("to_empty")).unwrap();

    conn.rmdir("empty/").unwrap();
    assert!(!home.join("empty").exists());
    assert_refused(
        "rmdir full",
        conn.rmdir("full"),
        ErrorCode::DIRECTORY_NOT_EMPTY,
        "full",
    );
    let (_, message) = error_of("rmdir full", conn.rmdir("full").unwrap_err());
    assert_eq!(message, "directory not empty: full");
    assert_refused(
        "rmdir file",
        conn.rmdir("file"),
        ErrorCode::NOT_A_DIRECTORY,
        "file",
    );
    assert_refused(
        "rmdir of a symlink",
        conn.rmdir("to_empty"),
        ErrorCode::NOT_A_DIRECTORY,
        "to_empty",
    );
    assert_refused(
        "rmdir missing",
        conn.rmdir("missing"),
        ErrorCode::NOT_FOUND,
        "missing",
    );
    assert_refused(
        "rmdir of the home",
        conn.rmdir(""),
        ErrorCode::INVALID_PATH,
        "",
    );
    conn.rmdir("full/sub").unwrap();
    conn.rmdir("full").unwrap();
    assert!(home.join("file").exists());
    assert_eq!(names(&conn.list("").unwrap().0), ["file", "to_empty"]);
    drop(conn);
    server.assert_healthy();
}

#[test]
fn rename_moves_and_replaces_in_one_step_and_refuses_the_impossible() {
    let (server, mut conn) = alice_raw();
    let home = server.home("alice");
    let read = |p: &str| std::fs::read(home.join(p)).unwrap();
    assert_eq!(conn.put("a.txt", b"A", None), Response::Ok);
    assert_eq!(conn.put("b.txt", b"B", None), Response::Ok);
    conn.request_ok(&Request::Mkdir {
        path: "d/sub".into(),
        parents: true,
    })
    .unwrap();
    std::fs::write(home.join("d/sub/deep.txt"), b"deep").unwrap();
    std::fs::create_dir_all(home.join("full/x")).unwrap();
    std::fs::create_dir(home.join("empty")).unwrap();

    // A new name, in another directory.
    conn.rename("a.txt", "d/moved.txt").unwrap();
    assert_eq!(read("d/moved.txt"), b"A");
    assert!(!home.join("a.txt").exists());
    // Over an existing file: replaced.
    conn.rename("d/moved.txt", "b.txt").unwrap();
    assert_eq!(read("b.txt"), b"A");
    assert!(!home.join("d/moved.txt").exists());
    // Onto itself: nothing happens.
    conn.rename("b.txt", "b.txt").unwrap();
    assert_eq!(read("b.txt"), b"A");
    // A directory over an empty one.
    conn.rename("d", "empty").unwrap();
    assert_eq!(read("empty/sub/deep.txt"), b"deep");

    let (code, message) = error_of(
        "mv into itself",
        conn.rename("empty", "empty/sub/inside").unwrap_err(),
    );
    assert_eq!(code, ErrorCode::INVALID_PATH);
    assert_eq!(
        message,
        "cannot move a directory inside itself: empty -> empty/sub/inside"
    );
    assert_refused(
        "mv into a missing parent",
        conn.rename("b.txt", "nowhere/b.txt"),
        ErrorCode::NOT_FOUND,
        "b.txt -> nowhere/b.txt",
    );
    assert_refused(
        "mv of a missing file",
        conn.rename("gone", "x"),
        ErrorCode::NOT_FOUND,
        "gone -> x",
    );
    assert_refused(
        "mv over a full directory",
        conn.rename("empty", "full"),
        ErrorCode::DIRECTORY_NOT_EMPTY,
        "empty -> full",
    );
    assert_refused(
        "mv a file over a directory",
        conn.rename("b.txt", "full"),
        ErrorCode::IS_A_DIRECTORY,
        "b.txt -> full",
    );
    assert_refused(
        "mv a directory over a file",
        conn.rename("full", "b.txt"),
        ErrorCode::NOT_A_DIRECTORY,
        "full -> b.txt",
    );
    assert_refused(
        "mv of the home",
        conn.rename("", "x"),
        ErrorCode::INVALID_PATH,
        "",
    );
    assert_refused(
        "mv over the home",
        conn.rename("b.txt", ""),
        ErrorCode::INVALID_PATH,
        "",
    );
    assert_refused(
        "mv out of the home",
        conn.rename("b.txt", "../b.txt"),
        ErrorCode::INVALID_PATH,
        "../b.txt",
    );
    assert_eq!(read("b.txt"), b"A");
    assert_eq!(names(&conn.list("").unwrap().0), ["b.txt", "empty", "full"]);
    drop(conn);
    server.assert_healthy();
}

#[test]
fn a_replaced_file_is_never_missing_and_a_download_in_flight_keeps_the_old_content() {
    let (server, mut conn) = alice_raw();
    let old = random_bytes(1, 4 * CHUNK_SIZE);
    assert_eq!(conn.put("target.bin", &old, None), Response::Ok);

    // A download of the old version, started before it is replaced.
    let mut reader = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    reader
        .send(&Request::Get {
            path: "target.bin".into(),
            offset: 0,
            algorithm: ftp_shared::message::DigestAlgorithm::Sha256,
        })
        .unwrap();
    assert_eq!(
        reader.expect_reply(),
        Response::FileStart {
            size: old.len() as u64
        }
    );

    // Meanwhile another session describes the target over and over.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(Barrier::new(2));
    let mut watcher = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let watching = {
        let (stop, started) = (stop.clone(), started.clone());
        std::thread::spawn(move || {
            started.wait();
            let mut seen = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let entry = watcher
                    .stat("target.bin")
                    .unwrap_or_else(|r| panic!("the target went missing: {r:?}"));
                assert_eq!(entry.kind, EntryKind::File);
                seen += 1;
            }
            seen
        })
    };
    started.wait();
    for i in 0..100u8 {
        assert_eq!(conn.put("next.bin", &[i; 10], None), Response::Ok);
        conn.rename("next.bin", "target.bin").unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(watching.join().expect("the watcher") > 0);
    assert_eq!(
        std::fs::read(server.home("alice").join("target.bin")).unwrap(),
        [99u8; 10]
    );

    let mut got = Vec::new();
    loop {
        match reader.expect_reply() {
            Response::Data(d) => got.extend_from_slice(&d),
            Response::FileEnd { .. } => break,
            other => panic!("the download in flight got {other:?}"),
        }
    }
    assert!(got == old, "the download in flight changed");
    drop((conn, reader));
    server.assert_healthy();
}

#[test]
fn removing_files_frees_the_quota() {
    let server = ServerDir::with_users(DEFAULT_USERS).start_args(&["--quota-bytes", "1000000"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(
        conn.put("a.bin", &random_bytes(1, 700_000), None),
        Response::Ok
    );
    assert_eq!(
        conn.put("b.bin", &random_bytes(2, 300_000), None),
        Response::Ok
    );
    // At the quota: not one more byte.
    let (code, _) = error_of("full", conn.put("c.bin", b"x", None));
    assert_eq!(code, ErrorCode::QUOTA_EXCEEDED);

    conn.remove("a.bin").unwrap();
    let c = random_bytes(3, 700_000);
    assert_eq!(conn.put("c.bin", &c, None), Response::Ok);
    let (code, _) = error_of("full again", conn.put("d.bin", b"x", None));
    assert_eq!(code, ErrorCode::QUOTA_EXCEEDED);

    // Replacing a file by a rename frees its bytes too.
    conn.rename("b.bin", "c.bin").unwrap();
    assert_eq!(
        conn.put("d.bin", &random_bytes(4, 700_000), None),
        Response::Ok
    );
    // Another session of the same user sees the freed bytes as well.
    let mut other = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    other.remove("d.bin").unwrap();
    assert_eq!(
        conn.put("e.bin", &random_bytes(5, 700_000), None),
        Response::Ok
    );
    // Bob's quota is his own.
    let mut bob = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    assert_eq!(
        bob.put("big.bin", &random_bytes(6, 1_000_000), None),
        Response::Ok
    );
    drop((conn, other, bob));
    server.assert_healthy();
}

#[test]
fn the_new_requests_need_a_login() {
    let server = TestServer::start();
    for request in [
        Request::List {
            path: String::new(),
        },
        Request::Stat { path: "x".into() },
        Request::Remove { path: "x".into() },
        Request::Rmdir { path: "x".into() },
        Request::Rename {
            from: "x".into(),
            to: "y".into(),
        },
    ] {
        let mut conn = RawConn::connect_hello(&server);
        conn.send(&request).unwrap();
        conn.expect_error_then_closed(ErrorCode::NOT_LOGGED_IN, &format!("{request:?}"));
    }
    server.assert_healthy();
}

/// The library client, end to end: what it sends and what it makes of the
/// replies, errors included.
#[tokio::test]
async fn library_client_lists_stats_removes_and_renames() {
    let server = TestServer::start();
    let home = server.home("alice");
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    client.mkdir("dir/sub", true).await.unwrap();
    std::fs::write(home.join("dir/f.txt"), b"hello").unwrap();

    let listed = client.list("dir").await.unwrap();
    assert_eq!(
        listed,
        [
            expected("f.txt", &home.join("dir/f.txt")),
            expected("sub", &home.join("dir/sub")),
        ]
    );
    assert_eq!(
        client.stat("dir/f.txt").await.unwrap(),
        expected("f.txt", &home.join("dir/f.txt"))
    );
    assert_eq!(client.stat("").await.unwrap().name, "");
    client.rename("dir/f.txt", "g.txt").await.unwrap();
    assert_eq!(std::fs::read(home.join("g.txt")).unwrap(), b"hello");

    let code = |r: Result<(), ClientError>| r.expect_err("refused").remote_code();
    assert_eq!(
        code(client.rmdir("dir").await),
        Some(ErrorCode::DIRECTORY_NOT_EMPTY)
    );
    assert_eq!(
        code(client.remove("dir").await),
        Some(ErrorCode::IS_A_DIRECTORY)
    );
    assert_eq!(
        code(client.remove("nope").await),
        Some(ErrorCode::NOT_FOUND)
    );
    client.rmdir("dir/sub").await.unwrap();
    client.rmdir("dir").await.unwrap();
    client.remove("g.txt").await.unwrap();
    assert!(client.list("").await.unwrap().is_empty());
    let err = client.list("nope").await.expect_err("missing");
    assert_eq!(err.remote_code(), Some(ErrorCode::NOT_FOUND));
    client.quit().await.unwrap();
    server.assert_healthy();
}

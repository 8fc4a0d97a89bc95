//! Many files in one session: `ftp-client put A B C DIR/` and `get R1 R2 DIR`,
//! the library's `put_files`/`get_files` with a refused item in the middle,
//! uploads pipelined by hand (group commit, replies in order, early
//! refusals), and both digest algorithms.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ftp_client::{ClientError, GetItem, PutItem};
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher};
use ftp_shared::{Digest, ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, RawConn, TestServer, XorShift, alice, files_equal, login, random_bytes, within,
};

/// The digest of `data` with `algorithm`.
fn digest_of(algorithm: DigestAlgorithm, data: &[u8]) -> Digest {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}

/// Sends a whole upload (`Put`, `Data`..., `PutEnd` with `digest`, the true
/// one of `algorithm` when `None`) without reading any reply.
fn send_put(
    conn: &mut RawConn,
    path: &str,
    data: &[u8],
    algorithm: DigestAlgorithm,
    digest: Option<Digest>,
) {
    conn.send(&Request::Put {
        path: path.into(),
        size: data.len() as u64,
        offset: 0,
        algorithm,
    })
    .expect("send Put");
    for chunk in data.chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .expect("send Data");
    }
    let digest = digest.unwrap_or_else(|| digest_of(algorithm, data));
    conn.send(&Request::PutEnd { digest }).expect("send PutEnd");
}

/// The code of an error reply; panics on anything else.
#[track_caller]
fn error_code(reply: Response, what: &str) -> ErrorCode {
    match reply {
        Response::Error { code, .. } => code,
        other => panic!("{what}: expected an error, got {other:?}"),
    }
}

/// The names in a local directory.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Writes `count` random files `NAME_PREFIX{i:03}` of 0..=`max` bytes into
/// `dir` (the first one empty); returns their names.
fn write_small_files(dir: &Path, prefix: &str, count: usize, max: u64, seed: u64) -> Vec<String> {
    let mut rng = XorShift::new(seed);
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i:03}");
            let len = if i == 0 {
                0
            } else {
                rng.next_u64() % (max + 1)
            };
            let data = random_bytes(rng.next_u64(), len as usize);
            std::fs::write(dir.join(&name), data).unwrap();
            name
        })
        .collect()
}

#[test]
fn cli_three_hundred_small_files_round_trip_into_a_directory() {
    let (server, client) = alice();
    let work = client.work();
    std::fs::create_dir(work.join("src")).unwrap();
    let names = write_small_files(&work.join("src"), "f", 300, 4096, 0x300);
    assert_eq!(std::fs::metadata(work.join("src/f000")).unwrap().len(), 0);

    client.run(["mkdir", "dir"]).assert_success();
    let mut put = vec!["--quiet".to_string(), "put".to_string()];
    put.extend(names.iter().map(|n| format!("src/{n}")));
    put.push("dir/".into());
    let out = client.run(&put);
    out.assert_success();
    assert_eq!(out.stderr, "");
    let home = server.home("alice");
    for name in &names {
        assert!(
            files_equal(&work.join("src").join(name), &home.join("dir").join(name)),
            "dir/{name} differs after the upload"
        );
    }
    assert_eq!(names_in(&home.join("dir")).len(), 300);
    server.wait_incoming_empty();

    std::fs::create_dir(work.join("back")).unwrap();
    let mut get = vec!["--quiet".to_string(), "get".to_string()];
    get.extend(names.iter().map(|n| format!("dir/{n}")));
    get.push("back".into());
    let out = client.run(&get);
    out.assert_success();
    assert_eq!(out.stderr, "");
    for name in &names {
        assert!(
            files_equal(&work.join("src").join(name), &work.join("back").join(name)),
            "back/{name} differs after the download"
        );
    }
    // Nothing but the files: no `.part` left behind.
    assert_eq!(
        names_in(&work.join("back")),
        names.iter().cloned().collect::<BTreeSet<_>>()
    );
}

#[test]
fn cli_failed_files_are_reported_one_line_each_and_the_others_succeed() {
    let (server, client) = alice();
    let work = client.work();
    let home = server.home("alice");
    for (name, seed) in [("a", 1), ("c", 3), ("e", 5)] {
        std::fs::write(work.join(name), random_bytes(seed, 3000)).unwrap();
    }
    // `dir/sub` is a remote directory: uploading a file named `sub` into
    // `dir/` is refused by the server.
    std::fs::write(work.join("sub"), b"not a directory").unwrap();
    client.run(["mkdir", "-p", "dir/sub"]).assert_success();

    let out = client.run(["put", "a", "missing", "c", "sub", "e", "dir/"]);
    out.assert_code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per failure: {:?}", out.stderr);
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("missing")),
        "the missing local file is named: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("remote: is a directory") && l.contains("dir/sub")),
        "the remote refusal is reported: {lines:?}"
    );
    for name in ["a", "c", "e"] {
        assert!(files_equal(&work.join(name), &home.join("dir").join(name)));
    }
    assert!(!home.join("dir/missing").exists());
    assert!(home.join("dir/sub").is_dir());
    server.wait_incoming_empty();

    std::fs::create_dir(work.join("back")).unwrap();
    let out = client.run(["get", "dir/a", "dir/nothing", "dir/c", "dir/e", "back"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: remote: not found: dir/nothing\n");
    for name in ["a", "c", "e"] {
        assert!(files_equal(&work.join(name), &work.join("back").join(name)));
    }
    assert_eq!(
        names_in(&work.join("back")),
        BTreeSet::from(["a", "c", "e"].map(String::from))
    );
}

#[test]
fn cli_several_files_need_a_directory_as_last_argument() {
    let (server, client) = alice();
    let work = client.work();
    for name in ["a", "b", "c"] {
        std::fs::write(work.join(name), name).unwrap();
    }
    client.run(["put", "a", "b", "c"]).assert_code(2);
    client.run(["put", "a", "b", "dir"]).assert_code(2);
    assert!(!server.home("alice").join("a").exists());
    assert!(!server.home("alice").join("b").exists());

    client.run(["put", "a", "b"]).assert_success(); // LOCAL REMOTE: `b` is the remote name
    assert_eq!(std::fs::read(server.home("alice").join("b")).unwrap(), b"a");
    client.run(["get", "b", "c", "nowhere"]).assert_code(2);
    client.run(["get", "b", "b", "c"]).assert_code(2); // `c` is a file
    assert!(!work.join("nowhere").exists());
    assert_eq!(std::fs::read(work.join("c")).unwrap(), b"c");
}

/// 50 local files `f000..f049` of up to 100 KiB (some above the server's
/// in-memory limit of 64 KiB) in `dir`; returns the items putting them to
/// `f000.bin..f049.bin`.
fn fifty_items(dir: &Path) -> Vec<PutItem> {
    let names = write_small_files(dir, "f", 50, 100 * 1024, 0x50);
    names
        .into_iter()
        .map(|n| PutItem {
            local: dir.join(&n),
            remote: format!("{n}.bin"),
        })
        .collect()
}

#[tokio::test]
async fn put_files_refused_items_do_not_affect_the_others() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let mut items = fifty_items(local.path());
    // Index 3: a large file whose parent is missing, refused as soon as the
    // server sees its `Put`.
    let big = local.path().join("big");
    tests::write_random_file(&big, 0xb16, 3 * 1024 * 1024);
    items[3] = PutItem {
        local: big,
        remote: "gone/big.bin".into(),
    };
    items[20].remote = "a/../b".into();
    items[30].remote = "nodir/x.bin".into();
    items[40].local = local.path().join("no-such-file");

    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let results = within(
        "put_files",
        client.put_files(&items, false, &mut |_, _, _| {}),
    )
    .await
    .expect("the session survives refused items");
    assert_eq!(results.len(), 50);
    let home = server.home("alice");
    for (i, (item, result)) in items.iter().zip(&results).enumerate() {
        match i {
            3 | 30 => assert_eq!(
                result.as_ref().err().and_then(ClientError::remote_code),
                Some(ErrorCode::NOT_FOUND),
                "item {i}: {result:?}"
            ),
            20 => assert_eq!(
                result.as_ref().err().and_then(ClientError::remote_code),
                Some(ErrorCode::INVALID_PATH),
                "item {i}: {result:?}"
            ),
            40 => assert!(
                matches!(result, Err(ClientError::Local { .. })),
                "item {i}: {result:?}"
            ),
            _ => {
                let size = std::fs::metadata(&item.local).unwrap().len();
                assert_eq!(result.as_ref().ok(), Some(&size), "item {i}");
                assert!(
                    files_equal(&item.local, &home.join(&item.remote)),
                    "item {i} differs"
                );
            }
        }
    }
    for absent in ["gone", "nodir", "b", "a", "f040.bin"] {
        assert!(!home.join(absent).exists(), "{absent} exists");
    }
    server.wait_incoming_empty();

    // The session goes on.
    within("mkdir", client.mkdir("gone", false)).await.unwrap();
    let again = [items[3].clone()];
    let results = within(
        "put_files",
        client.put_files(&again, false, &mut |_, _, _| {}),
    )
    .await
    .unwrap();
    assert_eq!(results[0].as_ref().ok(), Some(&(3 * 1024 * 1024)));
    assert!(files_equal(&items[3].local, &home.join("gone/big.bin")));
    let back = local.path().join("back.bin");
    within(
        "get_file",
        client.get_file("f007.bin", &back, &mut |_, _| {}),
    )
    .await
    .unwrap();
    assert!(files_equal(&items[7].local, &back));
    within("quit", client.quit()).await.unwrap();
}

#[tokio::test]
async fn get_files_refused_items_do_not_affect_the_others() {
    let server = TestServer::start();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let home = server.home("alice");
    let names = write_small_files(src.path(), "g", 50, 100 * 1024, 0x6e7);
    std::fs::create_dir(home.join("d")).unwrap();
    for name in &names {
        std::fs::copy(src.path().join(name), home.join("d").join(name)).unwrap();
    }
    let mut items: Vec<GetItem> = names
        .iter()
        .map(|n| GetItem {
            remote: format!("d/{n}"),
            local: dst.path().join(n),
        })
        .collect();
    items[10].remote = "d/../g010".into();
    items[25].remote = "d/absent".into();
    // A local `.part` that is not ours: refused locally, before any request.
    std::fs::write(dst.path().join("g040.part"), b"someone else's").unwrap();

    let results = within(
        "get_files",
        client.get_files(&items, false, &mut |_, _, _| {}),
    )
    .await
    .expect("the session survives refused items");
    for (i, (item, result)) in items.iter().zip(&results).enumerate() {
        match i {
            10 => assert_eq!(
                result.as_ref().err().and_then(ClientError::remote_code),
                Some(ErrorCode::INVALID_PATH),
                "item {i}: {result:?}"
            ),
            25 => assert_eq!(
                result.as_ref().err().and_then(ClientError::remote_code),
                Some(ErrorCode::NOT_FOUND),
                "item {i}: {result:?}"
            ),
            40 => assert!(
                matches!(result, Err(ClientError::LocalFile { .. })),
                "item {i}: {result:?}"
            ),
            _ => assert!(
                files_equal(&src.path().join(&names[i]), &item.local),
                "item {i}: {result:?}"
            ),
        }
    }
    for (absent, i) in [("g010", 10), ("g025", 25), ("g040", 40)] {
        assert!(
            !dst.path().join(absent).exists(),
            "item {i} created {absent}"
        );
    }
    assert!(!dst.path().join("g010.part").exists());
    assert!(!dst.path().join("g025.part").exists());
    assert_eq!(
        std::fs::read(dst.path().join("g040.part")).unwrap(),
        b"someone else's"
    );

    // The session goes on.
    within("mkdir", client.mkdir("later", false)).await.unwrap();
    let up = [PutItem {
        local: src.path().join("g001"),
        remote: "later/g001".into(),
    }];
    let results = within("put_files", client.put_files(&up, false, &mut |_, _, _| {}))
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert!(files_equal(
        &src.path().join("g001"),
        &home.join("later/g001")
    ));
    within("quit", client.quit()).await.unwrap();
}

#[test]
fn twenty_pipelined_uploads_are_committed_and_answered_in_order() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let home = server.home("alice");
    let files: Vec<(String, Vec<u8>)> = (0..20u64)
        .map(|i| {
            // Empty, small (written in one go) and above 64 KiB (streamed).
            let len = match i % 4 {
                0 => 0,
                1 | 2 => 1000 + 997 * i as usize,
                _ => 70_000 + 1000 * i as usize,
            };
            (format!("p{i:02}.bin"), random_bytes(100 + i, len))
        })
        .collect();
    for (path, data) in &files {
        send_put(&mut conn, path, data, DigestAlgorithm::Blake3, None);
    }
    for (i, (path, data)) in files.iter().enumerate() {
        assert_eq!(conn.expect_reply(), Response::Ok, "reply {i}");
        // An `Ok` is never sent before its upload is in place.
        assert_eq!(
            std::fs::read(home.join(path)).ok().as_ref(),
            Some(data),
            "{path} after its Ok"
        );
    }

    // A refusal between two uploads and a request after them: the replies
    // come in the order of the requests.
    send_put(&mut conn, "q1.bin", b"first", DigestAlgorithm::Blake3, None);
    send_put(
        &mut conn,
        "a/../q.bin",
        b"never",
        DigestAlgorithm::Blake3,
        None,
    );
    send_put(
        &mut conn,
        "q2.bin",
        b"second",
        DigestAlgorithm::Blake3,
        None,
    );
    conn.send(&Request::Mkdir {
        path: "m".into(),
        parents: false,
    })
    .unwrap();
    assert_eq!(conn.expect_reply(), Response::Ok, "q1.bin");
    assert_eq!(std::fs::read(home.join("q1.bin")).unwrap(), b"first");
    assert_eq!(
        error_code(conn.expect_reply(), "a/../q.bin"),
        ErrorCode::INVALID_PATH
    );
    assert_eq!(conn.expect_reply(), Response::Ok, "q2.bin");
    assert_eq!(std::fs::read(home.join("q2.bin")).unwrap(), b"second");
    assert_eq!(conn.expect_reply(), Response::Ok, "mkdir");
    assert!(home.join("m").is_dir());

    // And the brief's order: a refused Put first, then a Put and a Mkdir.
    send_put(
        &mut conn,
        "a/../r.bin",
        b"never",
        DigestAlgorithm::Blake3,
        None,
    );
    send_put(&mut conn, "r.bin", b"third", DigestAlgorithm::Blake3, None);
    conn.send(&Request::Mkdir {
        path: "m/n".into(),
        parents: false,
    })
    .unwrap();
    assert_eq!(
        error_code(conn.expect_reply(), "a/../r.bin"),
        ErrorCode::INVALID_PATH
    );
    assert_eq!(conn.expect_reply(), Response::Ok, "r.bin");
    assert_eq!(std::fs::read(home.join("r.bin")).unwrap(), b"third");
    assert_eq!(conn.expect_reply(), Response::Ok, "mkdir m/n");
    assert!(home.join("m/n").is_dir());
    assert!(!home.join("q.bin").exists() && !home.join("a").exists());
    server.wait_incoming_empty();
}

/// Sends `Put` of 3 MiB to `path` (refused: its parent is missing) and one
/// chunk of it, and expects the refusal before anything more is sent; then
/// ends the upload with `PutCancel`.
fn assert_refused_before_the_rest(conn: &mut RawConn, path: &str) {
    conn.send(&Request::Put {
        path: path.into(),
        size: 3 * 1024 * 1024,
        offset: 0,
        algorithm: DigestAlgorithm::Blake3,
    })
    .unwrap();
    conn.send(&Request::Data(Bytes::from(vec![7u8; CHUNK_SIZE])))
        .unwrap();
    // Within READ_TIMEOUT, with 2.75 MiB of the file still unsent.
    assert_eq!(error_code(conn.expect_reply(), path), ErrorCode::NOT_FOUND);
    conn.send(&Request::Data(Bytes::from(vec![7u8; CHUNK_SIZE])))
        .unwrap();
    conn.send(&Request::PutCancel).unwrap();
}

#[test]
fn refusal_of_a_large_upload_comes_before_its_data_is_sent() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_refused_before_the_rest(&mut conn, "gone/big.bin");
    // The PutCancel got no reply of its own: the next reply is the next request's.
    assert_eq!(conn.put("after.bin", b"after", None), Response::Ok);
    assert!(!server.home("alice").join("gone").exists());
    server.wait_incoming_empty();
}

#[test]
fn refusal_after_a_pipelined_upload_still_comes_before_its_data_is_sent() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // A complete small upload, immediately followed (no reply read) by a
    // large upload that is refused.
    send_put(
        &mut conn,
        "first.bin",
        b"first",
        DigestAlgorithm::Blake3,
        None,
    );
    conn.send(&Request::Put {
        path: "gone/big.bin".into(),
        size: 3 * 1024 * 1024,
        offset: 0,
        algorithm: DigestAlgorithm::Blake3,
    })
    .unwrap();
    conn.send(&Request::Data(Bytes::from(vec![7u8; CHUNK_SIZE])))
        .unwrap();
    // The first upload's Ok, then the early refusal, while 2.75 MiB are unsent.
    assert_eq!(conn.expect_reply(), Response::Ok, "first.bin");
    assert_eq!(
        error_code(conn.expect_reply(), "gone/big.bin"),
        ErrorCode::NOT_FOUND
    );
    conn.send(&Request::PutCancel).unwrap();
    assert_eq!(conn.put("after.bin", b"after", None), Response::Ok);
}

#[tokio::test]
async fn sha256_round_trip_through_the_library() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    client.set_digest_algorithm(DigestAlgorithm::Sha256);
    let files: Vec<PathBuf> = [0usize, 5000, 300_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let path = local.path().join(format!("s{i}"));
            std::fs::write(&path, random_bytes(0x5a + i as u64, len)).unwrap();
            path
        })
        .collect();
    let puts: Vec<PutItem> = files
        .iter()
        .map(|p| PutItem {
            local: p.clone(),
            remote: p.file_name().unwrap().to_str().unwrap().into(),
        })
        .collect();
    let results = within(
        "put_files",
        client.put_files(&puts, true, &mut |_, _, _| {}),
    )
    .await
    .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let home = server.home("alice");
    for item in &puts {
        assert!(files_equal(&item.local, &home.join(&item.remote)));
    }
    let gets: Vec<GetItem> = puts
        .iter()
        .map(|p| GetItem {
            remote: p.remote.clone(),
            local: local.path().join(format!("{}.back", p.remote)),
        })
        .collect();
    let results = within(
        "get_files",
        client.get_files(&gets, false, &mut |_, _, _| {}),
    )
    .await
    .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (put, get) in puts.iter().zip(&gets) {
        assert!(files_equal(&put.local, &get.local));
    }
    // The server computed SHA-256 digests: its log names them `sha256:HEX`.
    let sha = digest_of(DigestAlgorithm::Sha256, &std::fs::read(&files[2]).unwrap());
    let log = server.stderr();
    assert!(
        log.contains(&sha.to_string()),
        "no {sha} in the server log:\n{log}"
    );
    within("quit", client.quit()).await.unwrap();
}

#[test]
fn put_end_with_a_digest_of_the_other_algorithm_is_refused() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let home = server.home("alice");
    use DigestAlgorithm::{Blake3, Sha256};
    // Small (written in one go) and large (streamed) uploads.
    for len in [1000usize, 300_000] {
        let data = random_bytes(len as u64, len);
        for (announced, other) in [(Sha256, Blake3), (Blake3, Sha256)] {
            let path = format!("x-{len}-{announced:?}.bin");
            // The digest of the very bytes sent, but by the other algorithm.
            send_put(
                &mut conn,
                &path,
                &data,
                announced,
                Some(digest_of(other, &data)),
            );
            assert_eq!(
                error_code(conn.expect_reply(), &path),
                ErrorCode::DIGEST_MISMATCH,
                "{path}"
            );
            assert!(!home.join(&path).exists(), "{path} was published");
            // The same upload with its own algorithm's digest is stored.
            send_put(&mut conn, &path, &data, announced, None);
            assert_eq!(conn.expect_reply(), Response::Ok, "{path}");
            assert_eq!(std::fs::read(home.join(&path)).unwrap(), data);
        }
    }
    server.wait_incoming_empty();
}

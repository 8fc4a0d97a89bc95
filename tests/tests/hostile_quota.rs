//! Hostile users against quotas and path limits: trees deeper than the
//! limits, bytes kept for resumes, publishes racing each other, paths at the
//! exact length limit, hard links, and the moment after a cut.

use bytes::Bytes;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, DEFAULT_USERS, POLL_DEADLINE, RawConn, ServerDir, TestServer, cut_upload,
    random_bytes, wait_until,
};

fn code_of(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn mkdir_p(conn: &mut RawConn, path: &str) -> Result<(), Response> {
    conn.request_ok(&Request::Mkdir {
        path: path.into(),
        parents: true,
    })
}

/// The deepest directory nesting beneath `dir` (0: no subdirectory).
fn depth_on_disk(dir: &std::path::Path) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    deepest
}

#[test]
fn no_rename_nests_a_tree_beyond_the_limits() {
    let server = ServerDir::with_users(DEFAULT_USERS).start_args(&["--quota-bytes", "10000000"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // The attack: a 63-deep chain, the previous tree moved to its bottom,
    // again and again.
    let chain = |name: &str| {
        let mut path = name.to_string();
        for i in 1..63 {
            path.push_str(&format!("/{i}"));
        }
        path
    };
    mkdir_p(&mut conn, &chain("t0")).expect("63 components are fine");
    let mut refused = 0;
    for round in 1..40 {
        let bottom = chain(&format!("t{round}"));
        mkdir_p(&mut conn, &bottom).unwrap();
        match conn.rename(&format!("t{}", round - 1), &format!("{bottom}/moved")) {
            Ok(()) => panic!("round {round}: a 63-deep tree was nested 63 deeper"),
            Err(e) => {
                assert_eq!(code_of(&e), Some(ErrorCode::INVALID_PATH), "{e:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 39);
    // Moves that stay within the limits still work, also deeper ones.
    mkdir_p(&mut conn, "small/a/b").unwrap();
    conn.rename("small", "t5/1/2/small")
        .expect("within the limits");
    // Length is checked like depth: a tree of four 200-byte names moved
    // under 18 of them stays within 64 components but not within 4095 bytes.
    let long = |c: char| c.to_string().repeat(200);
    let tree = ["a", "b", "c", "d"].map(|n| long(n.chars().next().unwrap()));
    mkdir_p(&mut conn, &tree.join("/")).unwrap();
    let parent = vec![long('p'); 18].join("/");
    mkdir_p(&mut conn, &parent).unwrap();
    let moved = conn.rename(&tree[0], &format!("{parent}/x")).unwrap_err();
    assert_eq!(code_of(&moved), Some(ErrorCode::INVALID_PATH), "{moved:?}");
    assert!(depth_on_disk(&server.home("alice")) <= 64);
    // Uploads measure nothing more: they still work at once.
    assert_eq!(
        conn.put("f.bin", &random_bytes(1, 100_000), None),
        Response::Ok
    );
    drop(conn);
    server.assert_healthy();
}

/// A tree far deeper than any request can make (made on the host) does not
/// crash the quota's measurement or exhaust descriptors.
#[test]
fn a_tree_made_deep_on_the_host_is_measured_without_recursion() {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let home = dir.root().join("alice");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("top.bin"), vec![7u8; 1000]).unwrap();
    let mut fd = openat(
        rustix::fs::CWD,
        &home,
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..8000 {
        mkdirat(&fd, "d", Mode::from_raw_mode(0o700)).unwrap();
        fd = openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    }
    drop(fd);
    let server = dir.start_args(&["--quota-bytes", "2000"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // 1000 bytes used: 1000 more fit, 1001 do not.
    let refused = conn.put("b.bin", &random_bytes(2, 1001), None);
    assert_eq!(
        code_of(&refused),
        Some(ErrorCode::QUOTA_EXCEEDED),
        "{refused:?}"
    );
    assert_eq!(
        conn.put("b.bin", &random_bytes(3, 1000), None),
        Response::Ok
    );
    drop(conn);
    server.assert_healthy();
}

#[test]
fn bytes_kept_for_resumes_count_against_the_quota_also_after_a_restart() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let mut server = dir.start_args(&["--quota-bytes", "1000000"]);
    let file = random_bytes(4, 500_000);
    for i in 0..2 {
        cut_upload(
            &server,
            &format!("cut{i}.bin"),
            500_000,
            &file[..400_000],
            DigestAlgorithm::Sha256,
        );
        wait_until(POLL_DEADLINE, "the bytes kept", || {
            server.kept_partials().len() == i + 1 && server.upload_temps().is_empty()
        });
    }
    // 800,000 bytes kept: 200,001 more do not fit.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let refused = conn.put("new.bin", &random_bytes(5, 200_001), None);
    assert_eq!(
        code_of(&refused),
        Some(ErrorCode::QUOTA_EXCEEDED),
        "{refused:?}"
    );
    drop(conn);

    server.restart(&["--quota-bytes", "1000000"]);
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let refused = conn.put("new.bin", &random_bytes(6, 200_001), None);
    assert_eq!(
        code_of(&refused),
        Some(ErrorCode::QUOTA_EXCEEDED),
        "kept bytes are measured at the first login: {refused:?}"
    );
    assert_eq!(
        conn.put("new.bin", &random_bytes(7, 200_000), None),
        Response::Ok
    );
    // At the quota, a cut upload past it is refused before a byte is kept.
    conn.send_put("cut9.bin", 100_000, 0);
    assert_eq!(
        code_of(&conn.expect_reply()),
        Some(ErrorCode::QUOTA_EXCEEDED)
    );
    // Ends the refused upload (no reply of its own).
    conn.send(&Request::PutCancel).unwrap();
    conn.remove("new.bin").unwrap();
    // A resume takes its kept bytes over and needs room for the rest only.
    conn.send_put("cut0.bin", 500_000, 400_000);
    conn.send(&Request::Data(Bytes::copy_from_slice(&file[400_000..])))
        .unwrap();
    conn.send(&Request::PutEnd {
        digest: sha256_of(&file),
    })
    .unwrap();
    assert_eq!(conn.expect_reply(), Response::Ok);
    // 400,000 kept of cut1 and 500,000 of cut0 are used.
    let over = conn.put("c.bin", &random_bytes(8, 100_001), None);
    assert_eq!(code_of(&over), Some(ErrorCode::QUOTA_EXCEEDED), "{over:?}");
    assert_eq!(
        conn.put("c.bin", &random_bytes(8, 100_000), None),
        Response::Ok
    );
    drop(conn);
    server.assert_healthy();
}

fn digest_of(algorithm: DigestAlgorithm, data: &[u8]) -> ftp_shared::Digest {
    let mut hasher = ftp_shared::message::Hasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}

fn blake3_of(data: &[u8]) -> ftp_shared::Digest {
    digest_of(DigestAlgorithm::Blake3, data)
}

/// In the algorithm `RawConn::send_put` announces.
fn sha256_of(data: &[u8]) -> ftp_shared::Digest {
    digest_of(DigestAlgorithm::Sha256, data)
}

/// Waits until the one upload temp holds `bytes` bytes.
fn wait_temp_holds(server: &TestServer, bytes: u64) {
    wait_until(POLL_DEADLINE, "the bytes in the upload's temp", || {
        let temps = server.upload_temps();
        temps.len() == 1
            && std::fs::metadata(server.incoming().join(&temps[0])).is_ok_and(|m| m.len() == bytes)
    });
}

#[test]
fn concurrent_publishes_and_replacements_never_pass_the_quota() {
    const QUOTA: u64 = 8 * 1024 * 1024;
    let server =
        ServerDir::with_users(DEFAULT_USERS).start_args(&["--quota-bytes", &QUOTA.to_string()]);
    let home = server.home("alice");
    let size = 3 * 1024 * 1024;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addr = server.addr();
            let pin = server.fingerprint();
            std::thread::spawn(move || {
                let mut conn = RawConn::connect_addr(addr, pin);
                conn.hello();
                conn.login("alice", ALICE_PASSWORD).unwrap();
                let mut stored = 0;
                for round in 0..6u64 {
                    let name = format!("f{}.bin", (t + round) % 5);
                    match conn.put(&name, &random_bytes(t * 100 + round, size), None) {
                        Response::Ok => stored += 1,
                        r => assert_eq!(code_of(&r), Some(ErrorCode::QUOTA_EXCEEDED), "{r:?}"),
                    }
                    if round % 3 == 2 {
                        let _ = conn.remove(&format!("f{}.bin", (t + round + 1) % 5));
                    }
                }
                stored
            })
        })
        .collect();
    let stored: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(stored > 0);
    let on_disk: u64 = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        on_disk <= QUOTA,
        "{on_disk} bytes stored under a quota of {QUOTA}"
    );
    // The count is exact: what is left fits, one byte more does not.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let left = QUOTA - on_disk;
    let over = conn.put("last.bin", &random_bytes(9, left as usize + 1), None);
    assert_eq!(code_of(&over), Some(ErrorCode::QUOTA_EXCEEDED), "{over:?}");
    assert_eq!(
        conn.put("last.bin", &random_bytes(9, left as usize), None),
        Response::Ok
    );
    drop(conn);
    server.assert_healthy();
}

#[test]
fn partial_right_after_a_cut_reports_the_kept_bytes() {
    let server = TestServer::start();
    let head = random_bytes(10, 300_000);
    for i in 0..10 {
        let path = format!("r{i}.bin");
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_put(&path, 1_000_000, 0);
        for chunk in head.chunks(CHUNK_SIZE) {
            conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
                .unwrap();
        }
        wait_temp_holds(&server, 300_000);
        let mut again = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.cut();
        again
            .send(&Request::Partial {
                path: path.clone(),
                size: 1_000_000,
                algorithm: DigestAlgorithm::Blake3,
            })
            .unwrap();
        match again.expect_reply() {
            Response::Partial { offset, .. } => assert_eq!(offset, 300_000, "round {i}"),
            other => panic!("{other:?}"),
        }
        // Resumed and finished, it leaves nothing kept.
        let mut done = again;
        let rest = random_bytes(11, 700_000);
        let whole: Vec<u8> = head.iter().chain(rest.iter()).copied().collect();
        let digest = sha256_of(&whole);
        done.send_put(&path, 1_000_000, 300_000);
        for chunk in rest.chunks(CHUNK_SIZE) {
            done.send(&Request::Data(Bytes::copy_from_slice(chunk)))
                .unwrap();
        }
        done.send(&Request::PutEnd { digest }).unwrap();
        assert_eq!(done.expect_reply(), Response::Ok);
        assert_eq!(
            std::fs::read(server.home("alice").join(&path)).unwrap(),
            whole
        );
    }
    server.assert_healthy();
}

#[test]
fn a_fresh_upload_that_fails_keeps_what_an_earlier_one_kept() {
    let server = TestServer::start();
    let head = random_bytes(12, 300_000);
    cut_upload(&server, "k.bin", 1_000_000, &head, DigestAlgorithm::Sha256);
    server.wait_uploads_settled(&[300_000]);
    let kept = server.kept_partials();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // A fresh attempt of the same file, cancelled after some bytes.
    conn.send_put("k.bin", 1_000_000, 0);
    conn.send(&Request::Data(Bytes::from(vec![1u8; 100_000])))
        .unwrap();
    conn.send(&Request::PutCancel).unwrap();
    assert_eq!(code_of(&conn.expect_reply()), Some(ErrorCode::CANCELLED));
    conn.send(&Request::Partial {
        path: "k.bin".into(),
        size: 1_000_000,
        algorithm: DigestAlgorithm::Blake3,
    })
    .unwrap();
    match conn.expect_reply() {
        Response::Partial { offset, digest } => {
            assert_eq!(offset, 300_000);
            assert_eq!(digest, blake3_of(&head));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.kept_partials(), kept);
    drop(conn);
    server.assert_healthy();
}

#[test]
fn uploads_over_hard_linked_files_are_refused_like_downloads() {
    let server = TestServer::start();
    let home = server.home("alice");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("a.txt"), b"original").unwrap();
    std::fs::hard_link(home.join("a.txt"), home.join("linked.txt")).unwrap();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let get = conn.get("a.txt").unwrap_err();
    assert_eq!(code_of(&get), Some(ErrorCode::NOT_A_FILE));
    let put = conn.put("a.txt", b"replaced", None);
    assert_eq!(code_of(&put), Some(ErrorCode::NOT_A_FILE), "{put:?}");
    let big = conn.put("a.txt", &random_bytes(13, 200_000), None);
    assert_eq!(code_of(&big), Some(ErrorCode::NOT_A_FILE), "{big:?}");
    assert_eq!(std::fs::read(home.join("a.txt")).unwrap(), b"original");
    drop(conn);
    std::fs::remove_file(home.join("linked.txt")).unwrap();
    server.assert_healthy();
}

#[test]
fn every_operation_handles_a_path_at_the_length_limit() {
    let server = TestServer::start();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    // 63 directories of 63 bytes and a file name of 63: 64 * 64 - 1 = 4095.
    let dirs: Vec<String> = (0..63).map(|i| format!("{i:063}")).collect();
    let parent = dirs.join("/");
    let path = format!("{parent}/{}", "f".repeat(63));
    assert_eq!(path.len(), 4095);
    mkdir_p(&mut conn, &parent).unwrap();
    let data = random_bytes(14, 100_000);
    assert_eq!(conn.put(&path, &data, None), Response::Ok);
    assert_eq!(conn.get(&path).unwrap(), data);
    assert_eq!(conn.stat(&path).unwrap().size, 100_000);
    let (entries, _) = conn.list(&path).unwrap();
    assert_eq!(entries.len(), 1);
    let (entries, _) = conn.list(&parent).unwrap();
    assert_eq!(entries.len(), 1);
    let other = format!("{parent}/{}", "g".repeat(63));
    conn.rename(&path, &other).unwrap();
    conn.send(&Request::Partial {
        path: other.clone(),
        size: 100_000,
        algorithm: DigestAlgorithm::Blake3,
    })
    .unwrap();
    assert!(matches!(
        conn.expect_reply(),
        Response::Partial { offset: 0, .. }
    ));
    conn.remove(&other).unwrap();
    // One byte more is refused as a path, by every operation.
    let too_long = format!("{parent}/{}", "h".repeat(64));
    assert_eq!(too_long.len(), 4096);
    let put = conn.put(&too_long, b"x", None);
    assert_eq!(code_of(&put), Some(ErrorCode::INVALID_PATH));
    assert_eq!(
        code_of(&conn.stat(&too_long).unwrap_err()),
        Some(ErrorCode::INVALID_PATH)
    );
    drop(conn);
    server.assert_healthy();
}

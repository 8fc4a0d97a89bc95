//! Faults: the server killed mid-upload and restarted, a full disk, two
//! clients racing to upload the same path, downloads racing re-uploads, a
//! put and a get under way at once, uploads cut (by a shutdown, a drop, the
//! middle of a frame or a killed client process) or refused (wrong digest,
//! fewer or more bytes than announced). Whatever happens, a file is the old
//! version or the whole new one, never a mix or a partial, no temp is left
//! behind, and what an interrupted upload kept is offered for a resume.
//! Every error reply the tests see is checked to reveal nothing of the host
//! (root path, OS error strings, panics), and every scenario ends with
//! [`tests::TestServer::assert_healthy`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm, Hasher};
use ftp_shared::{Digest, ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, BOB_PASSWORD, ClientEnv, DEFAULT_USERS, POLL_DEADLINE, RawConn, ServerDir,
    TestServer, login, no_progress, random_bytes, temp_dir, wait_child, wait_until,
    write_random_file,
};

// ---------------------------------------------------------------------------
// Error hygiene
// ---------------------------------------------------------------------------

/// The error replies a test saw, checked at its end: they name virtual paths
/// at most, never a host path, an OS error string or a panic.
#[derive(Debug, Default)]
struct Errors {
    seen: Vec<(ErrorCode, String)>,
    /// Host paths that must never appear (the server's directory, the root
    /// and what it resolves to).
    secrets: Vec<String>,
}

impl Errors {
    fn new(server: &TestServer) -> Errors {
        let mut errors = Errors::default();
        errors.hide(server.base());
        errors.hide(&server.root());
        errors
    }

    /// Also checks that `path` (and its canonical form) never appears.
    fn hide(&mut self, path: &Path) {
        self.secrets.push(path.display().to_string());
        if let Ok(canonical) = path.canonicalize() {
            self.secrets.push(canonical.display().to_string());
        }
    }

    /// Records `reply` if it is an error, and returns it.
    fn note(&mut self, reply: Response) -> Response {
        if let Response::Error { code, message } = &reply {
            self.seen.push((*code, message.clone()));
        }
        reply
    }

    fn note_all(&mut self, replies: &[Response]) {
        for r in replies {
            self.note(r.clone());
        }
    }

    /// The reply must be an error with `code`; it is recorded.
    #[track_caller]
    fn expect(&mut self, reply: Response, code: ErrorCode, what: &str) -> String {
        match self.note(reply) {
            Response::Error { code: got, message } => {
                assert_eq!(got, code, "{what}: {message}");
                message
            }
            other => panic!("{what}: expected {code:?}, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_clean(&self) {
        for (code, message) in &self.seen {
            let lower = message.to_lowercase();
            for bad in ["os error", "panicked", "backtrace", "/tmp/"] {
                assert!(
                    !lower.contains(bad),
                    "{code:?} reply reveals {bad:?}: {message:?}"
                );
            }
            for secret in &self.secrets {
                assert!(
                    !message.contains(secret.as_str()),
                    "{code:?} reply reveals the host path {secret}: {message:?}"
                );
            }
            assert!(!message.is_empty(), "{code:?} reply without a message");
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Starts an upload of `size` bytes to `path` and sends `data` (fewer bytes).
fn start_put(conn: &mut RawConn, path: &str, size: u64, data: &[u8]) {
    conn.send_put(path, size, 0);
    for chunk in data.chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .unwrap();
    }
}

/// Sends the rest of an upload started with [`start_put`] and its digest
/// (of `whole`); returns the reply.
fn finish_put(conn: &mut RawConn, whole: &[u8], sent: usize) -> Response {
    for chunk in whole[sent..].chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .unwrap();
    }
    let mut hasher = ftp_shared::message::Hasher::new(DigestAlgorithm::Sha256);
    hasher.update(whole);
    conn.send(&Request::PutEnd {
        digest: hasher.finish(),
    })
    .unwrap();
    conn.expect_reply()
}

/// Sends `Get` and reads its `FileStart`; the rest is left unread.
#[track_caller]
fn start_get(conn: &mut RawConn, path: &str) -> u64 {
    conn.send(&Request::Get {
        path: path.into(),
        offset: 0,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    match conn.expect_reply() {
        Response::FileStart { size } => size,
        other => panic!("Get {path}: {other:?}"),
    }
}

/// Reads the rest of a download begun with [`start_get`], checking its
/// size and digest.
#[track_caller]
fn finish_get(conn: &mut RawConn, size: u64) -> Vec<u8> {
    let mut data = Vec::new();
    let mut hasher = ftp_shared::message::Hasher::new(DigestAlgorithm::Sha256);
    loop {
        match conn.expect_reply() {
            Response::Data(chunk) => {
                hasher.update(&chunk);
                data.extend_from_slice(&chunk);
            }
            Response::FileEnd { digest } => {
                assert_eq!(data.len() as u64, size, "download size");
                assert_eq!(digest, hasher.finish(), "download digest");
                return data;
            }
            other => panic!("during a download: {other:?}"),
        }
    }
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A runtime for the library client in a synchronous test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Which of `candidates` `data` is, by index; panics on a mix.
#[track_caller]
fn which(data: &[u8], candidates: &[&[u8]], what: &str) -> usize {
    candidates
        .iter()
        .position(|c| *c == data)
        .unwrap_or_else(|| {
            panic!(
                "{what}: {} bytes that are none of the versions (sizes {:?}): a mix or a partial",
                data.len(),
                candidates.iter().map(|c| c.len()).collect::<Vec<_>>()
            )
        })
}

// ---------------------------------------------------------------------------
// Server killed
// ---------------------------------------------------------------------------

#[test]
fn server_killed_mid_upload_restarts_clean() {
    let mut server = TestServer::start();
    let mut errors = Errors::new(&server);
    let home = server.home("alice");
    let old = random_bytes(1, 300_000);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("doc.bin", &old, None), Response::Ok);

    // An interrupted upload kept for a resume before the crash.
    let mut cut = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(
        &mut cut,
        "kept.bin",
        8 * CHUNK_SIZE as u64,
        &random_bytes(2, 2 * CHUNK_SIZE),
    );
    wait_until(POLL_DEADLINE, "kept.bin's temp", || {
        !server.upload_temps().is_empty()
    });
    cut.cut();
    server.wait_uploads_settled(&[2 * CHUNK_SIZE as u64]);

    // Uploads in flight when the server dies: a replacement of doc.bin, a
    // new file, and a small (buffered) one.
    let size = 10 * CHUNK_SIZE as u64;
    let mut replacing = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(
        &mut replacing,
        "doc.bin",
        size,
        &random_bytes(3, 3 * CHUNK_SIZE),
    );
    let mut fresh = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    start_put(&mut fresh, "fresh.bin", size, &random_bytes(4, CHUNK_SIZE));
    let mut small = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(&mut small, "small.bin", 1000, &[7u8; 600]);
    wait_until(POLL_DEADLINE, "both upload temps", || {
        server.upload_temps().len() == 2
    });
    assert!(setup.is_alive());

    server.kill();
    // The crash left the temps behind...
    assert_eq!(
        server.upload_temps().len(),
        2,
        "{:?}",
        server.incoming_entries()
    );
    drop((replacing, fresh, small, setup));
    // Other debris a crash (or an older crash) may leave: a kept part too
    // old to be offered, and a directory.
    let stale = server
        .incoming()
        .join("alice.00000000000000000000000000000000.partial");
    std::fs::write(&stale, b"old bytes").unwrap();
    let aged = Command::new("touch")
        .args(["-d", "3 days ago"])
        .arg(&stale)
        .status()
        .is_ok_and(|s| s.success());
    std::fs::create_dir(server.incoming().join("alice.1234.part.d")).unwrap();

    server.restart(&[]);
    errors.hide(&server.root());
    // ...and the restart swept them; the kept part of the earlier
    // interrupted upload may stay (it is fresh), intact if it does.
    assert!(
        server.upload_temps().is_empty(),
        "stale temps after a restart: {:?}",
        server.incoming_entries()
    );
    let kept = server.kept_partials();
    assert!(
        kept.is_empty() || kept == [2 * CHUNK_SIZE as u64],
        "kept parts after the restart: {kept:?}"
    );
    for entry in server.incoming_entries() {
        assert!(entry.ends_with(".partial"), "left in .incoming: {entry}");
    }
    assert!(
        !aged || !stale.exists(),
        "a kept part 3 days old survived the restart"
    );
    // Nothing published under a final name; the old version is intact.
    assert_eq!(names(&home), ["doc.bin"], "alice's home");
    assert_eq!(std::fs::read(home.join("doc.bin")).unwrap(), old);
    let bob_home = server.home("bob");
    assert!(
        !bob_home.exists() || names(&bob_home).is_empty(),
        "bob's home: {:?}",
        names(&bob_home)
    );

    // A fresh client is served at once.
    let started = Instant::now();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(conn.get("doc.bin").unwrap(), old);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "login and download took {took:?}"
    );
    match conn.get("fresh.bin") {
        Err(reply) => {
            errors.expect(reply, ErrorCode::NOT_FOUND, "fresh.bin after the crash");
        }
        Ok(data) => panic!("fresh.bin was published with {} bytes", data.len()),
    }
    // The kept part, if any, is offered for a resume.
    if !kept.is_empty() {
        conn.send(&Request::Partial {
            path: "kept.bin".into(),
            size: 8 * CHUNK_SIZE as u64,
            algorithm: DigestAlgorithm::Sha256,
        })
        .unwrap();
        match errors.note(conn.expect_reply()) {
            Response::Partial { offset, .. } => assert_eq!(offset, 2 * CHUNK_SIZE as u64),
            other => panic!("the kept part is not offered: {other:?}"),
        }
    }
    // Uploading works again and leaves no temp.
    let new = random_bytes(5, 3 * CHUNK_SIZE + 1);
    assert_eq!(conn.put("doc.bin", &new, None), Response::Ok);
    assert_eq!(conn.get("doc.bin").unwrap(), new);
    assert!(server.upload_temps().is_empty());
    errors.assert_clean();
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Disk full
// ---------------------------------------------------------------------------

/// A tmpfs mounted for a test; unmounted (lazily, so a straggler cannot
/// keep it) and its directory removed on drop.
#[derive(Debug)]
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "2m"), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root".into());
        }
        let dir = temp_dir("ftp-tmpfs-");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Uploads files of `size` bytes named `PREFIX-N` until one is refused;
/// returns the names stored and the refusal (whose file must not exist).
fn fill(
    conn: &mut RawConn,
    home: &Path,
    prefix: &str,
    size: usize,
    errors: &mut Errors,
) -> (Vec<String>, String) {
    let mut stored = Vec::new();
    for n in 0..100 {
        let name = format!("{prefix}-{n}");
        let data = random_bytes(1000 + n, size);
        match errors.note(conn.put(&name, &data, None)) {
            Response::Ok => {
                assert_eq!(std::fs::read(home.join(&name)).unwrap(), data);
                stored.push(name);
            }
            Response::Error { code, message } => {
                assert_eq!(
                    code,
                    ErrorCode::NO_SPACE,
                    "{name} ({size} bytes) refused: {message}"
                );
                assert!(message.contains("no space left on the server"), "{message}");
                assert!(message.contains(&name), "{message}");
                return (stored, name);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    panic!("{prefix}: 100 files of {size} bytes fit on a 2 MiB disk");
}

#[test]
fn full_disk_refuses_with_no_space_and_the_session_goes_on() {
    let tmpfs = match Tmpfs::mount("2m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = ServerDir::with_users(DEFAULT_USERS);
    // The root is on the tmpfs (through a symlink, so that removing the
    // server's directory never reaches into the mount).
    let mount_root = tmpfs.path().join("root");
    std::fs::create_dir(&mount_root).unwrap();
    std::os::unix::fs::symlink(&mount_root, dir.root()).unwrap();
    let server = dir.start();
    let mut errors = Errors::new(&server);
    errors.hide(tmpfs.path());
    let home = server.home("alice");

    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let keep = random_bytes(10, 200_000);
    let victim = random_bytes(11, 150_000);
    let small_victim = random_bytes(12, 10_000);
    assert_eq!(conn.put("keep.bin", &keep, None), Response::Ok);
    assert_eq!(conn.put("victim.bin", &victim, None), Response::Ok);
    assert_eq!(conn.put("small.bin", &small_victim, None), Response::Ok);

    // Streamed uploads (over 64 KiB) until one is refused, then smaller
    // ones, down to uploads buffered in memory (at most 64 KiB).
    let mut refused = Vec::new();
    let mut stored = Vec::new();
    for (prefix, size) in [
        ("big", 3 * CHUNK_SIZE),
        ("mid", 100_000),
        ("tiny", 40_000),
        ("tinier", 8_000),
    ] {
        let (s, r) = fill(&mut conn, &home, prefix, size, &mut errors);
        stored.extend(s);
        refused.push(r);
        // Nothing partial under the refused name, no temp, nothing kept.
        assert!(
            server.incoming_entries().is_empty(),
            "after {prefix}: {:?}",
            server.incoming_entries()
        );
    }
    for name in &refused {
        assert!(!home.join(name).exists(), "{name} was published");
        match conn.get(name) {
            Err(reply) => {
                errors.expect(reply, ErrorCode::NOT_FOUND, name);
            }
            Ok(data) => panic!("{name} is served with {} bytes", data.len()),
        }
    }

    // Replacing files on a full disk fails and keeps the old versions.
    let message = errors.expect(
        conn.put("victim.bin", &random_bytes(13, 300_000), None),
        ErrorCode::NO_SPACE,
        "replacing victim.bin",
    );
    assert!(message.contains("victim.bin"), "{message}");
    let _ = errors.expect(
        conn.put("small.bin", &random_bytes(14, 60_000), None),
        ErrorCode::NO_SPACE,
        "replacing small.bin",
    );
    assert_eq!(std::fs::read(home.join("victim.bin")).unwrap(), victim);
    assert_eq!(std::fs::read(home.join("small.bin")).unwrap(), small_victim);
    assert!(server.incoming_entries().is_empty());

    // The same session goes on: downloads work, mkdir works or says why.
    assert_eq!(conn.get("keep.bin").unwrap(), keep);
    assert_eq!(conn.get("victim.bin").unwrap(), victim);
    conn.send(&Request::Mkdir {
        path: "newdir".into(),
        parents: false,
    })
    .unwrap();
    match errors.note(conn.expect_reply()) {
        Response::Ok => assert!(home.join("newdir").is_dir()),
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::NO_SPACE),
        other => panic!("mkdir on a full disk: {other:?}"),
    }
    // Another session is served too.
    let mut bob = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    assert!(bob.is_alive());

    // Once space is freed, the same session uploads again.
    for name in &stored {
        std::fs::remove_file(home.join(name)).unwrap();
    }
    let new_victim = random_bytes(15, 300_000);
    assert_eq!(conn.put("victim.bin", &new_victim, None), Response::Ok);
    assert_eq!(conn.get("victim.bin").unwrap(), new_victim);
    assert!(server.incoming_entries().is_empty());
    errors.assert_clean();
    drop((conn, bob));
    server.assert_healthy();
    drop(server);
    drop(tmpfs);
}

// ---------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------

#[test]
fn concurrent_uploads_to_one_path_leave_exactly_one_version() {
    const SIZE: usize = 3 * 1024 * 1024;
    let server = TestServer::start();
    let mut errors = Errors::new(&server);
    let home = server.home("alice");
    let a = random_bytes(21, SIZE);
    let b = random_bytes(22, SIZE + 4321);

    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(2));
        let replies: Vec<Response> = std::thread::scope(|scope| {
            let workers: Vec<_> = [&a, &b]
                .into_iter()
                .map(|data| {
                    let barrier = barrier.clone();
                    let server = &server;
                    scope.spawn(move || {
                        let mut conn = RawConn::connect_login(server, "alice", ALICE_PASSWORD);
                        barrier.wait();
                        conn.put("same.bin", data, None)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for reply in replies {
            assert_eq!(errors.note(reply), Response::Ok, "round {round}");
        }
        let stored = std::fs::read(home.join("same.bin")).unwrap();
        which(
            &stored,
            &[a.as_slice(), b.as_slice()],
            &format!("round {round}"),
        );
        assert!(server.incoming_entries().is_empty());
    }

    // Interleaved by hand: A and B both half-way, then A finishes, then B.
    // Each commit replaces the file whole; the last one wins.
    let mut ca = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let mut cb = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let half = 4 * CHUNK_SIZE;
    start_put(&mut ca, "interleaved.bin", a.len() as u64, &a[..half]);
    start_put(&mut cb, "interleaved.bin", b.len() as u64, &b[..half]);
    wait_until(POLL_DEADLINE, "both temps", || {
        server.upload_temps().len() == 2
    });
    assert_eq!(finish_put(&mut ca, &a, half), Response::Ok);
    assert_eq!(std::fs::read(home.join("interleaved.bin")).unwrap(), a);
    assert_eq!(finish_put(&mut cb, &b, half), Response::Ok);
    assert_eq!(std::fs::read(home.join("interleaved.bin")).unwrap(), b);
    assert_eq!(ca.get("interleaved.bin").unwrap(), b);
    assert!(server.incoming_entries().is_empty());
    errors.assert_clean();
    server.assert_healthy();
}

#[test]
fn download_racing_a_reupload_gets_old_or_new_whole() {
    let server = TestServer::start();
    let errors = Errors::new(&server);
    let old = random_bytes(31, 4 * 1024 * 1024 + 7);
    let new = random_bytes(32, 2 * 1024 * 1024 + 13);
    let mut writer = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(writer.put("live.bin", &old, None), Response::Ok);

    // A download opened before a re-upload is published returns the old
    // content, all of it, even though the new one is published meanwhile.
    let mut reader = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let size = start_get(&mut reader, "live.bin");
    assert_eq!(size, old.len() as u64);
    assert_eq!(writer.put("live.bin", &new, None), Response::Ok);
    assert!(
        finish_get(&mut reader, size) == old,
        "the opened download changed"
    );
    assert_eq!(reader.get("live.bin").unwrap(), new);

    // A download during an unfinished re-upload sees the published version.
    start_put(
        &mut writer,
        "live.bin",
        old.len() as u64,
        &old[..2 * CHUNK_SIZE],
    );
    wait_until(POLL_DEADLINE, "the re-upload's temp", || {
        !server.upload_temps().is_empty()
    });
    assert_eq!(reader.get("live.bin").unwrap(), new);
    assert_eq!(finish_put(&mut writer, &old, 2 * CHUNK_SIZE), Response::Ok);
    assert_eq!(reader.get("live.bin").unwrap(), old);

    // Free-running: one client re-uploads alternately, another downloads
    // in a loop; every download is one version whole.
    let versions: [&[u8]; 2] = [&old, &new];
    let done = std::sync::atomic::AtomicBool::new(false);
    let (uploads, downloads) = std::thread::scope(|scope| {
        let up = scope.spawn(|| {
            let mut n = 0;
            for round in 0..6 {
                let reply = writer.put("live.bin", versions[(round + 1) % 2], None);
                assert_eq!(reply, Response::Ok, "upload {round}");
                n += 1;
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            n
        });
        let down = scope.spawn(|| {
            let mut seen = [0usize; 2];
            let end = Instant::now() + tests::DEADLINE;
            loop {
                let data = reader.get("live.bin").expect("download while re-uploaded");
                seen[which(&data, &versions, "a racing download")] += 1;
                if done.load(std::sync::atomic::Ordering::SeqCst) || Instant::now() > end {
                    break seen;
                }
            }
        });
        (up.join().unwrap(), down.join().unwrap())
    });
    assert_eq!(uploads, 6);
    assert!(downloads.iter().sum::<usize>() > 0, "no download ran");
    assert!(server.incoming_entries().is_empty());
    errors.assert_clean();
    server.assert_healthy();
}

#[test]
fn concurrent_put_and_get_are_both_byte_identical() {
    const SIZE: u64 = 8 * 1024 * 1024;
    let server = TestServer::start();
    let rt = runtime();
    let local = tempfile::tempdir().unwrap();
    let up = local.path().join("up.bin");
    let down_src = local.path().join("down-src.bin");
    let down = local.path().join("down.bin");
    write_random_file(&up, 11, SIZE);
    write_random_file(&down_src, 22, SIZE + 12345);

    rt.block_on(async {
        let mut bob = login(&server, "bob", BOB_PASSWORD).await;
        bob.put_file(&down_src, "shared.bin", &mut no_progress())
            .await
            .unwrap();
        let mut alice = login(&server, "alice", ALICE_PASSWORD).await;
        // Both transfers are under way at the same time.
        let (put, get) = tokio::join!(
            async {
                alice
                    .put_file(&up, "dir-less.bin", &mut no_progress())
                    .await
            },
            async { bob.get_file("shared.bin", &down, &mut no_progress()).await },
        );
        put.expect("concurrent put");
        get.expect("concurrent get");
        alice.quit().await.unwrap();
        bob.quit().await.unwrap();
    });
    assert!(tests::files_equal(
        &up,
        &server.home("alice").join("dir-less.bin")
    ));
    assert!(tests::files_equal(&down_src, &down));
    assert!(server.incoming_entries().is_empty());
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Uploads cut or refused
// ---------------------------------------------------------------------------

#[test]
fn cut_upload_publishes_nothing_and_keeps_the_old_version() {
    let server = TestServer::start();
    let old = random_bytes(3, 100_000);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("doc.bin", &old, None), Response::Ok);
    drop(setup);
    let home = server.home("alice");
    let size = 10 * 1024 * 1024;
    let start_put = |conn: &mut RawConn, name: &str| {
        conn.send_put(name, size, 0);
    };

    let mut kept = Vec::new();
    for name in ["doc.bin", "fresh.bin"] {
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        start_put(&mut conn, name);
        let chunk = random_bytes(4, CHUNK_SIZE);
        for _ in 0..4 {
            conn.send(&Request::Data(Bytes::from(chunk.clone())))
                .unwrap();
        }
        // The upload is under way: its temp file exists.
        wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
            !server.upload_temps().is_empty()
        });
        conn.cut();
        // Nothing published; what arrived is kept aside for a resume.
        kept.push(4 * CHUNK_SIZE as u64);
        server.wait_uploads_settled(&kept);
        assert!(!home.join(format!("{name}.part")).exists());
    }
    assert_eq!(
        std::fs::read(home.join("doc.bin")).unwrap(),
        old,
        "the old version changed"
    );
    assert!(
        !home.join("fresh.bin").exists(),
        "a cut upload was published"
    );

    // Same when the connection just goes away without a shutdown; the newer
    // interrupted upload of doc.bin replaces the older one.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(&mut conn, "doc.bin");
    let head = vec![1u8; 1000];
    conn.send(&Request::Data(Bytes::from(head.clone())))
        .unwrap();
    wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    drop(conn);
    server.wait_uploads_settled(&[1000, 4 * CHUNK_SIZE as u64]);
    assert_eq!(std::fs::read(home.join("doc.bin")).unwrap(), old);

    // The kept bytes are offered for a resume, with their digest; the resumed
    // upload's digest covers the whole file.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(conn.get("doc.bin").unwrap(), old);
    conn.send(&Request::Partial {
        path: "doc.bin".into(),
        size,
        algorithm: DigestAlgorithm::Sha256,
    })
    .unwrap();
    let mut prefix = Hasher::new(DigestAlgorithm::Sha256);
    prefix.update(&head);
    assert_eq!(
        conn.expect_reply(),
        Response::Partial {
            offset: 1000,
            digest: prefix.clone().finish()
        }
    );
    let mut whole = head;
    whole.extend(random_bytes(9, size as usize - 1000));
    conn.send_put("doc.bin", size, 1000);
    for chunk in whole[1000..].chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .unwrap();
    }
    let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
    hasher.update(&whole);
    conn.send(&Request::PutEnd {
        digest: hasher.finish(),
    })
    .unwrap();
    assert_eq!(conn.expect_reply(), Response::Ok);
    assert!(std::fs::read(home.join("doc.bin")).unwrap() == whole);
    server.wait_uploads_settled(&[4 * CHUNK_SIZE as u64]);

    // A resume from an offset the server does not hold is refused.
    conn.send_put("doc.bin", size, 5);
    match conn.expect_reply() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::BAD_OFFSET),
        other => panic!("a resume without kept bytes got {other:?}"),
    }
    server.assert_healthy();
}

#[test]
fn wrong_digest_or_size_publishes_nothing() {
    let server = TestServer::start();
    let home = server.home("alice");
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let old = random_bytes(5, 1000);
    assert_eq!(conn.put("kept.bin", &old, None), Response::Ok);
    let data = random_bytes(6, 3 * CHUNK_SIZE + 17);

    for name in ["kept.bin", "new.bin"] {
        match conn.put(name, &data, Some(Digest::Sha256([0x5A; 32]))) {
            Response::Error { code, message } => {
                assert_eq!(code, ErrorCode::DIGEST_MISMATCH, "{message}");
                assert!(message.contains(name), "{message}");
            }
            other => panic!("a wrong digest was accepted: {other:?}"),
        }
        assert!(
            server.incoming_entries().is_empty(),
            "temp left after the refusal"
        );
    }
    assert_eq!(std::fs::read(home.join("kept.bin")).unwrap(), old);
    assert!(!home.join("new.bin").exists());
    assert!(conn.get("new.bin").is_err());

    // Fewer bytes than announced, with the digest of what was sent; then more
    // bytes than announced.
    for (path, size, digest, what) in [
        ("short.bin", 100, None, "short"),
        ("long.bin", 10, Some(Digest::Sha256([0; 32])), "long"),
    ] {
        match conn.put_sized(path, size, &[7u8; 60], digest) {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::SIZE_MISMATCH),
            other => panic!("a {what} upload was accepted: {other:?}"),
        }
    }
    assert!(!home.join("short.bin").exists());
    assert!(!home.join("long.bin").exists());
    server.wait_incoming_empty();

    // The session goes on and a correct upload works.
    assert_eq!(conn.put("new.bin", &data, None), Response::Ok);
    assert_eq!(conn.get("new.bin").unwrap(), data);
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Clients killed
// ---------------------------------------------------------------------------

#[test]
fn client_process_killed_mid_upload_publishes_nothing() {
    let server = TestServer::start();
    let env = ClientEnv::new();
    env.login(&server.target("alice"), ALICE_PASSWORD);
    let home = server.home("alice");
    // A sparse file: big enough that the upload is certainly under way when
    // the kill comes, cheap to make.
    let local = env.work().join("big.bin");
    std::fs::File::create(&local)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();

    let mut child = env
        .cmd(["--quiet", "put", "big.bin", "big.bin"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ftp-client put");
    let temp_size = || -> u64 {
        server
            .upload_temps()
            .iter()
            .filter_map(|n| std::fs::metadata(server.incoming().join(n)).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    };
    let end = Instant::now() + tests::DEADLINE;
    while temp_size() < 1 << 20 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ftp-client put ended before it was killed: {status:?}");
        }
        assert!(Instant::now() < end, "the upload never got under way");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = wait_child(&mut child, POLL_DEADLINE).expect("the killed client is reaped");
    assert!(!status.success());

    wait_until(POLL_DEADLINE, "the killed upload's temp to go", || {
        server.upload_temps().is_empty()
    });
    assert!(
        !home.join("big.bin").exists(),
        "a killed upload was published"
    );
    for entry in server.incoming_entries() {
        assert!(entry.ends_with(".partial"), "left in .incoming: {entry}");
    }
    // The server goes on.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert!(conn.is_alive());
    server.assert_healthy();
}

#[test]
fn connections_cut_mid_frame_publish_nothing() {
    let server = TestServer::start();
    let mut errors = Errors::new(&server);
    let home = server.home("alice");
    let old = random_bytes(41, 100_000);
    let mut setup = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(setup.put("old.bin", &old, None), Response::Ok);

    // Large uploads (a temp file on disk) cut in the middle of a Data frame,
    // over an existing file and to a new name.
    for name in ["old.bin", "new.bin"] {
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        start_put(
            &mut conn,
            name,
            4 * CHUNK_SIZE as u64,
            &random_bytes(42, CHUNK_SIZE),
        );
        let frame = tests::frame_of(&Request::Data(Bytes::from(random_bytes(43, CHUNK_SIZE))));
        conn.send_raw(&frame[..frame.len() / 2]).unwrap();
        wait_until(POLL_DEADLINE, "the upload's temp", || {
            !server.upload_temps().is_empty()
        });
        drop(conn);
        wait_until(POLL_DEADLINE, "no upload temp", || {
            server.upload_temps().is_empty()
        });
    }
    // A small upload (buffered in memory), cut; and one whose PutEnd frame
    // is cut.
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    start_put(&mut conn, "small.bin", 1000, &[1u8; 500]);
    conn.cut();
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let data = [2u8; 1000];
    start_put(&mut conn, "ended.bin", 1000, &data);
    let mut hasher = ftp_shared::message::Hasher::new(DigestAlgorithm::Sha256);
    hasher.update(&data);
    let end = tests::frame_of(&Request::PutEnd {
        digest: hasher.finish(),
    });
    conn.send_raw(&end[..end.len() - 1]).unwrap();
    conn.cut();

    wait_until(POLL_DEADLINE, "no upload temp", || {
        server.upload_temps().is_empty()
    });
    assert_eq!(names(&home), ["old.bin"]);
    assert_eq!(std::fs::read(home.join("old.bin")).unwrap(), old);
    assert!(setup.is_alive());
    for name in ["new.bin", "small.bin", "ended.bin"] {
        match setup.get(name) {
            Err(reply) => {
                errors.expect(reply, ErrorCode::NOT_FOUND, name);
            }
            Ok(d) => panic!("{name} is served with {} bytes", d.len()),
        }
    }
    errors.assert_clean();
    server.assert_healthy();
}

// ---------------------------------------------------------------------------
// Error hygiene, provoked
// ---------------------------------------------------------------------------

#[test]
fn error_replies_reveal_nothing_of_the_host() {
    // A file beside the root, made before the server starts (so that the
    // end-of-scenario check compares with it there).
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let outside: PathBuf = dir.base().join("outside.txt");
    std::fs::write(&outside, b"secret").unwrap();
    let server = dir.start();
    let mut errors = Errors::new(&server);
    let home = server.home("alice");
    let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    assert_eq!(conn.put("file.bin", b"content", None), Response::Ok);
    // Into a directory that does not exist yet; then it does.
    errors.expect(
        conn.put("dir/inner.bin", b"x", None),
        ErrorCode::NOT_FOUND,
        "a put into a missing directory",
    );
    conn.send(&Request::Mkdir {
        path: "dir".into(),
        parents: false,
    })
    .unwrap();
    assert_eq!(conn.expect_reply(), Response::Ok);
    // Special files planted in the home by hand.
    std::os::unix::fs::symlink(&outside, home.join("escape")).unwrap();
    std::os::unix::fs::symlink("../bob", home.join("to-bob")).unwrap();
    std::os::unix::fs::symlink("loop", home.join("loop")).unwrap();
    std::fs::hard_link(home.join("file.bin"), home.join("hard.bin")).unwrap();
    let fifo = Command::new("mkfifo").arg(home.join("fifo")).status();
    let long = "n".repeat(300);
    let deep = vec!["d"; 3000].join("/");

    let gets = [
        "missing.bin",
        "dir",
        "escape",
        "to-bob/x",
        "loop",
        "hard.bin",
        "fifo",
        "file.bin/below",
        "../alice/file.bin",
        "/etc/passwd",
        "a//b",
        "",
        ".",
        "..",
        long.as_str(),
        deep.as_str(),
        "nul\0byte",
    ];
    for path in gets {
        match conn.get(path) {
            Err(reply) => {
                errors.note(reply);
            }
            Ok(data) => {
                assert!(
                    !(path == "escape" || path.contains("bob")),
                    "{path} was served: {data:?}"
                );
            }
        }
        assert!(conn.is_alive(), "after Get {path:?}");
    }
    let puts = [
        "dir",
        "escape",
        "to-bob/x",
        "loop",
        "fifo",
        "file.bin/below",
        "missing-dir/x",
        "../bob/x",
        long.as_str(),
        deep.as_str(),
    ];
    for path in puts {
        for size in [10usize, 100_000] {
            let reply = errors.note(conn.put(path, &random_bytes(51, size), None));
            assert!(
                matches!(reply, Response::Error { .. }),
                "Put {path:?} ({size} bytes): {reply:?}"
            );
            assert!(conn.is_alive(), "after Put {path:?}");
        }
    }
    for (path, parents) in [
        ("file.bin", false),
        ("file.bin/sub", true),
        ("dir", false),
        ("escape/x", true),
        ("to-bob/new", true),
        (long.as_str(), false),
        ("", true),
    ] {
        conn.send(&Request::Mkdir {
            path: path.into(),
            parents,
        })
        .unwrap();
        errors.note(conn.expect_reply());
    }
    // Refusals of the upload itself.
    errors.note(conn.put(
        "digest.bin",
        b"abc",
        Some(ftp_shared::Digest::Sha256([1; 32])),
    ));
    errors.note(conn.put_sized("size.bin", 10, b"abc", None));
    conn.send_put("huge.bin", u64::MAX, 0);
    errors.note(conn.expect_reply());
    conn.send(&Request::PutCancel).unwrap();
    conn.send_put("resume.bin", 100, 50);
    errors.note(conn.expect_reply());
    conn.send(&Request::PutCancel).unwrap();
    assert!(conn.is_alive());
    // Closing errors: a protocol violation and a login on a fresh connection.
    conn.send(&Request::Data(Bytes::from_static(b"stray")))
        .unwrap();
    errors.note_all(&conn.expect_closed());
    let mut fresh = RawConn::connect_hello(&server);
    fresh
        .send(&Request::Mkdir {
            path: "x".into(),
            parents: false,
        })
        .unwrap();
    errors.note_all(&fresh.expect_closed());

    assert!(
        errors.seen.len() >= 30,
        "only {} errors were provoked: {:?}",
        errors.seen.len(),
        errors.seen
    );
    if fifo.is_ok_and(|s| s.success()) {
        assert!(
            errors.seen.iter().any(|(c, _)| *c == ErrorCode::NOT_A_FILE),
            "{:?}",
            errors.seen
        );
    }
    errors.assert_clean();
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    server.assert_healthy();
}

//! The users file rewritten in place (same inode, written slowly in chunks)
//! while users log in: the previous users stay in effect until the file has
//! been left alone for a second, a user the write adds logs in only after
//! that, and a file left half-written is refused (and logged) with the
//! previous users kept.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ftp_server::users::UsersFile;
use ftp_shared::scram::StoredCredentials;
use tests::{
    ALICE_PASSWORD, DEFAULT_USERS, ITERATIONS, POLL_DEADLINE, RawConn, ServerDir, TestServer,
    temp_dir, wait_until, write_users_file,
};

const CAROL_PASSWORD: &str = "carol-written-in-place";
/// How long the server wants a file changed in place left alone.
const SETTLE: Duration = Duration::from_secs(1);

/// Alice logging in again and again from another thread.
struct LoginLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl LoginLoop {
    fn start(server: &TestServer) -> LoginLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let (addr, pin) = (server.addr(), server.fingerprint());
        let thread = {
            let (stop, ok) = (stop.clone(), ok.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut conn = RawConn::connect_addr(addr, pin);
                    conn.hello();
                    match conn.login("alice", ALICE_PASSWORD) {
                        Ok(()) => _ = ok.fetch_add(1, Ordering::Relaxed),
                        Err(reply) => failures.push(format!("{reply:?}")),
                    }
                }
                failures
            })
        };
        LoginLoop {
            stop,
            ok,
            thread: Some(thread),
        }
    }

    fn logins(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits for `n` more successful logins.
    fn wait_logins(&self, n: usize, what: &str) {
        let target = self.logins() + n;
        wait_until(POLL_DEADLINE, what, || self.logins() >= target);
    }

    /// Stops the loop; the replies of the logins that failed.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Whether carol's login succeeds (a fresh connection from 127.0.0.1).
fn carol_logs_in(server: &TestServer) -> bool {
    let mut conn = RawConn::connect_hello(server);
    conn.login("carol", CAROL_PASSWORD).is_ok()
}

/// The lines of the server's log from byte `from` on that contain `text`.
fn logged(server: &TestServer, from: usize, text: &str) -> Vec<String> {
    server.stderr()[from..]
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

/// Overwrites `path` in place (truncate, same inode) with `text` in
/// `chunks` pieces, each flushed to disk, `pause` apart.
fn write_in_place(path: &Path, text: &[u8], chunks: usize, pause: Duration) {
    let inode = std::fs::metadata(path).unwrap().ino();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open the users file in place");
    for (i, piece) in text.chunks(text.len().div_ceil(chunks)).enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        file.sync_data().unwrap();
    }
    assert_eq!(std::fs::metadata(path).unwrap().ino(), inode);
}

#[test]
fn a_users_file_written_in_place_loads_only_once_settled() {
    // The users file lives in another directory, reached through a
    // symlink, so that the end-of-scenario check (nothing outside the root
    // changed) still holds.
    let state = temp_dir("ftp-users-in-place-");
    let users = state.path().join("users.toml");
    write_users_file(&users, DEFAULT_USERS);
    let dir = ServerDir::new();
    symlink(&users, dir.users_path()).unwrap();
    let server = dir.start();
    // The new content: the same file with carol added.
    let mut file = UsersFile::load(&users).unwrap();
    let carol = StoredCredentials::new(CAROL_PASSWORD.as_bytes(), ITERATIONS);
    file.set("carol", &carol).unwrap();
    let next = state.path().join("next-users.toml");
    file.save(&next).unwrap();
    let text = std::fs::read(&next).unwrap();

    let logins = LoginLoop::start(&server);
    logins.wait_logins(3, "alice's first logins");
    assert!(!carol_logs_in(&server), "carol before she was added");

    let log_from = server.stderr().len();
    let before = logins.logins();
    let writing = Instant::now();
    write_in_place(&users, &text, 6, Duration::from_millis(150));
    let written = Instant::now();
    let during = logins.logins() - before;
    // Just written: not settled yet, so carol is not a user yet.
    let early = carol_logs_in(&server);
    eprintln!(
        "wrote {} bytes in 6 chunks in {:?}; {during} logins of alice meanwhile",
        text.len(),
        written - writing
    );
    assert!(during > 0, "no login of alice ran during the write");
    assert!(!early, "carol logged in before the file settled");

    // Alice's logins make the server look again; it loads the file once
    // it has been left alone for SETTLE.
    wait_until(POLL_DEADLINE, "the users file reloaded", || {
        !logged(&server, log_from, "users file reloaded").is_empty()
    });
    let reloaded = written.elapsed();
    eprintln!("reload seen {reloaded:?} after the write finished");
    assert!(
        reloaded + Duration::from_millis(100) >= SETTLE,
        "loaded {reloaded:?} after the write"
    );
    assert!(carol_logs_in(&server), "carol refused after the reload");

    // Left half-written: only the file's first line. The previous users
    // (carol included) stay, and the refusal is logged.
    let log_from = server.stderr().len();
    let first_line = text.split_inclusive(|b| *b == b'\n').next().unwrap();
    write_in_place(&users, first_line, 1, Duration::ZERO);
    let modified = std::fs::metadata(&users).unwrap().modified().unwrap();
    wait_until(POLL_DEADLINE, "the truncated file to settle", || {
        SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age > SETTLE + Duration::from_millis(200))
    });
    // A login after the file settled, so the server has read it whole.
    logins.wait_logins(2, "alice's logins after the file settled");
    assert!(carol_logs_in(&server), "carol lost to a half-written file");
    // Logged once, with its own reason (not "being written").
    let refusals = logged(&server, log_from, "users file not reloaded");
    eprintln!("refusals logged for the truncated file: {refusals:#?}");
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(refusals[0].contains("is not valid"), "{refusals:#?}");
    assert!(logged(&server, log_from, "users file reloaded").is_empty());

    let failed = logins.finish();
    assert!(failed.is_empty(), "logins of alice failed: {failed:?}");
    server.assert_healthy();
}

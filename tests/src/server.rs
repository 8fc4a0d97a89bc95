//! A server under test: [`ServerDir`] (a temp directory with `root/`,
//! `users.toml` and the sentinel `outside/`), [`write_users_file`], and
//! [`TestServer`] (an `ftp-server` process serving that directory on
//! `127.0.0.1:0`, killed on drop).
//!
//! # After each scenario
//!
//! An adversarial test ends with [`TestServer::assert_healthy`] (or, when it
//! needs another user or made `.part` names itself, with the
//! [`HealthCheck`] of [`TestServer::health`]): whatever the scenario threw at
//! the server, the process still runs, nothing outside `root/` changed since
//! it started, no upload temp and no `.part` file is left, and a fresh client
//! logs in and downloads within [`HEALTHY_WITHIN`]. A test that stops the
//! server on purpose ends with [`TestServer::assert_no_debris`] (the checks
//! on disk only).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftp_client::{TlsOptions, Transport};
use ftp_server::users::UsersFile;
use ftp_shared::message::{MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::StoredCredentials;
use ftp_shared::tls::Fingerprint;
use ftp_shared::{ErrorCode, Request, Response};

use crate::bins::server_bin;
use crate::files::{temp_dir, wait_until};
use crate::planted::{Entry, OUTSIDE_SECRET, snapshot};
use crate::raw::RawConn;
use crate::{ALICE_PASSWORD, DEADLINE, DEFAULT_USERS, ITERATIONS, POLL_DEADLINE};

/// How long a fresh client may take, at the end of a scenario, to connect,
/// log in and download the probe file ([`TestServer::assert_healthy`]).
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(2);
/// The file [`TestServer::assert_healthy`] writes in the home of its user
/// (directly on disk, at the end of the scenario, so that no assertion of
/// the test on a listing or a snapshot ever sees it) and downloads.
pub const HEALTH_PROBE: &str = "health-probe.txt";
/// The sentinel beside the root that every [`ServerDir`] starts with
/// (`outside/secret.txt`, holding [`OUTSIDE_SECRET`]).
pub const SENTINEL: &str = "outside/secret.txt";

/// Writes a users file with `users` (name, password) at [`ITERATIONS`].
pub fn write_users_file(path: &Path, users: &[(&str, &str)]) {
    let mut file = UsersFile::new();
    for (name, password) in users {
        file.set(
            name,
            &StoredCredentials::new(password.as_bytes(), ITERATIONS),
        )
        .expect("valid user");
    }
    file.save(path).expect("save the users file");
}

/// A temp directory for a server: `root/` (the storage root), `users.toml`
/// and the sentinel [`SENTINEL`] (`outside/secret.txt`, which no client may
/// ever reach). Tests may add siblings before the server starts (e.g. a
/// configuration file, or the planted tree of [`crate::plant`], whose
/// `outside/` is the same directory).
#[derive(Debug)]
pub struct ServerDir {
    tmp: tempfile::TempDir,
}

impl Default for ServerDir {
    fn default() -> Self {
        ServerDir::new()
    }
}

impl ServerDir {
    /// A directory with the sentinel only (no users file, no root yet).
    pub fn new() -> ServerDir {
        let tmp = temp_dir("ftp-test-");
        let sentinel = tmp.path().join(SENTINEL);
        std::fs::create_dir_all(sentinel.parent().unwrap()).expect("mkdir outside/");
        std::fs::write(&sentinel, OUTSIDE_SECRET).expect("write the sentinel");
        ServerDir { tmp }
    }

    /// A directory whose users file holds `users`.
    pub fn with_users(users: &[(&str, &str)]) -> ServerDir {
        let dir = ServerDir::new();
        write_users_file(&dir.users_path(), users);
        dir
    }

    pub fn base(&self) -> &Path {
        self.tmp.path()
    }

    pub fn root(&self) -> PathBuf {
        self.base().join("root")
    }

    pub fn users_path(&self) -> PathBuf {
        self.base().join("users.toml")
    }

    /// Starts a server on this directory.
    pub fn start(self) -> TestServer {
        TestServer::spawn(self, &[])
    }

    /// Starts a server on this directory with extra `serve` options
    /// (e.g. `--max-connections 2`).
    pub fn start_args(self, args: &[&str]) -> TestServer {
        TestServer::spawn(self, args)
    }

    /// Writes `text` to `config.toml` in this directory and returns its path,
    /// for `--config` (relative paths in it are relative to this directory).
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.base().join("config.toml");
        std::fs::write(&path, text).expect("write the configuration file");
        path
    }
}

/// A started `ftp-server` process: the child, its address, what it printed
/// before `listening on`, and its stderr as it arrives.
#[derive(Debug)]
struct Launched {
    child: Child,
    addr: SocketAddr,
    fingerprint: Option<Fingerprint>,
    startup: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// A running `ftp-server` on `127.0.0.1:<free port>`. Dropping it kills the process.
#[derive(Debug)]
pub struct TestServer {
    dir: ServerDir,
    child: Child,
    addr: SocketAddr,
    fingerprint: Option<Fingerprint>,
    startup: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    status: Option<ExitStatus>,
    /// Everything outside `root/` when the server first started.
    outside_root: BTreeMap<PathBuf, Entry>,
    /// The `.part` names in the homes when the server first started (put
    /// there by the test itself).
    planted_parts: Vec<PathBuf>,
}

impl TestServer {
    /// A server with alice and bob ([`DEFAULT_USERS`]).
    pub fn start() -> TestServer {
        TestServer::start_with(DEFAULT_USERS)
    }

    /// A server whose users file holds `users` (name, password).
    pub fn start_with(users: &[(&str, &str)]) -> TestServer {
        ServerDir::with_users(users).start()
    }

    fn spawn(dir: ServerDir, args: &[&str]) -> TestServer {
        let Launched {
            child,
            addr,
            fingerprint,
            startup,
            stderr,
        } = launch(&dir, args);
        let outside_root = outside_root(dir.base());
        let planted_parts = parts_in_homes(&dir.root());
        TestServer {
            dir,
            child,
            addr,
            fingerprint,
            startup,
            stderr,
            status: None,
            outside_root,
            planted_parts,
        }
    }

    /// Kills the server (SIGKILL, if it still runs) and starts a new one on
    /// the same directory with `args` (see [`ServerDir::start_args`]). The
    /// new process listens on a new port: use [`TestServer::addr`] again.
    /// The checks of [`TestServer::assert_healthy`] still compare with the
    /// directory as the first process found it.
    pub fn restart(&mut self, args: &[&str]) {
        self.kill();
        let Launched {
            child,
            addr,
            fingerprint,
            startup,
            stderr,
        } = launch(&self.dir, args);
        self.child = child;
        self.addr = addr;
        self.fingerprint = fingerprint;
        self.startup = startup;
        self.stderr = stderr;
        self.status = None;
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fingerprint of the certificate the server printed at its start
    /// (`None` for a server in plaintext mode).
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.fingerprint
    }

    /// What a library client uses to reach this server: TLS trusting
    /// exactly its certificate, or plaintext when the server runs so.
    pub fn transport(&self) -> Transport {
        match self.fingerprint {
            Some(fp) => Transport::Tls(TlsOptions::pinned(fp)),
            None => Transport::InsecurePlaintext,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `USER@127.0.0.1:PORT`, as the client's command line takes it.
    pub fn target(&self, user: &str) -> String {
        format!("{user}@{}", self.addr)
    }

    /// The temp directory holding `root/` and `users.toml`.
    pub fn base(&self) -> &Path {
        self.dir.base()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.root()
    }

    pub fn users_path(&self) -> PathBuf {
        self.dir.users_path()
    }

    /// The home of `user` (created by the server at the user's first login).
    pub fn home(&self, user: &str) -> PathBuf {
        self.root().join(user)
    }

    /// The temp area of uploads in progress.
    pub fn incoming(&self) -> PathBuf {
        self.root().join(".incoming")
    }

    /// The names in `root/.incoming`.
    pub fn incoming_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.incoming())
            .expect("read .incoming")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The names of upload temps (`*.part`) in `root/.incoming`; none when
    /// there is no `.incoming` at all.
    fn temps_if_any(&self) -> Vec<String> {
        if self.incoming().symlink_metadata().is_err() {
            return Vec::new();
        }
        self.upload_temps()
    }

    /// The temp files of uploads in progress (`*.part` in `root/.incoming`).
    pub fn upload_temps(&self) -> Vec<String> {
        let mut names = self.incoming_entries();
        names.retain(|n| n.ends_with(".part"));
        names
    }

    /// The sizes of the kept parts of interrupted uploads (`*.partial`).
    pub fn kept_partials(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self
            .incoming_entries()
            .iter()
            .filter(|n| n.ends_with(".partial"))
            .map(|n| {
                std::fs::metadata(self.incoming().join(n))
                    .expect("stat")
                    .len()
            })
            .collect();
        sizes.sort();
        sizes
    }

    /// Polls until no upload is in progress and the kept parts of
    /// interrupted uploads have the sizes `kept` (sorted).
    #[track_caller]
    pub fn wait_uploads_settled(&self, kept: &[u64]) {
        wait_until(
            POLL_DEADLINE,
            "the cut upload to be kept for a resume",
            || self.upload_temps().is_empty() && self.kept_partials() == kept,
        );
    }

    /// Polls until `root/.incoming` is empty; panics after [`POLL_DEADLINE`].
    #[track_caller]
    pub fn wait_incoming_empty(&self) {
        wait_until(POLL_DEADLINE, "root/.incoming to become empty", || {
            self.incoming_entries().is_empty()
        });
    }

    /// The lines the server printed on stdout before `listening on`.
    pub fn startup_output(&self) -> &[String] {
        &self.startup
    }

    /// Everything the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident set size of the server, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(status) => {
                self.status = Some(status);
                false
            }
            None => true,
        }
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the server to exit; `None` if it still runs after `deadline`
    /// (it is then left running; Drop kills it).
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if !self.is_running() {
                return self.status;
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes what is outside `root/` now as the state the health check
    /// compares with, after the scenario itself changed it (say, the users
    /// file through `ftp-server user ...`).
    pub fn outside_root_changed_by_test(&mut self) {
        self.outside_root = outside_root(self.base());
    }

    /// The end-of-scenario check as alice (see [`HealthCheck`]).
    #[track_caller]
    pub fn assert_healthy(&self) {
        self.health().assert();
    }

    /// The checks on disk of [`TestServer::assert_healthy`], for a scenario
    /// that ends with the server stopped on purpose (SIGTERM, SIGKILL):
    /// nothing outside `root/` changed, no upload temp (`*.part` in
    /// `root/.incoming`) and no `.part` name in a home is left.
    #[track_caller]
    pub fn assert_no_debris(&self) {
        self.health().assert_no_debris();
    }

    /// An end-of-scenario check to adjust ([`HealthCheck::user`],
    /// [`HealthCheck::allow_part`]) before [`HealthCheck::assert`].
    pub fn health(&self) -> HealthCheck<'_> {
        HealthCheck {
            server: self,
            user: "alice".into(),
            password: ALICE_PASSWORD.into(),
            allowed_parts: self.planted_parts.clone(),
        }
    }

    /// Whether the process still runs, without reaping it (`&self`): its
    /// `/proc` entry exists and is not a zombie.
    fn process_alive(&self) -> bool {
        if self.status.is_some() {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return false;
        };
        // `PID (COMM) STATE ...`: COMM may hold spaces and parentheses.
        let state = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next());
        !matches!(state, None | Some("Z" | "X" | "x"))
    }

    /// The last lines of the server's log, for a failure message.
    fn log_tail(&self) -> String {
        let log = self.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// What [`TestServer::assert_healthy`] checks at the end of a scenario, with
/// the user it logs in as and the `.part` names the test made on purpose:
///
/// 1. the server process still runs;
/// 2. nothing outside `root/` changed since the server first started (the
///    users file, configuration files, the sentinel [`SENTINEL`] and any
///    planted tree beside the root);
/// 3. no upload temp (`*.part` in `root/.incoming`) remains, polled for
///    [`POLL_DEADLINE`] since a just-cut upload may still be cleaning up;
///    the kept parts of interrupted uploads (`*.partial`) are allowed;
/// 4. no name in a home ends in `.part`, except those planted before the
///    server started and those given to [`HealthCheck::allow_part`];
/// 5. a fresh connection says hello, logs in, has a request answered (after
///    which the server has opened the home, creating it if needed) and
///    downloads [`HEALTH_PROBE`] (written directly in the user's home just
///    before) byte for byte within [`HEALTHY_WITHIN`].
///    A `BUSY` answer to the hello (a slot given back asynchronously by a
///    connection the test just closed) is retried for [`POLL_DEADLINE`]; the
///    clock starts at the connection that is admitted.
///
/// The probe is the only trace the check leaves; it is written when the
/// scenario's own assertions are done, so no listing or snapshot sees it.
#[derive(Debug)]
#[must_use = "a health check does nothing until `assert`"]
pub struct HealthCheck<'a> {
    server: &'a TestServer,
    user: String,
    password: String,
    allowed_parts: Vec<PathBuf>,
}

impl HealthCheck<'_> {
    /// Logs in as `user` instead of alice (e.g. when alice is locked out, or
    /// the server has other users).
    pub fn user(mut self, user: &str, password: &str) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// Allows a `.part` name the test made on purpose, relative to `root/`
    /// (e.g. `alice/x.part`).
    pub fn allow_part(mut self, path: impl Into<PathBuf>) -> Self {
        self.allowed_parts.push(path.into());
        self
    }

    /// Runs every check; panics with what failed.
    #[track_caller]
    pub fn assert(self) {
        let server = self.server;
        assert!(
            server.process_alive(),
            "health: the server is not running; log:\n{}",
            server.log_tail()
        );
        self.assert_no_debris();
        self.assert_serves();
        assert!(
            server.process_alive(),
            "health: the server died during the check; log:\n{}",
            server.log_tail()
        );
    }

    /// Checks 2 to 4 only (the disk), for a server stopped on purpose.
    #[track_caller]
    pub fn assert_no_debris(&self) {
        let problems = self.debris(POLL_DEADLINE);
        assert!(problems.is_empty(), "health: {}", problems.join("; "));
    }

    /// What checks 2 to 4 find wrong, waiting up to `temps_deadline` for the
    /// upload temps to go.
    fn debris(&self, temps_deadline: Duration) -> Vec<String> {
        let server = self.server;
        let mut problems = Vec::new();
        let now = outside_root(server.base());
        if now != server.outside_root {
            problems.push(format!(
                "something outside root/ changed: {}",
                describe_changes(&server.outside_root, &now)
            ));
        }
        if std::fs::read(server.base().join(SENTINEL)).ok().as_deref() != Some(OUTSIDE_SECRET) {
            problems.push(format!("the sentinel {SENTINEL} changed"));
        }
        let end = Instant::now() + temps_deadline;
        loop {
            let temps = server.temps_if_any();
            if temps.is_empty() {
                break;
            }
            if Instant::now() >= end {
                problems.push(format!(
                    "upload temps still in root/.incoming after {temps_deadline:?}: {temps:?}"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut parts = parts_in_homes(&server.root());
        parts.retain(|p| !self.allowed_parts.contains(p));
        if !parts.is_empty() {
            problems.push(format!("`.part` names visible in a home: {parts:?}"));
        }
        problems
    }

    /// Check 5: a fresh client logs in and downloads the probe in time.
    #[track_caller]
    fn assert_serves(&self) {
        let server = self.server;
        let (user, password) = (self.user.as_str(), self.password.as_str());
        let admission_end = Instant::now() + POLL_DEADLINE;
        let (mut conn, started) = loop {
            let started = Instant::now();
            let mut conn = RawConn::connect(server);
            conn.send(&Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            })
            .expect("health: send hello");
            match conn.recv() {
                Some(Response::Hello { .. }) => break (conn, started),
                Some(Response::Error { code, .. })
                    if code == ErrorCode::BUSY && Instant::now() < admission_end =>
                {
                    // Polling a slot being given back, not guessing readiness.
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!(
                    "health: a fresh connection was not greeted: {other:?}; log:\n{}",
                    server.log_tail()
                ),
            }
        };
        conn.login(user, password)
            .unwrap_or_else(|r| panic!("health: a fresh login as {user} failed: {r:?}"));
        // The server opens (and, the first time, creates) the home after
        // AuthOk: once a request is answered, it is there.
        assert!(
            conn.is_alive(),
            "health: the server closed a fresh session of {user}"
        );
        let probe = format!("health probe of {user} on {}\n", server.addr()).into_bytes();
        std::fs::write(server.home(user).join(HEALTH_PROBE), &probe)
            .unwrap_or_else(|e| panic!("health: cannot write the probe in {user}'s home: {e}"));
        let got = conn
            .get(HEALTH_PROBE)
            .unwrap_or_else(|r| panic!("health: {user} cannot download the probe: {r:?}"));
        let took = started.elapsed();
        assert!(got == probe, "health: the probe came back different");
        assert!(
            took < HEALTHY_WITHIN,
            "health: a fresh login and download took {took:?}"
        );
        let _ = conn.send(&Request::Quit);
    }
}

/// Everything in the server's directory outside `root/` (the root itself is
/// skipped even when it is a symlink).
fn outside_root(base: &Path) -> BTreeMap<PathBuf, Entry> {
    // The server keeps its saved login locks beside the users file.
    snapshot(base, &[Path::new("root"), Path::new("users.toml.locks")])
}

/// The paths (relative to `root`) of the entries below a home whose name
/// ends in `.part`; `root/.incoming` is not a home. Symlinks are not followed.
fn parts_in_homes(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new(".incoming") {
                continue;
            }
            if entry.file_name().to_string_lossy().ends_with(".part") {
                out.push(rel);
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The paths added, removed or changed between two snapshots.
fn describe_changes(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) -> String {
    let mut changes = Vec::new();
    for (path, entry) in before {
        match after.get(path) {
            None => changes.push(format!("removed {}", path.display())),
            Some(now) if now != entry => changes.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changes.push(format!("added {}", path.display()));
    }
    changes.join(", ")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `ftp-server serve ARGS` on `dir` and waits for `listening on`.
fn launch(dir: &ServerDir, args: &[&str]) -> Launched {
    let mut child = Command::new(server_bin())
        .arg("serve")
        .args(args)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--root")
        .arg(dir.root())
        .arg("--users")
        .arg(dir.users_path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ftp-server");

    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut pipe = child.stderr.take().expect("piped stderr");
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });

    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the pipe never fills.
                continue;
            }
        }
    });

    let end = Instant::now() + DEADLINE;
    let mut startup = Vec::new();
    let addr = loop {
        let left = end.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    break addr.trim().parse().expect("address after 'listening on'");
                }
                startup.push(line);
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
                panic!(
                    "the server did not print 'listening on' ({e:?}); stdout so far: {startup:?}\nstderr:\n{log}"
                );
            }
        }
    };
    let fingerprint = startup.iter().find_map(|line| {
        line.strip_prefix("TLS certificate fingerprint: ")
            .map(|fp| {
                fp.parse()
                    .expect("a fingerprint after 'TLS certificate fingerprint: '")
            })
    });
    Launched {
        child,
        addr,
        fingerprint,
        startup,
        stderr,
    }
}

/// The end-of-scenario check catches what it is meant to catch.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_server_is_healthy_and_only_the_probe_is_left() {
        let server = TestServer::start();
        server.assert_healthy();
        server.health().user("bob", crate::BOB_PASSWORD).assert();
        for user in ["alice", "bob"] {
            let names: Vec<_> = std::fs::read_dir(server.home(user))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, [HEALTH_PROBE], "{user}'s home");
        }
        // Twice in a row is fine (the probe is rewritten).
        server.assert_healthy();
    }

    #[test]
    fn changes_outside_the_root_are_found() {
        let server = TestServer::start();
        std::fs::write(server.base().join("stray.txt"), b"x").unwrap();
        std::fs::write(server.users_path(), b"# emptied\n").unwrap();
        std::fs::remove_file(server.base().join(SENTINEL)).unwrap();
        let problems = server.health().debris(Duration::ZERO);
        let all = problems.join("; ");
        for needle in [
            "added stray.txt",
            "changed users.toml",
            "removed outside/secret.txt",
            "the sentinel",
        ] {
            assert!(all.contains(needle), "{needle:?} not in {all:?}");
        }
    }

    #[test]
    fn part_files_and_lingering_temps_are_found() {
        let server = TestServer::start();
        server.assert_healthy();
        std::fs::create_dir(server.home("alice").join("sub.part")).unwrap();
        std::fs::write(server.home("alice").join("sub.part/x.part"), b"x").unwrap();
        std::fs::write(server.incoming().join("alice.0123456789abcdef.part"), b"x").unwrap();
        std::fs::write(server.incoming().join("alice.0123.partial"), b"x").unwrap();
        let all = server.health().debris(Duration::from_millis(50)).join("; ");
        assert!(all.contains("alice.0123456789abcdef.part\""), "{all}");
        assert!(!all.contains("partial"), "{all}");
        assert!(all.contains("alice/sub.part\""), "{all}");
        assert!(all.contains("alice/sub.part/x.part\""), "{all}");

        // A temp that goes away while polled, and `.part` names the test
        // made on purpose, pass.
        let temp = server.incoming().join("alice.0123456789abcdef.part");
        let cleanup = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::remove_file(temp).unwrap();
        });
        server
            .health()
            .allow_part("alice/sub.part")
            .allow_part("alice/sub.part/x.part")
            .assert();
        cleanup.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "health: the server is not running")]
    fn a_dead_server_is_found() {
        let server = TestServer::start();
        let status = Command::new("kill")
            .arg("-KILL")
            .arg(server.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        wait_until(POLL_DEADLINE, "the server to die", || {
            !server.process_alive()
        });
        server.assert_healthy();
    }
}

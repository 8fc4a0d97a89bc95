//! A server under test: [`ServerDir`] (a temp directory with `root/` and
//! `users.toml`), [`write_users_file`], and [`TestServer`] (an `ftp-server`
//! process serving that directory on `127.0.0.1:0`, killed on drop).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftp_server::users::UsersFile;
use ftp_shared::scram::StoredCredentials;

use crate::bins::server_bin;
use crate::files::{temp_dir, wait_until};
use crate::{DEADLINE, DEFAULT_USERS, ITERATIONS, POLL_DEADLINE};

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

/// A temp directory for a server: `root/` (the storage root) and `users.toml`.
/// Tests may add siblings (e.g. `outside/`) to check that nothing leaks there.
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
    /// An empty directory (no users file yet).
    pub fn new() -> ServerDir {
        ServerDir {
            tmp: temp_dir("ftp-test-"),
        }
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
    startup: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// A running `ftp-server` on `127.0.0.1:<free port>`. Dropping it kills the process.
#[derive(Debug)]
pub struct TestServer {
    dir: ServerDir,
    child: Child,
    addr: SocketAddr,
    startup: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    status: Option<ExitStatus>,
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
            startup,
            stderr,
        } = launch(&dir, args);
        TestServer {
            dir,
            child,
            addr,
            startup,
            stderr,
            status: None,
        }
    }

    /// Kills the server (SIGKILL, if it still runs) and starts a new one on
    /// the same directory with `args` (see [`ServerDir::start_args`]). The
    /// new process listens on a new port: use [`TestServer::addr`] again.
    pub fn restart(&mut self, args: &[&str]) {
        self.kill();
        let Launched {
            child,
            addr,
            startup,
            stderr,
        } = launch(&self.dir, args);
        self.child = child;
        self.addr = addr;
        self.startup = startup;
        self.stderr = stderr;
        self.status = None;
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    Launched {
        child,
        addr,
        startup,
        stderr,
    }
}

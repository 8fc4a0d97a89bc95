//! Harness of the integration tests: the real `ftp-server` and `ftp-client`
//! binaries, started as processes on fresh temp directories, and a raw
//! protocol connection for tests that must send what no well-behaved client
//! would.
//!
//! - [`server_bin`] / [`client_bin`]: the binaries, built once per test
//!   process with `escargot` (the same profile as the tests).
//! - [`ServerDir`] / [`TestServer`]: a temp directory holding `root/` and
//!   `users.toml`, and a server process serving it on `127.0.0.1:0`.
//! - [`ClientEnv`]: `ftp-client` commands with their own `XDG_CONFIG_HOME`,
//!   `HOME` and working directory, run with a deadline.
//! - [`RawConn`]: frames in and out of a plain TCP stream, SCRAM login by hand,
//!   and the exact bytes of every reply.
//! - Helpers: [`login`] (library client), [`write_random_file`],
//!   [`files_equal`], [`snapshot`], [`wait_until`], [`hostile_paths`].
//!
//! Every wait has a deadline; nothing sleeps to guess readiness.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ftp_client::{Client, Secret};
use ftp_server::users::UsersFile;
use ftp_shared::codec::{LENGTH_PREFIX, MAX_FRAME, decode_body, encode_frame};
use ftp_shared::message::{CHUNK_SIZE, Hasher, MAGIC, PROTOCOL_VERSION};
use ftp_shared::scram::{ClientFirst, ScramKeys, StoredCredentials};
use ftp_shared::{Digest, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

/// PBKDF2 iterations of every test user (the minimum the server accepts).
pub const ITERATIONS: u32 = 4096;
/// Alice's password in the default users file.
pub const ALICE_PASSWORD: &str = "alice-correct-horse-battery";
/// Bob's password in the default users file.
pub const BOB_PASSWORD: &str = "bob-staple-9f2c";
/// The users of [`TestServer::start`].
pub const DEFAULT_USERS: &[(&str, &str)] = &[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)];
/// Deadline for a process to start, a command to finish, a reply to come.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Deadline for a condition polled on disk (e.g. a temp file going away).
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);
/// How long [`RawConn`] waits for one reply before failing the test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- binaries

/// Builds the binary of `package` in the profile of the tests. No `--target`:
/// the binary lands in the usual `target/<profile>/` and reuses the
/// dependencies `cargo test` just built (an explicit `--target` would put it
/// in `target/<triple>/` and rebuild every dependency a second time).
fn build(package: &str) -> PathBuf {
    let run = escargot::CargoBuild::new()
        .package(package)
        .bin(package)
        .current_release()
        .run()
        .unwrap_or_else(|e| panic!("cannot build {package}: {e}"));
    run.path().to_path_buf()
}

/// The `ftp-server` binary, built once per test process.
pub fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("ftp-server"))
}

/// The `ftp-client` binary, built once per test process.
pub fn client_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("ftp-client"))
}

// ---------------------------------------------------------------- processes

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code (panics if the process was killed by a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "command failed: {self:#?}");
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.status.code(), Some(code), "unexpected exit: {self:#?}");
        self
    }
}

/// Reads a pipe to its end on a thread; the result comes on the receiver.
fn drain<R: Read + Send + 'static>(mut pipe: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for `child` to exit within `deadline`; kills it and returns `None` if it does not.
pub fn wait_child(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to completion with `stdin` as its standard input (none when
/// `None`), within [`DEADLINE`].
pub fn run_cmd(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if let Some(input) = stdin {
        let mut pipe: ChildStdin = child.stdin.take().expect("piped stdin");
        // The command may exit without reading; a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_child(&mut child, DEADLINE);
    let stdout = String::from_utf8_lossy(&out.recv().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.recv().unwrap_or_default()).into_owned();
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => {
            panic!("{shown} did not finish within {DEADLINE:?}\nstdout: {stdout}\nstderr: {stderr}")
        }
    }
}

/// `ftp-server ARGS...`, for the `user` subcommands.
pub fn server_cmd() -> Command {
    let mut cmd = Command::new(server_bin());
    cmd.env_remove("RUST_LOG");
    cmd
}

// ---------------------------------------------------------------- users

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

// ---------------------------------------------------------------- server

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
        let tmp = tempfile::Builder::new()
            .prefix("ftp-test-")
            .tempdir()
            .expect("temp dir");
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
        TestServer {
            dir,
            child,
            addr,
            startup,
            stderr,
            status: None,
        }
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

// ---------------------------------------------------------------- client CLI

/// A private environment for `ftp-client`: its own config directory
/// (`XDG_CONFIG_HOME`), `HOME` and working directory, no `FTP_PASSWORD`.
#[derive(Debug)]
pub struct ClientEnv {
    tmp: tempfile::TempDir,
}

impl Default for ClientEnv {
    fn default() -> Self {
        ClientEnv::new()
    }
}

impl ClientEnv {
    pub fn new() -> ClientEnv {
        let tmp = tempfile::Builder::new()
            .prefix("ftp-client-test-")
            .tempdir()
            .expect("temp dir");
        for d in ["config", "home", "work"] {
            std::fs::create_dir(tmp.path().join(d)).expect("mkdir");
        }
        ClientEnv { tmp }
    }

    /// The working directory of the commands, for local files.
    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// Where `ftp-client login` saves its keys.
    pub fn credentials_path(&self) -> PathBuf {
        self.tmp
            .path()
            .join("config")
            .join("ftp-client")
            .join("credentials.toml")
    }

    /// `ftp-client ARGS...` in this environment.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(client_bin());
        cmd.args(args)
            .current_dir(self.work())
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("HOME", self.tmp.path().join("home"))
            .env_remove("FTP_PASSWORD")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs `ftp-client ARGS...` with no standard input.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_cmd(self.cmd(args), None)
    }

    /// Runs `ftp-client ARGS...` with `stdin` as standard input.
    pub fn run_stdin<I, S>(&self, args: I, stdin: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_cmd(self.cmd(args), Some(stdin))
    }

    /// `ftp-client login TARGET --password-stdin`, which must succeed.
    pub fn login(&self, target: &str, password: &str) {
        self.run_stdin(
            ["login", target, "--password-stdin"],
            &format!("{password}\n"),
        )
        .assert_success();
    }
}

// ---------------------------------------------------------------- library client

/// A library client logged in as `user`.
pub async fn login(server: &TestServer, user: &str, password: &str) -> Client {
    let mut client = Client::connect(server.addr())
        .await
        .expect("connect to the server");
    client
        .login(user, Secret::Password(password))
        .await
        .unwrap_or_else(|e| panic!("login as {user}: {e}"));
    client
}

/// A progress callback that ignores progress.
pub fn no_progress() -> impl FnMut(u64, u64) + Send {
    |_, _| {}
}

// ---------------------------------------------------------------- raw protocol

/// The frame (length prefix and body) holding `msg`.
pub fn frame_of<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf).expect("encode a frame");
    buf.to_vec()
}

/// Writes one frame holding `msg`.
pub fn write_msg<T: Serialize>(stream: &mut TcpStream, msg: &T) -> std::io::Result<()> {
    stream.write_all(&frame_of(msg))
}

/// Reads one whole frame (length prefix included); `None` at EOF or reset.
/// Panics on a timeout or a length over [`MAX_FRAME`].
pub fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    if let Err(e) = stream.read_exact(&mut prefix) {
        return closed_or_panic(e);
    }
    let len = u32::from_be_bytes(prefix) as usize;
    assert!(len <= MAX_FRAME, "the peer sent a frame of {len} bytes");
    let mut frame = vec![0u8; LENGTH_PREFIX + len];
    frame[..LENGTH_PREFIX].copy_from_slice(&prefix);
    if let Err(e) = stream.read_exact(&mut frame[LENGTH_PREFIX..]) {
        return closed_or_panic(e);
    }
    Some(frame)
}

fn closed_or_panic<T>(e: std::io::Error) -> Option<T> {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => None,
        WouldBlock | TimedOut => panic!("no frame within {READ_TIMEOUT:?}"),
        _ => panic!("read failed: {e}"),
    }
}

/// Reads and decodes one message; `None` at EOF.
pub fn read_msg<T: DeserializeOwned>(stream: &mut TcpStream) -> Option<T> {
    read_frame(stream)
        .map(|f| decode_body(&f[LENGTH_PREFIX..]).expect("a well-formed message from the peer"))
}

/// A raw connection to the server: whatever frames or bytes a test wants to send.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
}

/// What a recorded successful login sent.
#[derive(Debug, Clone)]
pub struct RecordedLogin {
    pub client_first: String,
    pub client_final: String,
}

impl RawConn {
    /// Connects (no hello yet). Reads time out after [`READ_TIMEOUT`].
    pub fn connect(server: &TestServer) -> RawConn {
        RawConn::connect_addr(server.addr())
    }

    pub fn connect_addr(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RawConn { stream }
    }

    /// Connects and exchanges hellos.
    pub fn connect_hello(server: &TestServer) -> RawConn {
        let mut conn = RawConn::connect(server);
        conn.hello();
        conn
    }

    /// Connects, exchanges hellos and logs in (which must succeed).
    pub fn connect_login(server: &TestServer, user: &str, password: &str) -> RawConn {
        let mut conn = RawConn::connect_hello(server);
        conn.login(user, password)
            .unwrap_or_else(|r| panic!("raw login as {user}: {r:?}"));
        conn
    }

    /// Sends one request; an error means the server closed the connection.
    pub fn send(&mut self, request: &Request) -> std::io::Result<()> {
        write_msg(&mut self.stream, request)
    }

    /// Sends arbitrary bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next reply, decoded; `None` when the server closed the connection.
    pub fn recv(&mut self) -> Option<Response> {
        read_msg(&mut self.stream)
    }

    /// The next reply as the exact bytes of its frame (length prefix included).
    pub fn recv_raw(&mut self) -> Option<Vec<u8>> {
        read_frame(&mut self.stream)
    }

    /// The next reply, which must be there.
    #[track_caller]
    pub fn expect_reply(&mut self) -> Response {
        self.recv()
            .expect("a reply, but the server closed the connection")
    }

    /// Reads until the server closes the connection (within [`READ_TIMEOUT`]
    /// per frame), returning the replies received on the way.
    pub fn expect_closed(&mut self) -> Vec<Response> {
        let mut replies = Vec::new();
        while let Some(r) = self.recv() {
            replies.push(r);
            assert!(replies.len() < 10_000, "the server keeps talking");
        }
        replies
    }

    /// Whether the server still answers: sends an invalid `Mkdir` (an empty
    /// path) and expects a reply. Only valid after login.
    pub fn is_alive(&mut self) -> bool {
        if self
            .send(&Request::Mkdir {
                path: String::new(),
                parents: true,
            })
            .is_err()
        {
            return false;
        }
        self.recv().is_some()
    }

    /// Sends `Hello` with the current version and expects the server's hello.
    #[track_caller]
    pub fn hello(&mut self) {
        self.send(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        })
        .expect("send hello");
        match self.recv() {
            Some(Response::Hello { version, .. }) => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("expected the server's hello, got {other:?}"),
        }
    }

    /// A full SCRAM login. `Err` holds the server's reply when it is not `AuthOk`.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), Response> {
        self.login_recorded(user, password).map(|_| ())
    }

    /// A full SCRAM login that returns the messages the client sent, for replaying.
    /// The server's signature is verified.
    pub fn login_recorded(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<RecordedLogin, Response> {
        let first = ClientFirst::new(user);
        let client_first = first.message();
        self.send(&Request::AuthStart {
            client_first: client_first.clone(),
        })
        .expect("send AuthStart");
        let server_first = match self.recv() {
            Some(Response::AuthChallenge { server_first }) => server_first,
            Some(other) => return Err(other),
            None => panic!("the server closed the connection instead of a challenge"),
        };
        let challenge = first
            .handle_server_first(&server_first)
            .expect("a valid server-first-message");
        let keys = ScramKeys::derive(
            password.as_bytes(),
            challenge.salt(),
            challenge.iterations(),
        );
        let (last, client_final) = challenge.finish(&keys);
        self.send(&Request::AuthFinish {
            client_final: client_final.clone(),
        })
        .expect("send AuthFinish");
        match self.recv() {
            Some(Response::AuthOk { server_final }) => {
                last.verify_server_final(&server_final)
                    .expect("the server proves it knows the verifier");
                Ok(RecordedLogin {
                    client_first,
                    client_final,
                })
            }
            Some(other) => Err(other),
            None => panic!("the server closed the connection instead of answering the login"),
        }
    }

    /// Sends `Put { path, size: data.len() }`, the data in [`CHUNK_SIZE`]
    /// frames and `PutEnd` with `digest` (the true digest when `None`), and
    /// returns the reply. Must be logged in.
    pub fn put(&mut self, path: &str, data: &[u8], digest: Option<Digest>) -> Response {
        self.send(&Request::Put {
            path: path.into(),
            size: data.len() as u64,
        })
        .expect("send Put");
        let mut hasher = Hasher::new();
        for chunk in data.chunks(CHUNK_SIZE) {
            hasher.update(chunk);
            self.send(&Request::Data(ByteBuf::from(chunk.to_vec())))
                .expect("send Data");
        }
        let digest = digest.unwrap_or_else(|| hasher.finish());
        self.send(&Request::PutEnd { digest }).expect("send PutEnd");
        self.expect_reply()
    }

    /// Sends `Get { path }` and collects the file; `Err` holds the refusal.
    /// Must be logged in.
    pub fn get(&mut self, path: &str) -> Result<Vec<u8>, Response> {
        self.send(&Request::Get { path: path.into() })
            .expect("send Get");
        let size = match self.expect_reply() {
            Response::FileStart { size } => size,
            other => return Err(other),
        };
        let mut data = Vec::new();
        let mut hasher = Hasher::new();
        loop {
            match self.expect_reply() {
                Response::Data(chunk) => {
                    hasher.update(&chunk);
                    data.extend_from_slice(&chunk);
                }
                Response::FileEnd { digest } => {
                    assert_eq!(data.len() as u64, size, "{path}: size");
                    assert_eq!(digest, hasher.finish(), "{path}: digest");
                    return Ok(data);
                }
                other => return Err(other),
            }
        }
    }

    /// Closes both directions at once (an abrupt cut, as far as TCP allows).
    pub fn cut(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

// ---------------------------------------------------------------- files

/// A fast deterministic PRNG (xorshift64*), good enough for test data.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// `len` pseudo-random bytes from `seed`.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    XorShift::new(seed).fill(&mut buf);
    buf
}

/// Writes `len` pseudo-random bytes from `seed` to `path`, a MiB at a time.
pub fn write_random_file(path: &Path, seed: u64, len: u64) {
    let mut rng = XorShift::new(seed);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        file.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    file.flush().expect("flush");
}

/// Whether two files have the same bytes (compared a MiB at a time).
pub fn files_equal(a: &Path, b: &Path) -> bool {
    let open = |p: &Path| std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a), open(b));
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// One entry of a [`snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other(String),
}

/// Everything under `base` (relative path -> entry), except the relative
/// paths in `skip` and what is beneath them. Symlinks are not followed.
pub fn snapshot(base: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, skip: &[&Path], out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if skip.iter().any(|s| rel == *s) {
                continue;
            }
            let ft = path.symlink_metadata().expect("lstat").file_type();
            let e = if ft.is_symlink() {
                Entry::Symlink(std::fs::read_link(&path).expect("readlink"))
            } else if ft.is_dir() {
                walk(base, &path, skip, out);
                Entry::Dir
            } else if ft.is_file() {
                Entry::File(std::fs::read(&path).expect("read"))
            } else {
                Entry::Other(format!("{ft:?}"))
            };
            out.insert(rel, e);
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, skip, &mut out);
    out
}

/// Polls `cond` every 10 ms until it holds; panics after `deadline`.
#[track_caller]
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- hostile paths

/// Decodes a line of `data/hostile-paths.txt`: `\u{..}` is a scalar (a
/// surrogate becomes its WTF-8 bytes), `\x{..}` a raw byte; any other
/// backslash is literal.
pub fn decode_escapes(line: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        let after = &rest[pos + 1..];
        let escape = (after.starts_with("u{") || after.starts_with("x{"))
            .then(|| after[2..].find('}').map(|end| (&after[2..2 + end], end)))
            .flatten()
            .filter(|(hex, _)| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        match escape {
            Some((hex, end)) => {
                let value = u32::from_str_radix(hex, 16).unwrap();
                if after.starts_with('x') {
                    out.push(u8::try_from(value).unwrap());
                } else if let Some(c) = char::from_u32(value) {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                } else {
                    assert!((0xD800..=0xDFFF).contains(&value), "bad scalar {hex}");
                    out.extend_from_slice(&[
                        0xE0 | (value >> 12) as u8,
                        0x80 | ((value >> 6) & 0x3F) as u8,
                        0x80 | (value & 0x3F) as u8,
                    ]);
                }
                rest = &after[2 + end + 1..];
            }
            None => {
                out.push(b'\\');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The hostile paths that are valid UTF-8 (the only ones a `String` path can
/// carry), as (line as written, decoded path).
pub fn hostile_paths() -> Vec<(String, String)> {
    let text = include_str!("../data/hostile-paths.txt");
    let all: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(all.len() > 90, "hostile-paths.txt truncated?");
    all.into_iter()
        .filter_map(|l| {
            String::from_utf8(decode_escapes(l))
                .ok()
                .map(|p| (l.to_owned(), p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_escapes_and_literal_backslashes() {
        assert_eq!(decode_escapes(r"..\outside.txt"), br"..\outside.txt");
        assert_eq!(decode_escapes(r"a\u{0}b"), b"a\0b");
        assert_eq!(decode_escapes(r"caf\u{e9}"), "café".as_bytes());
        assert_eq!(decode_escapes(r"\x{c0}\x{ae}"), [0xC0, 0xAE]);
        let paths = hostile_paths();
        assert!(
            paths
                .iter()
                .any(|(_, p)| p == "../../../../../../../../etc/passwd")
        );
        assert!(paths.iter().all(|(l, _)| !l.contains(r"\x{")));
    }

    #[test]
    fn xorshift_is_deterministic_and_not_constant() {
        let a = random_bytes(7, 1001);
        assert_eq!(a, random_bytes(7, 1001));
        assert_ne!(a, random_bytes(8, 1001));
        assert!(a.iter().filter(|&&b| b == 0).count() < 50);
    }
}

//! The binaries under test and the processes that run them: [`server_bin`] /
//! [`client_bin`] (built once per test process with `escargot`),
//! [`run_cmd`] (a command run to completion within [`DEADLINE`]) and its
//! [`Output`], and [`wait_child`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::DEADLINE;

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

    /// Standard output as JSON lines (`--json`): one object per line.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
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

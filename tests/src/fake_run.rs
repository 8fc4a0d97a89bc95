//! The real client run against a [`FakeServer`]: logged in with its
//! password, pinned to its certificate, with a given `--timeout`; what it
//! printed, how long it took and its peak memory.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ClientEnv;
use crate::fake_server::{FakeServer, PASSWORD};

/// What one run of the client did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The client's peak resident memory (VmHWM), in KiB; 0 when it could
    /// not be read.
    pub peak_kib: u64,
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `ftp-client --timeout SECS ARGS...` logged in to `server`, sampling
/// its peak memory while it runs; killed (and the test failed) after 30 s.
pub fn run_client(env: &ClientEnv, server: &FakeServer, timeout: u64, args: &[&str]) -> Run {
    let out = tempfile::tempdir().expect("a temp dir");
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let timeout = timeout.to_string();
    let mut cmd: Command = env.cmd(
        [
            "--server",
            &server.target(),
            "--pin",
            &server.pin(),
            "--password-stdin",
            "--timeout",
            &timeout,
        ]
        .iter()
        .chain(args),
    );
    cmd.stdin(Stdio::piped())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start the client");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{PASSWORD}").expect("write the password");
    drop(stdin);
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the client ran for more than 30 s: {args:?}");
        }
        // The sampling interval of the memory reading.
        std::thread::sleep(Duration::from_millis(5));
    };
    let run = Run {
        code: status.code().expect("an exit code, not a signal"),
        stdout: std::fs::read_to_string(&stdout).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
        elapsed: start.elapsed(),
        peak_kib: peak,
    };
    eprintln!(
        "{args:?}: exit {} in {:?}, peak {} KiB\nstderr: {}",
        run.code,
        run.elapsed,
        run.peak_kib,
        run.stderr.chars().take(2000).collect::<String>()
    );
    run
}

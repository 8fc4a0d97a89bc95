//! Uploads to a hostile server ([`FakeServer`]): one that stops reading in
//! the middle of an upload, one that reads it all and never answers, and
//! one that reads slowly but steadily. A wait without progress ends the
//! command within the `--timeout` given (and a little), with an error that
//! names the timeout and what was waited for, and exit status 3; a slow
//! transfer that goes on taking bytes is not cut, however long it takes.
//! Against the real server, frozen midway, what it got of the upload is
//! kept and the next `put` resumes it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tests::fake_server::{FakeServer, Misbehaviour};
use tests::files::write_random_file;
use tests::{ClientEnv, DEADLINE, POLL_DEADLINE, alice, files_equal, wait_child, wait_until};

/// More than the socket buffers of both ends hold, so that a server that
/// stops reading stalls the client's writes.
const LARGE: u64 = 64 << 20;
/// How long past its `--timeout` a client that timed out may take to exit.
const GRACE: Duration = Duration::from_secs(3);

use tests::fake_run::{Run, run_client as run};

/// A file of `len` bytes at `path` (zeros: as good as any for the wire,
/// and written at once).
fn zeros(path: &Path, len: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .expect("create a file");
}

/// Asserts that `run` timed out after `limit` seconds, waiting for
/// `waiting`, and exited soon after.
#[track_caller]
fn assert_timed_out(run: &Run, limit: u64, waiting: &str) {
    assert_eq!(run.code, 3, "{}", run.stderr);
    let message = format!("timed out after {limit} s waiting for {waiting}");
    assert!(run.stderr.contains(&message), "{}", run.stderr);
    let limit = Duration::from_secs(limit);
    assert!(run.elapsed >= limit, "{:?}", run.elapsed);
    assert!(run.elapsed < limit + GRACE, "{:?}", run.elapsed);
}

#[test]
fn an_upload_the_server_stops_reading_times_out() {
    let server = FakeServer::start(Misbehaviour::StallPut { after: 1 << 20 });
    let env = ClientEnv::new();
    zeros(&env.work().join("big.bin"), LARGE);
    let run = run(&env, &server, 2, &["put", "big.bin"]);
    assert_timed_out(&run, 2, "the server to take more of the upload of big.bin");
}

#[test]
fn an_upload_never_answered_times_out() {
    let server = FakeServer::start(Misbehaviour::SilentPutEnd);
    let env = ClientEnv::new();
    write_random_file(&env.work().join("file.bin"), 1, 3 << 20);
    let run = run(&env, &server, 2, &["put", "file.bin"]);
    assert_timed_out(
        &run,
        2,
        "the server's reply to the end of the upload of file.bin",
    );
}

#[test]
fn a_pipelined_tree_upload_the_server_stops_reading_times_out() {
    let server = FakeServer::start(Misbehaviour::StallPut { after: 1 << 20 });
    let env = ClientEnv::new();
    let tree = env.work().join("tree");
    std::fs::create_dir(&tree).expect("mkdir");
    // Small files first, answered by nobody; then more than the buffers
    // hold, in two files.
    for name in ["a", "b", "c"] {
        write_random_file(&tree.join(name), 2, 10_000);
    }
    zeros(&tree.join("d"), LARGE / 2);
    zeros(&tree.join("e"), LARGE / 2);
    let run = run(&env, &server, 2, &["put", "-r", "tree"]);
    assert_timed_out(&run, 2, "the server to take more of the upload of tree/d");
}

#[test]
fn a_pipelined_upload_never_answered_times_out() {
    let server = FakeServer::start(Misbehaviour::SilentPutEnd);
    let env = ClientEnv::new();
    for name in ["a", "b", "c"] {
        write_random_file(&env.work().join(name), 3, 100_000);
    }
    let run = run(&env, &server, 2, &["put", "a", "b", "c", "/"]);
    assert_timed_out(&run, 2, "the server's reply to the end of the upload of a");
}

#[test]
fn a_slow_upload_that_keeps_going_is_not_cut() {
    // Ten pauses of 300 ms, each shorter than the timeout of 1 s, while the
    // client's writes wait: 3 s in all. The last part, more than the socket
    // buffers hold, is read at full speed.
    let server = FakeServer::start(Misbehaviour::SlowPut {
        burst: 1 << 20,
        pause: Duration::from_millis(300),
        slow: 10 << 20,
    });
    let env = ClientEnv::new();
    write_random_file(&env.work().join("slow.bin"), 4, (10 << 20) + LARGE);
    let run = run(&env, &server, 1, &["put", "slow.bin"]);
    // The server checked the digest before it answered.
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Longer in all than one wait may take.
    assert!(run.elapsed > Duration::from_secs(3), "{:?}", run.elapsed);
}

/// Sends `signal` to the process `pid`.
fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(pid as i32).expect("a process id");
    kill_process(pid, signal).expect("signal the server");
}

#[test]
fn an_upload_to_a_frozen_server_times_out_and_resumes_later() {
    let (server, env) = alice();
    let local = env.work().join("big.bin");
    write_random_file(&local, 5, 2 * LARGE);
    let log = tempfile::NamedTempFile::new().expect("a temp file");
    let mut child = env
        .cmd(["--timeout", "2", "put", "big.bin"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("the log"))
        .spawn()
        .expect("start the client");
    // Frozen as soon as the upload is open, with most of it still to come.
    wait_until(POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    signal(server.pid(), Signal::STOP);
    let frozen = Instant::now();
    let status = wait_child(&mut child, DEADLINE);
    let waited = frozen.elapsed();
    signal(server.pid(), Signal::CONT);
    let stderr = std::fs::read_to_string(log.path()).expect("the client's stderr");
    eprintln!("exit {status:?} {waited:?} after the freeze: {stderr}");
    assert_eq!(status.and_then(|s| s.code()), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "timed out after 2 s waiting for the server to take more of the upload of big.bin"
        ),
        "{stderr}"
    );
    assert!(waited < Duration::from_secs(2) + GRACE, "{waited:?}");
    // The server, thawed, finds the connection gone and keeps the bytes.
    wait_until(POLL_DEADLINE, "the cut upload to be kept", || {
        server.upload_temps().is_empty() && server.kept_partials().len() == 1
    });
    let kept = server.kept_partials()[0];
    assert!(kept > 0 && kept < 2 * LARGE, "kept {kept}");

    env.run(["put", "big.bin"]).assert_success();
    assert!(files_equal(&local, &server.home("alice").join("big.bin")));
    wait_until(POLL_DEADLINE, "the resume in the log", || {
        server.stderr().contains("resuming an upload")
    });
    server.wait_incoming_empty();
}

//! A download running when the server is told to stop (SIGTERM) and that
//! completes within the grace period is a success for the client: the
//! server's goodbye after the work is done is no error. One that cannot
//! finish within the grace is cut when it ends: the client says so and
//! exits non-zero, keeps only `LOCAL.part`, and `get --resume` completes it
//! against the restarted server.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ftp_shared::Request;
use ftp_shared::message::DigestAlgorithm;
use tests::{
    ALICE_PASSWORD, ClientEnv, DEADLINE, DEFAULT_USERS, RawConn, ServerDir, alice, files_equal,
    wait_child, wait_until, write_random_file,
};

#[test]
fn a_download_that_completes_during_shutdown_exits_0() {
    let (mut server, env) = alice();
    let big = server.home("alice").join("big.bin");
    let file = std::fs::File::create(&big).expect("create the file");
    file.set_len(64 << 20).expect("a sparse 64 MiB file");
    drop(file);
    let child = env
        .cmd(["--quiet", "get", "big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let part = env.work().join("big.bin.part");
    wait_until(Duration::from_secs(20), "the download to start", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() > 0)
    });
    server.terminate();
    let out = child.wait_with_output().expect("the client's result");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(files_equal(&big, &env.work().join("big.bin")));
    assert!(!part.exists());
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
    server.assert_no_debris();
}

/// Sends `signal` (e.g. `STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

#[test]
fn a_download_cut_by_the_end_of_the_grace_leaves_only_the_part_file() {
    const SIZE: u64 = 96 << 20;
    const GRACE: Duration = Duration::from_secs(1);
    let mut server = ServerDir::with_users(DEFAULT_USERS)
        .start_args(&["--shutdown-grace", &GRACE.as_secs().to_string()]);
    let env = ClientEnv::new();
    env.login(&server.target("alice"), ALICE_PASSWORD);
    std::fs::create_dir_all(server.home("alice")).unwrap();
    let big = server.home("alice").join("big.bin");
    write_random_file(&big, 7, SIZE);

    // Two downloads that cannot finish: the real client, stopped (SIGSTOP)
    // once it has begun, and a raw connection that never reads its reply.
    let mut child = env
        .cmd(["--quiet", "get", "big.bin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let part = env.work().join("big.bin.part");
    wait_until(Duration::from_secs(20), "the download to start", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() > 0)
    });
    signal(child.id(), "STOP");
    let mut stalled = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    stalled
        .send(&Request::Get {
            path: "big.bin".into(),
            offset: 0,
            algorithm: DigestAlgorithm::Blake3,
        })
        .unwrap();

    let stopping = Instant::now();
    server.terminate();
    let exited = server.wait_exit(GRACE + Duration::from_secs(10));
    let took = stopping.elapsed();
    signal(child.id(), "CONT");
    eprintln!("the server exited {took:?} after SIGTERM (grace {GRACE:?})");
    assert!(
        exited.is_some(),
        "the server still runs {took:?} after SIGTERM"
    );
    assert!(
        took + Duration::from_millis(100) >= GRACE,
        "gave up after {took:?}"
    );
    assert!(took < GRACE + Duration::from_secs(3), "took {took:?}");

    let status = wait_child(&mut child, DEADLINE).expect("the client to exit");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let kept = std::fs::metadata(&part).map(|m| m.len());
    eprintln!("client: {status}, {kept:?} bytes kept of {SIZE}; stderr: {stderr}");
    // 3: the connection was lost before the work was done.
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("connection to the server lost: the server closed the connection"),
        "no word of the cut: {stderr}"
    );
    assert!(
        stderr.contains("the download of /big.bin did not complete")
            && stderr.contains("big.bin.part; `get --resume` continues it"),
        "no word of what was kept: {stderr}"
    );
    assert!(!stderr.contains("https://"), "TLS library text: {stderr}");
    assert!(!env.work().join("big.bin").exists(), "big.bin appeared");
    assert!(kept.as_ref().is_ok_and(|n| *n < SIZE), "{kept:?}");
    drop(stalled);

    // A restarted server completes it: only the missing bytes, verified.
    server.restart(&[]);
    env.login(&server.target("alice"), ALICE_PASSWORD);
    env.run(["--quiet", "get", "--resume", "big.bin"])
        .assert_success();
    assert!(files_equal(&big, &env.work().join("big.bin")));
    assert!(!part.exists(), "big.bin.part is left");
    server.assert_healthy();
}

//! A download running when the server is told to stop (SIGTERM) and that
//! completes within the grace period is a success for the client: the
//! server's goodbye after the work is done is no error.

use std::process::Stdio;
use std::time::Duration;

use tests::{alice, files_equal, wait_until};

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

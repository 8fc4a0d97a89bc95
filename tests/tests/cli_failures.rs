//! How `ftp-client` fails: a connection lost in the middle of many files
//! (each file that finished is still reported, a cut download is kept for
//! `--resume`), Ctrl-C during a download, one-shot or in a batch (no empty
//! `.part` is left), a server that refuses the session, two sources for one
//! target (or for one's `.part`), a missing `DIR/`, names from the server that
//! must not become local file names, and entries of a recursive transfer
//! that cannot be copied (exit 1 after copying the rest).
//!
//! A proxy between client and server passes a set number of the server's
//! bytes, then cuts the connection or stops passing them: the loss comes at
//! a known point of the transfer, without timing.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;

use tests::{
    ALICE_PASSWORD, ClientEnv, DEADLINE, POLL_DEADLINE, ServerDir, TestServer, alice, files_equal,
    wait_child, wait_until, write_random_file,
};

/// What the proxy does once the server's bytes reach its budget.
#[derive(Clone, Copy, PartialEq)]
enum AtBudget {
    /// Closes both connections.
    Cut,
    /// Passes nothing more, and holds the connections open.
    Stall,
}

/// A proxy for one connection to `server`: it passes the client's bytes
/// freely and the server's up to `budget`; then it does `at_budget` and
/// says so on the returned receiver.
fn proxy(server: SocketAddr, budget: u64, at_budget: AtBudget) -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().unwrap();
    let (reached, on_reached) = mpsc::channel();
    thread::spawn(move || {
        let (client, _) = listener.accept().expect("accept");
        let upstream = TcpStream::connect(server).expect("connect to the server");
        let (mut c_in, mut s_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        thread::spawn(move || {
            let _ = std::io::copy(&mut c_in, &mut s_out);
        });
        let (mut s_in, mut c_out) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
        let mut left = budget;
        let mut buf = vec![0u8; 16 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match s_in.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if c_out.write_all(&buf[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
        if at_budget == AtBudget::Cut {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            let _ = reached.send(());
        } else {
            let _ = reached.send(());
            // Held until the client goes away.
            let _ = client.try_clone().unwrap().read(&mut [0u8; 1]);
            let _ = (client, upstream);
        }
    });
    (addr, on_reached)
}

/// Files `a` (10 KiB), `big` (4 MiB), `c`, `d` (10 KiB) in alice's home,
/// named in the order a download of `*` takes them.
fn four_files(server: &TestServer) {
    let home = server.home("alice");
    fs::create_dir_all(&home).unwrap();
    write_random_file(&home.join("a"), 1, 10 * 1024);
    write_random_file(&home.join("big"), 2, 4 * 1024 * 1024);
    write_random_file(&home.join("c"), 3, 10 * 1024);
    write_random_file(&home.join("d"), 4, 10 * 1024);
}

/// `ftp-client ARGS` through a proxy at `addr`, logging in with the password.
fn via(client: &ClientEnv, addr: SocketAddr, args: &[&str]) -> std::process::Command {
    let mut cmd = client.cmd(["--server", &format!("alice@{addr}")]);
    cmd.args(args).env("FTP_PASSWORD", ALICE_PASSWORD);
    cmd
}

#[test]
fn a_connection_lost_midway_reports_each_finished_file_and_keeps_the_cut_one() {
    let (server, client) = alice();
    four_files(&server);
    let out_dir = client.work().join("out");
    fs::create_dir(&out_dir).unwrap();
    // a and b arrive, then 1 MiB of big.
    let (addr, _reached) = proxy(server.addr(), 1024 * 1024, AtBudget::Cut);
    let out = tests::run_cmd(
        via(
            &client,
            addr,
            &["--json", "get", "a", "big", "c", "d", "out/"],
        ),
        None,
    );
    out.assert_code(3);
    let records = out.json_lines();
    let oks: Vec<(String, bool)> = records
        .iter()
        .map(|r| (r["remote"].as_str().unwrap().to_string(), r["ok"] == true))
        .collect();
    assert_eq!(
        oks,
        [
            ("/a".to_string(), true),
            ("/big".to_string(), false),
            ("/c".to_string(), false),
            ("/d".to_string(), false)
        ],
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("connection") && out.stderr.contains("3 of 4 files not transferred"),
        "{}",
        out.stderr
    );
    let home = server.home("alice");
    assert!(files_equal(&home.join("a"), &out_dir.join("a")));
    // The cut download is kept for a resume; the ones not started left nothing.
    let part = fs::metadata(out_dir.join("big.part")).expect("big.part kept");
    assert!(part.len() > 0 && part.len() < 4 * 1024 * 1024);
    let mut names: Vec<_> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "big.part"]);

    // Continued straight from the server, it completes whole.
    let target = server.target("alice");
    let out = client.run(["--server", &target, "get", "--resume", "big", "out/big"]);
    out.assert_success();
    assert!(files_equal(&home.join("big"), &out_dir.join("big")));
    assert!(!out_dir.join("big.part").exists());
    server.assert_healthy();
}

/// Starts `args` through a proxy that stalls after 1 MiB of a download of
/// `a`, `big`, `c`, `d` into `out/`, presses Ctrl-C once bytes of `big`
/// are on disk, and checks that the client ends with 130, leaving `a` and
/// the cut `big.part` (kept for a resume), but no empty `.part`.
fn ctrl_c_during_a_download(args: &[&str], batch: Option<&str>) {
    let (server, client) = alice();
    four_files(&server);
    let out_dir = client.work().join("out");
    fs::create_dir(&out_dir).unwrap();
    if let Some(lines) = batch {
        fs::write(client.work().join("batch"), lines).unwrap();
    }
    let (addr, reached) = proxy(server.addr(), 1024 * 1024, AtBudget::Stall);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = via(&client, addr, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("start the client");
    reached
        .recv_timeout(DEADLINE)
        .expect("the proxy passed its budget");
    wait_until(POLL_DEADLINE, "bytes of big written", || {
        fs::metadata(out_dir.join("big.part")).is_ok_and(|m| m.len() > 0)
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = wait_child(&mut child, DEADLINE).expect("the client ends after Ctrl-C");
    let stderr = fs::read_to_string(log.path()).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let mut names: Vec<_> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "big.part"], "{stderr}");
    server.assert_healthy();
}

#[test]
fn ctrl_c_during_a_download_leaves_no_empty_part_files() {
    ctrl_c_during_a_download(&["get", "a", "big", "c", "d", "out/"], None);
}

#[test]
fn ctrl_c_ends_a_batch_and_its_download_the_same_way() {
    // `-` would let a failed line go on: an interrupted one stops all the same.
    ctrl_c_during_a_download(&["-b", "batch"], Some("-get a big c d out/\nmkdir after\n"));
}

#[test]
fn a_server_that_refuses_the_session_is_exit_3() {
    let server =
        ServerDir::with_users(tests::DEFAULT_USERS).start_args(&["--max-connections", "1"]);
    let client = ClientEnv::new();
    let _held = tests::RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let out = client.run_stdin(
        [
            "--server",
            &server.target("alice"),
            "--password-stdin",
            "ls",
        ],
        &format!("{ALICE_PASSWORD}\n"),
    );
    out.assert_code(3);
    assert!(out.stderr.contains("refused the session"), "{}", out.stderr);
}

#[test]
fn two_sources_for_one_target_are_refused_not_overwritten() {
    let (server, client) = alice();
    let work = client.work();
    fs::create_dir_all(work.join("x")).unwrap();
    fs::create_dir_all(work.join("y")).unwrap();
    fs::write(work.join("x/a.txt"), b"from x").unwrap();
    fs::write(work.join("y/a.txt"), b"from y").unwrap();
    client.run(["mkdir", "dir"]).assert_success();
    let out = client.run(["put", "x/a.txt", "y/a.txt", "dir/"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("dir/a.txt: is already the target of another transfer in this command"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read(server.home("alice").join("dir/a.txt")).unwrap(),
        b"from x"
    );

    // The same for downloads into one directory.
    client.run(["mkdir", "other"]).assert_success();
    client.run(["put", "y/a.txt", "other/"]).assert_success();
    fs::create_dir(work.join("back")).unwrap();
    let out = client.run(["get", "dir/a.txt", "other/a.txt", "back/"]);
    out.assert_code(1);
    assert!(out.stderr.contains("already the target"), "{}", out.stderr);
    assert_eq!(fs::read(work.join("back/a.txt")).unwrap(), b"from x");
    assert!(!work.join("back/a.txt.part").exists());

    // A target that is another download's `.part`: one rename would
    // replace the other's `.part` midway.
    client
        .run(["mv", "other/a.txt", "dir/a.txt.part"])
        .assert_success();
    fs::create_dir(work.join("parts")).unwrap();
    let out = client.run(["get", "dir/a.txt.part", "dir/a.txt", "parts/"]);
    out.assert_code(1);
    assert!(out.stderr.contains("already the target"), "{}", out.stderr);
    assert_eq!(fs::read(work.join("parts/a.txt.part")).unwrap(), b"from y");
    assert_eq!(fs::read_dir(work.join("parts")).unwrap().count(), 1);
    // (The health check takes any remote `.part` for a leftover.)
    client.run(["rm", "dir/a.txt.part"]).assert_success();
    server.assert_healthy();
}

#[test]
fn a_download_into_a_missing_directory_is_refused_before_it_starts() {
    let (server, client) = alice();
    client.run(["mkdir", "d"]).assert_success();
    fs::write(client.work().join("f.txt"), b"data").unwrap();
    client.run(["put", "f.txt", "d/"]).assert_success();
    fs::remove_file(client.work().join("f.txt")).unwrap();

    let out = client.run(["get", "d/f.txt", "nowhere/"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("nowhere/: no such directory"),
        "{}",
        out.stderr
    );
    let left: Vec<_> = fs::read_dir(client.work()).unwrap().collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
    // Without the '/', the name is the new file's.
    client.run(["get", "d/f.txt", "nowhere"]).assert_success();
    assert_eq!(fs::read(client.work().join("nowhere")).unwrap(), b"data");
    server.assert_healthy();
}

#[test]
fn server_names_that_cannot_be_local_names_are_refused_with_exit_1() {
    let (server, client) = alice();
    let home = server.home("alice");
    fs::create_dir_all(home.join("t/sub")).unwrap();
    fs::write(home.join("t/ok.txt"), b"ok").unwrap();
    fs::write(home.join("t/esc\u{1b}[2J.txt"), b"escape").unwrap();
    fs::write(home.join("t/sub/deep.txt"), b"deep").unwrap();
    let work = client.work();
    fs::create_dir(work.join("flat")).unwrap();

    // A wildcard matched by the server's names.
    let out = client.run(["get", "t/*.txt", "flat/"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("esc\\u{1b}[2J.txt") && !out.stderr.contains('\u{1b}'),
        "escaped: {:?}",
        out.stderr
    );
    assert_eq!(fs::read(work.join("flat/ok.txt")).unwrap(), b"ok");
    assert_eq!(fs::read_dir(work.join("flat")).unwrap().count(), 1);

    // A tree: the rest is copied, the command still fails.
    let out = client.run(["--json", "get", "-r", "t", "tree"]);
    out.assert_code(1);
    assert_eq!(fs::read(work.join("tree/ok.txt")).unwrap(), b"ok");
    assert_eq!(fs::read(work.join("tree/sub/deep.txt")).unwrap(), b"deep");
    assert_eq!(fs::read_dir(work.join("tree")).unwrap().count(), 2);
    let failed: Vec<serde_json::Value> = out
        .json_lines()
        .into_iter()
        .filter(|r| r["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{}", out.stdout);
    assert_eq!(failed[0]["remote"], "/t/esc\u{1b}[2J.txt");
    server.assert_healthy();
}

#[test]
fn a_local_tree_entry_that_cannot_be_uploaded_fails_the_command_after_the_rest() {
    let (server, client) = alice();
    let tree = client.work().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("ok.txt"), b"ok").unwrap();
    fs::write(tree.join("sub/deep.txt"), b"deep").unwrap();
    fs::write(
        tree.join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        b"not UTF-8",
    )
    .unwrap();
    // A symlink out of the tree is left out by design: a warning only.
    std::os::unix::fs::symlink("/etc/hostname", tree.join("leak")).unwrap();

    let out = client.run(["put", "-r", "tree"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("the name is not valid UTF-8"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("warning: skipped") && out.stderr.contains("leak"),
        "{}",
        out.stderr
    );
    let home = server.home("alice");
    assert_eq!(fs::read(home.join("tree/ok.txt")).unwrap(), b"ok");
    assert_eq!(fs::read(home.join("tree/sub/deep.txt")).unwrap(), b"deep");
    assert_eq!(fs::read_dir(home.join("tree")).unwrap().count(), 2);
    server.assert_healthy();
}

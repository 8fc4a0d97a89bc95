//! One user cannot starve the others of file descriptors: many sessions of
//! one account pipelining uploads get `BUSY` (never `INTERNAL`) past their
//! share, while another user's transfers, logins and requests go on.

use bytes::Bytes;
use ftp_shared::message::{DigestAlgorithm, Hasher};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{ALICE_PASSWORD, BOB_PASSWORD, RawConn, ServerDir, TestServer};

/// Descriptors the process `pid` holds now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `count` small uploads sent in one go, then every reply read: the
/// replies, in order.
fn pipelined_uploads(conn: &mut RawConn, prefix: &str, count: usize) -> Vec<Response> {
    let mut frames = Vec::new();
    for i in 0..count {
        let data = format!("{prefix} file {i}").into_bytes();
        let mut h = Hasher::new(DigestAlgorithm::Blake3);
        h.update(&data);
        for request in [
            Request::Put {
                path: format!("{prefix}-{i}.txt"),
                size: data.len() as u64,
                offset: 0,
                algorithm: DigestAlgorithm::Blake3,
            },
            Request::Data(Bytes::from(data)),
            Request::PutEnd { digest: h.finish() },
        ] {
            frames.extend(tests::frame_of(&request));
        }
    }
    conn.send_raw(&frames).unwrap();
    (0..count).map(|_| conn.expect_reply()).collect()
}

fn attack(
    server: &TestServer,
    user: &'static str,
    password: &'static str,
) -> Vec<std::thread::JoinHandle<Vec<Response>>> {
    (0..6)
        .map(|s| {
            let (addr, pin) = (server.addr(), server.fingerprint());
            std::thread::spawn(move || {
                let mut conn = RawConn::connect_addr(addr, pin);
                conn.hello();
                conn.login(user, password).unwrap();
                pipelined_uploads(&mut conn, &format!("{user}{s}"), 150)
            })
        })
        .collect()
}

/// The server's descriptor limit in this scenario.
const LIMIT: u64 = 600;

#[test]
fn sessions_of_two_users_pipelining_stay_within_their_share_and_others_are_served() {
    let dir = ServerDir::with_users(&[
        ("alice", ALICE_PASSWORD),
        ("bob", BOB_PASSWORD),
        ("carol", "carol-password"),
    ]);
    let config = dir.write_config("[limits]\nmax_connections = 40\nmax_open_files_per_user = 24\n");
    let server = dir.start_args(&["--config", config.to_str().unwrap()]);
    // A low descriptor limit, as a small machine would have: the server
    // sizes its budget from it at the first transfer.
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).unwrap();
    rustix::process::prlimit(
        Some(pid),
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(LIMIT),
            maximum: Some(LIMIT),
        },
    )
    .unwrap();
    let baseline = open_fds(server.pid());
    let mut attackers = attack(&server, "alice", ALICE_PASSWORD);
    attackers.extend(attack(&server, "carol", "carol-password"));

    // Meanwhile bob logs in, uploads, downloads and lists.
    let mut peak = baseline;
    for round in 0..10 {
        let mut bob = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
        let data = tests::random_bytes(round, 200_000);
        // Each user holds at most its share: bob's upload has a handle.
        assert_eq!(bob.put(&format!("b{round}.bin"), &data, None), Response::Ok);
        assert_eq!(bob.get(&format!("b{round}.bin")).unwrap(), data);
        assert!(bob.stat(&format!("b{round}.bin")).is_ok());
        assert!(bob.list("").is_ok());
        peak = peak.max(open_fds(server.pid()));
    }
    let mut busy = 0;
    for attacker in attackers {
        for reply in attacker.join().unwrap() {
            match reply {
                Response::Ok => {}
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::BUSY, "never INTERNAL: {message}");
                    busy += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        peak = peak.max(open_fds(server.pid()));
    }
    eprintln!("descriptors: baseline {baseline}, peak {peak}; {busy} uploads refused BUSY");
    assert!(
        peak < LIMIT as usize,
        "the server held {peak} descriptors of {LIMIT}"
    );
    // Every upload that got Ok is on disk, whole.
    for user in ["alice", "carol"] {
        for entry in std::fs::read_dir(server.home(user)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let (stem, i) = name.trim_end_matches(".txt").rsplit_once('-').unwrap();
            let want = format!("{stem} file {i}");
            assert_eq!(std::fs::read(entry.path()).unwrap(), want.as_bytes());
        }
    }
    server.assert_healthy();
}

#[test]
fn uploads_past_a_users_open_files_are_refused_busy_and_others_go_on() {
    let dir = ServerDir::with_users(&[("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)]);
    let config = dir.write_config("[limits]\nmax_open_files_per_user = 8\n");
    let server = dir.start_args(&["--config", config.to_str().unwrap()]);
    let mut held = Vec::new();
    for i in 0..12 {
        let mut conn = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
        conn.send_put(&format!("big{i}.bin"), 1_000_000, 0);
        conn.send(&Request::Data(Bytes::from(vec![7u8; 100_000])))
            .unwrap();
        if i < 8 {
            tests::wait_until(tests::POLL_DEADLINE, "the upload's temp file", || {
                server.upload_temps().len() == i + 1
            });
            held.push(conn);
        } else {
            match conn.expect_reply() {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::BUSY, "{message}");
                    assert!(message.contains("too many files open"), "{message}");
                }
                other => panic!("the 9th open file of a user got {other:?}"),
            }
            conn.send(&Request::PutCancel).unwrap();
            // The session goes on.
            assert!(conn.stat("big0.bin").is_err());
        }
    }
    assert_eq!(server.upload_temps().len(), 8);
    // Another user is served meanwhile.
    let mut bob = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    let data = tests::random_bytes(3, 200_000);
    assert_eq!(bob.put("b.bin", &data, None), Response::Ok);
    assert_eq!(bob.get("b.bin").unwrap(), data);
    drop(bob);
    for conn in held {
        conn.cut();
    }
    server.wait_uploads_settled(&[100_000; 8]);
    server.assert_healthy();
}

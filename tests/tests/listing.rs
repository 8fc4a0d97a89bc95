//! Listings are streamed: a huge directory listed by many connections that
//! do not read costs the server a bounded amount of memory (one page per
//! listing, all pages within `listing_memory`), every listing still arrives
//! whole and exactly once, a listing of a directory that changes meanwhile
//! terminates without duplicates, and listers that wait for the budget or
//! vanish mid-listing neither fail nor leak it. Every scenario ends with
//! [`tests::TestServer::assert_healthy`].

use std::collections::HashSet;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ftp_shared::message::ENTRIES_PER_BATCH;
use ftp_shared::{ErrorCode, Request, Response};
use tests::{ALICE_PASSWORD, DEFAULT_USERS, RawConn, ServerDir, TestServer, wait_until};

const BIG: usize = 100_000;

/// `count` empty files `f000000`... in `dir`, made directly on disk.
fn fill(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::File::create(dir.join(format!("f{i:06}"))).unwrap();
    }
}

/// A logged-in raw connection to `server` as alice, and a handle on its TCP
/// socket to see how many bytes wait unread in it.
fn lister(server: &TestServer) -> (RawConn, TcpStream) {
    let tcp = TcpStream::connect(server.addr()).unwrap();
    let peek = tcp.try_clone().unwrap();
    let mut conn = RawConn::over(tcp, server.fingerprint());
    conn.hello();
    conn.login("alice", ALICE_PASSWORD).unwrap();
    (conn, peek)
}

/// Bytes waiting unread in the socket (up to `max`).
fn unread(peek: &TcpStream, max: usize) -> usize {
    let mut buf = vec![0; max];
    peek.set_nonblocking(true).unwrap();
    let n = peek.peek(&mut buf).unwrap_or(0);
    peek.set_nonblocking(false).unwrap();
    n
}

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(server: &TestServer, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
}

/// Reads one listing to its end, checking the batch bounds, pausing `pace`
/// between frames; the names, or the error that ended it.
fn read_listing(conn: &mut RawConn, pace: Duration) -> Result<Vec<String>, (usize, Response)> {
    let mut names = Vec::new();
    loop {
        match conn.expect_reply() {
            Response::Entries { entries, more } => {
                assert!(entries.len() <= ENTRIES_PER_BATCH, "{}", entries.len());
                assert!(more || !entries.is_empty() || names.is_empty());
                names.extend(entries.into_iter().map(|e| e.name));
                if !more {
                    return Ok(names);
                }
                if !pace.is_zero() {
                    std::thread::sleep(pace);
                }
            }
            other => return Err((names.len(), other)),
        }
    }
}

/// Each of `f000000`.. `f{count-1}` exactly once, nothing else.
fn assert_each_once(names: &[String], count: usize) {
    let mut seen = vec![false; count];
    for name in names {
        let i: usize = name[1..].parse().unwrap_or_else(|_| panic!("{name:?}"));
        assert!(!std::mem::replace(&mut seen[i], true), "{name} twice");
    }
    assert_eq!(names.len(), count);
}

#[test]
fn sixty_idle_listers_of_100000_entries_stay_within_the_budget() {
    let server = ServerDir::with_users(DEFAULT_USERS).start();
    let (mut first, _) = lister(&server);
    fill(&server.home("alice").join("big"), BIG);
    assert_eq!(
        first.stat("big").unwrap().kind,
        ftp_shared::message::EntryKind::Directory
    );
    let baseline = status_kib(&server, "VmRSS:");

    let mut conns: Vec<(RawConn, TcpStream)> = (0..59).map(|_| lister(&server)).collect();
    let started = Instant::now();
    for (conn, _) in &mut conns {
        conn.send(&Request::List { path: "big".into() }).unwrap();
    }
    first.send(&Request::List { path: "big".into() }).unwrap();
    // Nobody reads: every listing has sent what the sockets take, and
    // waits for its client.
    wait_until(
        Duration::from_secs(10),
        "listings sent to every socket",
        || {
            conns
                .iter()
                .all(|(_, peek)| unread(peek, 64 * 1024) == 64 * 1024)
        },
    );
    let idle = status_kib(&server, "VmHWM:");

    // Then twelve read it to the end (four slowly), the others go away
    // in the middle of it (reading all in a debug build takes too long).
    conns.truncate(11);
    let readers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, (mut conn, _))| {
            std::thread::spawn(move || {
                let pace = if i < 4 {
                    Duration::from_millis(5)
                } else {
                    Duration::ZERO
                };
                let names = read_listing(&mut conn, pace).unwrap_or_else(|e| panic!("{e:?}"));
                assert_each_once(&names, BIG);
                conn
            })
        })
        .collect();
    let names = read_listing(&mut first, Duration::ZERO).unwrap();
    assert_each_once(&names, BIG);
    let conns: Vec<RawConn> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let peak = status_kib(&server, "VmHWM:");
    eprintln!(
        "baseline {baseline} KiB, peak while idle {idle} KiB, peak {peak} KiB, \
         listings of {BIG} in {:?}",
        started.elapsed()
    );
    // 60 listings built whole took over 1 GiB; streamed, one page each.
    assert!(
        peak.saturating_sub(baseline) < 150 * 1024,
        "peak {peak} KiB over a baseline of {baseline} KiB"
    );
    // The sessions are in step: the next request gets its own reply.
    assert!(first.stat("big").is_ok());
    drop((first, conns));
    server.assert_healthy();
}

#[test]
fn a_listing_of_a_changing_directory_ends_without_duplicates() {
    let server = ServerDir::with_users(DEFAULT_USERS).start();
    let (mut conn, _) = lister(&server);
    let dir = server.home("alice").join("busy");
    fill(&dir, 20_000);
    for i in 0..5_000 {
        std::fs::File::create(dir.join(format!("tmp-{i}"))).unwrap();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Adds and removes names until the listings are over.
            let mut i = 0;
            while !done.load(Ordering::Relaxed) && i < 5_000 {
                std::fs::File::create(dir.join(format!("new-{i}"))).unwrap();
                let _ = std::fs::remove_file(dir.join(format!("tmp-{}", i % 5_000)));
                i += 1;
            }
        });
        for _ in 0..3 {
            conn.send(&Request::List {
                path: "busy".into(),
            })
            .unwrap();
            let names = read_listing(&mut conn, Duration::ZERO).unwrap();
            let unique: HashSet<&String> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "a name listed twice");
            let stable: Vec<String> = names
                .iter()
                .filter(|n| n.starts_with('f'))
                .cloned()
                .collect();
            // Present throughout, so listed exactly once.
            assert_each_once(&stable, 20_000);
        }
        done.store(true, Ordering::Relaxed);
    });
    drop(conn);
    server.assert_healthy();
}

#[test]
fn listers_wait_for_a_small_budget_and_vanishing_ones_give_it_back() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    // Room for about one page being read at a time.
    let config = dir.write_config("[limits]\nlisting_memory = 2097152\n");
    let server = dir.start_args(&["--config", config.to_str().unwrap()]);
    let (mut conn, _) = lister(&server);
    fill(&server.home("alice").join("big"), 30_000);

    // Listers that go away in the middle of their listing.
    for _ in 0..8 {
        let (mut gone, peek) = lister(&server);
        gone.send(&Request::List { path: "big".into() }).unwrap();
        wait_until(Duration::from_secs(5), "a first page", || {
            unread(&peek, 1) == 1
        });
        drop(gone);
    }
    // Twelve at once, each waiting its turn for the budget: all complete.
    let mut many: Vec<(RawConn, TcpStream)> = (0..12).map(|_| lister(&server)).collect();
    for (c, _) in &mut many {
        c.send(&Request::List { path: "big".into() }).unwrap();
    }
    for (c, _) in &mut many {
        assert_each_once(&read_listing(c, Duration::ZERO).unwrap(), 30_000);
    }
    // The budget was given back: a new listing still goes through whole.
    conn.send(&Request::List { path: "big".into() }).unwrap();
    assert_each_once(&read_listing(&mut conn, Duration::ZERO).unwrap(), 30_000);

    // Errors are answered as before: one Error frame, the session goes on.
    conn.send(&Request::List {
        path: "big/missing".into(),
    })
    .unwrap();
    match read_listing(&mut conn, Duration::ZERO) {
        Err((0, Response::Error { code, .. })) => assert_eq!(code, ErrorCode::NOT_FOUND),
        other => panic!("{other:?}"),
    }
    conn.send(&Request::List {
        path: "big/f000001/x".into(),
    })
    .unwrap();
    match read_listing(&mut conn, Duration::ZERO) {
        Err((0, Response::Error { code, .. })) => assert_eq!(code, ErrorCode::NOT_A_DIRECTORY),
        other => panic!("{other:?}"),
    }
    // A file is its one entry; an empty directory one empty batch.
    assert_eq!(conn.list("big/f000001").unwrap().1, [1]);
    std::fs::create_dir(server.home("alice").join("empty")).unwrap();
    assert_eq!(conn.list("empty").unwrap(), (vec![], vec![0]));
    drop((conn, many));
    server.assert_healthy();
}

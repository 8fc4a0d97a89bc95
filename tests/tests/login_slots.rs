//! Login slots cannot be held by connections without an account: when the
//! slots for connections not yet logged in are full, a newcomer replaces
//! the least advanced, oldest one; an address over its share replaces only
//! its own; logged-in sessions are never replaced.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ftp_shared::message::{MAGIC, PROTOCOL_VERSION};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{ALICE_PASSWORD, BOB_PASSWORD, READ_TIMEOUT, RawConn, ServerDir, TestServer};

/// What a normal client may take to log in and list under attack.
const SERVED_WITHIN: Duration = Duration::from_secs(2);

/// Raises this process's descriptor limit to its hard limit (the server
/// started afterwards inherits it) and checks that `needed` fit.
fn raise_file_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise the descriptor limit");
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|n| n >= needed),
        "this test needs {needed} descriptors; the hard limit is {now:?}"
    );
}

/// TCP connections from the local addresses `src` (127.0.0.x), `count`
/// from each, opened concurrently; none is allowed to fail.
fn connect_many(server: &TestServer, sources: &[String], count: usize) -> Vec<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for src in sources {
            for _ in 0..count {
                let src = format!("{src}:0").parse().unwrap();
                tasks.spawn(async move {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.bind(src)?;
                    tokio::time::timeout(READ_TIMEOUT, socket.connect(addr))
                        .await
                        .map_err(|_| std::io::Error::other("connect timed out"))??
                        .into_std()
                });
            }
        }
        let mut streams = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let stream = done.unwrap().expect("connect from a loopback address");
            stream.set_nonblocking(false).unwrap();
            streams.push(stream);
        }
        streams
    })
}

/// One connection from `src` that says hello, or `None` when the server
/// closed it first (replaced by a newer one).
fn hello_from(server: &TestServer, src: &str) -> Option<RawConn> {
    let tcp = connect_many(server, &[src.to_string()], 1).pop()?;
    let mut conn = RawConn::over(tcp, server.fingerprint());
    conn.send(&Request::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
    })
    .ok()?;
    match conn.recv()? {
        Response::Hello { .. } => Some(conn),
        Response::Error {
            code: ErrorCode::BUSY,
            ..
        } => None,
        other => panic!("unexpected reply to hello: {other:?}"),
    }
}

/// Whether the server closed `conn` (or sent something unasked, which it
/// only does when closing), without blocking.
fn closed(conn: &RawConn) -> bool {
    let tcp = conn.tcp();
    tcp.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed =
        !matches!(tcp.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).unwrap();
    closed
}

/// The server's open descriptors.
fn descriptors(server: &TestServer) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("the server's descriptors")
        .count()
}

/// A normal client from 127.0.0.1: logs in and lists within
/// [`SERVED_WITHIN`]; the time it took.
#[track_caller]
fn served(server: &TestServer, user: &str, password: &str) -> Duration {
    let started = Instant::now();
    let mut conn = RawConn::connect_login(server, user, password);
    conn.list("").expect("a listing");
    let took = started.elapsed();
    assert!(took < SERVED_WITHIN, "login and list took {took:?}");
    took
}

#[test]
fn idle_hellos_from_two_addresses_do_not_keep_a_client_out() {
    const PER_ADDRESS: usize = 64;
    const LOGINS: usize = 20;
    raise_file_limit(1024);
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start_args(&["--handshake-timeout", "3"]);
    let base = descriptors(&server);

    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .map(|src| {
            let (stop, reconnects) = (stop.clone(), reconnects.clone());
            // Each attacker keeps PER_ADDRESS connections that said hello,
            // reconnecting each one the server closes.
            let held: Vec<Option<RawConn>> = (0..PER_ADDRESS).map(|_| None).collect();
            let (addr, pin) = (server.addr(), server.fingerprint());
            let sources = vec![src.to_string(); PER_ADDRESS];
            std::thread::spawn(move || attack(&sources, addr, pin, held, &stop, &reconnects))
        })
        .collect();

    // The attackers hold their share before the client comes.
    tests::wait_until(Duration::from_secs(10), "the attack to start", || {
        reconnects.load(Ordering::Relaxed) >= 2 * PER_ADDRESS
    });
    let mut slowest = Duration::ZERO;
    let mut peak = 0;
    for i in 0..LOGINS {
        let (user, password) = if i % 2 == 0 {
            ("alice", ALICE_PASSWORD)
        } else {
            ("bob", BOB_PASSWORD)
        };
        slowest = slowest.max(served(&server, user, password));
        peak = peak.max(descriptors(&server));
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    let reconnected = reconnects.load(Ordering::Relaxed);
    eprintln!(
        "{LOGINS} logins, slowest {slowest:?}; {reconnected} attacking connections; \
         descriptors {base} at start, peak {peak}; rss {} KiB",
        server.rss_kib()
    );
    assert!(
        reconnected > 2 * PER_ADDRESS,
        "the attackers were never closed: {reconnected}"
    );
    // Two addresses hold at most 2 x 16 waiting slots (plus connections
    // being closed and the client's own).
    assert!(peak < base + 2 * PER_ADDRESS, "{peak} descriptors");
    server.assert_healthy();
}

/// One attacker: keeps `held` filled with connections that said hello (the
/// one at index i from `sources[i]`) until `stop`.
fn attack(
    sources: &[String],
    addr: std::net::SocketAddr,
    pin: Option<ftp_shared::tls::Fingerprint>,
    mut held: Vec<Option<RawConn>>,
    stop: &AtomicBool,
    reconnects: &AtomicUsize,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        for (slot, src) in held.iter_mut().zip(sources) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if slot.as_ref().is_some_and(|c| !closed(c)) {
                continue;
            }
            *slot = None;
            let connected = rt.block_on(async {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(format!("{src}:0").parse().unwrap())?;
                socket.connect(addr).await?.into_std()
            });
            let tcp = connected.expect("connect from a loopback address");
            tcp.set_nonblocking(false).unwrap();
            let mut conn = RawConn::over(tcp, pin);
            reconnects.fetch_add(1, Ordering::Relaxed);
            let hello = conn.send(&Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            });
            if hello.is_ok() && matches!(conn.recv(), Some(Response::Hello { .. })) {
                *slot = Some(conn);
            }
            // The pace of the attack, not a wait for readiness.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn thousands_of_silent_connections_from_many_addresses_do_not_keep_a_client_out() {
    const ADDRESSES: usize = 200;
    const EACH: usize = 10;
    raise_file_limit((ADDRESSES * EACH + 512) as u64);
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start();
    let base = descriptors(&server);
    // A session logged in before the flood is never replaced.
    let mut logged = RawConn::connect_login(&server, "bob", BOB_PASSWORD);

    let sources: Vec<String> = (0..ADDRESSES)
        .map(|i| format!("127.0.1.{}", 10 + i))
        .collect();
    let started = Instant::now();
    let silent = connect_many(&server, &sources, EACH);
    let flood = started.elapsed();
    assert_eq!(silent.len(), ADDRESSES * EACH);

    let took = served(&server, "alice", ALICE_PASSWORD);
    let peak = descriptors(&server);
    eprintln!(
        "{} silent connections in {flood:?}; login and list in {took:?}; \
         descriptors {base} at start, {peak} after; rss {} KiB",
        silent.len(),
        server.rss_kib()
    );
    // The default 128 waiting slots, not one descriptor per connection.
    assert!(peak < base + 128 + 64, "{peak} descriptors");
    assert!(logged.is_alive(), "the logged-in session was replaced");
    drop(silent);
    server.assert_healthy();
}

#[test]
fn a_full_server_replaces_waiting_connections_but_never_logged_in_ones() {
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    // The total (4) is the cap that fills, not the waiting slots.
    let server = dir.start_args(&["--max-connections", "4", "--max-unauthenticated", "100"]);
    let mut first = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let mut second = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    let waiting: Vec<RawConn> = (0..2)
        .map(|_| hello_from(&server, "127.0.0.1").expect("a waiting slot"))
        .collect();
    // A newcomer replaces the oldest waiting one.
    let mut third = RawConn::connect_login(&server, "alice", ALICE_PASSWORD);
    let mut waiting = waiting.into_iter();
    let oldest = waiting.next().unwrap();
    assert_eq!(
        oldest.expect_closed_with_error("the replaced connection"),
        Some(ErrorCode::BUSY)
    );
    let mut fourth = RawConn::connect_login(&server, "bob", BOB_PASSWORD);
    let replaced = waiting.next().unwrap();
    assert_eq!(
        replaced.expect_closed_with_error("the replaced connection"),
        Some(ErrorCode::BUSY)
    );
    // Everything is logged in: the newcomer is refused, nobody replaced.
    let mut refused = RawConn::connect(&server);
    refused
        .send(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        })
        .ok();
    assert!(
        matches!(
            refused.expect_closed().as_slice(),
            [Response::Error {
                code: ErrorCode::BUSY,
                ..
            }]
        ),
        "a newcomer to a server full of logged-in sessions"
    );
    for conn in [&mut first, &mut second, &mut third, &mut fourth] {
        assert!(conn.is_alive(), "a logged-in session was replaced");
    }
    drop((first, second, third, fourth));
    server.assert_healthy();
}

#[test]
fn an_address_over_its_share_replaces_only_its_own_connections() {
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let config = dir.write_config("[limits]\nmax_unauthenticated_per_address = 2\n");
    let config = config.to_str().unwrap().to_owned();
    let server = dir.start_args(&["--config", &config]);
    let mut other = hello_from(&server, "127.0.0.1").expect("a waiting slot");
    let first = hello_from(&server, "127.0.0.2").expect("a waiting slot");
    let second = hello_from(&server, "127.0.0.2").expect("a waiting slot");
    // The third from 127.0.0.2 replaces that address's oldest, nobody else's.
    let third = hello_from(&server, "127.0.0.2").expect("a waiting slot");
    assert_eq!(
        first.expect_closed_with_error("the replaced connection"),
        Some(ErrorCode::BUSY)
    );
    assert!(!closed(&second) && !closed(&third));
    other
        .login("alice", ALICE_PASSWORD)
        .expect("the other address's connection was not replaced");
    drop((second, third, other));
    server.assert_healthy();
}

#[test]
fn hellos_from_many_addresses_that_reconnect_at_once_do_not_keep_a_client_out() {
    const ADDRESSES: usize = 200;
    const THREADS: usize = 4;
    const LOGINS: usize = 10;
    raise_file_limit(1024);
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let server = dir.start();
    let base = descriptors(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (stop, reconnects) = (stop.clone(), reconnects.clone());
            let sources: Vec<String> = (0..ADDRESSES / THREADS)
                .map(|i| format!("127.0.2.{}", 10 + t * ADDRESSES / THREADS + i))
                .collect();
            let held: Vec<Option<RawConn>> = sources.iter().map(|_| None).collect();
            let (addr, pin) = (server.addr(), server.fingerprint());
            std::thread::spawn(move || attack(&sources, addr, pin, held, &stop, &reconnects))
        })
        .collect();
    tests::wait_until(Duration::from_secs(10), "the attack to start", || {
        reconnects.load(Ordering::Relaxed) >= ADDRESSES
    });
    let mut slowest = Duration::ZERO;
    let mut peak = 0;
    for _ in 0..LOGINS {
        slowest = slowest.max(served(&server, "alice", ALICE_PASSWORD));
        peak = peak.max(descriptors(&server));
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    eprintln!(
        "{LOGINS} logins, slowest {slowest:?}; {} attacking connections; \
         descriptors {base} at start, peak {peak}; rss {} KiB",
        reconnects.load(Ordering::Relaxed),
        server.rss_kib()
    );
    assert!(peak < base + 128 + 64, "{peak} descriptors");
    server.assert_healthy();
}

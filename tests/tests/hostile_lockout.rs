//! Password guessing against the failed-login tables, over the wire from
//! many loopback addresses: a table filled with made-up names fails closed
//! (a real account cannot be guessed from a fresh address) until its entries
//! expire; guesses of one name spread over many addresses are slowed down by
//! the name's brake, which parallel attempts share and a success resets,
//! without locking the account; and made-up names tried from one address
//! lock only those names there, not the real users behind it.

use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ftp_shared::{ErrorCode, Response};
use tests::{ALICE_PASSWORD, BOB_PASSWORD, READ_TIMEOUT, RawConn, ServerDir, TestServer};

/// A server with alice and bob and `limits` (lines of the `[limits]` table).
fn server_with(limits: &str) -> TestServer {
    let dir = ServerDir::with_users(tests::DEFAULT_USERS);
    let config = dir.write_config(&format!("[limits]\n{limits}"));
    dir.start_args(&["--config", config.to_str().unwrap()])
}

/// A TCP connection to the server from the local address `src` (127.x.y.z).
fn tcp_from(server: &TestServer, src: &str) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (addr, src) = (server.addr(), format!("{src}:0").parse().unwrap());
    let stream = rt
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(src)?;
            tokio::time::timeout(READ_TIMEOUT, socket.connect(addr))
                .await
                .map_err(|_| std::io::Error::other("connect timed out"))??
                .into_std()
        })
        .unwrap_or_else(|e| panic!("connect from {src}: {e}"));
    stream.set_nonblocking(false).unwrap();
    stream
}

/// A connection from `src` that said hello.
fn hello_from(server: &TestServer, src: &str) -> RawConn {
    let mut conn = RawConn::over(tcp_from(server, src), server.fingerprint());
    conn.hello();
    conn
}

/// One login attempt and what the client saw of it.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    ok: bool,
    /// When `AuthStart` went out.
    started: Instant,
    /// When the challenge arrived (the name's brake runs before it).
    challenged: Instant,
    /// From `AuthStart` to the challenge.
    wait: Duration,
}

/// Logs in as `user` with `password` on a connection that said hello.
fn attempt_on(mut conn: RawConn, user: &str, password: &str) -> Attempt {
    let started = Instant::now();
    let sent = conn
        .send_login(user, password)
        .unwrap_or_else(|r| panic!("a challenge for {user}, got {r:?}"));
    let challenged = Instant::now();
    let ok = match conn.recv() {
        Some(Response::AuthOk { server_final }) => {
            sent.last
                .verify_server_final(&server_final)
                .expect("the server proves it knows the verifier");
            true
        }
        Some(Response::Error {
            code: ErrorCode::AUTH_FAILED,
            ..
        }) => false,
        other => panic!("expected AuthOk or AUTH_FAILED for {user}, got {other:?}"),
    };
    Attempt {
        ok,
        started,
        challenged,
        wait: challenged - started,
    }
}

/// One login attempt from `src` on a fresh connection.
fn attempt(server: &TestServer, src: &str, user: &str, password: &str) -> Attempt {
    attempt_on(hello_from(server, src), user, password)
}

#[test]
fn a_full_failure_table_fails_closed_until_its_entries_expire() {
    const ENTRIES: usize = 64;
    const LOCKOUT: Duration = Duration::from_secs(4);
    let server = server_with(&format!(
        "lockout_entries = {ENTRIES}\nauth_failure_delay_ms = 0\n\
         lockout_failures = 3\nlockout_secs = {}\n",
        LOCKOUT.as_secs()
    ));

    // Made-up names from ENTRIES addresses, one failure each (in parallel,
    // so the table is full well before its first entry expires).
    let filled_from = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8 {
            let server = &server;
            s.spawn(move || {
                for i in (t..ENTRIES).step_by(8) {
                    let src = format!("127.0.0.{}", 2 + i);
                    let a = attempt(server, &src, &format!("nobody{i}"), "guess");
                    assert!(!a.ok);
                }
            });
        }
    });
    let fill = filled_from.elapsed();
    eprintln!("{ENTRIES} failures of made-up names from {ENTRIES} addresses took {fill:?}");
    assert!(
        fill + Duration::from_secs(1) < LOCKOUT,
        "the fill took {fill:?}: its first entries may expire before the table is full"
    );

    // A guesser of alice from a fresh address: two guesses, then the right
    // password, which the full table refuses like a wrong one.
    let fresh = "127.0.1.1";
    for guess in ["guess-1", "guess-2"] {
        assert!(!attempt(&server, fresh, "alice", guess).ok);
    }
    let right = attempt(&server, fresh, "alice", ALICE_PASSWORD);
    let refused_at = filled_from.elapsed();
    assert!(
        !right.ok,
        "the right password got through a full table ({refused_at:?} after the fill began)"
    );
    assert!(
        refused_at < LOCKOUT,
        "refused only {refused_at:?} after the fill began"
    );

    // Once the first entries expire, alice logs in from that address again.
    let mut tries = 0;
    let deadline = Instant::now() + LOCKOUT + Duration::from_secs(10);
    let logged_in = loop {
        tries += 1;
        let a = attempt(&server, fresh, "alice", ALICE_PASSWORD);
        if a.ok {
            break filled_from.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "alice still refused after {tries} tries"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "right password refused {refused_at:?} after the fill began; \
         alice in again after {logged_in:?} ({tries} tries)"
    );
    assert!(
        logged_in >= LOCKOUT,
        "alice got in after {logged_in:?}, before any entry expired"
    );
    server.assert_healthy();
}

#[test]
fn guesses_of_one_name_from_many_addresses_are_braked_not_locked() {
    let server = server_with("auth_failure_delay_ms = 0\nlockout_failures = 10\n");
    let src = |i: u32| format!("127.0.2.{i}");

    // Wrong passwords for bob, each from another address: the first ones
    // go at once; from the fourth failure on each waits longer.
    let wrong: Vec<Attempt> = (1..=7)
        .map(|i| attempt(&server, &src(i), "bob", "wrong"))
        .collect();
    assert!(wrong.iter().all(|a| !a.ok));
    let waits: Vec<Duration> = wrong.iter().map(|a| a.wait).collect();
    eprintln!("waits for the challenge of 7 wrong attempts: {waits:?}");
    // The fifth attempt's turn was when it asked; the next ones come 250 ms
    // and a further 500 ms later.
    let since_fifth = |a: &Attempt| a.challenged - wrong[4].started;
    let (sixth, seventh) = (since_fifth(&wrong[5]), since_fifth(&wrong[6]));
    eprintln!("6th and 7th challenges {sixth:?} and {seventh:?} after the 5th asked");
    assert!(sixth >= Duration::from_millis(250), "{sixth:?}");
    assert!(seventh >= Duration::from_millis(750), "{seventh:?}");

    // The right password from a new address waits its turn, then succeeds:
    // no address is locked for bob.
    let right = attempt(&server, &src(100), "bob", BOB_PASSWORD);
    let turn = since_fifth(&right);
    eprintln!("the right password challenged {turn:?} after the 5th asked");
    assert!(right.ok, "bob's right password was refused");
    assert!(turn >= Duration::from_millis(1750), "{turn:?}");

    // The success reset the brake: four failures go at once again (without
    // the reset the first would wait two seconds).
    let after: Vec<Duration> = (8..=11)
        .map(|i| {
            let a = attempt(&server, &src(i), "bob", "wrong");
            assert!(!a.ok);
            a.wait
        })
        .collect();
    eprintln!("waits after the success: {after:?}");
    assert!(
        after.iter().all(|w| *w < Duration::from_secs(1)),
        "{after:?}"
    );

    // Parallel attempts take turns a brake's delay (250 ms at four
    // failures) apart: the k-th challenge comes at least k turns after the
    // first attempt asked.
    let conns: Vec<RawConn> = (20..23).map(|i| hello_from(&server, &src(i))).collect();
    let start = Arc::new(Barrier::new(conns.len()));
    let mut parallel: Vec<Attempt> = std::thread::scope(|s| {
        let running: Vec<_> = conns
            .into_iter()
            .map(|conn| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    attempt_on(conn, "bob", "wrong")
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let asked = parallel.iter().map(|a| a.started).min().unwrap();
    parallel.sort_by_key(|a| a.challenged);
    let turns: Vec<Duration> = parallel.iter().map(|a| a.challenged - asked).collect();
    eprintln!("3 parallel challenges after the first asked: {turns:?}");
    for (k, turn) in turns.iter().enumerate() {
        assert!(*turn >= Duration::from_millis(250) * k as u32, "{turns:?}");
    }

    // An address that guessed once still logs bob in.
    let back = attempt(&server, &src(3), "bob", BOB_PASSWORD);
    eprintln!("bob's login from a guessing address waited {:?}", back.wait);
    assert!(back.ok, "bob refused at an address that guessed once");
    server.assert_healthy();
}

#[test]
fn made_up_names_from_one_address_do_not_lock_out_its_real_users() {
    let server = server_with("auth_failure_delay_ms = 0\nlockout_failures = 3\n");
    let (guesser, other) = ("127.0.4.1", "127.0.4.2");
    let lockouts = |ip: &str| {
        server
            .stderr()
            .lines()
            .filter(|l| l.contains("lockout started") && l.contains(&format!("ip={ip}")))
            .count()
    };

    for i in 0..4 {
        assert!(!attempt(&server, guesser, &format!("ghost{i}"), "guess").ok);
    }
    tests::wait_until(tests::POLL_DEADLINE, "the address's lockout logged", || {
        lockouts(guesser) == 1
    });
    eprintln!("4 made-up names from {guesser}: the address is locked for them");

    // The real users behind that address log in.
    assert!(attempt(&server, guesser, "alice", ALICE_PASSWORD).ok);
    assert!(attempt(&server, guesser, "bob", BOB_PASSWORD).ok);

    // A real user's own failures do lock that pair: alice guessed wrong
    // three times from another address is refused there, not elsewhere.
    for _ in 0..3 {
        assert!(!attempt(&server, other, "alice", "wrong").ok);
    }
    tests::wait_until(tests::POLL_DEADLINE, "the pair's lockout logged", || {
        lockouts(other) == 1
    });
    assert!(!attempt(&server, other, "alice", ALICE_PASSWORD).ok);
    assert!(attempt(&server, other, "bob", BOB_PASSWORD).ok);
    assert!(attempt(&server, guesser, "alice", ALICE_PASSWORD).ok);
    server.assert_healthy();
}

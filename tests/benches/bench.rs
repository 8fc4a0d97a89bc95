//! `cargo bench -p tests`: the machine's limits and the project's figures,
//! measured in one run on 127.0.0.1, each figure shown as a ratio to the
//! limit it is held against. The table is printed and written as JSON to
//! `target/bench/results.json`.
//!
//! Limits: a plain TCP copy of the test file from disk to disk (one thread a
//! side, 1 MiB buffers, no fsync), a write+fsync of it, and the digests'
//! speed on one core. Project figures go through the real release binaries,
//! in the default mode (TLS 1.3) and, beside it, in plaintext
//! (`--insecure-plaintext` on both ends), the two run in turns so that both
//! see the same machine, and TLS held against plaintext: `put`/`get` of the
//! file (median of 3), 1,000 files of 4 KiB in one session, connect + login
//! with saved keys + quit, and the server's RSS with 10,000 idle logged-in
//! sessions. In TLS only: the same files as a tree with `put -r` and
//! `get -r`, 50 clients uploading 8 MiB each at once, and the server's peak
//! RSS during the transfers. The page cache is left as the runs leave it
//! (warm for the file sent, after the first run).
//!
//! `BENCH_FILE_MIB` (default 1024) sets the size of the big file;
//! `BENCH_IDLE` (default 10000) the number of idle sessions.

#[path = "bench/limits.rs"]
mod limits;
#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/report.rs"]
mod report;

use std::process::{Child, Stdio};

use ftp_client::{Client, Secret};
use tests::{ALICE_PASSWORD, ClientEnv, DEFAULT_USERS, ServerDir, TestServer, write_random_file};

use self::limits::{digest_speeds, tcp_copy, write_fsync};
use self::measure::{
    MIB, env_number, interleaved, median, raise_file_limit, rate, seconds, with_peak_rss,
};
use self::report::{Against, Row, limit_row, report, rss_row};

/// What TLS is held against: this share of the same figure in plaintext.
const TLS_WANT: f64 = 0.85;

/// A server and a client environment logged in to it, in one transport.
struct Endpoint {
    server: TestServer,
    client: ClientEnv,
    /// Options every client command gets (`--insecure-plaintext`).
    flags: &'static [&'static str],
}

impl Endpoint {
    /// A server with `args`, in TLS or in plaintext, and a client logged in
    /// as alice with saved keys.
    fn start(args: &[&str], tls: bool) -> Endpoint {
        let mut args = args.to_vec();
        let flags: &'static [&'static str] = if tls { &[] } else { &["--insecure-plaintext"] };
        args.extend_from_slice(flags);
        let server = ServerDir::with_users(DEFAULT_USERS).start_args(&args);
        let client = ClientEnv::new();
        let mut login = client.cmd(["login", &server.target("alice"), "--password-stdin"]);
        login.args(flags);
        tests::run_cmd(login, Some(&format!("{ALICE_PASSWORD}\n"))).assert_success();
        Endpoint {
            server,
            client,
            flags,
        }
    }

    /// Runs the client and insists on success.
    fn run(&self, args: &[&str]) {
        let out = self
            .client
            .cmd(args)
            .args(self.flags)
            .stdin(Stdio::null())
            .output()
            .expect("run ftp-client");
        assert!(
            out.status.success(),
            "ftp-client {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The rows of one figure measured in both transports: each held against
/// its own limit (when there is one), and TLS against plaintext.
fn pair_rows(
    rows: &mut Vec<Row>,
    name: &str,
    (tls, plain): (f64, f64),
    unit: &'static str,
    limit: Option<(f64, &'static str, f64)>,
) {
    for (mode, value) in [("TLS", tls), ("plaintext", plain)] {
        rows.push(Row {
            name: format!("{name}, {mode}"),
            value,
            unit,
            against: match limit {
                Some((limit, limit_name, want)) => Against::Ratio {
                    limit,
                    limit_name,
                    want,
                },
                None => Against::Nothing,
            },
        });
    }
    rows.push(Row {
        name: format!("  {name}: TLS / plaintext"),
        value: tls / plain,
        unit: "x",
        against: Against::AtLeast(TLS_WANT),
    });
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test runners probing the binary
    }
    raise_file_limit();
    let file_mib: u64 = env_number("BENCH_FILE_MIB", 1024);
    let idle_sessions: usize = env_number("BENCH_IDLE", 10_000) as usize;
    let work = tests::temp_dir("ftp-bench-");
    let work = work.path();
    let big = work.join("big.bin");
    let size = file_mib * MIB;
    let gbs = |bytes_per_second: f64| bytes_per_second / 1e9;
    eprintln!("bench: writing a {file_mib} MiB test file");
    write_random_file(&big, 1, size);
    let mut rows = Vec::new();

    // The machine's limits.
    eprintln!("bench: machine limits");
    let tcp = median(3, || rate(size, || tcp_copy(&big, &work.join("tcp.out"))));
    let disk = median(3, || {
        rate(size, || write_fsync(&big, &work.join("fsync.out")))
    });
    let _ = std::fs::remove_file(work.join("tcp.out"));
    let _ = std::fs::remove_file(work.join("fsync.out"));
    let (blake3, sha256) = digest_speeds();
    rows.push(limit_row("limit: plain TCP copy, disk to disk", tcp));
    rows.push(limit_row("limit: write + fsync", disk));
    rows.push(limit_row("limit: BLAKE3, one core", blake3));
    rows.push(limit_row("limit: SHA-256, one core", sha256));
    let durable_limit = tcp.min(disk);

    // Big transfers against a durable server, TLS and plaintext in turns.
    let tls = Endpoint::start(&[], true);
    let plain = Endpoint::start(&[], false);
    for end in [&tls, &plain] {
        std::fs::hard_link(&big, end.client.work().join("big.bin")).expect("link the test file");
    }
    eprintln!("bench: put/get of {file_mib} MiB");
    let put = |end: &Endpoint| gbs(rate(size, || end.run(&["put", "big.bin"])));
    let (puts, put_rss) =
        with_peak_rss(&tls.server, || interleaved(3, || put(&tls), || put(&plain)));
    let durable = Some((gbs(durable_limit), "min(TCP, write+fsync)", 0.9));
    pair_rows(&mut rows, "put (verified, durable)", puts, "GB/s", durable);
    rows.push(rss_row("server peak RSS, put, TLS", put_rss, 32.0));
    let get = |end: &Endpoint, extra: &[&str]| {
        let _ = std::fs::remove_file(end.client.work().join("down.bin"));
        let mut args = vec!["get"];
        args.extend_from_slice(extra);
        args.extend(["big.bin", "down.bin"]);
        gbs(rate(size, || end.run(&args)))
    };
    let (gets, get_rss) = with_peak_rss(&tls.server, || {
        interleaved(3, || get(&tls, &[]), || get(&plain, &[]))
    });
    pair_rows(&mut rows, "get (verified, durable)", gets, "GB/s", durable);
    rows.push(rss_row("server peak RSS, get, TLS", get_rss, 32.0));
    let fast = interleaved(
        3,
        || get(&tls, &["--no-fsync"]),
        || get(&plain, &["--no-fsync"]),
    );
    pair_rows(
        &mut rows,
        "get (verified, --no-fsync)",
        fast,
        "GB/s",
        Some((gbs(tcp), "TCP copy", 0.9)),
    );
    for end in [&tls, &plain] {
        let _ = std::fs::remove_file(end.client.work().join("down.bin"));
    }

    // Many small files in one session.
    eprintln!("bench: 1,000 files of 4 KiB");
    let small: Vec<String> = (0..1000).map(|i| format!("s{i:04}.bin")).collect();
    for end in [&tls, &plain] {
        for (i, name) in small.iter().enumerate() {
            write_random_file(&end.client.work().join(name), 100 + i as u64, 4096);
        }
    }
    // Each run into a new directory: this measures the server, not how
    // fast the filesystem frees the blocks of replaced files.
    let rounds = std::cell::Cell::new(0);
    let small_put = |end: &Endpoint| {
        rounds.set(rounds.get() + 1);
        let dir = format!("small{}", rounds.get());
        end.run(&["mkdir", &dir]);
        let mut args = vec!["put".to_string()];
        args.extend(small.iter().cloned());
        args.push(format!("{dir}/"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        1000.0 / seconds(|| end.run(&args))
    };
    let files = interleaved(3, || small_put(&tls), || small_put(&plain));
    pair_rows(
        &mut rows,
        "1,000 x 4 KiB put, one session (durable)",
        files,
        "files/s",
        None,
    );
    rows.push(Row {
        name: "  1,000 x 4 KiB put, TLS, held against 5,000 files/s".into(),
        value: files.0,
        unit: "files/s",
        against: Against::AtLeast(5000.0),
    });

    // Connect, log in with saved keys, quit.
    eprintln!("bench: connect + login + quit");
    let login = |end: &Endpoint| {
        let mut times: Vec<f64> = (0..30)
            .map(|_| seconds(|| end.run(&["mkdir", "-p", "ping"])) * 1000.0)
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (login_tls, login_plain) = interleaved(3, || login(&tls), || login(&plain));
    for (mode, value) in [("TLS", login_tls), ("plaintext", login_plain)] {
        rows.push(Row {
            name: format!("connect + login (saved keys) + mkdir -p + quit, CLI, median, {mode}"),
            value,
            unit: "ms",
            against: Against::AtMost(5.0),
        });
    }
    drop(plain);

    // The same 1,000 files as a tree of 10 directories, both ways (TLS).
    eprintln!("bench: put -r / get -r of 1,000 files of 4 KiB in 10 directories");
    let client = &tls.client;
    let tree = client.work().join("tree");
    for (i, name) in small.iter().enumerate() {
        let dir = tree.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::rename(client.work().join(name), dir.join(name)).expect("move into the tree");
    }
    let mut round = 0;
    let put_tree = median(3, || {
        round += 1;
        1000.0 / seconds(|| tls.run(&["put", "-r", "tree", &format!("tree{round}")]))
    });
    rows.push(Row {
        name: "put -r, 1,000 x 4 KiB in 10 dirs (durable), TLS".into(),
        value: put_tree,
        unit: "files/s",
        against: Against::Nothing,
    });
    let mut round = 0;
    let get_tree = median(3, || {
        round += 1;
        let local = format!("tree-copy{round}");
        1000.0 / seconds(|| tls.run(&["get", "-r", &format!("tree{round}"), &local]))
    });
    rows.push(Row {
        name: "get -r, 1,000 x 4 KiB in 10 dirs (durable), TLS".into(),
        value: get_tree,
        unit: "files/s",
        against: Against::Nothing,
    });

    // Parallel clients.
    eprintln!("bench: 50 parallel uploads of 8 MiB");
    for i in 0..50 {
        write_random_file(&client.work().join(format!("p{i}.bin")), 500 + i, 8 * MIB);
    }
    let (parallel, parallel_rss) = with_peak_rss(&tls.server, || {
        median(3, || rate(50 * 8 * MIB, || parallel_puts(client, 50)))
    });
    rows.push(Row {
        name: "50 x 8 MiB parallel put (aggregate), TLS".into(),
        value: gbs(parallel),
        unit: "GB/s",
        against: Against::AtLeast(1.0),
    });
    rows.push(rss_row(
        "server peak RSS, 50 parallel puts, TLS",
        parallel_rss,
        32.0,
    ));
    drop(tls);

    // Without fsync on the server.
    eprintln!("bench: put with --no-fsync");
    let tls = Endpoint::start(&["--no-fsync"], true);
    let plain = Endpoint::start(&["--no-fsync"], false);
    for end in [&tls, &plain] {
        std::fs::hard_link(&big, end.client.work().join("big.bin")).expect("link the test file");
    }
    let puts = interleaved(3, || put(&tls), || put(&plain));
    pair_rows(
        &mut rows,
        "put (verified, server --no-fsync)",
        puts,
        "GB/s",
        Some((gbs(tcp), "TCP copy", 0.9)),
    );
    drop((tls, plain));

    // Idle sessions.
    eprintln!("bench: {idle_sessions} idle sessions");
    // All the sessions come from 127.0.0.1, 200 logging in at a time: lift
    // the per-address and pre-login caps too.
    let cap = (idle_sessions + 100).to_string();
    for (mode, flags, at_most) in [
        ("TLS", &[][..], 400.0),
        ("plaintext", &["--insecure-plaintext"][..], 256.0),
    ] {
        let mut args = vec![
            "--max-connections",
            &cap,
            "--max-connections-per-address",
            &cap,
            "--max-unauthenticated",
            "400",
            "--max-unauthenticated-per-address",
            "400",
        ];
        args.extend_from_slice(flags);
        let idle_server = ServerDir::with_users(DEFAULT_USERS).start_args(&args);
        let before = idle_server.rss_kib();
        let during = idle_rss(&idle_server, idle_sessions);
        rows.push(Row {
            name: format!("server RSS, {idle_sessions} idle logged-in sessions, {mode}"),
            value: during as f64 / 1024.0,
            unit: "MiB",
            against: Against::AtMost(at_most),
        });
        rows.push(Row {
            name: "  of which per session".into(),
            value: (during.saturating_sub(before)) as f64 / idle_sessions as f64,
            unit: "KiB",
            against: Against::Nothing,
        });
    }

    report(&rows);
}

fn parallel_puts(client: &ClientEnv, count: usize) {
    let children: Vec<Child> = (0..count)
        .map(|i| {
            let name = format!("p{i}.bin");
            client
                .cmd(["put", name.as_str()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ftp-client")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for ftp-client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The server's RSS (KiB) once `count` sessions are logged in and idle.
fn idle_rss(server: &TestServer, count: usize) -> u64 {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let addr = server.addr().to_string();
    let transport = server.transport();
    runtime.block_on(async {
        let mut first = Client::connect(&addr, &transport).await.expect("connect");
        let keys = first
            .login("alice", Secret::Password(ALICE_PASSWORD))
            .await
            .expect("login");
        let mut sessions = vec![first];
        while sessions.len() < count {
            let batch = (count - sessions.len()).min(200);
            let logins = (0..batch).map(|_| {
                let (keys, addr, transport) = (keys.clone(), &addr, &transport);
                async move {
                    let mut client = Client::connect(addr, transport).await?;
                    client.login("alice", Secret::Keys(&keys)).await?;
                    Ok::<_, ftp_client::ClientError>(client)
                }
            });
            for client in futures::future::join_all(logins).await {
                sessions.push(client.expect("an idle session logs in"));
            }
        }
        let rss = server.rss_kib();
        drop(sessions);
        rss
    })
}

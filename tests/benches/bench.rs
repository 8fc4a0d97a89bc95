//! `cargo bench -p tests`: the machine's limits and the project's figures,
//! measured in one run on 127.0.0.1, each figure shown as a ratio to the
//! limit it is held against. The table is printed and written as JSON to
//! `target/bench/results.json`.
//!
//! Limits: a plain TCP copy of the test file from disk to disk (one thread a
//! side, 1 MiB buffers, no fsync), a write+fsync of it, and the digests'
//! speed on one core. Project figures go through the real release binaries:
//! `put`/`get` of the file (median of 3), 1,000 files of 4 KiB in one
//! session, the same files as a tree with `put -r` and `get -r`, 50 clients
//! uploading 8 MiB each at once, connect + login with
//! saved keys + quit, the server's peak RSS during each, and the server's RSS
//! with 10,000 idle logged-in sessions.
//!
//! `BENCH_FILE_MIB` (default 1024) sets the size of the big file;
//! `BENCH_IDLE` (default 10000) the number of idle sessions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Instant;

use ftp_client::{Client, Secret};
use tests::{ALICE_PASSWORD, ClientEnv, DEFAULT_USERS, ServerDir, TestServer, write_random_file};

const MIB: u64 = 1024 * 1024;

/// One line of the table.
struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    /// What the figure is held against, and how (`value / limit` must be at
    /// least `want`; or, for costs, `value` at most `want`).
    against: Against,
}

enum Against {
    Ratio {
        limit: f64,
        limit_name: &'static str,
        want: f64,
    },
    AtLeast(f64),
    AtMost(f64),
    Nothing,
}

impl Row {
    fn met(&self) -> Option<bool> {
        match self.against {
            Against::Ratio { limit, want, .. } => Some(self.value / limit >= want),
            Against::AtLeast(want) => Some(self.value >= want),
            Against::AtMost(want) => Some(self.value <= want),
            Against::Nothing => None,
        }
    }
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

    // Big transfers against a durable server.
    let server = TestServer::start();
    let client = ClientEnv::new();
    client.login(&server.target("alice"), ALICE_PASSWORD);
    std::fs::hard_link(&big, client.work().join("big.bin")).expect("link the test file");
    eprintln!("bench: put/get of {file_mib} MiB");
    let (put, put_rss) = with_peak_rss(&server, || {
        median(3, || rate(size, || run(&client, &["put", "big.bin"])))
    });
    rows.push(ratio_row(
        "put (verified, durable)",
        put,
        durable_limit,
        "min(TCP, write+fsync)",
    ));
    rows.push(rss_row("server peak RSS, put", put_rss, 32.0));
    let (get, get_rss) = with_peak_rss(&server, || {
        median(3, || {
            let _ = std::fs::remove_file(client.work().join("down.bin"));
            rate(size, || run(&client, &["get", "big.bin", "down.bin"]))
        })
    });
    rows.push(ratio_row(
        "get (verified, durable)",
        get,
        durable_limit,
        "min(TCP, write+fsync)",
    ));
    rows.push(rss_row("server peak RSS, get", get_rss, 32.0));
    let get_fast = median(3, || {
        let _ = std::fs::remove_file(client.work().join("down.bin"));
        rate(size, || {
            run(&client, &["get", "--no-fsync", "big.bin", "down.bin"])
        })
    });
    rows.push(ratio_row(
        "get (verified, --no-fsync)",
        get_fast,
        tcp,
        "TCP copy",
    ));
    let _ = std::fs::remove_file(client.work().join("down.bin"));

    // Many small files in one session.
    eprintln!("bench: 1,000 files of 4 KiB");
    let small: Vec<String> = (0..1000).map(|i| format!("s{i:04}.bin")).collect();
    for (i, name) in small.iter().enumerate() {
        write_random_file(&client.work().join(name), 100 + i as u64, 4096);
    }
    // Each run into a new directory: this measures the server, not how
    // fast the filesystem frees the blocks of replaced files.
    let mut round = 0;
    let files = median(3, || {
        round += 1;
        let dir = format!("small{round}");
        run(&client, &["mkdir", &dir]);
        let mut args = vec!["put".to_string()];
        args.extend(small.iter().cloned());
        args.push(format!("{dir}/"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        1000.0 / seconds(|| run(&client, &args))
    });
    rows.push(Row {
        name: "1,000 x 4 KiB put, one session (durable)".into(),
        value: files,
        unit: "files/s",
        against: Against::AtLeast(5000.0),
    });

    // The same 1,000 files as a tree of 10 directories, both ways.
    eprintln!("bench: put -r / get -r of 1,000 files of 4 KiB in 10 directories");
    let tree = client.work().join("tree");
    for (i, name) in small.iter().enumerate() {
        let dir = tree.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::rename(client.work().join(name), dir.join(name)).expect("move into the tree");
    }
    let mut round = 0;
    let put_tree = median(3, || {
        round += 1;
        1000.0 / seconds(|| run(&client, &["put", "-r", "tree", &format!("tree{round}")]))
    });
    rows.push(Row {
        name: "put -r, 1,000 x 4 KiB in 10 dirs (durable)".into(),
        value: put_tree,
        unit: "files/s",
        against: Against::Nothing,
    });
    let mut round = 0;
    let get_tree = median(3, || {
        round += 1;
        let local = format!("tree-copy{round}");
        1000.0 / seconds(|| run(&client, &["get", "-r", &format!("tree{round}"), &local]))
    });
    rows.push(Row {
        name: "get -r, 1,000 x 4 KiB in 10 dirs (durable)".into(),
        value: get_tree,
        unit: "files/s",
        against: Against::Nothing,
    });

    // Parallel clients.
    eprintln!("bench: 50 parallel uploads of 8 MiB");
    for i in 0..50 {
        write_random_file(&client.work().join(format!("p{i}.bin")), 500 + i, 8 * MIB);
    }
    let (parallel, parallel_rss) = with_peak_rss(&server, || {
        median(3, || rate(50 * 8 * MIB, || parallel_puts(&client, 50)))
    });
    rows.push(Row {
        name: "50 x 8 MiB parallel put (aggregate)".into(),
        value: parallel / 1e9,
        unit: "GB/s",
        against: Against::AtLeast(1.0),
    });
    rows.push(rss_row(
        "server peak RSS, 50 parallel puts",
        parallel_rss,
        32.0,
    ));

    // Connect, log in with saved keys, quit.
    eprintln!("bench: connect + login + quit");
    run(&client, &["mkdir", "-p", "ping"]);
    let mut times: Vec<f64> = (0..30)
        .map(|_| seconds(|| run(&client, &["mkdir", "-p", "ping"])) * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    rows.push(Row {
        name: "connect + login (saved keys) + mkdir -p + quit, CLI, median".into(),
        value: times[times.len() / 2],
        unit: "ms",
        against: Against::AtMost(5.0),
    });
    drop(server);

    // Without fsync.
    eprintln!("bench: put with --no-fsync");
    let fast_server = ServerDir::with_users(DEFAULT_USERS).start_args(&["--no-fsync"]);
    let fast_client = ClientEnv::new();
    fast_client.login(&fast_server.target("alice"), ALICE_PASSWORD);
    std::fs::hard_link(&big, fast_client.work().join("big.bin")).expect("link the test file");
    let put_fast = median(3, || rate(size, || run(&fast_client, &["put", "big.bin"])));
    rows.push(ratio_row(
        "put (verified, server --no-fsync)",
        put_fast,
        tcp,
        "TCP copy",
    ));
    drop(fast_server);

    // Idle sessions.
    eprintln!("bench: {idle_sessions} idle sessions");
    // All the sessions come from 127.0.0.1, 200 logging in at a time: lift
    // the per-address and pre-login caps too.
    let cap = (idle_sessions + 100).to_string();
    let idle_server = ServerDir::with_users(DEFAULT_USERS).start_args(&[
        "--max-connections",
        &cap,
        "--max-connections-per-address",
        &cap,
        "--max-unauthenticated",
        "400",
    ]);
    let before = idle_server.rss_kib();
    let during = idle_rss(&idle_server, idle_sessions);
    rows.push(Row {
        name: format!("server RSS, {idle_sessions} idle logged-in sessions"),
        value: during as f64 / 1024.0,
        unit: "MiB",
        against: Against::AtMost(256.0),
    });
    rows.push(Row {
        name: "  of which per session".into(),
        value: (during.saturating_sub(before)) as f64 / idle_sessions as f64,
        unit: "KiB",
        against: Against::Nothing,
    });

    report(&rows);
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Thousands of sessions need thousands of descriptors, here and in the
/// servers this process starts (they inherit the limit).
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        eprintln!("bench: cannot raise the file limit: {e}");
    }
}

fn seconds(work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    start.elapsed().as_secs_f64()
}

fn rate(bytes: u64, work: impl FnOnce()) -> f64 {
    bytes as f64 / seconds(work)
}

fn median(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    let mut values: Vec<f64> = (0..runs).map(|_| measure()).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the client and insists on success.
fn run(client: &ClientEnv, args: &[&str]) {
    let out = client
        .cmd(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ftp-client");
    assert!(
        out.status.success(),
        "ftp-client {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// Runs `work` and returns its result with the server's peak RSS (MiB)
/// during it (the peak is reset through `/proc/PID/clear_refs` first).
fn with_peak_rss<T>(server: &TestServer, work: impl FnOnce() -> T) -> (T, f64) {
    let pid = server.pid();
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("bench: cannot reset the peak RSS ({e}); it covers the whole run");
    }
    let result = work();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmHWM");
    (result, peak / 1024.0)
}

/// The limit of a network copy: one thread reads the file into the socket,
/// one writes the socket into a file; 1 MiB buffers; no fsync.
fn tcp_copy(from: &Path, to: &Path) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let to = to.to_path_buf();
    let receiver = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut out = std::fs::File::create(&to).expect("create");
        let mut buf = vec![0u8; MIB as usize];
        loop {
            let n = socket.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).expect("write");
        }
    });
    let mut socket = TcpStream::connect(addr).expect("connect");
    let mut input = std::fs::File::open(from).expect("open");
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = input.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        socket.write_all(&buf[..n]).expect("send");
    }
    drop(socket);
    receiver.join().expect("receiver");
}

/// The limit of durable storage: copy the file, then fsync it.
fn write_fsync(from: &Path, to: &PathBuf) {
    let mut input = std::fs::File::open(from).expect("open");
    let mut out = std::fs::File::create(to).expect("create");
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = input.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).expect("write");
    }
    out.sync_all().expect("fsync");
}

/// Bytes per second of BLAKE3 and SHA-256 over 256 MiB in memory.
fn digest_speeds() -> (f64, f64) {
    use sha2::Digest as _;
    let data = tests::random_bytes(7, 256 * MIB as usize);
    let blake3 = median(3, || {
        rate(data.len() as u64, || {
            std::hint::black_box(blake3::hash(&data));
        })
    });
    let sha256 = median(3, || {
        rate(data.len() as u64, || {
            std::hint::black_box(sha2::Sha256::digest(&data));
        })
    });
    (blake3, sha256)
}

/// The server's RSS (KiB) once `count` sessions are logged in and idle.
fn idle_rss(server: &TestServer, count: usize) -> u64 {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let addr = server.addr();
    runtime.block_on(async {
        let mut first = Client::connect(addr.to_string()).await.expect("connect");
        let keys = first
            .login("alice", Secret::Password(ALICE_PASSWORD))
            .await
            .expect("login");
        let mut sessions = vec![first];
        while sessions.len() < count {
            let batch = (count - sessions.len()).min(200);
            let logins = (0..batch).map(|_| {
                let keys = keys.clone();
                async move {
                    let mut client = Client::connect(addr.to_string()).await?;
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

fn limit_row(name: &str, bytes_per_second: f64) -> Row {
    Row {
        name: name.into(),
        value: bytes_per_second / 1e9,
        unit: "GB/s",
        against: Against::Nothing,
    }
}

fn ratio_row(name: &str, bytes_per_second: f64, limit: f64, limit_name: &'static str) -> Row {
    Row {
        name: name.into(),
        value: bytes_per_second / 1e9,
        unit: "GB/s",
        against: Against::Ratio {
            limit: limit / 1e9,
            limit_name,
            want: 0.9,
        },
    }
}

fn rss_row(name: &str, mib: f64, at_most: f64) -> Row {
    Row {
        name: name.into(),
        value: mib,
        unit: "MiB",
        against: Against::AtMost(at_most),
    }
}

/// Prints the table and writes it as JSON under `target/bench/`.
fn report(rows: &[Row]) {
    println!();
    println!(
        "{:<62} {:>10} {:<8} {:>24} {:>6}",
        "figure", "value", "unit", "held against", "met"
    );
    for row in rows {
        let against = match &row.against {
            Against::Ratio {
                limit,
                limit_name,
                want,
            } => {
                format!("{:.2}x {limit_name} (want {want})", row.value / limit)
            }
            Against::AtLeast(want) => format!(">= {want}"),
            Against::AtMost(want) => format!("<= {want}"),
            Against::Nothing => String::new(),
        };
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "{:<62} {:>10.3} {:<8} {:>24} {:>6}",
            row.name, row.value, row.unit, against, met
        );
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let (limit, ratio) = match row.against {
                Against::Ratio { limit, .. } => (Some(limit), Some(row.value / limit)),
                _ => (None, None),
            };
            serde_json::json!({
                "figure": row.name,
                "value": row.value,
                "unit": row.unit,
                "limit": limit,
                "ratio": ratio,
                "met": row.met(),
            })
        })
        .collect();
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write");
    println!("\nwritten to {}", path.display());
}

/// `target/`: the bench binary lives in `target/release/deps/`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

//! The client against a hostile server ([`FakeServer`]): one that stops
//! answering, whose tree or listing never ends, that sends names no file
//! may have, or floods the terminal. Each case must end within the
//! `--timeout` given (2 s here) or a bound, with a clear error and a
//! non-zero status, in bounded memory, and leave nothing outside the
//! target directory nor half a file under its final name.

use std::path::Path;
use std::time::Duration;

use tests::ClientEnv;
use tests::fake_run::{Run, run_client};
use tests::fake_server::{FakeServer, Misbehaviour};

/// The highest VmHWM a run may reach.
const MAX_PEAK_KIB: u64 = 100 * 1024;
/// The longest a run may take.
const MAX_ELAPSED: Duration = Duration::from_secs(10);

/// Runs `ftp-client --timeout 2 ARGS...` logged in to `server`, within
/// [`MAX_ELAPSED`] and [`MAX_PEAK_KIB`].
fn run(env: &ClientEnv, server: &FakeServer, args: &[&str]) -> Run {
    let run = run_client(env, server, 2, args);
    assert!(run.elapsed < MAX_ELAPSED, "took {:?}", run.elapsed);
    assert!(run.peak_kib > 0, "no memory reading of the client");
    assert!(run.peak_kib < MAX_PEAK_KIB, "peak {} KiB", run.peak_kib);
    run
}

/// The names directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read a local directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_download_that_stalls_times_out_and_leaves_no_file_under_its_name() {
    let server = FakeServer::start(Misbehaviour::StallGet {
        size: 1 << 20,
        sent: 1000,
    });
    let env = ClientEnv::new();
    let run = run(&env, &server, &["get", "file.bin"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("timed out after 2 s waiting for the server's reply to Get file.bin"),
        "{}",
        run.stderr
    );
    assert!(
        !env.work().join("file.bin").exists(),
        "a file under the final name"
    );
    // What arrived is kept for a resume, beside the final name.
    let part = env.work().join("file.bin.part");
    assert_eq!(std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0), 1000);
}

#[test]
fn a_listing_never_answered_times_out() {
    let server = FakeServer::start(Misbehaviour::SilentList);
    let env = ClientEnv::new();
    let run = run(&env, &server, &["ls", "docs"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("timed out after 2 s waiting for the server's reply to List docs"),
        "{}",
        run.stderr
    );
    assert!(run.elapsed >= Duration::from_secs(2), "{:?}", run.elapsed);
}

#[test]
fn a_tree_without_end_stops_at_the_protocol_depth() {
    let server = FakeServer::start(Misbehaviour::EndlessTree);
    let env = ClientEnv::new();
    let run = run(&env, &server, &["get", "-r", "top", "dest"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("deeper than 64 directories"),
        "{}",
        run.stderr
    );
    assert_eq!(names(&env.work()), ["dest"]);
    // dest is `top` itself; below it, one `d` per depth, 63 of them (the
    // 64th component would be one too many).
    let mut dir = env.work().join("dest");
    let mut depth = 1;
    while dir.join("d").is_dir() {
        assert_eq!(names(&dir), ["d"]);
        dir = dir.join("d");
        depth += 1;
    }
    assert_eq!(depth, 64);
    assert!(names(&dir).is_empty());
}

#[test]
fn a_listing_without_end_is_refused_at_the_entry_cap() {
    let server = FakeServer::start(Misbehaviour::EndlessPages { name_len: 8 });
    let env = ClientEnv::new();
    let run = run(&env, &server, &["ls", "big"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("refused: the listing of big has more than 1000000 entries"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout.len());
}

#[test]
fn names_no_file_may_have_are_refused_and_nothing_lands_outside_the_target() {
    let long = "n".repeat(300);
    let bad = ["..", ".", "", "a/b", "../escape", "x\0y", &long];
    let mut all: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
    all.push("ok".into());
    let server = FakeServer::start(Misbehaviour::Names(all));
    let env = ClientEnv::new();
    let run = run(&env, &server, &["get", "-r", "top", "dest"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot be a local file name"),
        "{}",
        run.stderr
    );
    assert_eq!(names(&env.work()), ["dest"]);
    assert_eq!(names(&env.work().join("dest")), ["ok"]);
    assert!(!run.stderr.contains('\0'));
    // Nothing beside the work directory either (where `..` would lead).
    let parent = env.work().parent().expect("a parent").to_path_buf();
    assert!(!parent.join("escape").exists());
    assert_eq!(names(&parent), ["config", "home", "work"]);
}

#[test]
fn a_flood_of_server_text_is_escaped_and_cut() {
    let flood = format!("\x1b]0;owned\x07\x1b[2J{}", "A".repeat(200_000));
    let server = FakeServer::start(Misbehaviour::Refuse(flood));
    let env = ClientEnv::new();
    let run = run(&env, &server, &["stat", "x"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\x1b'),
        "a raw escape reached the terminal"
    );
    assert!(!run.stderr.contains('\x07'));
    assert!(
        run.stderr.len() < 4096,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(
        run.stderr.contains("more bytes not shown"),
        "{}",
        run.stderr
    );
}

//! Timing and memory: rates, medians, interleaved pairs, peak RSS.

use std::time::Instant;

use tests::TestServer;

pub const MIB: u64 = 1024 * 1024;

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Thousands of sessions need thousands of descriptors, here and in the
/// servers this process starts (they inherit the limit).
pub fn raise_file_limit() {
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

pub fn seconds(work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    start.elapsed().as_secs_f64()
}

pub fn rate(bytes: u64, work: impl FnOnce()) -> f64 {
    bytes as f64 / seconds(work)
}

pub fn median(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    let mut values: Vec<f64> = (0..runs).map(|_| measure()).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `work` and returns its result with the server's peak RSS (MiB)
/// during it (the peak is reset through `/proc/PID/clear_refs` first).
pub fn with_peak_rss<T>(server: &TestServer, work: impl FnOnce() -> T) -> (T, f64) {
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

/// Medians of `a` and `b` over `runs` rounds, run in turns (a, b, a, b, ...)
/// so that both see the same machine.
pub fn interleaved(
    runs: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (f64, f64) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        xs.push(a());
        ys.push(b());
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (mid(xs), mid(ys))
}

//! What the commands print: results on standard output (plain text, or one
//! JSON object per line with `--json`), progress and errors on standard
//! error. Progress bars appear only on a terminal and never with `--quiet`
//! or `--json`. Every name that came from a server is escaped before it
//! reaches a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, TimeZone};
use ftp_shared::message::{Entry, EntryKind};
use ftp_shared::text::escape;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use unicode_width::UnicodeWidthStr;

use crate::ClientError;
use crate::transfer::Outcome;

/// `println!` for results: a reader that went away (`ftp-client ls | head`)
/// ends nothing but the output.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use out;

/// How results are shown.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// Whether progress bars are drawn.
    pub fn progress(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }

    /// Prints one JSON object as a line of standard output.
    pub fn record(&self, value: Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    /// A failure: `error: ...` on standard error and, with `--json`, a record.
    /// An entry of a recursive transfer that could not be copied: `side`
    /// is `local` or `remote`, `path` as found (shown escaped).
    pub fn left_out(&self, op: &str, side: &str, path: &str, reason: &str) {
        eprintln!("error: {}: {reason}", escape(path));
        if self.json {
            let mut record = json!({"op": op, "ok": false, "error": reason});
            record[side] = json!(path);
            self.record(record);
        }
    }

    pub fn failure(&self, op: &str, path: Option<&str>, err: &ClientError) {
        eprintln!("error: {err}");
        if self.json {
            self.record(json!({
                "op": op,
                "path": path,
                "ok": false,
                "error": err.to_string(),
                "code": err.remote_code().map(|c| c.0),
            }));
        }
    }
}

/// `file`, `dir`, `symlink` or `other`.
pub fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Directory => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    }
}

/// An entry as JSON: name, type, size, modification time (seconds and
/// RFC 3339 UTC) and mode in octal.
pub fn entry_json(entry: &Entry) -> Value {
    json!({
        "name": entry.name,
        "type": kind_name(entry.kind),
        "size": entry.size,
        "modified": entry.modified,
        "modified_utc": DateTime::from_timestamp(entry.modified, 0).map(|t| t.to_rfc3339()),
        "mode": format!("{:04o}", entry.mode & 0o7777),
    })
}

/// `drwxr-xr-x` and the like.
pub fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::File => '-',
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    });
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A modification time as `ls -l` shows it: month, day and time within six
/// months of now, month, day and year otherwise; local time.
pub fn ls_time(modified: i64) -> String {
    let Some(t) = Local.timestamp_opt(modified, 0).single() else {
        return "?".into();
    };
    let age = Local::now().signed_duration_since(t);
    if age.num_days().abs() < 182 {
        t.format("%b %e %H:%M").to_string()
    } else {
        t.format("%b %e  %Y").to_string()
    }
}

/// A modification time in full, local time: `2026-11-22 05:07:00 +0000`.
pub fn full_time(modified: i64) -> String {
    match Local.timestamp_opt(modified, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %z").to_string(),
        None => format!("{modified} (seconds since 1970)"),
    }
}

/// Prints entries: one name a line, or in columns on a terminal; with
/// `long`, one `ls -l` line each.
pub fn print_entries(entries: &[&Entry], long: bool) {
    let mut out = std::io::stdout().lock();
    if long {
        let width = entries
            .iter()
            .map(|e| e.size.to_string().len())
            .max()
            .unwrap_or(1);
        for e in entries {
            let _ = writeln!(
                out,
                "{} {:>width$} {} {}",
                mode_string(e.kind, e.mode),
                e.size,
                ls_time(e.modified),
                escape(&e.name)
            );
        }
        return;
    }
    let names: Vec<String> = entries
        .iter()
        .map(|e| escape(&e.name).to_string())
        .collect();
    let columns = if std::io::stdout().is_terminal() {
        terminal_width()
    } else {
        0
    };
    for line in columns_layout(&names, columns) {
        let _ = writeln!(out, "{line}");
    }
}

/// Lays names out in columns, down then across, for a terminal `width`
/// columns wide (display width, so CJK names line up); width 0: one a line.
pub fn columns_layout(names: &[String], width: usize) -> Vec<String> {
    let widest = names.iter().map(|n| n.width()).max().unwrap_or(0);
    let cell = widest + 2;
    let per_row = if width == 0 {
        1
    } else {
        (width / cell.max(1)).max(1)
    };
    if per_row <= 1 {
        return names.to_vec();
    }
    let rows = names.len().div_ceil(per_row);
    (0..rows)
        .map(|r| {
            let mut line = String::new();
            let mut i = r;
            while i < names.len() {
                let name = &names[i];
                line.push_str(name);
                if i + rows < names.len() {
                    line.extend(std::iter::repeat_n(' ', cell - name.width()));
                }
                i += rows;
            }
            line
        })
        .collect()
}

fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .map(|w| usize::from(w.ws_col))
        .ok()
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// One transfer of a command, as the meter reports it.
#[derive(Debug, Clone)]
pub struct Leg {
    pub local: String,
    pub remote: String,
    /// The local file itself (`local` is how it is shown).
    pub path: std::path::PathBuf,
}

impl Leg {
    /// A transfer between `local` and the home-relative `remote`.
    pub fn new(local: &std::path::Path, remote: &str) -> Leg {
        Leg {
            local: local.display().to_string(),
            remote: crate::remote_path::display(remote),
            path: local.to_path_buf(),
        }
    }
}

/// The progress of a transfer of one file or many: a bar for the current
/// file and, for several files, one for the whole; then the report.
pub struct Meter {
    multi: MultiProgress,
    file: ProgressBar,
    overall: Option<ProgressBar>,
    op: &'static str,
    legs: Vec<Leg>,
    sizes: Vec<u64>,
    started: Instant,
    output: Output,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("op", &self.op).finish()
    }
}

impl Meter {
    /// `op` is `put` or `get`; `total` the bytes of all files when known.
    pub fn start(output: Output, op: &'static str, legs: Vec<Leg>, total: Option<u64>) -> Meter {
        let multi = MultiProgress::with_draw_target(if output.progress() {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        let file_style = ProgressStyle::with_template(
            "{msg:30!} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let file = multi.add(ProgressBar::new(0).with_style(file_style));
        let overall = (legs.len() > 1).then(|| {
            let (template, length) = match total {
                Some(bytes) => (
                    "{prefix:30!} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
                    bytes,
                ),
                None => (
                    "{prefix:30!} [{bar:25}] {bytes:>10} {binary_bytes_per_sec:>12}",
                    0,
                ),
            };
            let style = ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> ");
            let bar = multi.add(ProgressBar::new(length).with_style(style));
            bar.set_prefix(format!("total: 0/{} files", legs.len()));
            bar
        });
        Meter {
            multi,
            file,
            overall,
            op,
            sizes: vec![0; legs.len()],
            legs,
            started: Instant::now(),
            output,
        }
    }

    /// The callback a transfer reports its progress to.
    pub fn progress(&self) -> impl FnMut(usize, u64, u64) + Send + use<> {
        let file = self.file.clone();
        let overall = self.overall.clone();
        let labels: Vec<String> = self
            .legs
            .iter()
            .map(|l| {
                let shown = if self.op == "put" {
                    &l.local
                } else {
                    &l.remote
                };
                escape(shown).to_string()
            })
            .collect();
        let count = labels.len();
        let mut current = usize::MAX;
        let mut finished_bytes = 0u64;
        let mut current_done = 0u64;
        move |index, done, total| {
            if index != current {
                if current != usize::MAX {
                    finished_bytes += current_done;
                }
                current = index;
                file.set_message(labels.get(index).cloned().unwrap_or_default());
                file.reset_elapsed();
                if let Some(bar) = &overall {
                    bar.set_prefix(format!("total: {}/{count} files", index + 1));
                }
            }
            current_done = done;
            file.set_length(total);
            file.set_position(done);
            if let Some(bar) = &overall {
                let position = finished_bytes + done;
                // Without a known total, the length follows the bytes done.
                if bar.length().is_some_and(|l| l < position) {
                    bar.set_length(position);
                }
                bar.set_position(position);
            }
        }
    }

    /// Clears the bars; prints each failure (and, on a terminal, a
    /// summary; with `--json`, a record per file). Files after a lost
    /// connection count as failed. Returns the worst exit status among
    /// the failures (0 when there were none).
    /// For a download cut by a lost connection: what its `.part` kept and
    /// how to continue it.
    fn note_kept(&self, leg: &Leg) {
        if self.op != "get" {
            return;
        }
        let part = crate::transfer::get::part_path(&leg.path);
        if let Ok(meta) = std::fs::metadata(&part)
            && meta.len() > 0
        {
            eprintln!(
                "note: the download of {} did not complete: {} bytes kept in {}; `get --resume` continues it",
                escape(&leg.remote),
                meta.len(),
                escape(&part.display().to_string())
            );
        }
    }

    pub fn finish(mut self, outcome: Outcome) -> u8 {
        let shown = self.output.progress();
        self.file.finish_and_clear();
        if let Some(bar) = &self.overall {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
        let mut failed = 0;
        let mut code = 0;
        let known = outcome.results.len();
        let mut results = outcome.results.into_iter();
        let mut cut = Vec::new();
        for (i, leg) in self.legs.iter().enumerate() {
            let mut record = json!({"op": self.op, "local": leg.local, "remote": leg.remote});
            match results.next() {
                Some(Ok(bytes)) => {
                    self.sizes[i] = bytes;
                    record["bytes"] = json!(bytes);
                    record["ok"] = json!(true);
                }
                failure => {
                    failed += 1;
                    let (error, remote_code) = match failure {
                        Some(Err(e)) => {
                            code = code.max(e.exit_code());
                            eprintln!("error: {e}");
                            (e.to_string(), e.remote_code())
                        }
                        _ => {
                            cut.push(leg);
                            ("not transferred: the connection was lost".to_string(), None)
                        }
                    };
                    record["ok"] = json!(false);
                    record["error"] = json!(error);
                    record["code"] = json!(remote_code.map(|c| c.0));
                }
            }
            if self.output.json {
                self.output.record(record);
            }
        }
        if let Some(e) = &outcome.lost {
            code = code.max(e.exit_code());
            let untouched = self.legs.len().saturating_sub(known);
            eprintln!("error: {e}");
            if untouched > 0 && self.legs.len() > 1 {
                eprintln!(
                    "error: {untouched} of {} files not transferred",
                    self.legs.len()
                );
            }
        }
        for leg in cut {
            self.note_kept(leg);
        }
        if shown && failed < self.legs.len() {
            let bytes: u64 = self.sizes.iter().sum();
            let elapsed = self.started.elapsed().max(Duration::from_micros(1));
            let what = match self.legs.as_slice() {
                [one] if failed == 0 => escape(if self.op == "put" {
                    &one.local
                } else {
                    &one.remote
                })
                .to_string(),
                many => format!("{} of {} files", many.len() - failed, many.len()),
            };
            eprintln!(
                "{what}: {} in {:.2}s ({}/s)",
                indicatif::HumanBytes(bytes),
                elapsed.as_secs_f64(),
                indicatif::HumanBytes((bytes as f64 / elapsed.as_secs_f64()) as u64)
            );
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(EntryKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(EntryKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Other, 0o2640), "?rw-r-S---");
    }

    #[test]
    fn columns_use_display_width() {
        let names: Vec<String> = ["报告.txt", "a", "bb", "ccc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let lines = columns_layout(&names, 30);
        assert_eq!(
            lines,
            vec!["报告.txt  bb".to_string(), "a         ccc".to_string()]
        );
        assert_eq!(columns_layout(&names, 0), names);
    }
}

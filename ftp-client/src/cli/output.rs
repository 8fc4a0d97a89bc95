//! What the commands print: results on standard output (plain text, or one
//! JSON object per line with `--json`), progress and errors on standard
//! error. Progress bars appear only on a terminal and never with `--quiet`
//! or `--json`. Every name that came from a server is escaped before it
//! reaches a terminal.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Local, TimeZone};
use ftp_shared::message::{Entry, EntryKind};
use ftp_shared::text::escape;
use serde_json::{Value, json};
use unicode_width::UnicodeWidthStr;

use crate::ClientError;

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

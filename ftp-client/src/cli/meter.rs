//! The progress of a transfer and its report: a bar for the current file
//! and, for several files, one for the whole; then a line per failure, the
//! summary, and a JSON record per file with `--json`.

use std::time::{Duration, Instant};

use ftp_shared::text::escape;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::output::Output;
use crate::transfer::Outcome;

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

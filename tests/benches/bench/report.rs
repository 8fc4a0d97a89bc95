//! The table of the benchmark: its rows, what each is held against, and
//! the printed and JSON report.

use std::path::{Path, PathBuf};

/// One line of the table.
pub struct Row {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// What the figure is held against, and how (`value / limit` must be at
    /// least `want`; or, for costs, `value` at most `want`).
    pub against: Against,
}

pub enum Against {
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

pub fn limit_row(name: &str, bytes_per_second: f64) -> Row {
    Row {
        name: name.into(),
        value: bytes_per_second / 1e9,
        unit: "GB/s",
        against: Against::Nothing,
    }
}

pub fn rss_row(name: &str, mib: f64, at_most: f64) -> Row {
    Row {
        name: name.into(),
        value: mib,
        unit: "MiB",
        against: Against::AtMost(at_most),
    }
}

/// Prints the table and writes it as JSON under `target/bench/`.
pub fn report(rows: &[Row]) {
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

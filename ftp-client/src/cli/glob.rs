//! Wildcards in paths, as a POSIX shell expands them: `*`, `?` and `[...]`
//! in the last component of a path match the names of its directory. Like
//! a shell, a wildcard does not match a leading '.' unless the pattern
//! starts with one. Unlike a shell, a name that is exactly the pattern is
//! taken as it is (so `report[1].txt` names that file), and a pattern that
//! matches nothing is an error, not a literal name.
//!
//! Remote paths are expanded against a listing from the server (see
//! `Remote::expand`); local paths against the local directory.

use std::path::Path;

use glob::{MatchOptions, Pattern};

use crate::ClientError;

/// Whether `name` holds a wildcard.
pub fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// The names that `pattern` matches, sorted; `None` when `pattern` is not a
/// wildcard pattern (no wildcard, not a valid pattern, or a name in `names`
/// is exactly the pattern).
pub fn matches<'a>(pattern: &str, names: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
    if !has_wildcard(pattern) {
        return None;
    }
    let matcher = Pattern::new(pattern).ok()?;
    let options = MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut found = Vec::new();
    for name in names {
        if name == pattern {
            return None;
        }
        if matcher.matches_with(name, options) {
            found.push(name.to_string());
        }
    }
    found.sort();
    Some(found)
}

/// A local path as typed, with a wildcard in its last component expanded.
/// What surrounds that component (the directory part and any trailing
/// '/') is kept as typed.
pub fn expand_local(typed: &str) -> Result<Vec<String>, ClientError> {
    let body = typed.trim_end_matches('/');
    let trailing = &typed[body.len()..];
    let (prefix, pattern) = match body.rfind('/') {
        Some(slash) => body.split_at(slash + 1),
        None => ("", body),
    };
    if !has_wildcard(pattern) {
        return Ok(vec![typed.to_string()]);
    }
    let dir = if prefix.is_empty() {
        Path::new(".")
    } else {
        Path::new(prefix)
    };
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ClientError::Local {
            path: dir.to_path_buf(),
            source: e,
        })?
        .filter_map(Result::ok)
        // As in a shell, `*/` matches directories only.
        .filter(|entry| trailing.is_empty() || entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    match matches(pattern, names.iter().map(String::as_str)) {
        None => Ok(vec![typed.to_string()]),
        Some(found) if found.is_empty() => Err(ClientError::NoMatch {
            pattern: typed.to_string(),
        }),
        Some(found) => Ok(found
            .into_iter()
            .map(|n| format!("{prefix}{n}{trailing}"))
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, names: &[&str]) -> Option<Vec<String>> {
        matches(pattern, names.iter().copied())
    }

    #[test]
    fn wildcards_match_like_a_shell() {
        let names = ["a.txt", "b.txt", "c.md", ".hidden.txt", "报告.txt"];
        assert_eq!(m("*.txt", &names).unwrap(), ["a.txt", "b.txt", "报告.txt"]);
        assert_eq!(m("?.txt", &names).unwrap(), ["a.txt", "b.txt"]);
        assert_eq!(m("[ac].*", &names).unwrap(), ["a.txt", "c.md"]);
        assert_eq!(m(".*", &names).unwrap(), [".hidden.txt"]);
        assert_eq!(m("*.pdf", &names).unwrap(), Vec::<String>::new());
        assert_eq!(m("报*", &names).unwrap(), ["报告.txt"]);
        // One character, not one byte.
        assert_eq!(m("报?.txt", &names).unwrap(), ["报告.txt"]);
        assert_eq!(m("[报]告.txt", &names).unwrap(), ["报告.txt"]);
        assert_eq!(m("[!ab]*", &names).unwrap(), ["c.md", "报告.txt"]);
    }

    #[test]
    fn plain_and_literal_names_are_not_patterns() {
        assert_eq!(m("a.txt", &["a.txt"]), None);
        assert_eq!(m("report[1].txt", &["report[1].txt", "report1.txt"]), None);
        assert_eq!(m("[", &["["]), None);
    }

    #[test]
    fn local_expansion_keeps_the_directory_part() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["x1.log", "x2.log", "y.log"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let pattern = format!("{}/x*.log", dir.path().display());
        let found = expand_local(&pattern).unwrap();
        assert_eq!(
            found,
            [
                format!("{}/x1.log", dir.path().display()),
                format!("{}/x2.log", dir.path().display())
            ]
        );
        let none = format!("{}/z*", dir.path().display());
        assert!(matches!(
            expand_local(&none),
            Err(ClientError::NoMatch { .. })
        ));
    }

    #[test]
    fn local_expansion_keeps_a_trailing_slash_and_multibyte_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["报告", "报表"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("报纸"), b"a file").unwrap();
        let base = dir.path().display();
        assert_eq!(
            expand_local(&format!("{base}/报*/")).unwrap(),
            [format!("{base}/报告/"), format!("{base}/报表/")]
        );
        assert_eq!(
            expand_local(&format!("{base}//报?//")).unwrap(),
            [format!("{base}//报告//"), format!("{base}//报表//")]
        );
        // Without the '/', files match too.
        assert_eq!(expand_local(&format!("{base}/报*")).unwrap().len(), 3);
        assert_eq!(expand_local("/").unwrap(), ["/"]);
        assert_eq!(expand_local("").unwrap(), [""]);
    }
}

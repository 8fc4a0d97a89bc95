//! Remote paths as people type them, turned into the home-relative paths of
//! the protocol.
//!
//! The client keeps a remote working directory (home-relative, `""` is the
//! home). A path that starts with `/` starts at the home; any other starts at
//! the working directory. `.` and `..` are resolved here, by name (the
//! server accepts neither), and a path that would climb above the home is
//! refused before anything is sent. The server checks every path again: this
//! is convenience, not the sandbox.

use crate::ClientError;

/// Resolves `path` against the working directory `cwd`.
pub fn resolve(cwd: &str, path: &str) -> Result<String, ClientError> {
    let mut parts: Vec<&str> = Vec::new();
    if !path.starts_with('/') {
        parts.extend(cwd.split('/').filter(|c| !c.is_empty()));
    }
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ClientError::OutsideHome {
                        path: path.to_string(),
                    });
                }
            }
            name => parts.push(name),
        }
    }
    Ok(parts.join("/"))
}

/// How a home-relative path is shown: `/` for the home, `/a/b` otherwise.
pub fn display(path: &str) -> String {
    format!("/{path}")
}

/// The last component of a home-relative path (`""` for the home).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `dir/name`, or `name` when `dir` is the home.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_working_directory() {
        assert_eq!(resolve("", "a").unwrap(), "a");
        assert_eq!(resolve("docs", "a/b").unwrap(), "docs/a/b");
        assert_eq!(resolve("docs", "/a").unwrap(), "a");
        assert_eq!(resolve("docs/x", "..").unwrap(), "docs");
        assert_eq!(resolve("docs/x", "../../y").unwrap(), "y");
        assert_eq!(resolve("docs", "./a//b/").unwrap(), "docs/a/b");
        assert_eq!(resolve("docs", "/").unwrap(), "");
        assert_eq!(resolve("docs", "").unwrap(), "docs");
        assert_eq!(resolve("", "报告.txt").unwrap(), "报告.txt");
    }

    #[test]
    fn never_climbs_above_the_home() {
        for (cwd, path) in [
            ("", ".."),
            ("", "../x"),
            ("a", "../../x"),
            ("a", "/.."),
            ("", "a/../../b"),
        ] {
            let err = resolve(cwd, path).unwrap_err();
            assert!(
                matches!(err, ClientError::OutsideHome { .. }),
                "{cwd} {path}"
            );
            assert!(err.to_string().contains("outside the home"), "{err}");
        }
    }

    #[test]
    fn names_and_joins() {
        assert_eq!(file_name("a/b/c.txt"), "c.txt");
        assert_eq!(file_name("c"), "c");
        assert_eq!(file_name(""), "");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a/b", "x"), "a/b/x");
        assert_eq!(display(""), "/");
        assert_eq!(display("a/b"), "/a/b");
    }
}

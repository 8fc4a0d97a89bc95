//! Client path and user-name validation.
//!
//! Every path a client sends is checked here, as text, before anything touches
//! the filesystem. The rules are deliberately strict and simple: a path is a
//! home-relative list of `/`-separated, non-empty components; `.`, `..`,
//! backslashes and invisible or control characters are refused outright rather
//! than normalised, so there is never a question of how a name is interpreted.
//! Everything else (spaces, `%`, `~`, `*`, `:`, non-ASCII letters) is an
//! ordinary name inside the user's home.

use std::fmt;

/// Longest accepted path, in bytes: Linux `PATH_MAX` (4096) counts the
/// terminating NUL, so 4095 is the longest path the kernel opens in one call.
/// Every operation handles every path up to this length.
pub const MAX_PATH_BYTES: usize = 4095;
/// Longest accepted component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Largest accepted number of components.
pub const MAX_DEPTH: usize = 64;
/// Longest accepted user name, in characters.
pub const MAX_USER_NAME_LEN: usize = 32;

/// Why a client path or user name was refused. The messages are meant for
/// clients: short, and never containing the offending text or a host path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path was empty.
    #[error("empty path")]
    Empty,
    /// The path started with '/'.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// The path was longer than [`MAX_PATH_BYTES`].
    #[error("path too long")]
    TooLong,
    /// A component was longer than [`MAX_COMPONENT_BYTES`].
    #[error("file name too long")]
    ComponentTooLong,
    /// The path had more than [`MAX_DEPTH`] components.
    #[error("path too deep")]
    TooDeep,
    /// The path contained an empty component ("a//b").
    #[error("empty path components are not allowed")]
    EmptyComponent,
    /// The path contained a "." or ".." component.
    #[error("'..' and '.' are not allowed in paths")]
    DotComponent,
    /// The path contained a backslash.
    #[error("backslashes are not allowed in paths")]
    Backslash,
    /// The path contained a control, invisible or bidirectional-format character.
    #[error("paths may not contain control or invisible characters")]
    ForbiddenCharacter,
    /// A user name did not match the allowed pattern.
    #[error("invalid user name")]
    InvalidUserName,
}

/// A validated, home-relative virtual path: '/'-separated, non-empty components.
///
/// Construct it with [`VPath::parse`]; holding a `VPath` means the text passed
/// every rule of this module.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VPath(String);

impl VPath {
    /// Validates a client path. A single trailing '/' is accepted and dropped
    /// ("dir/" is "dir").
    pub fn parse(s: &str) -> Result<VPath, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if s.contains('\\') {
            return Err(PathError::Backslash);
        }
        if s.chars().any(is_forbidden_char) {
            return Err(PathError::ForbiddenCharacter);
        }
        let body = s.strip_suffix('/').unwrap_or(s);
        let mut depth = 0usize;
        for component in body.split('/') {
            match component {
                "" => return Err(PathError::EmptyComponent),
                "." | ".." => return Err(PathError::DotComponent),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(PathError::ComponentTooLong),
                _ => {}
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(PathError::TooDeep);
            }
        }
        Ok(VPath(body.to_owned()))
    }

    /// The validated path, without a trailing '/'.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last; never empty, never "." or "..".
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The containing path; `None` for a single component (whose parent is the home).
    pub fn parent(&self) -> Option<VPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| VPath(parent.to_owned()))
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters refused anywhere in a path: exactly those the protocol's text
/// escaping would have to escape (controls, line and paragraph separators,
/// bidirectional overrides and isolates, zero-width and format characters).
/// They could forge replies or logs, or make two different names look
/// identical.
fn is_forbidden_char(c: char) -> bool {
    ftp_shared::text::is_unsafe_char(c)
}

/// Checks a user name: 1 to 32 characters from `[a-z0-9_.-]`, the first one
/// from `[a-z0-9_]` (so never '.' or '-', which keeps `.incoming` and the like
/// out of the user namespace and names from looking like options).
pub fn validate_user_name(name: &str) -> Result<(), PathError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= MAX_USER_NAME_LEN {
        Ok(())
    } else {
        Err(PathError::InvalidUserName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> PathError {
        VPath::parse(s).expect_err(s)
    }

    #[test]
    fn accepts_ordinary_names() {
        for s in [
            "a",
            "a/b/c",
            "file with spaces.txt",
            "100%",
            "~notes",
            "*",
            "c:/x",
            "报告.txt",
            "café",
            "...",
            "..a",
            ".hidden",
            "a.",
            "-rf",
        ] {
            assert_eq!(VPath::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn strips_one_trailing_slash() {
        assert_eq!(VPath::parse("dir/").unwrap().as_str(), "dir");
        assert_eq!(VPath::parse("a/b/").unwrap().as_str(), "a/b");
        assert_eq!(err("dir//"), PathError::EmptyComponent);
    }

    #[test]
    fn refuses_structural_tricks() {
        assert_eq!(err(""), PathError::Empty);
        assert_eq!(err("/"), PathError::Absolute);
        assert_eq!(err("/etc/passwd"), PathError::Absolute);
        assert_eq!(err("//x"), PathError::Absolute);
        assert_eq!(err("a//b"), PathError::EmptyComponent);
        assert_eq!(err(".."), PathError::DotComponent);
        assert_eq!(err("."), PathError::DotComponent);
        assert_eq!(err("./"), PathError::DotComponent);
        assert_eq!(err("a/../b"), PathError::DotComponent);
        assert_eq!(err("a/./b"), PathError::DotComponent);
        assert_eq!(err("sub/.."), PathError::DotComponent);
        assert_eq!(err("..\\x"), PathError::Backslash);
        assert_eq!(err("C:\\Windows"), PathError::Backslash);
    }

    #[test]
    fn refuses_forbidden_characters() {
        for s in [
            "a\0b",
            "a\nb",
            "\r\n",
            "\u{1b}[0m",
            "del\u{7f}",
            "c1\u{85}",
            "\u{9b}",
            "\u{2028}",
            "\u{2029}",
            "\u{202e}gpj.exe",
            "\u{2066}",
            "\u{2069}",
            "\u{200b}x",
            "\u{200f}",
            "\u{2060}",
            "\u{2064}",
            "\u{feff}x",
        ] {
            assert_eq!(err(s), PathError::ForbiddenCharacter, "{s:?}");
        }
        // Neighbours of the refused ranges are ordinary.
        for s in [
            "\u{2027}", "\u{202f}", "\u{2065}", "\u{206a}", "\u{2010}", "\u{fefe}",
        ] {
            assert!(VPath::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn enforces_limits() {
        let name255 = "n".repeat(255);
        assert!(VPath::parse(&name255).is_ok());
        assert_eq!(err(&"n".repeat(256)), PathError::ComponentTooLong);
        // Two-byte characters count in bytes.
        assert_eq!(err(&"é".repeat(128)), PathError::ComponentTooLong);
        let deep64 = vec!["d"; 64].join("/");
        assert!(VPath::parse(&deep64).is_ok());
        assert_eq!(err(&vec!["d"; 65].join("/")), PathError::TooDeep);
        let long = vec![name255.as_str(); 16].join("/"); // 4095 bytes
        assert_eq!(long.len(), 4095);
        assert!(VPath::parse(&long).is_ok());
        assert_eq!(err(&format!("{long}/x")), PathError::TooLong);
    }

    #[test]
    fn accessors() {
        let p = VPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.parent().unwrap().parent().unwrap().as_str(), "a");
        assert_eq!(p.parent().unwrap().parent().unwrap().parent(), None);
        assert_eq!(p.to_string(), "a/b/c.txt");
        let single = VPath::parse("x/").unwrap();
        assert_eq!(single.file_name(), "x");
        assert_eq!(single.parent(), None);
    }

    #[test]
    fn user_names() {
        for ok in ["alice", "bob_2", "_svc", "0day", "a.b-c", &"a".repeat(32)] {
            assert_eq!(validate_user_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".incoming",
            "..",
            "../x",
            "-rf",
            "Alice",
            "a b",
            "a/b",
            "é",
            "a\0",
            &"a".repeat(33),
        ] {
            assert_eq!(
                validate_user_name(bad),
                Err(PathError::InvalidUserName),
                "{bad}"
            );
        }
    }
}

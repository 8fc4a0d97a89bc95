//! Escaping of text that came from a peer.
//!
//! Paths and messages are chosen by the other side of the connection. Before
//! one reaches a log line or a terminal, control characters (a newline that
//! forges a log entry, an escape sequence that repaints the screen) and
//! invisible format characters are shown as `\u{..}` escapes instead.

use std::fmt;

/// Displays `s` with every control or invisible formatting character escaped.
pub fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// See [`escape`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

/// Characters that could forge lines, repaint a terminal or hide text.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if is_unsafe_char(c) {
                write!(f, "\\u{{{:x}}}", c as u32)?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Characters of peer text a log line shows at the most (see [`log_text`]).
pub const LOG_TEXT_CHARS: usize = 64;

/// Peer text for a log line: escaped like [`escape`], quoted, and cut after
/// [`LOG_TEXT_CHARS`] characters with the amount cut said, e.g.
/// `"abc…" (3900 bytes, 3836 not shown)`. Every log line that carries text
/// a peer chose goes through this, so one peer cannot make the log grow
/// faster than its requests.
pub fn log_text(s: &str) -> LogText<'_> {
    LogText(s)
}

/// See [`log_text`].
#[derive(Debug, Clone, Copy)]
pub struct LogText<'a>(&'a str);

impl fmt::Display for LogText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self
            .0
            .char_indices()
            .nth(LOG_TEXT_CHARS)
            .map_or(self.0.len(), |(i, _)| i);
        let (shown, rest) = self.0.split_at(cut);
        if rest.is_empty() {
            write!(f, "\"{}\"", escape(shown))
        } else {
            write!(
                f,
                "\"{}…\" ({} bytes, {} not shown)",
                escape(shown),
                self.0.len(),
                rest.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, log_text};

    #[test]
    fn log_text_is_escaped_and_capped() {
        assert_eq!(log_text("a\nb").to_string(), "\"a\\u{a}b\"");
        let long = "\u{1}".repeat(3900);
        let shown = log_text(&long).to_string();
        assert!(
            shown.ends_with("\" (3900 bytes, 3836 not shown)"),
            "{shown}"
        );
        assert!(shown.len() < 64 * 6 + 40, "{}", shown.len());
    }

    #[test]
    fn escapes_what_could_forge_a_line_or_repaint_a_terminal() {
        assert_eq!(escape("a\nb").to_string(), "a\\u{a}b");
        assert_eq!(escape("\u{1b}[31mred").to_string(), "\\u{1b}[31mred");
        assert_eq!(escape("x\u{202e}y").to_string(), "x\\u{202e}y");
        assert_eq!(escape("a\\b").to_string(), "a\\\\b");
        assert_eq!(escape("报告.txt").to_string(), "报告.txt");
    }
}

//! The hostile-path vectors of `tests/data/hostile-paths.txt` and their
//! decoder.
//!
//! Self-contained (std only) on purpose: the `tests` crate has it as
//! `tests::hostile`, and `storage/tests/hostile.rs` includes this very file
//! with `#[path = "../../tests/src/hostile.rs"]`, since `ftp-storage` cannot
//! depend on the `tests` package. `include_str!` resolves relative to this
//! file, so both read the same data file.

/// Decodes a line of `data/hostile-paths.txt`: `\u{..}` is a scalar (a
/// surrogate becomes its WTF-8 bytes), `\x{..}` a raw byte; any other
/// backslash is literal.
pub fn decode_escapes(line: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        let after = &rest[pos + 1..];
        let escape = (after.starts_with("u{") || after.starts_with("x{"))
            .then(|| after[2..].find('}').map(|end| (&after[2..2 + end], end)))
            .flatten()
            .filter(|(hex, _)| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        match escape {
            Some((hex, end)) => {
                let value = u32::from_str_radix(hex, 16).unwrap();
                if after.starts_with('x') {
                    out.push(u8::try_from(value).unwrap());
                } else if let Some(c) = char::from_u32(value) {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                } else {
                    assert!((0xD800..=0xDFFF).contains(&value), "bad scalar {hex}");
                    out.extend_from_slice(&[
                        0xE0 | (value >> 12) as u8,
                        0x80 | ((value >> 6) & 0x3F) as u8,
                        0x80 | (value & 0x3F) as u8,
                    ]);
                }
                rest = &after[2 + end + 1..];
            }
            None => {
                out.push(b'\\');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// Every vector line as written (escapes not decoded), comments left out.
pub fn hostile_lines() -> Vec<&'static str> {
    let text = include_str!("../data/hostile-paths.txt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(lines.len() > 90, "hostile-paths.txt truncated?");
    lines
}

/// The hostile paths that are valid UTF-8 (the only ones a `String` path can
/// carry), as (line as written, decoded path).
pub fn hostile_paths() -> Vec<(String, String)> {
    hostile_lines()
        .into_iter()
        .filter_map(|l| {
            String::from_utf8(decode_escapes(l))
                .ok()
                .map(|p| (l.to_owned(), p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_escapes_and_literal_backslashes() {
        assert_eq!(decode_escapes(r"..\outside.txt"), br"..\outside.txt");
        assert_eq!(decode_escapes(r"a\u{0}b"), b"a\0b");
        assert_eq!(decode_escapes(r"caf\u{e9}"), "café".as_bytes());
        assert_eq!(decode_escapes(r"\x{c0}\x{ae}"), [0xC0, 0xAE]);
        assert_eq!(decode_escapes(r"\u{d800}"), [0xED, 0xA0, 0x80]);
        assert_eq!(decode_escapes(r"\u{zz}\x{}"), br"\u{zz}\x{}");
        assert_eq!(decode_escapes(r"\\?\C:\"), br"\\?\C:\");
    }

    #[test]
    fn valid_utf8_paths_include_traversal_and_exclude_raw_bytes() {
        let paths = hostile_paths();
        assert!(
            paths
                .iter()
                .any(|(_, p)| p == "../../../../../../../../etc/passwd")
        );
        assert!(paths.iter().all(|(l, _)| !l.contains(r"\x{")));
    }
}

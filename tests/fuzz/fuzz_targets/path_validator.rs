//! Arbitrary text as a client path: validation never panics, and what it
//! accepts is relative, free of `.`/`..`/empty components, backslashes and
//! control characters, and within the limits.
#![no_main]

use ftp_storage::VPath;
use ftp_storage::path::{MAX_COMPONENT_BYTES, MAX_DEPTH, MAX_PATH_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = VPath::parse(text) {
        let s = path.as_str();
        assert!(!s.is_empty() && !s.starts_with('/') && !s.contains('\\'));
        assert!(s.len() <= MAX_PATH_BYTES);
        assert!(path.components().count() <= MAX_DEPTH);
        for c in path.components() {
            assert!(!c.is_empty() && c != "." && c != "..");
            assert!(c.len() <= MAX_COMPONENT_BYTES);
            assert!(!c.chars().any(char::is_control));
        }
        assert_eq!(VPath::parse(s), Ok(path.clone()));
    }
});

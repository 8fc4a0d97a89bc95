//! Properties of path validation over arbitrary text: it never panics, and
//! whatever it accepts is a plain relative path that cannot climb out of the
//! home, hide characters, or exceed the limits.

use ftp_storage::VPath;
use ftp_storage::path::{MAX_COMPONENT_BYTES, MAX_DEPTH, MAX_PATH_BYTES};
use proptest::prelude::*;

/// Text biased towards the characters that matter to paths.
fn pathish() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("\\".to_string()),
        Just("\0".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{2215}".to_string()),
        "[a-z]{1,4}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn accepted_paths_stay_plain_and_relative(s in pathish()) {
        if let Ok(p) = VPath::parse(&s) {
            let text = p.as_str();
            prop_assert!(!text.is_empty());
            prop_assert!(!text.starts_with('/'));
            prop_assert!(!text.ends_with('/'));
            prop_assert!(!text.contains('\\'));
            prop_assert!(text.len() <= MAX_PATH_BYTES);
            let components: Vec<&str> = p.components().collect();
            prop_assert!(components.len() <= MAX_DEPTH);
            for c in components {
                prop_assert!(!c.is_empty() && c != "." && c != "..", "{:?}", c);
                prop_assert!(c.len() <= MAX_COMPONENT_BYTES);
                prop_assert!(!c.chars().any(char::is_control), "{:?}", c);
            }
            // Parsing is idempotent.
            prop_assert_eq!(VPath::parse(text), Ok(p.clone()));
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".*") {
        let _ = VPath::parse(&s);
    }
}

//! `List { path }`: the entries of a directory (the home for the empty
//! path), or the one entry of what is not a directory, answered with
//! `Entries` frames of at most [`ENTRIES_PER_BATCH`] entries, `more: true` on
//! every one but the last. An empty directory is one empty batch.

use std::sync::Arc;

use ftp_shared::Response;
use ftp_shared::codec::MAX_FRAME;
use ftp_shared::message::{ENTRIES_PER_BATCH, Entry};
use ftp_shared::text::log_text;
use ftp_storage::Home;

use crate::cmd::{blocking, parse_path_or_home};
use crate::connection::Connection;
use crate::error::CmdError;

/// Encoded bytes of an entry besides its name: the name's length, the kind,
/// the size, the time and the mode.
const ENTRY_OVERHEAD: usize = 8 + 4 + 8 + 8 + 4;
/// The most encoded entry bytes in one frame: the frame cap, less room for
/// the variant index, the count and `more`. Names of at most 255 bytes keep
/// a full batch far below it; the bound holds whatever the names.
const BATCH_BYTES: usize = MAX_FRAME - 64;

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path_or_home(path)?;
    let home = home.clone();
    let entries = blocking(move || home.list(vpath.as_ref()))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    tracing::debug!(path = %log_text(path), entries = entries.len(), "list");
    let mut entries = entries.into_iter().peekable();
    loop {
        let batch = next_batch(&mut entries);
        let more = entries.peek().is_some();
        conn.send(Response::Entries {
            entries: batch,
            more,
        })
        .await?;
        if !more {
            return Ok(());
        }
    }
}

/// Up to [`ENTRIES_PER_BATCH`] entries that fit in one frame (at least one
/// if any is left).
fn next_batch(entries: &mut std::iter::Peekable<impl Iterator<Item = Entry>>) -> Vec<Entry> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < ENTRIES_PER_BATCH {
        let Some(next) = entries.peek() else { break };
        let size = ENTRY_OVERHEAD + next.name.len();
        if !batch.is_empty() && bytes + size > BATCH_BYTES {
            break;
        }
        bytes += size;
        batch.extend(entries.next());
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftp_shared::message::EntryKind;

    fn entry(name: String) -> Entry {
        Entry {
            name,
            kind: EntryKind::File,
            size: 0,
            modified: 0,
            mode: 0o644,
        }
    }

    fn batches(entries: Vec<Entry>) -> Vec<usize> {
        let mut it = entries.into_iter().peekable();
        let mut sizes = vec![next_batch(&mut it).len()];
        while it.peek().is_some() {
            sizes.push(next_batch(&mut it).len());
        }
        sizes
    }

    #[test]
    fn batches_are_capped_by_count_and_by_bytes() {
        assert_eq!(batches(vec![]), [0]);
        let many = (0..2500).map(|i| entry(format!("f{i}"))).collect();
        assert_eq!(batches(many), [1024, 1024, 452]);
        // Names far longer than a filesystem allows still fit in frames.
        let long = (0..100).map(|_| entry("n".repeat(100_000))).collect();
        let sizes = batches(long);
        assert!(
            sizes.iter().all(|&n| n * 100_032 <= BATCH_BYTES),
            "{sizes:?}"
        );
        assert_eq!(sizes.iter().sum::<usize>(), 100);
    }

    #[test]
    fn a_full_batch_of_the_longest_names_fits_in_a_frame() {
        use ftp_shared::codec::encode_frame;
        // 255 bytes that are not UTF-8 become 255 replacement characters.
        let name = "\u{fffd}".repeat(255);
        let all: Vec<Entry> = (0..ENTRIES_PER_BATCH)
            .map(|_| entry(name.clone()))
            .collect();
        let batch = next_batch(&mut all.into_iter().peekable());
        assert_eq!(batch.len(), ENTRIES_PER_BATCH);
        let mut buf = bytes::BytesMut::new();
        encode_frame(
            &Response::Entries {
                entries: batch,
                more: false,
            },
            &mut buf,
        )
        .expect("a full batch fits in a frame");
    }

    fn hex_frame<T: serde::Serialize>(msg: &T) -> String {
        let mut buf = bytes::BytesMut::new();
        ftp_shared::codec::encode_frame(msg, &mut buf).unwrap();
        let hex: Vec<String> = buf.iter().map(|b| format!("{b:02x}")).collect();
        hex.join(" ")
    }

    /// The worked example of PROTOCOL.md, section 4.6.
    #[test]
    fn the_worked_example_of_the_protocol_document() {
        use ftp_shared::Request;
        assert_eq!(
            hex_frame(&Request::List {
                path: "docs".into()
            }),
            "00 00 00 10 0b 00 00 00 04 00 00 00 00 00 00 00 64 6f 63 73"
        );
        let file = Entry {
            name: "a.txt".into(),
            kind: EntryKind::File,
            size: 3,
            modified: 1_700_000_000,
            mode: 0o644,
        };
        let dir = Entry {
            name: "sub".into(),
            kind: EntryKind::Directory,
            size: 4096,
            modified: 1_700_000_060,
            mode: 0o755,
        };
        assert_eq!(
            hex_frame(&Response::Entries {
                entries: vec![file.clone(), dir],
                more: false
            }),
            "00 00 00 55 09 00 00 00 02 00 00 00 00 00 00 00 \
             05 00 00 00 00 00 00 00 61 2e 74 78 74 00 00 00 00 \
             03 00 00 00 00 00 00 00 00 f1 53 65 00 00 00 00 a4 01 00 00 \
             03 00 00 00 00 00 00 00 73 75 62 01 00 00 00 \
             00 10 00 00 00 00 00 00 3c f1 53 65 00 00 00 00 ed 01 00 00 00"
        );
        assert_eq!(
            hex_frame(&Response::Entries {
                entries: vec![],
                more: false
            }),
            "00 00 00 0d 09 00 00 00 00 00 00 00 00 00 00 00 00"
        );
        assert_eq!(
            hex_frame(&Response::Stat { entry: file }),
            "00 00 00 29 0a 00 00 00 05 00 00 00 00 00 00 00 61 2e 74 78 74 00 00 00 00 \
             03 00 00 00 00 00 00 00 00 f1 53 65 00 00 00 00 a4 01 00 00"
        );
        assert_eq!(
            hex_frame(&Request::Rename {
                from: "a".into(),
                to: "b".into()
            }),
            "00 00 00 16 0f 00 00 00 01 00 00 00 00 00 00 00 61 01 00 00 00 00 00 00 00 62"
        );
    }
}

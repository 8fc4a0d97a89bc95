//! `List { path }`: the entries of a directory (the home for the empty
//! path), or the one entry of what is not a directory, answered with
//! `Entries` frames of at most [`ENTRIES_PER_BATCH`] entries, `more: true` on
//! every one but the last. An empty directory is one empty batch.
//!
//! The listing is streamed: each page is read from the open directory (on a
//! blocking thread) only once the previous frame has been written, so a
//! client that does not read holds one page, never the directory. Pages in
//! memory across all connections are bounded by [`ListingBudget`]
//! (`Limits::listing_memory`). An error after the first frame is one `Error`
//! frame, which ends the listing.

use std::sync::{Arc, OnceLock};

use ftp_shared::codec::MAX_FRAME;
use ftp_shared::message::{ENTRIES_PER_BATCH, Entry};
use ftp_shared::text::log_text;
use ftp_shared::{ErrorCode, Response};
use ftp_storage::{Home, StorageError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cmd::{blocking, parse_path_or_home};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::limits::Limits;

/// Encoded bytes of an entry besides its name: the name's length, the kind,
/// the size, the time and the mode.
const ENTRY_OVERHEAD: usize = 8 + 4 + 8 + 8 + 4;
/// The most encoded entry bytes in one frame: the frame cap, less room for
/// the variant index, the count and `more`. Names of at most 255 bytes keep
/// a full batch far below it; the bound holds whatever the names.
const BATCH_BYTES: usize = MAX_FRAME - 64;
/// What a page may cost before it is read: a full batch of 255-byte names
/// that are not UTF-8 (each byte one U+FFFD, 3 bytes), capped by the frame.
pub const PAGE_RESERVE: usize = {
    let full = ENTRIES_PER_BATCH * (ENTRY_OVERHEAD + 3 * 255);
    let cost = if full < BATCH_BYTES {
        full
    } else {
        BATCH_BYTES
    };
    cost * 2
};

/// What an entry of a page costs while the page is in memory: its
/// encoding in the frame plus its decoded form (the `Entry` and its name).
fn cost(entry: &Entry) -> usize {
    2 * (ENTRY_OVERHEAD + entry.name.len())
}

/// The bytes listing pages may hold at once across all connections: a page
/// takes its share before it is read and gives it back once its frame has
/// been written to the socket. Sized by `Limits::listing_memory` at first
/// use.
#[derive(Debug, Default)]
pub struct ListingBudget(OnceLock<Arc<Semaphore>>);

impl ListingBudget {
    fn semaphore(&self, limits: &Limits) -> Arc<Semaphore> {
        let bytes = limits.listing_memory.min(Semaphore::MAX_PERMITS);
        self.0
            .get_or_init(|| Arc::new(Semaphore::new(bytes)))
            .clone()
    }

    /// Room for one page, waited for at most `transfer_timeout`: `BUSY`
    /// after that.
    async fn reserve(&self, limits: &Limits) -> Result<OwnedSemaphorePermit, CmdError> {
        let semaphore = self.semaphore(limits);
        // Never more than the whole budget, so that a page can always start.
        let want = PAGE_RESERVE.min(limits.listing_memory).max(1) as u32;
        match tokio::time::timeout(limits.transfer_timeout, semaphore.acquire_many_owned(want))
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CmdError::refused(
                ErrorCode::BUSY,
                "server busy: too many listings at once, try again later",
            )),
        }
    }
}

pub async fn run<H: Home>(
    conn: &mut Connection,
    home: &Arc<H>,
    budget: &ListingBudget,
    limits: &Limits,
    path: &str,
) -> Result<(), CmdError> {
    let vpath = parse_path_or_home(path)?;
    let opener = home.clone();
    let mut listing = blocking(move || opener.list(vpath.as_ref()))
        .await?
        .map_err(|e| CmdError::storage(e, path))?;
    let mut sent = 0usize;
    loop {
        let mut permit = budget.reserve(limits).await?;
        let max_bytes = permit.num_permits();
        let (back, page) = blocking(move || {
            let page = listing.next_page(ENTRIES_PER_BATCH, max_bytes, cost);
            (listing, page)
        })
        .await?;
        listing = back;
        let (entries, more) = page.map_err(|e| failed(e, path, sent))?;
        // Keep only what the page holds.
        let used: usize = entries.iter().map(cost).sum();
        if let Some(spare) = permit.num_permits().checked_sub(used.max(1)) {
            drop(permit.split(spare));
        }
        sent += entries.len();
        conn.send(Response::Entries { entries, more }).await?;
        drop(permit);
        if !more {
            tracing::debug!(path = %log_text(path), entries = sent, "list");
            return Ok(());
        }
    }
}

/// A failure reading the directory; after `sent` entries it ends a listing
/// that has begun.
fn failed(err: StorageError, path: &str, sent: usize) -> CmdError {
    if sent > 0 {
        tracing::warn!(path = %log_text(path), sent, error = %err, "listing ended early");
    }
    CmdError::storage(err, path)
}

/// Up to [`ENTRIES_PER_BATCH`] entries within [`BATCH_BYTES`] (at least one
/// if any is left), as the server pages them.
#[cfg(test)]
fn next_batch(listing: &mut ftp_storage::Listing) -> (Vec<Entry>, bool) {
    listing
        .next_page(ENTRIES_PER_BATCH, BATCH_BYTES, |e| {
            ENTRY_OVERHEAD + e.name.len()
        })
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftp_shared::message::EntryKind;
    use ftp_storage::Listing;

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
        let mut listing = Listing::of(entries);
        let mut sizes = vec![];
        loop {
            let (page, more) = next_batch(&mut listing);
            sizes.push(page.len());
            if !more {
                return sizes;
            }
        }
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
        let (batch, _) = next_batch(&mut Listing::of(all));
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

//! Listings read from the directory page by page, as the client takes them:
//! the open directory stream is kept between pages, so a listing holds one
//! page in memory whatever the size of the directory.

use std::io;

use cap_std::fs::{Dir, ReadDir};

use super::{FsHome, describe};
use crate::{Entry, StorageError, VPath};

/// A listing in progress (see [`crate::Home::list`]): entries come in the
/// order the directory gives them, not sorted. Each call of
/// [`Listing::next_page`] blocks on the disk: call it off the async runtime.
#[derive(Debug)]
pub struct Listing {
    source: Source,
    /// An entry read but not yet given (it did not fit in the last page, or
    /// was read to know whether more follow).
    pending: Option<Entry>,
}

#[derive(Debug)]
enum Source {
    /// The directory stream: one handle, kept until the end.
    Dir(ReadDir),
    /// Entries known beforehand.
    Given(std::vec::IntoIter<Entry>),
    /// Nothing more to read.
    Done,
}

impl Listing {
    fn dir(dir: &Dir) -> Result<Listing, StorageError> {
        Ok(Listing {
            source: Source::Dir(dir.entries()?),
            pending: None,
        })
    }

    /// A listing of entries known beforehand (e.g. the one entry describing
    /// what is not a directory), given in this order.
    pub fn of(entries: Vec<Entry>) -> Listing {
        Listing {
            source: Source::Given(entries.into_iter()),
            pending: None,
        }
    }

    /// The next entries, at most `max_entries` of them and at most
    /// `max_bytes` by `cost` (at least one if any is left, even if it alone
    /// costs more), and whether more follow. An empty page without more is
    /// the end (an empty directory gives just that). An entry removed since
    /// the directory was read is skipped. After an error the listing is over.
    pub fn next_page(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
        cost: impl Fn(&Entry) -> usize,
    ) -> Result<(Vec<Entry>, bool), StorageError> {
        let mut page = Vec::new();
        let mut bytes = 0;
        loop {
            let Some(next) = self.pending.take().map(Ok).or_else(|| self.read()) else {
                return Ok((page, false));
            };
            let next = next.inspect_err(|_| self.source = Source::Done)?;
            let size = cost(&next);
            if page.len() == max_entries || (!page.is_empty() && bytes + size > max_bytes) {
                self.pending = Some(next);
                return Ok((page, true));
            }
            bytes += size;
            page.push(next);
        }
    }

    /// Every entry left, for callers that want them all at once.
    pub fn read_all(mut self) -> Result<Vec<Entry>, StorageError> {
        let mut all = Vec::new();
        loop {
            let (page, more) = self.next_page(usize::MAX, usize::MAX, |_| 0)?;
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// The next entry of the directory, described with lstat.
    fn read(&mut self) -> Option<Result<Entry, StorageError>> {
        let entries = match &mut self.source {
            Source::Dir(entries) => entries,
            Source::Given(entries) => return entries.next().map(Ok),
            Source::Done => return None,
        };
        loop {
            let Some(entry) = entries.next() else {
                self.source = Source::Done;
                return None;
            };
            let described = entry.and_then(|entry| {
                // Of the entry itself: a symlink is not followed.
                let meta = entry.metadata()?;
                let name = entry.file_name().to_string_lossy().into_owned();
                Ok(describe(name, &meta))
            });
            match described {
                Ok(entry) => return Some(Ok(entry)),
                // Removed since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

impl FsHome {
    pub(super) fn listing(&self, path: Option<&VPath>) -> Result<Listing, StorageError> {
        let Some(path) = path else {
            return Listing::dir(&self.home);
        };
        // Follows symlinks beneath the home only: one leading out of it
        // fails here and is then described as the link it is.
        let dir = match self.home.open_dir(path.as_str()) {
            Ok(dir) => dir,
            Err(not_a_dir) => {
                let meta = self.home.symlink_metadata(path.as_str())?;
                if meta.is_dir() {
                    // A directory that cannot be opened (e.g. no permission).
                    return Err(not_a_dir.into());
                }
                return Ok(Listing::of(vec![describe(
                    path.file_name().to_owned(),
                    &meta,
                )]));
            }
        };
        Listing::dir(&dir)
    }
}

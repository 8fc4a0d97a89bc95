//! Early write-back of a file being written durably: every
//! [`WRITE_BACK_EVERY`] bytes, the kernel is asked to start writing what was
//! written since (without waiting), so the disk works while the network
//! delivers the rest and the final fsync finds little left to do.

use std::fs::File;
use std::io;

/// How many written bytes start a write-back.
pub const WRITE_BACK_EVERY: u64 = 8 * 1024 * 1024;

/// Where the write-back of one file stands.
#[derive(Debug, Clone, Copy)]
pub struct WriteBack {
    written: u64,
    started: u64,
}

impl WriteBack {
    /// A file that already holds `len` bytes (handed to the final fsync).
    pub fn new(len: u64) -> WriteBack {
        WriteBack {
            written: len,
            started: len,
        }
    }

    /// Counts `n` bytes just written to `file`; starts the write-back of
    /// the bytes not yet handed to it once there are enough. A failure is
    /// harmless: the final fsync does the work.
    pub fn wrote(&mut self, file: &File, n: u64) {
        self.written += n;
        let len = self.written - self.started;
        if len < WRITE_BACK_EVERY {
            return;
        }
        let _ = sync_file_range_write(file, self.started, len);
        self.started = self.written;
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: start writing the dirty pages of
/// a range to disk and return at once. (Neither rustix nor nix wraps it.)
#[allow(unsafe_code)]
fn sync_file_range_write(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the lifetime of `file`; the call
    // takes plain integers and touches no memory of ours.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

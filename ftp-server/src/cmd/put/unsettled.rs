//! The log line of an upload that did not complete: written exactly once.

use ftp_shared::text::log_text;

use crate::error::CmdError;

/// Logs an upload that ends without being handed to the outbox exactly
/// once, also when the session is dropped in the middle of it (a shutdown's
/// grace period ran out).
pub(super) struct Unsettled {
    user: String,
    path: String,
    done: bool,
}

impl Unsettled {
    pub(super) fn new(user: &str, path: &str) -> Unsettled {
        Unsettled {
            user: user.to_owned(),
            path: path.to_owned(),
            done: false,
        }
    }

    pub(super) fn settled(&mut self) {
        self.done = true;
    }

    pub(super) fn failed(&mut self, received: u64, kept: u64, error: &CmdError) {
        self.done = true;
        tracing::info!(
            user = %self.user,
            path = %log_text(&self.path),
            received,
            kept,
            "upload failed: {error}"
        );
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if !self.done {
            tracing::info!(
                user = %self.user,
                path = %log_text(&self.path),
                "upload abandoned: the session ended in the middle of it"
            );
        }
    }
}

//! Uploads cut off on purpose: [`cut_upload`] leaves the server an upload
//! that stopped part way, as a client that lost its connection would.

use bytes::Bytes;
use ftp_shared::Request;
use ftp_shared::message::{CHUNK_SIZE, DigestAlgorithm};

use crate::files::wait_until;
use crate::raw::RawConn;
use crate::server::TestServer;
use crate::{ALICE_PASSWORD, POLL_DEADLINE};

/// Starts an upload of `size` bytes to `path` as alice (digest
/// `algorithm`), sends `head` in chunks, and cuts the connection once the
/// server has the upload's temp file open. What the server keeps of it
/// (see [`TestServer::wait_uploads_settled`]) is left to the caller.
pub fn cut_upload(
    server: &TestServer,
    path: &str,
    size: u64,
    head: &[u8],
    algorithm: DigestAlgorithm,
) {
    let mut conn = RawConn::connect_login(server, "alice", ALICE_PASSWORD);
    conn.send(&Request::Put {
        path: path.into(),
        size,
        offset: 0,
        algorithm,
    })
    .expect("send Put");
    for chunk in head.chunks(CHUNK_SIZE) {
        conn.send(&Request::Data(Bytes::copy_from_slice(chunk)))
            .expect("send the upload's data");
    }
    wait_until(POLL_DEADLINE, "the upload's temp file", || {
        !server.upload_temps().is_empty()
    });
    conn.cut();
}

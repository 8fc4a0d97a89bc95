//! Peer text cannot amplify the server's log: hostile user names of
//! thousands of control characters cost a capped line each, and repeated
//! failures from one address are summarised.

use ftp_shared::{ErrorCode, Response};
use tests::{RawConn, TestServer};

#[test]
fn failed_logins_with_huge_hostile_names_cost_the_log_little() {
    let server = TestServer::start();
    let before = server.stderr().len();
    let mut attempts = 0;
    for c in 0..12u8 {
        // 3,900 bytes of one control character, another for each attempt.
        let name = char::from(1 + c % 30).to_string().repeat(3900);
        let mut conn = RawConn::connect_hello(&server);
        // A refusal, or a close once the address is locked or braked.
        let tried =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.login(&name, "wrong")));
        if let Ok(reply) = tried {
            match reply {
                Err(Response::Error { code, .. }) => assert!(
                    matches!(code, ErrorCode::AUTH_FAILED | ErrorCode::BAD_REQUEST),
                    "{code:?}"
                ),
                other => panic!("a login with a hostile name got {other:?}"),
            }
        }
        attempts += 1;
    }
    let log = server.stderr();
    let written = log.len() - before;
    let longest = log[before..].lines().map(str::len).max().unwrap_or(0);
    eprintln!("{attempts} failed logins wrote {written} bytes of log, longest line {longest}");
    assert!(longest < 1024, "a log line of {longest} bytes");
    assert!(
        written < attempts * 1024,
        "{written} bytes of log for {attempts} failed logins"
    );
    server.assert_healthy();
}

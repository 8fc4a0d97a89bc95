//! Connecting to a busy server. A server whose slots for connections that
//! have not logged in yet are taken, in all or by this address's share,
//! answers `BUSY` ("try again later"), also to a connection it replaces by
//! a newer one before it logs in. A burst of parallel clients from one
//! machine meets exactly that, so [`connect_login`] tries again after a
//! growing pause with jitter, for at most [`RETRY_FOR`] (and never longer
//! than the wait bound, `--timeout`), before it gives up with the refusal.
//! A connection replaced before its TLS handshake is done is closed without
//! a word, and the `BUSY` of one replaced later can be lost to the client's
//! own write into the closed connection; a connection lost before the login
//! completed is tried again too, [`CLOSED_TRIES`] times at the most, so that
//! a server that closes every connection is reported within seconds.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use ftp_shared::ErrorCode;

use crate::ClientError;
use crate::client::{Client, SavedKeys, Secret};
use crate::replies::timeout;
use crate::tls::Transport;

/// How long a busy server is tried again at the most.
pub const RETRY_FOR: Duration = Duration::from_secs(10);
/// The first pause; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Attempts at the most while the server closes the connection before the
/// login completes.
pub const CLOSED_TRIES: u32 = 8;

/// Whether the server said it is too busy (before the login completed).
fn busy(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Refused { code, .. } | ClientError::Remote { code, .. }
            if *code == ErrorCode::BUSY
    )
}

/// Whether the server closed the connection before the login completed,
/// for at most [`CLOSED_TRIES`] attempts (`closed` counts them).
fn closed_handshake(e: &ClientError, closed: &mut u32) -> bool {
    if !matches!(
        e,
        ClientError::TlsClosed { .. } | ClientError::Connection(_)
    ) {
        return false;
    }
    *closed += 1;
    *closed < CLOSED_TRIES
}

/// Connects to `addr` and logs in as `user` ([`Client::connect`],
/// [`Client::login`]), trying again while the server answers `BUSY`.
pub async fn connect_login(
    addr: &str,
    transport: &Transport,
    user: &str,
    secret: Secret<'_>,
) -> Result<(Client, SavedKeys), ClientError> {
    let started = Instant::now();
    let give_up = RETRY_FOR.min(timeout());
    let mut pause = FIRST_PAUSE;
    let mut closed = 0;
    loop {
        let attempt = async {
            let mut client = Client::connect(addr, transport).await?;
            let keys = client.login(user, secret).await?;
            Ok((client, keys))
        }
        .await;
        match attempt {
            Err(e)
                if (busy(&e) || closed_handshake(&e, &mut closed))
                    && started.elapsed() + pause < give_up =>
            {
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
}

/// `pause` scaled by a random factor in [0.5, 1.5), so that clients refused
/// together do not come back together.
fn jittered(pause: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    pause.mul_f64(0.5 + (random % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_busy_refusals_are_tried_again() {
        let refused = |code| ClientError::Refused {
            addr: "h:1".into(),
            code,
            message: String::new(),
        };
        let remote = |code| ClientError::Remote {
            code,
            message: String::new(),
        };
        assert!(busy(&refused(ErrorCode::BUSY)));
        assert!(busy(&remote(ErrorCode::BUSY)));
        assert!(!busy(&refused(ErrorCode::UNSUPPORTED_VERSION)));
        assert!(!busy(&remote(ErrorCode::AUTH_FAILED)));
        assert!(!busy(&ClientError::AuthFailed));
    }

    #[test]
    fn pauses_are_spread() {
        let pauses: Vec<Duration> = (0..64).map(|_| jittered(FIRST_PAUSE)).collect();
        assert!(
            pauses
                .iter()
                .all(|p| *p >= FIRST_PAUSE / 2 && *p < FIRST_PAUSE * 3 / 2)
        );
        assert!(pauses.iter().any(|p| *p != pauses[0]), "{pauses:?}");
    }
}

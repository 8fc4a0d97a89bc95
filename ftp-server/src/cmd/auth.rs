//! Login with SCRAM-SHA-256(-PLUS): `AuthStart` (client-first-message) is answered
//! with `AuthChallenge` (server-first-message), `AuthFinish`
//! (client-final-message) with `AuthOk` (server-final-message) or
//! `AUTH_FAILED`.
//!
//! The server does no PBKDF2 here, only a few HMACs. An unknown user gets a
//! challenge built from deterministic fake credentials and fails exactly like
//! a wrong password: same code, same message, same delay; so does a user
//! locked out from this address (see [`crate::lockout`]).
//!
//! Over TLS the login may be bound to the channel (`p=tls-exporter`): the
//! client's `c=` must then carry this connection's exporter value. A
//! mismatch means the client's TLS connection ends somewhere else than this
//! one (a man in the middle): the server says so (`CHANNEL_BINDING`), logs
//! it and closes. A client that claims to support binding but believes this
//! server does not (`y`) is refused the same way (RFC 5802 section 6).

use std::sync::Arc;

use ftp_shared::scram::{ScramError, ServerFirst, parse_client_first};
use ftp_shared::text::log_text;
use ftp_shared::{ErrorCode, Request, Response};
use ftp_storage::Storage;

use crate::admission::{Progress, Slot};
use crate::connection::Connection;
use crate::error::CmdError;
use crate::log_limit::Event;
use crate::server::Shared;

/// The message of every failed login, whatever the cause.
pub const AUTH_FAILED_MESSAGE: &str = "authentication failed";

/// The `BUSY` message of a connection whose slot a newcomer took before it
/// logged in (see [`crate::admission`]).
pub const REPLACED_MESSAGE: &str =
    "replaced by a newer connection before logging in, try again later";

/// Runs login attempts until one succeeds (the user's name), the peer leaves
/// or quits (`None`), or too many attempts failed (an error that closes).
/// A started attempt is recorded in `slot` (see [`crate::admission`]), and a
/// successful one leaves the slots of connections waiting to log in.
pub async fn login<S: Storage>(
    conn: &mut Connection,
    shared: &Arc<Shared<S>>,
    slot: &Slot,
) -> Result<Option<String>, CmdError> {
    let mut failures = 0;
    loop {
        let client_first = match conn.read().await? {
            None => return Ok(None),
            Some(Request::AuthStart { client_first }) => {
                slot.advance(Progress::AuthStart);
                client_first
            }
            Some(Request::Quit) => {
                conn.send(Response::Ok).await?;
                return Ok(None);
            }
            Some(Request::AuthFinish { .. }) | Some(Request::Hello { .. }) => {
                return Err(CmdError::Protocol("expected AuthStart".into()));
            }
            Some(
                Request::Put { .. }
                | Request::Data(_)
                | Request::PutEnd { .. }
                | Request::PutCancel
                | Request::Get { .. }
                | Request::Mkdir { .. }
                | Request::Partial { .. }
                | Request::List { .. }
                | Request::Stat { .. }
                | Request::Remove { .. }
                | Request::Rmdir { .. }
                | Request::Rename { .. },
            ) => return Err(CmdError::fatal(ErrorCode::NOT_LOGGED_IN, "log in first")),
        };
        let parsed = parse_client_first(&client_first, conn.channel_binding()).map_err(|e| {
            binding_failure(&e).unwrap_or_else(|| {
                CmdError::Protocol(format!("invalid SCRAM client-first-message: {e}"))
            })
        })?;
        let user = parsed.user.clone();
        let ip = conn.peer().ip();
        let (creds, known) = shared.users.lookup(&user);
        if let Some(unlocked) = shared.users.unlocked_at(&user)
            && shared.lockouts.forgive(&user, ip, unlocked, &shared.limits)
        {
            tracing::info!(user = %log_text(&user), %ip, "lockout lifted by `ftp-server user unlock`");
        }
        // The name's brake (shared by every connection trying it) runs
        // before the challenge, for known and unknown names alike.
        let wait = shared.lockouts.brake(&user);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let locked = shared.lockouts.is_locked(&user, ip, known, &shared.limits);
        let exchange = ServerFirst::new(&parsed, creds);
        conn.send(Response::AuthChallenge {
            server_first: exchange.message(),
        })
        .await?;

        let client_final = match conn.read().await? {
            None => return Ok(None),
            Some(Request::AuthFinish { client_final }) => client_final,
            Some(_) => return Err(CmdError::Protocol("expected AuthFinish".into())),
        };
        let verdict = exchange.verify_client_final(&client_final);
        if let Err(e) = &verdict
            && let Some(failure) = binding_failure(e)
        {
            return Err(failure);
        }
        let reason = match &verdict {
            Ok(_) if known && !locked => None,
            _ if !known => Some("unknown user"),
            _ if locked => Some("locked out"),
            Err(ScramError::AuthFailed) if shared.users.recently_changed(&user) => {
                Some("wrong proof; the user's credentials changed recently (stale saved keys?)")
            }
            Err(ScramError::AuthFailed) => Some("wrong password"),
            Err(_) => Some("malformed client-final-message"),
            Ok(_) => Some("locked out"),
        };
        match (verdict, reason) {
            (Ok(server_final), None) => {
                // The slot stops being replaceable before AuthOk goes out.
                if !slot.logged_in() {
                    return Err(CmdError::fatal(ErrorCode::BUSY, REPLACED_MESSAGE));
                }
                shared.lockouts.succeeded(&user, ip);
                tracing::info!(user = %log_text(&user), "logged in");
                conn.send(Response::AuthOk { server_final }).await?;
                return Ok(Some(user));
            }
            (_, reason) => {
                failures += 1;
                let failure = shared.lockouts.failed(&user, ip, known, &shared.limits);
                if shared.log_limit.allow(Event::FailedLogin, ip) {
                    tracing::warn!(
                        user = %log_text(&user),
                        %ip,
                        reason = reason.unwrap_or("refused"),
                        failures,
                        "login failed"
                    );
                    if failure.locked && !locked {
                        tracing::warn!(user = %log_text(&user), %ip, "lockout started");
                    }
                    if failure.braked {
                        tracing::warn!(user = %log_text(&user), "login brake engaged");
                    }
                }
                tokio::time::sleep(shared.limits.auth_failure_delay).await;
                if failures >= shared.limits.max_auth_failures {
                    return Err(CmdError::fatal(ErrorCode::AUTH_FAILED, AUTH_FAILED_MESSAGE));
                }
                conn.send(Response::error(ErrorCode::AUTH_FAILED, AUTH_FAILED_MESSAGE))
                    .await?;
            }
        }
    }
}

/// The reply to a channel binding that failed (`None` for other errors),
/// logged: the login cannot succeed on this connection, so it closes.
fn binding_failure(e: &ScramError) -> Option<CmdError> {
    let failure = binding_failure_reply(e)?;
    tracing::warn!("login refused: {e}");
    Some(failure)
}

fn binding_failure_reply(e: &ScramError) -> Option<CmdError> {
    match e {
        ScramError::ChannelBindingMismatch
        | ScramError::Downgrade
        | ScramError::UnsupportedChannelBinding
        | ScramError::UnsupportedChannelBindingType => {
            Some(CmdError::fatal(ErrorCode::CHANNEL_BINDING, e.to_string()))
        }
        ScramError::Malformed(_)
        | ScramError::InvalidUserName
        | ScramError::NonceMismatch
        | ScramError::IterationsOutOfRange(_)
        | ScramError::SaltInvalid
        | ScramError::AuthFailed
        | ScramError::ServerSignatureMismatch => None,
    }
}

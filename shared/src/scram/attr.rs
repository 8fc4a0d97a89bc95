//! Parsing helpers shared by both sides: attributes, nonces, user names, base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::ScramError;

/// RFC 5802 section 7: printable = %x21-2B / %x2D-7E ;; Printable ASCII except ",".
pub(super) fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21..=0x2b | 0x2d..=0x7e))
}

/// Splits "k=value" where k is one ASCII letter (RFC 5802: attr-val = ALPHA "=" value).
pub(super) fn attr(part: &str) -> Result<(u8, &str), ScramError> {
    match part.as_bytes() {
        [k, b'=', ..] if k.is_ascii_alphabetic() => Ok((*k, &part[2..])),
        _ => Err(ScramError::Malformed("expected attribute=value")),
    }
}

/// Takes the next attribute, which must be `key`. "m" is refused wherever it appears first:
/// "its presence in a client or a server message MUST cause authentication failure when the
/// attribute is parsed by the other end." (RFC 5802 section 5.1)
pub(super) fn expect_attr<'a>(
    it: &mut std::str::Split<'a, char>,
    key: u8,
) -> Result<&'a str, ScramError> {
    let part = it
        .next()
        .ok_or(ScramError::Malformed("missing attribute"))?;
    let (k, v) = attr(part)?;
    match k {
        b'm' => Err(ScramError::Malformed("mandatory extension not supported")),
        k if k == key => Ok(v),
        _ => Err(ScramError::Malformed("unexpected attribute")),
    }
}

/// RFC 5802 section 7 allows optional `["," extensions]` after the nonce / iteration count /
/// verifier; we understand none, so we ignore them but insist they are well-formed attr-val.
pub(super) fn skip_extensions(it: std::str::Split<'_, char>) -> Result<(), ScramError> {
    it.map(attr).try_for_each(|r| r.map(|_| ()))
}

pub(super) fn escape_user(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// "If the server receives a username that contains '=' not followed by either '2C' or '3D',
/// then the server MUST fail the authentication." (RFC 5802 section 5.1)
pub(super) fn unescape_user(name: &str) -> Result<String, ScramError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ScramError::InvalidUserName);
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        out.push(match rest.get(i + 1..i + 3) {
            Some("2C") => ',',
            Some("3D") => '=',
            _ => return Err(ScramError::Malformed("bad '=' escape in username")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn decode_b64(b64: &str) -> Result<Vec<u8>, ScramError> {
    B64.decode(b64)
        .map_err(|_| ScramError::Malformed("bad base64"))
}

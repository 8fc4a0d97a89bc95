//! The server half of the exchange: parsing the client-first (with its GS2
//! header checked against the channel the server sees), the server-first,
//! and the verification of the client-final.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::attr::{attr, decode_b64, expect_attr, skip_extensions, unescape_user, valid_nonce};
use super::{
    ChannelBinding, ScramError, StoredCredentials, TLS_EXPORTER, TLS_EXPORTER_LEN,
    client_signature, new_nonce, server_signature, xor,
};

/// A client-first-message as parsed by the server.
#[derive(Debug)]
pub struct ClientFirstParsed {
    pub user: String,
    nonce: String,
    bare: String,
    /// Whether the client bound the login to the channel (`p=tls-exporter`).
    pub bound: bool,
    /// Expected "c=" value of the client-final-message: base64 of the gs2
    /// header and, when bound, of the server's own channel binding data.
    cbind: String,
}

/// Parses a client-first-message and checks its GS2 header against the
/// channel this server sees: `channel` is the `tls-exporter` value of the
/// session's TLS connection, `None` in plaintext mode.
///
/// - `n,,`: no binding; accepted (a client that cannot bind).
/// - `y,,`: "If the flag is set to "y" and the server supports channel
///   binding, the server MUST fail authentication." (RFC 5802 section 6):
///   [`ScramError::Downgrade`] when `channel` is given, accepted otherwise.
/// - `p=tls-exporter,,`: accepted when `channel` is given, then the
///   client-final's `c=` must carry that same value
///   ([`ScramError::ChannelBindingMismatch`] otherwise);
///   [`ScramError::UnsupportedChannelBinding`] without a channel.
/// - `p=<other>,,`: [`ScramError::UnsupportedChannelBindingType`].
/// - an authzid (`n,a=...,`) is refused.
pub fn parse_client_first(
    msg: &str,
    channel: Option<&[u8; TLS_EXPORTER_LEN]>,
) -> Result<ClientFirstParsed, ScramError> {
    let mut gs2 = msg.splitn(3, ',');
    let binding = match (gs2.next().unwrap_or_default(), channel) {
        ("n", _) => ChannelBinding::None,
        ("y", None) => ChannelBinding::Unoffered,
        ("y", Some(_)) => return Err(ScramError::Downgrade),
        (p, Some(data)) if p.strip_prefix("p=") == Some(TLS_EXPORTER) => {
            ChannelBinding::TlsExporter(*data)
        }
        (p, None) if p.strip_prefix("p=") == Some(TLS_EXPORTER) => {
            return Err(ScramError::UnsupportedChannelBinding);
        }
        // cb-name = 1*(ALPHA / DIGIT / "." / "-")
        (p, _)
            if p.strip_prefix("p=").is_some_and(|name| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            }) =>
        {
            return Err(ScramError::UnsupportedChannelBindingType);
        }
        _ => return Err(ScramError::Malformed("bad gs2 channel binding flag")),
    };
    match gs2.next() {
        Some("") => {}
        Some(a) if a.starts_with("a=") => {
            return Err(ScramError::Malformed("authzid not supported"));
        }
        _ => return Err(ScramError::Malformed("bad gs2 header")),
    }
    let bare = gs2
        .next()
        .ok_or(ScramError::Malformed("missing client-first-message-bare"))?;
    let mut it = bare.split(',');
    let user = unescape_user(expect_attr(&mut it, b'n')?)?;
    let nonce = expect_attr(&mut it, b'r')?;
    if !valid_nonce(nonce) {
        return Err(ScramError::Malformed("bad client nonce"));
    }
    skip_extensions(it)?;
    Ok(ClientFirstParsed {
        user,
        nonce: nonce.to_owned(),
        bare: bare.to_owned(),
        bound: matches!(binding, ChannelBinding::TlsExporter(_)),
        cbind: binding.c_value(),
    })
}

/// Server state after the server-first-message.
#[derive(Debug)]
pub struct ServerFirst {
    creds: StoredCredentials,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    cbind: String,
    bound: bool,
}

impl ServerFirst {
    /// `creds`: the real ones, or [`super::fake_credentials`] for an unknown user.
    pub fn new(client_first: &ClientFirstParsed, creds: StoredCredentials) -> ServerFirst {
        ServerFirst::with_nonce(client_first, creds, &new_nonce())
    }

    /// For tests: the combined nonce is the client nonce followed by `suffix`.
    pub fn with_nonce(
        client_first: &ClientFirstParsed,
        creds: StoredCredentials,
        suffix: &str,
    ) -> ServerFirst {
        let nonce = format!("{}{suffix}", client_first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&creds.salt),
            creds.iterations
        );
        ServerFirst {
            creds,
            nonce,
            client_first_bare: client_first.bare.clone(),
            server_first,
            cbind: client_first.cbind.clone(),
            bound: client_first.bound,
        }
    }

    /// The server-first-message: "r=<nonce>,s=<base64 salt>,i=<iterations>".
    pub fn message(&self) -> String {
        self.server_first.clone()
    }

    /// Verifies the client-final-message; on success returns the server-final-message.
    /// A `c=` that differs from the server's own channel binding gives
    /// ChannelBindingMismatch (for a bound login; AuthFailed otherwise); any
    /// other wrong value AuthFailed, unparsable input Malformed.
    pub fn verify_client_final(self, client_final: &str) -> Result<String, ScramError> {
        // client-final-message = client-final-message-without-proof "," proof
        let (without_proof, proof) = client_final
            .rsplit_once(',')
            .ok_or(ScramError::Malformed("missing proof"))?;
        let proof = match attr(proof)? {
            (b'p', p) => <[u8; 32]>::try_from(decode_b64(p)?)
                .map_err(|_| ScramError::Malformed("proof is not 32 bytes"))?,
            _ => return Err(ScramError::Malformed("proof must come last")),
        };
        let mut it = without_proof.split(',');
        let cbind = expect_attr(&mut it, b'c')?;
        let nonce = expect_attr(&mut it, b'r')?;
        skip_extensions(it)?;
        // "The server MUST verify that the nonce sent by the client in the second message is
        // the same as the one sent by the server in its first message." (RFC 5802 section 5.1)
        if nonce != self.nonce {
            return Err(ScramError::AuthFailed);
        }
        // "[the server] MUST fail authentication" when the channel binding data it
        // receives differs from what it computes for its end of the channel
        // (RFC 5802 section 6). The value is not secret: a plain comparison.
        if cbind != self.cbind {
            return Err(if self.bound {
                ScramError::ChannelBindingMismatch
            } else {
                ScramError::AuthFailed
            });
        }
        let auth = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        // "The server authenticates the client by computing the ClientSignature, exclusive-ORing
        // that with the ClientProof to recover the ClientKey and verifying the correctness of the
        // ClientKey by applying the hash function and comparing the result to the StoredKey."
        // (RFC 5802 section 3) The comparison is constant-time.
        let client_key = xor(&proof, &client_signature(&self.creds.stored_key, &auth));
        let computed: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(computed.ct_eq(&self.creds.stored_key)) {
            return Err(ScramError::AuthFailed);
        }
        Ok(format!(
            "v={}",
            B64.encode(server_signature(&self.creds.server_key, &auth))
        ))
    }
}

//! The client half of the exchange: client-first, the checks of the
//! server-first, client-final, and the check of the server's signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::ConstantTimeEq;

use super::attr::{attr, decode_b64, escape_user, expect_attr, skip_extensions, valid_nonce};
use super::{
    ChannelBinding, MAX_ITERATIONS, MIN_ITERATIONS, ScramError, ScramKeys, client_signature,
    new_nonce, server_signature, xor,
};

/// Client state after sending the client-first-message.
#[derive(Debug)]
pub struct ClientFirst {
    nonce: String,
    bare: String,
    binding: ChannelBinding,
}

impl ClientFirst {
    /// A login without channel binding (`n,,`), as over a plaintext session.
    pub fn new(user: &str) -> ClientFirst {
        ClientFirst::with_nonce(user, &new_nonce())
    }

    /// A login bound to the channel as `binding` says.
    pub fn bound(user: &str, binding: ChannelBinding) -> ClientFirst {
        ClientFirst::with_nonce_and_binding(user, &new_nonce(), binding)
    }

    /// For tests: an unbound login with a given nonce.
    pub fn with_nonce(user: &str, nonce: &str) -> ClientFirst {
        ClientFirst::with_nonce_and_binding(user, nonce, ChannelBinding::None)
    }

    /// For tests: a given nonce and channel binding.
    pub fn with_nonce_and_binding(user: &str, nonce: &str, binding: ChannelBinding) -> ClientFirst {
        let bare = format!("n={},r={nonce}", escape_user(user));
        ClientFirst {
            nonce: nonce.to_owned(),
            bare,
            binding,
        }
    }

    /// The client-first-message: GS2 header, then "n=<saslname>,r=<nonce>".
    pub fn message(&self) -> String {
        format!("{}{}", self.binding.gs2_header(), self.bare)
    }

    /// Parses and checks the server-first-message (nonce, salt, iteration count).
    pub fn handle_server_first(self, server_first: &str) -> Result<ServerChallenge, ScramError> {
        let mut it = server_first.split(',');
        let nonce = expect_attr(&mut it, b'r')?;
        // "the client MUST verify that the initial part of the nonce used in subsequent
        // messages is the same as the nonce it initially specified." (RFC 5802 section 5.1)
        if !valid_nonce(nonce) || !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len()
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(expect_attr(&mut it, b's')?)
            .map_err(|_| ScramError::SaltInvalid)?;
        if salt.is_empty() {
            return Err(ScramError::SaltInvalid);
        }
        let i = expect_attr(&mut it, b'i')?;
        // posit-number = %x31-39 *DIGIT
        if i.is_empty() || i.starts_with('0') || !i.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScramError::Malformed("bad iteration count"));
        }
        let iterations = i.parse::<u32>().unwrap_or(u32::MAX);
        // "the hash iteration-count announced by a server SHOULD be at least 4096." (RFC 7677
        // section 3); we refuse below it, and refuse absurd counts (a CPU DoS on the client).
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::IterationsOutOfRange(iterations));
        }
        skip_extensions(it)?;
        Ok(ServerChallenge {
            salt,
            iterations,
            nonce: nonce.to_owned(),
            client_first_bare: self.bare,
            server_first: server_first.to_owned(),
            c: self.binding.c_value(),
        })
    }
}

/// Client state after the server-first-message: salt and iterations to derive the keys from.
#[derive(Debug)]
pub struct ServerChallenge {
    salt: Vec<u8>,
    iterations: u32,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    /// The `c=` value: the GS2 header and the channel binding data, base64.
    c: String,
}

impl ServerChallenge {
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// AuthMessage := client-first-message-bare + "," + server-first-message + "," +
    /// client-final-message-without-proof
    pub fn auth_message(&self) -> String {
        format!(
            "{},{},{}",
            self.client_first_bare,
            self.server_first,
            self.final_without_proof()
        )
    }

    /// client-final-message-without-proof := "c=" base64(gs2-header [cbind-data]) ",r=" nonce
    fn final_without_proof(&self) -> String {
        format!("c={},r={}", self.c, self.nonce)
    }

    /// Builds the client-final-message from keys derived with salt()/iterations() (or cached).
    pub fn finish(self, keys: &ScramKeys) -> (ClientFinal, String) {
        let auth = self.auth_message();
        let signature = client_signature(&keys.stored_key(), &auth);
        let proof = xor(&keys.client_key, &signature);
        let message = format!("{},p={}", self.final_without_proof(), B64.encode(proof));
        let server_signature = server_signature(&keys.server_key, &auth);
        (ClientFinal { server_signature }, message)
    }
}

/// Client state after the client-final-message: the expected ServerSignature.
pub struct ClientFinal {
    server_signature: [u8; 32],
}

impl std::fmt::Debug for ClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFinal").finish_non_exhaustive()
    }
}

impl ClientFinal {
    /// Checks "v=<ServerSignature>" in constant time; "e=<error>" gives AuthFailed
    /// ("e=channel-bindings-dont-match" gives ChannelBindingMismatch).
    pub fn verify_server_final(self, server_final: &str) -> Result<(), ScramError> {
        let (k, v) = attr(server_final.split(',').next().unwrap_or_default())?;
        match k {
            b'e' if v == "channel-bindings-dont-match" => Err(ScramError::ChannelBindingMismatch),
            b'e' => Err(ScramError::AuthFailed),
            // "The client then authenticates the server by computing the ServerSignature and
            // comparing it to the value sent by the server.  If the two are different, the
            // client MUST consider the authentication exchange to be unsuccessful" (RFC 5802 s. 5)
            b'v' => {
                if bool::from(decode_b64(v)?.as_slice().ct_eq(&self.server_signature)) {
                    Ok(())
                } else {
                    Err(ScramError::ServerSignatureMismatch)
                }
            }
            _ => Err(ScramError::Malformed("expected v= or e=")),
        }
    }
}

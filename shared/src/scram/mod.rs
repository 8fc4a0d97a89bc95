//! SCRAM-SHA-256 (RFC 5802 with RFC 7677), and SCRAM-SHA-256-PLUS with the
//! `tls-exporter` channel binding (RFC 9266).
//!
//! Module map: this file holds the key derivation and the stored
//! credentials; [`client`] and [`server`] the two halves of the exchange;
//! [`binding`] the GS2 header and the `c=` value; `attr` the parsing helpers.
//!
//! The wire carries the literal RFC 5802 messages. The server stores only salt, iterations,
//! StoredKey and ServerKey and does no PBKDF2 at login; the client may cache [`ScramKeys`].
//! Usernames are not SASLprep'd: they are compared as the exact UTF-8 the client sent.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

mod attr;
pub mod binding;
pub mod client;
pub mod server;

pub use binding::{ChannelBinding, TLS_EXPORTER, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
pub use client::{ClientFinal, ClientFirst, ServerChallenge};
pub use server::{ClientFirstParsed, ServerFirst, parse_client_first};

pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 10_000_000;
pub const DEFAULT_ITERATIONS: u32 = 600_000;
pub const SALT_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not possible: this session is not encrypted")]
    UnsupportedChannelBinding,
    #[error("unsupported channel binding type (this server offers tls-exporter)")]
    UnsupportedChannelBindingType,
    #[error(
        "the client says it supports channel binding but believes this server does not: a downgrade attack may be under way"
    )]
    Downgrade,
    #[error("the channel binding did not match: someone may be intercepting this connection")]
    ChannelBindingMismatch,
    #[error("invalid user name")]
    InvalidUserName,
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    #[error("iteration count {0} outside the accepted range")]
    IterationsOutOfRange(u32),
    #[error("invalid salt")]
    SaltInvalid,
    #[error("authentication failed")]
    AuthFailed,
    #[error("server signature mismatch: the server does not know our credentials")]
    ServerSignatureMismatch,
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(crate) fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// SaltedPassword := Hi(Normalize(password), salt, i), i.e. PBKDF2-HMAC-SHA-256.
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations)
}

/// ClientSignature := HMAC(StoredKey, AuthMessage)
pub fn client_signature(stored_key: &[u8; 32], auth_message: &str) -> [u8; 32] {
    hmac_sha256(stored_key, auth_message.as_bytes())
}

/// ServerSignature := HMAC(ServerKey, AuthMessage)
pub fn server_signature(server_key: &[u8; 32], auth_message: &str) -> [u8; 32] {
    hmac_sha256(server_key, auth_message.as_bytes())
}

/// ClientKey and ServerKey derived from a password: what a client may cache instead of the
/// password so later logins need no PBKDF2. Debug is redacted.
#[derive(Clone)]
pub struct ScramKeys {
    pub client_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramKeys").finish_non_exhaustive()
    }
}

impl ScramKeys {
    /// ClientKey := HMAC(SaltedPassword, "Client Key"), ServerKey := HMAC(SaltedPassword, "Server Key")
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let sp = salted_password(password, salt, iterations);
        ScramKeys {
            client_key: hmac_sha256(&sp, b"Client Key"),
            server_key: hmac_sha256(&sp, b"Server Key"),
        }
    }

    /// StoredKey := H(ClientKey)
    pub fn stored_key(&self) -> [u8; 32] {
        Sha256::digest(self.client_key).into()
    }
}

/// What the server stores for one user. Debug redacts the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl StoredCredentials {
    /// Derives the credentials of `password` with a fresh random salt of SALT_LEN bytes.
    pub fn new(password: &[u8], iterations: u32) -> StoredCredentials {
        let mut salt = vec![0u8; SALT_LEN];
        getrandom::fill(&mut salt).expect("OS random generator unavailable");
        let keys = ScramKeys::derive(password, &salt, iterations);
        StoredCredentials::from_keys(&keys, salt, iterations)
    }

    pub fn from_keys(keys: &ScramKeys, salt: Vec<u8>, iterations: u32) -> StoredCredentials {
        StoredCredentials {
            salt,
            iterations,
            stored_key: keys.stored_key(),
            server_key: keys.server_key,
        }
    }
}

/// 18 random bytes, base64: 24 printable characters, never ',' nor padding.
pub fn new_nonce() -> String {
    let mut buf = [0u8; 18];
    getrandom::fill(&mut buf).expect("OS random generator unavailable");
    B64.encode(buf)
}

/// Deterministic fake credentials for an unknown user, derived from a persistent server secret,
/// so the exchange looks the same as for a real user. No proof can match them in practice.
pub fn fake_credentials(secret: &[u8], user: &str, iterations: u32) -> StoredCredentials {
    let tagged = |tag: &str| hmac_sha256(secret, format!("{tag}{user}").as_bytes());
    StoredCredentials {
        salt: tagged("fake-salt:")[..SALT_LEN].to_vec(),
        iterations,
        stored_key: tagged("fake-stored-key:"),
        server_key: tagged("fake-server-key:"),
    }
}

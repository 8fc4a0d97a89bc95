//! SCRAM-SHA-256 (RFC 5802 with RFC 7677), without channel binding.
//!
//! The wire carries the literal RFC 5802 messages. The server stores only salt, iterations,
//! StoredKey and ServerKey and does no PBKDF2 at login; the client may cache [`ScramKeys`].
//! Usernames are not SASLprep'd: they are compared as the exact UTF-8 the client sent.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 10_000_000;
pub const DEFAULT_ITERATIONS: u32 = 600_000;
pub const SALT_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    UnsupportedChannelBinding,
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

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
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

// ---- parsing helpers ----

/// RFC 5802 section 7: printable = %x21-2B / %x2D-7E ;; Printable ASCII except ",".
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21..=0x2b | 0x2d..=0x7e))
}

/// Splits "k=value" where k is one ASCII letter (RFC 5802: attr-val = ALPHA "=" value).
fn attr(part: &str) -> Result<(u8, &str), ScramError> {
    match part.as_bytes() {
        [k, b'=', ..] if k.is_ascii_alphabetic() => Ok((*k, &part[2..])),
        _ => Err(ScramError::Malformed("expected attribute=value")),
    }
}

/// Takes the next attribute, which must be `key`. "m" is refused wherever it appears first:
/// "its presence in a client or a server message MUST cause authentication failure when the
/// attribute is parsed by the other end." (RFC 5802 section 5.1)
fn expect_attr<'a>(it: &mut std::str::Split<'a, char>, key: u8) -> Result<&'a str, ScramError> {
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
fn skip_extensions(it: std::str::Split<'_, char>) -> Result<(), ScramError> {
    it.map(attr).try_for_each(|r| r.map(|_| ()))
}

fn escape_user(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// "If the server receives a username that contains '=' not followed by either '2C' or '3D',
/// then the server MUST fail the authentication." (RFC 5802 section 5.1)
fn unescape_user(name: &str) -> Result<String, ScramError> {
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

fn decode_b64(b64: &str) -> Result<Vec<u8>, ScramError> {
    B64.decode(b64)
        .map_err(|_| ScramError::Malformed("bad base64"))
}

// ---- client side ----

/// Client state after sending the client-first-message.
#[derive(Debug)]
pub struct ClientFirst {
    nonce: String,
    bare: String,
}

impl ClientFirst {
    pub fn new(user: &str) -> ClientFirst {
        ClientFirst::with_nonce(user, &new_nonce())
    }

    pub fn with_nonce(user: &str, nonce: &str) -> ClientFirst {
        let bare = format!("n={},r={nonce}", escape_user(user));
        ClientFirst {
            nonce: nonce.to_owned(),
            bare,
        }
    }

    /// The client-first-message: "n,,n=<saslname>,r=<nonce>".
    pub fn message(&self) -> String {
        format!("n,,{}", self.bare)
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
            "{},{},c=biws,r={}",
            self.client_first_bare, self.server_first, self.nonce
        )
    }

    /// Builds the client-final-message from keys derived with salt()/iterations() (or cached).
    pub fn finish(self, keys: &ScramKeys) -> (ClientFinal, String) {
        let auth = self.auth_message();
        let signature = client_signature(&keys.stored_key(), &auth);
        let proof = xor(&keys.client_key, &signature);
        let message = format!("c=biws,r={},p={}", self.nonce, B64.encode(proof));
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
    /// Checks "v=<ServerSignature>" in constant time; "e=<error>" gives AuthFailed.
    pub fn verify_server_final(self, server_final: &str) -> Result<(), ScramError> {
        let (k, v) = attr(server_final.split(',').next().unwrap_or_default())?;
        match k {
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

// ---- server side ----

/// A client-first-message as parsed by the server.
#[derive(Debug)]
pub struct ClientFirstParsed {
    pub user: String,
    nonce: String,
    bare: String,
    /// Expected "c=" value of the client-final-message: base64 of the gs2 header.
    cbind: &'static str,
}

/// Parses a client-first-message without channel binding ("n,," or "y,,"; no authzid).
pub fn parse_client_first(msg: &str) -> Result<ClientFirstParsed, ScramError> {
    let mut gs2 = msg.splitn(3, ',');
    let cbind = match gs2.next().unwrap_or_default() {
        "n" => "biws",
        // "y": the client supports channel binding but thinks we do not; we indeed do not.
        "y" => "eSws",
        p if p.starts_with("p=") => return Err(ScramError::UnsupportedChannelBinding),
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
        cbind,
    })
}

/// Server state after the server-first-message.
#[derive(Debug)]
pub struct ServerFirst {
    creds: StoredCredentials,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    cbind: &'static str,
}

impl ServerFirst {
    /// `creds`: the real ones, or [`fake_credentials`] for an unknown user.
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
            cbind: client_first.cbind,
        }
    }

    /// The server-first-message: "r=<nonce>,s=<base64 salt>,i=<iterations>".
    pub fn message(&self) -> String {
        self.server_first.clone()
    }

    /// Verifies the client-final-message; on success returns the server-final-message.
    /// Any wrong value gives AuthFailed, unparsable input Malformed.
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
        if cbind != self.cbind || nonce != self.nonce {
            return Err(ScramError::AuthFailed);
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

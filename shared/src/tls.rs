//! What both ends agree on about the TLS layer beneath the frames: the ALPN
//! name and the certificate fingerprints users compare and pin.
//!
//! The TLS parameters are decided here, once for both ends: TLS 1.3 only,
//! rustls's `ring` provider with AES-128-GCM preferred (the cheapest AEAD
//! with the CPU's AES instructions), the ALPN name. The connections
//! themselves live in the server and the client; this crate touches no
//! socket.

use sha2::{Digest, Sha256};

/// The ALPN protocol name both ends offer; the server refuses a client that
/// offers ALPN without it.
pub const ALPN: &[u8] = b"miniftp/1";

/// The crypto provider of both ends: rustls's `ring` provider, its cipher
/// suites in this order of preference (the client's order decides).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
    ];
    std::sync::Arc::new(provider)
}

/// The only protocol version either end speaks.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The first byte of every TLS connection from a client (a handshake
/// record); a frame's length prefix never starts with it below 352 MiB.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The SHA-256 fingerprint of a certificate (its DER bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the DER encoding of a certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

/// `SHA256:` followed by the 32 bytes in upper-case hex pairs separated by
/// colons, as `openssl x509 -noout -fingerprint -sha256` prints them.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A fingerprint that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (expected 64 hex digits, with or without colons)")]
pub struct BadFingerprint;

/// Reads a fingerprint as [`Fingerprint`]'s `Display` writes it, and also
/// without the `SHA256:` prefix (any case), without colons, or in lower case.
impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let s = s.trim();
        let hex_part = match s.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &s[7..],
            _ => s,
        };
        let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(digits).map_err(|_| BadFingerprint)?;
        bytes
            .try_into()
            .map(Fingerprint)
            .map_err(|_| BadFingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_like_openssl_and_parse_in_every_spelling() {
        let fp = Fingerprint::of(b"certificate");
        let shown = fp.to_string();
        assert!(shown.starts_with("SHA256:"));
        assert_eq!(shown.len(), 7 + 32 * 3 - 1);
        let bare = hex::encode(fp.0);
        for spelling in [
            shown.clone(),
            shown.to_lowercase(),
            shown[7..].to_string(),
            bare.clone(),
            format!("  {}  ", bare.to_uppercase()),
        ] {
            assert_eq!(spelling.parse::<Fingerprint>(), Ok(fp), "{spelling}");
        }
        for bad in ["", "SHA256:", "zz", &bare[2..], &format!("{bare}00")] {
            assert_eq!(bad.parse::<Fingerprint>(), Err(BadFingerprint), "{bad}");
        }
    }

    #[test]
    fn a_frame_prefix_is_never_mistaken_for_tls() {
        // Every frame this protocol allows is far below 0x16000000 bytes.
        assert!(crate::codec::MAX_FRAME < (TLS_HANDSHAKE_RECORD as usize) << 24);
    }
}

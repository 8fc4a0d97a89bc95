//! How the client decides that a certificate is the server's:
//!
//! 1. a certificate pinned for this `HOST:PORT` (in known_hosts, or given
//!    with `--pin`) that matches is accepted;
//! 2. otherwise one that chains to a trusted root for the host name (the
//!    system's roots, or only `--ca FILE`) is accepted;
//! 3. otherwise a pinned host is a hard error (the certificate changed),
//!    and a host seen for the first time is accepted only when the caller
//!    allows new hosts (then it is pinned, after asking on a terminal).
//!
//! With `--ca`, only rule 2 applies. The handshake signature is always
//! checked against the certificate's key, so the peer holds the key of the
//! certificate accepted. What was decided is left in a [`Verdict`] for the
//! caller, which turns a refusal into a precise error.

use std::sync::{Arc, Mutex, OnceLock};

use ftp_shared::tls::Fingerprint;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// What the verifier decided about the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It chains to a trusted root for the host name.
    Chain,
    /// It matches the pin; `save` when the pin was given on the command
    /// line and is not in known_hosts yet.
    Pinned {
        fingerprint: Fingerprint,
        save: bool,
    },
    /// A host seen for the first time, allowed: to be pinned (after asking).
    New(Fingerprint),
    /// A host seen for the first time, not allowed.
    Unknown(Fingerprint),
    /// A pinned host presented another certificate.
    Changed {
        pinned: Fingerprint,
        presented: Fingerprint,
    },
    /// Only a CA may vouch (`--ca`), and it does not.
    NotTrusted(String),
}

/// Where the roots come from.
#[derive(Debug)]
pub enum Roots {
    /// The system's, loaded when first needed (a pinned host never needs them).
    System,
    /// Only these (`--ca FILE`); no pinning.
    Only(RootCertStore),
}

#[derive(Debug)]
pub struct HostVerifier {
    pub provider: Arc<CryptoProvider>,
    pub roots: Roots,
    /// The pin of this host: `--pin`, or else its known_hosts line.
    pub pin: Option<Fingerprint>,
    /// Whether `pin` came from the command line and differs from known_hosts.
    pub pin_is_new: bool,
    /// Whether a host seen for the first time may be accepted (and pinned).
    pub allow_new: bool,
    pub verdict: Arc<Mutex<Option<Verdict>>>,
    chain: OnceLock<Option<Arc<WebPkiServerVerifier>>>,
}

impl HostVerifier {
    pub fn new(
        provider: Arc<CryptoProvider>,
        roots: Roots,
        pin: Option<Fingerprint>,
        pin_is_new: bool,
        allow_new: bool,
    ) -> HostVerifier {
        HostVerifier {
            provider,
            roots,
            pin,
            pin_is_new,
            allow_new,
            verdict: Arc::default(),
            chain: OnceLock::new(),
        }
    }

    /// The CA verifier, built at its first use (`None` without any root).
    fn chain(&self) -> Option<&Arc<WebPkiServerVerifier>> {
        self.chain
            .get_or_init(|| {
                let store = match &self.roots {
                    Roots::Only(store) => store.clone(),
                    Roots::System => {
                        let mut store = RootCertStore::empty();
                        store.add_parsable_certificates(
                            rustls_native_certs::load_native_certs().certs,
                        );
                        store
                    }
                };
                if store.is_empty() {
                    return None;
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                    .build()
                    .ok()
            })
            .as_ref()
    }

    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Verdict {
        let presented = Fingerprint::of(end_entity);
        let ca_only = matches!(self.roots, Roots::Only(_));
        if !ca_only && self.pin == Some(presented) {
            return Verdict::Pinned {
                fingerprint: presented,
                save: self.pin_is_new,
            };
        }
        let chained = self.chain().map(|chain| {
            chain.verify_server_cert(end_entity, intermediates, server_name, &[], now)
        });
        match (chained, ca_only, self.pin) {
            (Some(Ok(_)), _, _) => Verdict::Chain,
            (Some(Err(e)), true, _) => Verdict::NotTrusted(e.to_string()),
            (None, true, _) => Verdict::NotTrusted("no usable certificate in the CA file".into()),
            (_, false, Some(pinned)) => Verdict::Changed { pinned, presented },
            (_, false, None) if self.allow_new => Verdict::New(presented),
            (_, false, None) => Verdict::Unknown(presented),
        }
    }
}

impl ServerCertVerifier for HostVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.decide(end_entity, intermediates, server_name, now);
        let accepted = matches!(
            verdict,
            Verdict::Chain | Verdict::Pinned { .. } | Verdict::New(_)
        );
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        if accepted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The client offers TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

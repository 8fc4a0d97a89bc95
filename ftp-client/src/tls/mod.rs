//! The client's end of the TLS layer: TLS 1.3 from the first byte (ALPN
//! `miniftp/1`), the server's certificate checked by [`verify`], pins kept
//! in [`crate::known_hosts`], and the `tls-exporter` value the login binds
//! to. Plaintext only when asked for by name ([`Transport::InsecurePlaintext`]).

pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use ftp_shared::read_ahead::ReadAhead;
use ftp_shared::scram::{TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
use ftp_shared::tls::{ALPN, Fingerprint};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use self::verify::{HostVerifier, Roots, Verdict};
use crate::ClientError;
use crate::known_hosts::KnownHosts;

/// A connection's stream: plain TCP (left) or TLS (right).
pub type Stream = Either<TcpStream, Box<tokio_rustls::client::TlsStream<ReadAhead<TcpStream>>>>;

/// Asks a person whether to trust a host seen for the first time
/// (`HOST:PORT`, the certificate's fingerprint).
pub type AskNewHost = Arc<dyn Fn(&str, &Fingerprint) -> bool + Send + Sync>;

/// What the client speaks.
#[derive(Clone, Debug)]
pub enum Transport {
    Tls(TlsOptions),
    /// Frames in clear; the server must run with `--insecure-plaintext` too.
    InsecurePlaintext,
}

/// How the server's certificate is checked.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Trust only certificates that chain to this CA file (PEM) instead of
    /// the system's roots, and pin nothing.
    pub ca: Option<PathBuf>,
    /// The pins of hosts seen before (`None`: keep no pins).
    pub known_hosts: Option<PathBuf>,
    /// The fingerprint the certificate must have (given in advance).
    pub pin: Option<Fingerprint>,
    /// What to do with a host seen for the first time.
    pub new_host: NewHost,
    /// Say on stderr when a certificate gets pinned (on a terminal).
    pub announce_pins: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca)
            .field("known_hosts", &self.known_hosts)
            .field("pin", &self.pin)
            .field("new_host", &self.new_host)
            .field("announce_pins", &self.announce_pins)
            .finish()
    }
}

/// What to do with a host seen for the first time (neither pinned nor
/// vouched for by a CA).
#[derive(Clone, Default)]
pub enum NewHost {
    /// Refuse it, showing its fingerprint (scripts without an option).
    #[default]
    Refuse,
    /// Accept and pin it (`--accept-new-host`).
    Accept,
    /// Ask a person, and pin it if they say yes.
    Ask(AskNewHost),
}

impl std::fmt::Debug for NewHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NewHost::Refuse => "Refuse",
            NewHost::Accept => "Accept",
            NewHost::Ask(_) => "Ask",
        })
    }
}

impl TlsOptions {
    /// Trust exactly the certificate with `fingerprint` (no file, no CA).
    pub fn pinned(fingerprint: Fingerprint) -> TlsOptions {
        TlsOptions {
            pin: Some(fingerprint),
            ..TlsOptions::default()
        }
    }
}

/// The crypto provider of both ends ([`ftp_shared::tls::provider`]).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    ftp_shared::tls::provider()
}

/// The host name of `addr` (`host:port`, `[v6]:port`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Runs the TLS handshake on `tcp` to `addr` (`HOST:PORT`, also the
/// known_hosts key), checks the certificate as [`verify`] says, pins a new
/// host when allowed, and returns the stream with its `tls-exporter` value;
/// `None` when a person was asked about a new host and pinned it (the
/// connection is dropped: see [`crate::Client::connect`]).
pub async fn handshake(
    tcp: TcpStream,
    addr: &str,
    options: &TlsOptions,
) -> Result<Option<(Stream, [u8; TLS_EXPORTER_LEN])>, ClientError> {
    let tls_error = |message: String| ClientError::Tls {
        addr: addr.to_string(),
        message,
    };
    let provider = provider();
    let roots = match &options.ca {
        None => Roots::System,
        Some(path) => Roots::Only(read_ca(path).map_err(|message| ClientError::LocalFile {
            path: path.clone(),
            message,
        })?),
    };
    let known = match &options.known_hosts {
        Some(path) => KnownHosts::load(path)
            .map_err(|e| tls_error(format!("{e:#}")))?
            .get(addr),
        None => None,
    };
    let pin = options.pin.or(known);
    let verifier = Arc::new(HostVerifier::new(
        provider.clone(),
        roots,
        pin,
        options.pin.is_some() && options.pin != known,
        !matches!(options.new_host, NewHost::Refuse),
    ));
    let verdict = verifier.verdict.clone();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(ftp_shared::tls::VERSIONS)
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    let name = ServerName::try_from(host_of(addr).to_string())
        .map_err(|_| tls_error("the host name is not valid for TLS".into()))?;
    // The handshake gets its own deadline; a question asked of a person
    // afterwards has none.
    let connecting =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, ReadAhead::new(tcp));
    let limit = crate::client::timeout();
    let connected = tokio::time::timeout(limit, connecting).await.map_err(|_| {
        tls_error(format!(
            "timed out after {} waiting for the TLS handshake",
            crate::client::seconds(limit)
        ))
    })?;
    let verdict = verdict.lock().unwrap_or_else(|p| p.into_inner()).take();
    let tls = match connected {
        Ok(tls) => tls,
        Err(e) => return Err(refusal(addr, options, verdict, e)),
    };
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        return Err(tls_error(format!(
            "the server does not speak {} (no matching ALPN)",
            String::from_utf8_lossy(ALPN)
        )));
    }
    let mut asked = false;
    let to_pin = match verdict {
        Some(Verdict::New(fingerprint)) => {
            if let NewHost::Ask(ask) = &options.new_host {
                asked = true;
                let (ask, host) = (ask.clone(), addr.to_string());
                let yes = tokio::task::spawn_blocking(move || ask(&host, &fingerprint))
                    .await
                    .unwrap_or(false);
                if !yes {
                    return Err(ClientError::HostNotTrusted {
                        host: addr.to_string(),
                    });
                }
            }
            Some(fingerprint)
        }
        Some(Verdict::Pinned {
            fingerprint,
            save: true,
        }) => Some(fingerprint),
        _ => None,
    };
    if let (Some(fingerprint), Some(path)) = (to_pin, &options.known_hosts) {
        KnownHosts::pin(path, addr, fingerprint).map_err(|e| tls_error(format!("{e:#}")))?;
        if options.announce_pins {
            eprintln!(
                "pinned the certificate of {addr} ({fingerprint}) in {}",
                path.display()
            );
        }
        if asked {
            return Ok(None);
        }
    }
    let binding = tls
        .get_ref()
        .1
        .export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
        .map_err(|e| tls_error(format!("no channel binding: {e}")))?;
    Ok(Some((Either::Right(Box::new(tls)), binding)))
}

/// The error for a handshake that failed: what the verifier decided, or
/// what the TLS stack says.
fn refusal(
    addr: &str,
    options: &TlsOptions,
    verdict: Option<Verdict>,
    e: std::io::Error,
) -> ClientError {
    let addr = addr.to_string();
    match verdict {
        Some(Verdict::Changed { pinned, presented }) => ClientError::CertificateChanged {
            host: addr,
            pinned,
            presented,
            file: options.known_hosts.clone(),
            given: options.pin.is_some(),
        },
        Some(Verdict::Unknown(fingerprint)) => ClientError::UnknownHost {
            host: addr,
            fingerprint,
        },
        Some(Verdict::NotTrusted(why)) => ClientError::Tls {
            addr,
            message: format!("the certificate is not trusted by the given CA: {why}"),
        },
        _ => {
            let message = match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(rustls::Error::InvalidMessage(_)) => return ClientError::NotTls { addr },
                Some(rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)) => {
                    return ClientError::NotTheKeyHolder { host: addr };
                }
                Some(other) => other.to_string(),
                None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let message = "the server closed the connection during the TLS handshake";
                    return ClientError::TlsClosed {
                        addr,
                        message: message.into(),
                    };
                }
                None if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return ClientError::TlsClosed {
                        addr,
                        message: format!("{e}"),
                    };
                }
                None => e.to_string(),
            };
            ClientError::Tls { addr, message }
        }
    }
}

/// The certificates of a CA file (PEM).
fn read_ca(path: &std::path::Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read CA certificates: {e}"))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err("holds no usable CA certificate".into());
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names_come_out_of_addresses() {
        assert_eq!(
            super::host_of("files.example.com:2121"),
            "files.example.com"
        );
        assert_eq!(super::host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(super::host_of("[::1]:2121"), "::1");
    }
}

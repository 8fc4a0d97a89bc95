//! TLS 1.3 for every session unless both ends ask for plaintext by name.
//!
//! - [`Transport`]: what the server speaks on its port.
//! - [`TlsFiles`]: the PEM certificate chain and private key; [`load`]
//!   checks that the key matches and [`generate`] makes a self-signed pair
//!   on first start.
//! - [`reload`]: the certificate in use, replaced on SIGHUP or when its
//!   files change, without a restart.
//! - [`inspect`]: what `check-config` reports (fingerprint, validity).
//!
//! rustls with the `ring` provider, TLS 1.3 only, ALPN `miniftp/1`, no
//! client certificates, no session tickets (every CLI command is a new
//! process, so tickets would never be used).

pub mod inspect;
pub mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use ftp_shared::tls::{ALPN, Fingerprint};
use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::private_file::write_atomic;

/// What the server speaks on its port.
#[derive(Clone)]
pub enum Transport {
    /// TLS 1.3 from the first byte (the default).
    Tls(tokio_rustls::TlsAcceptor),
    /// Frames in clear, only with `--insecure-plaintext`.
    InsecurePlaintext,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tls(_) => "Tls",
            Transport::InsecurePlaintext => "InsecurePlaintext",
        })
    }
}

/// The crypto provider of both ends ([`ftp_shared::tls::provider`]).
pub fn provider() -> Arc<CryptoProvider> {
    ftp_shared::tls::provider()
}

impl Transport {
    /// TLS with the certificate `resolver` gives.
    pub fn tls(resolver: Arc<dyn ResolvesServerCert>) -> anyhow::Result<Transport> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(ftp_shared::tls::VERSIONS)
            .context("TLS 1.3 is not available")?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Transport::Tls(tokio_rustls::TlsAcceptor::from(Arc::new(
            config,
        ))))
    }

    /// TLS with one fixed certificate (tests and embedding).
    pub fn tls_with(key: Arc<CertifiedKey>) -> anyhow::Result<Transport> {
        Transport::tls(Arc::new(reload::Fixed(key)))
    }
}

/// Where the certificate chain and its private key live (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The self-signed pair kept beside the users file when none is configured.
    pub fn beside(users: &Path) -> TlsFiles {
        let dir = users.parent().unwrap_or(Path::new(""));
        TlsFiles {
            cert: dir.join("tls-cert.pem"),
            key: dir.join("tls-key.pem"),
        }
    }
}

/// A loaded certificate, ready to serve, and the fingerprint of its leaf.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub fingerprint: Fingerprint,
}

/// Reads the chain and the key and checks that they belong together.
pub fn load(files: &TlsFiles) -> anyhow::Result<Loaded> {
    let chain = read_chain(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!(
            "cannot read a private key from {}: {}",
            files.key.display(),
            pem_error(e)
        )
    })?;
    from_der(chain, key).with_context(|| {
        format!(
            "the TLS key {} cannot serve the certificate {}",
            files.key.display(),
            files.cert.display()
        )
    })
}

/// Builds a served certificate from DER, checking that the key matches the
/// leaf certificate.
pub fn from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Loaded> {
    let fingerprint = Fingerprint::of(chain.first().context("the certificate chain is empty")?);
    let key = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the private key does not match the certificate, or its type is not supported")?;
    Ok(Loaded {
        key: Arc::new(key),
        fingerprint,
    })
}

/// Builds a served certificate from PEM text (the chain, then the key).
pub fn from_pem(cert: &str, key: &str) -> anyhow::Result<Loaded> {
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {}", pem_error(e)))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| anyhow::anyhow!("not a PEM private key: {}", pem_error(e)))?;
    from_der(chain, key)
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read certificates from {}: {}",
                path.display(),
                pem_error(e)
            )
        })?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(chain)
}

/// The PEM reader's error in plain words (its I/O errors without "os error N").
fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => io.kind().to_string(),
        },
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM item of that kind found".into(),
        other => other.to_string(),
    }
}

/// A new self-signed certificate (ECDSA P-256) in memory, for `localhost`,
/// the loopback addresses and this machine's host name.
pub fn self_signed() -> anyhow::Result<(String, String)> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if !host.is_empty() && host != "localhost" && rustls_pki_types::DnsName::try_from(host).is_ok()
    {
        names.push(host.to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).context("invalid host name")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftp-server (self-signed)");
    let key = rcgen::KeyPair::generate().context("cannot generate a key pair")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a new self-signed pair to `files` (the key with mode 0600) and
/// returns its fingerprint.
pub fn generate(files: &TlsFiles) -> anyhow::Result<Fingerprint> {
    let (cert, key) = self_signed()?;
    write_atomic(&files.key, key.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", files.key.display()))?;
    write_atomic(&files.cert, cert.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", files.cert.display()))?;
    Ok(load(files)?.fingerprint)
}

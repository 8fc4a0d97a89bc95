//! What `check-config` says of a certificate: whose it is, until when it is
//! valid, its fingerprint; and an error when it is expired or not yet valid.

use anyhow::{Context, bail};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Loaded, TlsFiles, load};

/// A certificate that loads, matches its key and is valid now.
#[derive(Debug)]
pub struct Checked {
    pub loaded: Loaded,
    pub subject: String,
    pub not_after: String,
}

/// Loads `files` and checks the leaf certificate's validity period.
pub fn check(files: &TlsFiles) -> anyhow::Result<Checked> {
    let loaded = load(files)?;
    let leaf: &CertificateDer<'_> = loaded
        .key
        .cert
        .first()
        .context("the certificate chain is empty")?;
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} is not a valid X.509 certificate", files.cert.display()))?;
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        bail!(
            "the TLS certificate {} expired on {}",
            files.cert.display(),
            validity.not_after
        );
    }
    if now < validity.not_before {
        bail!(
            "the TLS certificate {} is not valid before {}",
            files.cert.display(),
            validity.not_before
        );
    }
    Ok(Checked {
        subject: cert.subject().to_string(),
        not_after: validity.not_after.to_string(),
        loaded,
    })
}

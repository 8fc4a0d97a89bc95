//! Which server the command line trusts: the transport built from the
//! global options (`--insecure-plaintext`, `--ca`, `--pin`,
//! `--accept-new-host`), the question asked on a terminal about a host seen
//! for the first time, and `ftp-client forget-host`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::bail;
use ftp_shared::tls::Fingerprint;

use super::{Global, usage};
use crate::known_hosts::{self, KnownHosts};
use crate::{NewHost, TlsOptions, Transport};

/// The transport of this command line.
pub(super) fn transport(global: &Global) -> anyhow::Result<Transport> {
    if global.insecure_plaintext {
        if global.ca.is_some() || global.pin.is_some() {
            usage("--insecure-plaintext turns TLS off: it cannot go with --ca or --pin");
        }
        return Ok(Transport::InsecurePlaintext);
    }
    if global.ca.is_some() && global.pin.is_some() {
        usage("--ca trusts only what that CA signed: it cannot go with --pin");
    }
    let new_host = if global.accept_new_host {
        NewHost::Accept
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        NewHost::Ask(Arc::new(ask))
    } else {
        NewHost::Refuse
    };
    Ok(Transport::Tls(TlsOptions {
        ca: global.ca.clone(),
        known_hosts: Some(known_hosts::default_path()?),
        pin: global.pin,
        new_host,
        announce_pins: !global.quiet && std::io::stderr().is_terminal(),
    }))
}

/// Asks on the terminal, like ssh, whether to trust and pin a new host.
fn ask(host: &str, fingerprint: &Fingerprint) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "The certificate of {host} is not signed by a trusted CA, and this host was never seen before.\n\
         Its fingerprint is {fingerprint}\n\
         Compare it with the one the server printed at its start.\n\
         Trust it and remember it for {host} (yes/no)? "
    );
    let _ = err.flush();
    drop(err);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "yes" | "y")
}

/// `ftp-client forget-host HOST:PORT`: removes a pin.
pub(super) fn forget_host(host: &str) -> anyhow::Result<()> {
    let path = known_hosts::default_path()?;
    let mut hosts = KnownHosts::load(&path)?;
    if !hosts.remove(host) {
        bail!("{host} is not pinned in {}", path.display());
    }
    hosts.save(&path)?;
    eprintln!("forgot the certificate of {host}");
    Ok(())
}

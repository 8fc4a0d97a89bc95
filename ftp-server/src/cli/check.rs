//! `ftp-server check-config`, and the checks `serve` makes before it
//! creates anything (the listen address bound, the root, the certificate).

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use anyhow::{Context, bail};

use super::serve::{ServeArgs, TlsSetting};
use crate::Users;
use crate::tls;

/// `check-config`: everything `serve` would load, without serving.
pub(super) fn check_config(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let users = Users::load(&settings.users)?;
    root(&settings.root)?;
    // Bound and released at once: the port is free now.
    drop(bind(&settings.listen)?);
    tls(&settings.tls)?;
    match &settings.tls {
        TlsSetting::Tls { files, configured }
            if *configured || files.cert.exists() || files.key.exists() =>
        {
            let checked = tls::inspect::check(files)?;
            println!(
                "TLS certificate {} ({}), valid until {}, fingerprint: {}",
                files.cert.display(),
                checked.subject,
                checked.not_after,
                checked.loaded.fingerprint
            );
        }
        TlsSetting::Tls { files, .. } => println!(
            "TLS: a self-signed certificate will be created at {} on first start",
            files.cert.display()
        ),
        TlsSetting::InsecurePlaintext => {
            println!("TLS: off (insecure_plaintext): sessions cross the network in clear")
        }
    }
    println!(
        "configuration is valid: listen {} (free), root {}, {} user(s) in {}, fsync {}, new homes {:04o}, new files {:04o}",
        settings.listen,
        settings.root.display(),
        users.len(),
        settings.users.display(),
        if settings.fsync { "on" } else { "off" },
        settings.home_mode,
        settings.file_mode,
    );
    Ok(())
}

/// The storage root is a directory, or can be created: the nearest
/// existing ancestor is a directory.
pub(super) fn root(root: &Path) -> anyhow::Result<()> {
    if root.exists() && !root.is_dir() {
        bail!("the storage root {} is not a directory", root.display());
    }
    let existing = root
        .ancestors()
        .find(|p| p.as_os_str().is_empty() || p.exists());
    if let Some(p) = existing.filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        bail!(
            "the storage root {} cannot be created: {} is not a directory",
            root.display(),
            p.display()
        );
    }
    Ok(())
}

/// A certificate that is configured, or half there, loads.
pub(super) fn tls(setting: &TlsSetting) -> anyhow::Result<()> {
    if let TlsSetting::Tls { files, configured } = setting
        && (*configured || files.cert.exists() || files.key.exists())
    {
        tls::inspect::check(files)?;
    }
    Ok(())
}

/// Checks `listen` strictly and binds it.
pub(super) fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    check_listen(listen)?;
    TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))
}

/// `HOST:PORT` with a port number (`[v6]:PORT` for IPv6 addresses); a host
/// made of digits and dots must be an IPv4 address.
fn check_listen(listen: &str) -> anyhow::Result<()> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = listen.rsplit_once(':').filter(|(host, port)| {
        !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
    }) else {
        bail!("listen = {listen:?} is not HOST:PORT with a port number");
    };
    let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if numeric && host.parse::<Ipv4Addr>().is_err() {
        bail!("listen = {listen:?}: {host} is not an IPv4 address (port {port})");
    }
    Ok(())
}

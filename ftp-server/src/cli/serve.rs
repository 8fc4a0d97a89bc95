//! `ftp-server serve` and `ftp-server check-config`: the options, what
//! they resolve to over the configuration file, the start-up (a first user
//! and a first certificate when there are none) and the check.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ftp_shared::scram::{self, StoredCredentials};
use ftp_storage::FsStorage;

use super::{check, init_logging};
use crate::config::{self, ConfigFile};
use crate::reload::{self, Described, Reloader};
use crate::tls::reload::Reloading;
use crate::tls::{self, TlsFiles, Transport};
use crate::users::UsersFile;
use crate::{Limits, Shared, Users};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Configuration file (TOML); options given here win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port, and the real one is
    /// printed [default: 127.0.0.1:2121].
    #[arg(long)]
    listen: Option<String>,
    /// Storage root: each user's home is a directory under it [default: ./ftp-data].
    #[arg(long)]
    root: Option<PathBuf>,
    /// The users file [default: ./users.toml].
    #[arg(long = "users", value_name = "FILE")]
    users: Option<PathBuf>,
    /// Connections served at once [default: 512].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections from one IP address at once [default: 64].
    #[arg(long)]
    max_connections_per_address: Option<usize>,
    /// Connections not yet logged in, at once [default: 128].
    #[arg(long)]
    max_unauthenticated: Option<usize>,
    /// Seconds from connect to a completed login [default: 20].
    #[arg(long, value_name = "SECONDS")]
    handshake_timeout: Option<u64>,
    /// Seconds a logged-in session may stay idle [default: 300].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Seconds a transfer may stall [default: 60].
    #[arg(long, value_name = "SECONDS")]
    transfer_timeout: Option<u64>,
    /// The largest file a client may upload, in bytes [default: 64 GiB].
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// The bytes each user's home may hold [default: no quota].
    #[arg(long, value_name = "BYTES")]
    quota_bytes: Option<u64>,
    /// Publish uploads without waiting for the disk (no fsync): faster, but a
    /// power loss can lose recently stored files.
    #[arg(long)]
    no_fsync: bool,
    /// TLS certificate chain (PEM), e.g. one issued by an ACME client; reloaded
    /// on SIGHUP and when the file changes [default: a self-signed
    /// certificate created beside the users file, tls-cert.pem].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM) [default: tls-key.pem beside the users file].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve without TLS: everything, file contents included, crosses the
    /// network in clear and can be altered on the way. Clients must ask for
    /// it too. Only for a trusted network or a tunnel.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_plaintext: bool,
    /// Seconds running transfers may go on after SIGTERM or Ctrl-C [default: 30].
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<u64>,
    /// Mode of new homes, in octal [default: 0700]; existing homes keep theirs.
    #[arg(long, value_name = "OCTAL")]
    home_mode: Option<String>,
    /// Mode of new files, in octal [default: 0600].
    #[arg(long, value_name = "OCTAL")]
    file_mode: Option<String>,
    /// Connections from one IP address not yet logged in, at once; one more
    /// replaces that address's least advanced, oldest one [default: 16].
    #[arg(long)]
    max_unauthenticated_per_address: Option<usize>,
}

/// What `serve` runs with: the command line over the configuration file over
/// the defaults.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) listen: String,
    pub(super) root: PathBuf,
    pub(super) users: PathBuf,
    pub(super) fsync: bool,
    pub(super) tls: TlsSetting,
    pub(super) limits: Limits,
    pub(super) home_mode: u32,
    pub(super) file_mode: u32,
}

impl Settings {
    /// Every setting as `(key, value)`, to tell what a reload would change.
    fn described(&self) -> Described {
        let mut out: Described = [
            ("listen", self.listen.clone()),
            ("root", self.root.display().to_string()),
            ("users", self.users.display().to_string()),
            ("fsync", self.fsync.to_string()),
            ("tls", format!("{:?}", self.tls)),
            ("home_mode", format!("{:04o}", self.home_mode)),
            ("file_mode", format!("{:04o}", self.file_mode)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        out.extend(reload::fields("limits", &self.limits));
        out
    }
}

/// What the server speaks.
#[derive(Debug, Clone)]
pub(super) enum TlsSetting {
    /// TLS with these files; `configured` when named by an option or the
    /// configuration file (then they must exist), otherwise the self-signed
    /// pair beside the users file, created at first start.
    Tls {
        files: TlsFiles,
        configured: bool,
    },
    InsecurePlaintext,
}

impl ServeArgs {
    pub(super) fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let mut limits = file.limits();
        let secs = Duration::from_secs;
        if let Some(v) = self.max_connections {
            limits.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_address {
            limits.max_connections_per_address = v;
        }
        if let Some(v) = self.max_unauthenticated {
            limits.max_unauthenticated = v;
        }
        if let Some(v) = self.handshake_timeout {
            limits.handshake_timeout = secs(v);
        }
        if let Some(v) = self.idle_timeout {
            limits.idle_timeout = secs(v);
        }
        if let Some(v) = self.transfer_timeout {
            limits.transfer_timeout = secs(v);
        }
        if let Some(v) = self.max_file_size {
            limits.max_file_size = v;
        }
        if let Some(v) = self.quota_bytes {
            limits.quota_bytes = Some(v);
        }
        if let Some(v) = self.shutdown_grace {
            limits.shutdown_grace = secs(v);
        }
        if let Some(v) = self.max_unauthenticated_per_address {
            limits.max_unauthenticated_per_address = v;
        }
        limits
            .check()
            .map_err(anyhow::Error::msg)
            .context("invalid limits")?;
        let users = self
            .users
            .clone()
            .or(file.users.clone())
            .unwrap_or_else(|| "./users.toml".into());
        let tls = self.tls_setting(&file, &users)?;
        let mode = |arg: &Option<String>, key: &Option<String>, name, dir| match arg
            .as_ref()
            .or(key.as_ref())
        {
            Some(text) => config::parse_mode(text, name, dir),
            None => Ok(if dir { 0o700 } else { 0o600 }),
        };
        let home_mode = mode(&self.home_mode, &file.home_mode, "home_mode", true)?;
        let file_mode = mode(&self.file_mode, &file.file_mode, "file_mode", false)?;
        Ok(Settings {
            listen: self
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:2121".into()),
            root: self
                .root
                .clone()
                .or(file.root)
                .unwrap_or_else(|| "./ftp-data".into()),
            fsync: !self.no_fsync && file.fsync.unwrap_or(true),
            tls,
            users,
            limits,
            home_mode,
            file_mode,
        })
    }
}

impl ServeArgs {
    fn tls_setting(&self, file: &ConfigFile, users: &Path) -> anyhow::Result<TlsSetting> {
        let plaintext = self.insecure_plaintext || file.insecure_plaintext.unwrap_or(false);
        let cert = self.tls_cert.clone().or(file.tls_cert.clone());
        let key = self.tls_key.clone().or(file.tls_key.clone());
        match (plaintext, cert, key) {
            (true, None, None) => Ok(TlsSetting::InsecurePlaintext),
            (true, _, _) => bail!("insecure_plaintext cannot be combined with a TLS certificate"),
            (false, Some(cert), Some(key)) => Ok(TlsSetting::Tls {
                files: TlsFiles { cert, key },
                configured: true,
            }),
            (false, None, None) => Ok(TlsSetting::Tls {
                files: TlsFiles::beside(users),
                configured: false,
            }),
            (false, Some(_), None) => bail!("a TLS certificate is configured without its key"),
            (false, None, Some(_)) => bail!("a TLS key is configured without its certificate"),
        }
    }
}

/// The transport `serve` runs with: the certificate loaded (created first
/// when it is the default one and missing) and watched for renewals.
fn transport(setting: &TlsSetting) -> anyhow::Result<(Transport, Option<Arc<Reloading>>)> {
    let TlsSetting::Tls { files, configured } = setting else {
        return Ok((Transport::InsecurePlaintext, None));
    };
    if !configured && !files.cert.exists() && !files.key.exists() {
        let fingerprint = tls::generate(files)?;
        println!(
            "created a self-signed TLS certificate {} (key {}, mode 0600), fingerprint: {fingerprint}",
            files.cert.display(),
            files.key.display()
        );
        println!("(clients pin it at their first connection; compare it with what they show)");
    }
    let reloading = Arc::new(Reloading::load(files.clone())?);
    println!("TLS certificate fingerprint: {}", reloading.fingerprint());
    Ok((Transport::tls(reloading.clone())?, Some(reloading)))
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    init_logging();
    // Everything that can fail is checked before anything is created.
    check::root(&settings.root)?;
    check::tls(&settings.tls)?;
    let listener = check::bind(&settings.listen)?;
    let users = if settings.users.exists() {
        Users::load(&settings.users)?
    } else {
        create_first_user(&settings.users)?;
        Users::load(&settings.users)?
    };
    if users.is_empty() {
        tracing::warn!("the users file has no users: add one with `ftp-server user add NAME`");
    }
    let (transport, reloading) = transport(&settings.tls)?;
    let storage = FsStorage::open(&settings.root)
        .with_context(|| format!("cannot open the storage root {}", settings.root.display()))?
        .with_fsync(settings.fsync)
        .with_modes(settings.home_mode, settings.file_mode);
    let shared = Arc::new(Shared {
        storage,
        users,
        limits: settings.limits.clone(),
        lockouts: Default::default(),
        log_limit: Default::default(),
        quotas: Default::default(),
        transport,
        listings: Default::default(),
    });
    crate::lockout::file::restore(&shared);

    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        if let Some(reloading) = &reloading {
            reloading.watch();
        } else if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "serving WITHOUT TLS on a non-loopback address: logins, file names and contents cross the network in clear and can be altered on the way"
            );
        }
        Reloader {
            running: settings.described(),
            reread: Box::new(move || Ok(args.settings()?.described())),
            shared: shared.clone(),
            certificate: reloading.clone(),
        }
        .watch()
        .context("cannot watch SIGHUP")?;
        println!("listening on {addr}");
        tracing::info!(%addr, root = %settings.root.display(), fsync = settings.fsync, "serving");
        tokio::spawn(crate::lockout::file::keep_saved(shared.clone()));
        crate::run(listener, shared.clone(), shutdown).await;
        crate::lockout::file::save_now(&shared);
        anyhow::Ok(())
    })
}

/// Completes at the first Ctrl-C or SIGTERM. The handlers are installed
/// before this returns, so a signal that arrives as soon as the server says it
/// is listening is already a request to shut down, not a kill.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
    })
}

/// First start: a users file with `admin` and a random password, shown once.
fn create_first_user(path: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password = hex::encode(bytes);
    let mut file = UsersFile::new();
    file.set(
        "admin",
        &StoredCredentials::new(password.as_bytes(), scram::DEFAULT_ITERATIONS),
    )?;
    file.save(path)?;
    println!(
        "created {} with user 'admin', password: {password}",
        path.display()
    );
    println!("(shown once; change it with `ftp-server user passwd admin`)");
    Ok(())
}

//! The command line: `ftp-server [serve]` and `ftp-server user ...`.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ftp_shared::scram::{self, StoredCredentials};
use ftp_storage::FsStorage;

use crate::config::ConfigFile;
use crate::users::UsersFile;
use crate::{Limits, Shared, Users};

/// An authenticated file-transfer server: SCRAM-SHA-256 login, one sandboxed home per user.
#[derive(Debug, Parser)]
#[command(name = "ftp-server", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (what happens with no subcommand).
    Serve(ServeArgs),
    /// Check the configuration and the users file, then exit (0 when valid).
    CheckConfig(ServeArgs),
    /// Manage the users file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
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
    /// Seconds running transfers may go on after SIGTERM or Ctrl-C [default: 30].
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<u64>,
}

/// What `serve` runs with: the command line over the configuration file over
/// the defaults.
#[derive(Debug)]
struct Settings {
    listen: String,
    root: PathBuf,
    users: PathBuf,
    fsync: bool,
    limits: Limits,
}

impl ServeArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
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
        limits
            .check()
            .map_err(anyhow::Error::msg)
            .context("invalid limits")?;
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
            users: self
                .users
                .clone()
                .or(file.users)
                .unwrap_or_else(|| "./users.toml".into()),
            fsync: !self.no_fsync && file.fsync.unwrap_or(true),
            limits,
        })
    }
}

#[derive(Debug, Args)]
struct UsersArg {
    /// The users file.
    #[arg(long = "users", value_name = "FILE", default_value = "./users.toml")]
    path: PathBuf,
}

#[derive(Debug, Args)]
struct PasswordArgs {
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// PBKDF2 iterations of the new verifier.
    #[arg(long, default_value_t = scram::DEFAULT_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(scram::MIN_ITERATIONS as i64..=scram::MAX_ITERATIONS as i64))]
    iterations: u32,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Add a user (creates the users file when it is missing).
    Add {
        name: String,
        #[command(flatten)]
        users: UsersArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Remove a user (their files stay in the storage root).
    Remove {
        name: String,
        #[command(flatten)]
        users: UsersArg,
    },
    /// List the users.
    List {
        #[command(flatten)]
        users: UsersArg,
    },
    /// Change a user's password.
    Passwd {
        name: String,
        #[command(flatten)]
        users: UsersArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::CheckConfig(args)) => check_config(&args),
        Some(Command::User { action }) => user(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    init_logging();
    if !settings.users.exists() {
        create_first_user(&settings.users)?;
    }
    let users = Users::load(&settings.users)?;
    if users.is_empty() {
        tracing::warn!("the users file has no users: add one with `ftp-server user add NAME`");
    }
    let storage = FsStorage::open(&settings.root)
        .with_context(|| format!("cannot open the storage root {}", settings.root.display()))?
        .with_fsync(settings.fsync);
    let shared = Arc::new(Shared {
        storage,
        users,
        limits: settings.limits,
        lockouts: Default::default(),
        quotas: Default::default(),
    });

    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        tracing::info!(%addr, root = %settings.root.display(), fsync = settings.fsync, "serving");
        crate::run(listener, shared, shutdown).await;
        anyhow::Ok(())
    })
}

/// `check-config`: everything `serve` would load, without serving.
fn check_config(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let users = Users::load(&settings.users)?;
    if settings.root.exists() && !settings.root.is_dir() {
        bail!(
            "the storage root {} is not a directory",
            settings.root.display()
        );
    }
    // `serve` creates the root and its missing parents: the nearest
    // existing one must be a directory.
    let existing = settings
        .root
        .ancestors()
        .find(|p| p.as_os_str().is_empty() || p.exists());
    if let Some(p) = existing.filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        bail!(
            "the storage root {} cannot be created: {} is not a directory",
            settings.root.display(),
            p.display()
        );
    }
    check_listen(&settings.listen)?;
    println!(
        "configuration is valid: listen {}, root {}, {} user(s) in {}, fsync {}",
        settings.listen,
        settings.root.display(),
        users.len(),
        settings.users.display(),
        if settings.fsync { "on" } else { "off" }
    );
    Ok(())
}

/// `HOST:PORT` with a port number (`[v6]:PORT` for IPv6 addresses).
fn check_listen(listen: &str) -> anyhow::Result<()> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let valid = listen.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok()
    });
    if !valid {
        bail!("listen = {listen:?} is not HOST:PORT with a port number");
    }
    Ok(())
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

fn user(action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            name,
            users,
            password,
        } => {
            let mut file = UsersFile::load_or_new(&users.path)?;
            if file.contains(&name) {
                bail!("user {name:?} already exists (use `ftp-server user passwd {name}`)");
            }
            ftp_storage::validate_user_name(&name)
                .with_context(|| format!("{name:?} is not a valid user name"))?;
            let creds = new_credentials(&name, &password)?;
            file.set(&name, &creds)?;
            file.save(&users.path)?;
            eprintln!("added user {name}");
        }
        UserAction::Remove { name, users } => {
            let mut file = UsersFile::load(&users.path)?;
            if !file.remove(&name) {
                bail!("no user {name:?}");
            }
            file.save(&users.path)?;
            eprintln!("removed user {name}");
        }
        UserAction::List { users } => {
            for name in UsersFile::load(&users.path)?.names() {
                println!("{name}");
            }
        }
        UserAction::Passwd {
            name,
            users,
            password,
        } => {
            let mut file = UsersFile::load(&users.path)?;
            if !file.contains(&name) {
                bail!("no user {name:?}");
            }
            let creds = new_credentials(&name, &password)?;
            file.set(&name, &creds)?;
            file.save(&users.path)?;
            eprintln!("changed the password of {name}");
        }
    }
    Ok(())
}

fn new_credentials(name: &str, args: &PasswordArgs) -> anyhow::Result<StoredCredentials> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = rpassword::prompt_password(format!("New password for {name}: "))
            .context("cannot read the password")?;
        let second =
            rpassword::prompt_password("Retype it: ").context("cannot read the password")?;
        if first != second {
            bail!("the passwords do not match");
        }
        first
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(StoredCredentials::new(password.as_bytes(), args.iterations))
}

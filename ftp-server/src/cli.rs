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
    /// Manage the users file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, default_value = "127.0.0.1:2121")]
    listen: String,
    /// Storage root: each user's home is a directory under it.
    #[arg(long, default_value = "./ftp-data")]
    root: PathBuf,
    #[command(flatten)]
    users: UsersArg,
    /// Connections served at once.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a logged-in session may stay idle.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Publish uploads without waiting for the disk (no fsync): faster, but a
    /// power loss can lose recently stored files.
    #[arg(long)]
    no_fsync: bool,
    /// Seconds running transfers may go on after SIGTERM or Ctrl-C.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().shutdown_grace.as_secs())]
    shutdown_grace: u64,
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
    init_logging();
    let users_path = &args.users.path;
    if !users_path.exists() {
        create_first_user(users_path)?;
    }
    let users = Users::load(users_path)?;
    if users.is_empty() {
        tracing::warn!("the users file has no users: add one with `ftp-server user add NAME`");
    }
    let storage = FsStorage::open(&args.root)
        .with_context(|| format!("cannot open the storage root {}", args.root.display()))?
        .with_fsync(!args.no_fsync);
    let limits = Limits {
        max_connections: args.max_connections,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        ..Limits::default()
    };
    let shared = Arc::new(Shared {
        storage,
        users,
        limits,
    });

    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        tracing::info!(%addr, root = %args.root.display(), "serving");
        crate::run(listener, shared, shutdown).await;
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

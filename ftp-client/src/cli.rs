//! The command line: `login`, `logout`, `put`, `get`, `mkdir`.
//!
//! Exit status: 0 on success, 1 when a command failed (a remote refusal, a
//! transfer or local file error, a failed login), 2 for a usage error.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::credentials::{self, Store};
use crate::{Client, Secret, Target};

/// Client of the mini-FTP: authenticated, verified file transfer.
#[derive(Debug, Parser)]
#[command(
    name = "ftp-client",
    version,
    after_help = "Exit status: 0 success, 1 failure (remote refusal, transfer or local error), 2 usage error."
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Log in to USER@HOST[:PORT] for this command instead of using the saved login.
    #[arg(long, global = true, value_name = "USER@HOST[:PORT]")]
    server: Option<Target>,
    /// Read the password from the first line of standard input.
    #[arg(long, global = true)]
    password_stdin: bool,
    /// No progress bars or summaries.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in and save the login keys (never the password) for later commands.
    Login {
        #[arg(value_name = "USER@HOST[:PORT]")]
        target: Target,
    },
    /// Delete saved login keys (the default login unless one is named).
    Logout {
        #[arg(value_name = "USER@HOST[:PORT]")]
        target: Option<Target>,
    },
    /// Upload a file (to REMOTE, or to its own name in the home; a REMOTE ending in '/' is a directory).
    Put {
        local: PathBuf,
        remote: Option<String>,
    },
    /// Download a file (to LOCAL, or to its own name in the current directory).
    Get {
        remote: String,
        local: Option<PathBuf>,
    },
    /// Create a remote directory.
    Mkdir {
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
        remote: String,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Login { target } => login(global, &target).await,
        Command::Logout { target } => logout(target),
        Command::Put { local, remote } => {
            let remote = remote_name(&local, remote)?;
            let mut client = session(global).await?;
            let meter = Meter::start(global, &format!("{} -> {remote}", local.display()));
            let size = client
                .put_file(&local, &remote, &mut meter.progress())
                .await?;
            meter.finish(size);
            client.quit().await?;
            Ok(())
        }
        Command::Get { remote, local } => {
            let local = local_name(&remote, local)?;
            let mut client = session(global).await?;
            let meter = Meter::start(global, &format!("{remote} -> {}", local.display()));
            let size = client
                .get_file(&remote, &local, &mut meter.progress())
                .await?;
            meter.finish(size);
            client.quit().await?;
            Ok(())
        }
        Command::Mkdir { parents, remote } => {
            let mut client = session(global).await?;
            client.mkdir(&remote, parents).await?;
            client.quit().await?;
            Ok(())
        }
    }
}

async fn login(global: &Global, target: &Target) -> anyhow::Result<()> {
    let password = match given_password(global)? {
        Some(p) => p,
        None => prompt_password(target)?,
    };
    let mut client = Client::connect(target.addr()).await?;
    let saved = client
        .login(&target.user, Secret::Password(&password))
        .await?;
    let path = credentials::default_path()?;
    let mut store = Store::load(&path)?;
    store.insert(target, &saved);
    store.save(&path)?;
    client.quit().await?;
    if !global.quiet {
        eprintln!("logged in as {target}; keys saved in {}", path.display());
    }
    Ok(())
}

fn logout(target: Option<Target>) -> anyhow::Result<()> {
    let path = credentials::default_path()?;
    let mut store = Store::load(&path)?;
    let target = match target {
        Some(t) => t,
        None => store.default_target()?.context("not logged in")?,
    };
    if !store.remove(&target) {
        bail!("no saved login for {target}");
    }
    store.save(&path)?;
    Ok(())
}

/// Connects and logs in with, in order: a given password, the saved keys of
/// the target, or a password typed at a prompt.
async fn session(global: &Global) -> anyhow::Result<Client> {
    let path = credentials::default_path()?;
    let store = Store::load(&path)?;
    let target = match &global.server {
        Some(t) => t.clone(),
        None => store.default_target()?.context(
            "not logged in: run `ftp-client login USER@HOST[:PORT]` or pass --server USER@HOST[:PORT]",
        )?,
    };
    let password = given_password(global)?;
    let saved = store.get(&target)?;
    let password = match (password, &saved) {
        (Some(p), _) => Some(p),
        (None, Some(_)) => None,
        (None, None) => Some(prompt_password(&target)?),
    };
    let mut client = Client::connect(target.addr()).await?;
    match (&password, &saved) {
        (Some(p), _) => client.login(&target.user, Secret::Password(p)).await?,
        (None, Some(keys)) => client.login(&target.user, Secret::Keys(keys)).await?,
        (None, None) => unreachable!("a password was prompted for"),
    };
    Ok(client)
}

/// The password from `--password-stdin` or `FTP_PASSWORD`, if either is given.
fn given_password(global: &Global) -> anyhow::Result<Option<String>> {
    if global.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(Some(password.to_string()));
    }
    Ok(std::env::var("FTP_PASSWORD").ok().filter(|p| !p.is_empty()))
}

fn prompt_password(target: &Target) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password for {target}: use --password-stdin, FTP_PASSWORD, or `ftp-client login`"
        );
    }
    rpassword::prompt_password(format!("Password for {target}: "))
        .context("cannot read the password")
}

/// The remote name of an upload: REMOTE, REMOTE/NAME when it ends in '/', or NAME.
fn remote_name(local: &Path, remote: Option<String>) -> anyhow::Result<String> {
    let name = || {
        local
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: cannot tell the file's name", local.display()))
    };
    Ok(match remote {
        Some(r) if r.ends_with('/') => format!("{r}{}", name()?),
        Some(r) => r,
        None => name()?.to_string(),
    })
}

/// The local name of a download: LOCAL, LOCAL/NAME when it is a directory, or ./NAME.
fn local_name(remote: &str, local: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let name = remote
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let name = || -> anyhow::Result<&str> {
        if name.is_empty() || name == "." || name == ".." {
            bail!("{remote:?} does not name a file; give a local name");
        }
        Ok(name)
    };
    Ok(match local {
        Some(l) if l.is_dir() => l.join(name()?),
        Some(l) => l,
        None => PathBuf::from(name()?),
    })
}

/// A transfer's progress bar (on a terminal) and closing summary.
struct Meter {
    bar: ProgressBar,
    label: String,
    started: Instant,
}

impl Meter {
    fn start(global: &Global, label: &str) -> Meter {
        let label = ftp_shared::text::escape(label).to_string();
        let bar = if global.quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            ProgressBar::new(0)
                .with_style(style)
                .with_message(label.clone())
        };
        Meter {
            bar,
            label,
            started: Instant::now(),
        }
    }

    /// The callback a transfer reports its progress to.
    fn progress(&self) -> impl FnMut(u64, u64) + Send + use<> {
        let bar = self.bar.clone();
        move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Clears the bar and prints a one-line summary (on a terminal only).
    fn finish(self, size: u64) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.finish_and_clear();
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        eprintln!(
            "{}: {} in {secs:.2}s ({}/s)",
            self.label,
            indicatif::HumanBytes(size),
            indicatif::HumanBytes((size as f64 / secs) as u64)
        );
    }
}

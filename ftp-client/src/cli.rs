//! The command line: `login`, `logout`, `put`, `get`, `mkdir`.
//!
//! Exit status: 0 on success, 1 when a command failed (a remote refusal, a
//! transfer or local file error, a failed login), 2 for a usage error.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::credentials::{self, Store};
use crate::{Client, ClientError, GetItem, PutItem, Secret, Target};

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
    /// Upload files: `put LOCAL [REMOTE]`, or `put LOCAL... DIR/` into a
    /// remote directory. An interrupted upload of the same file is continued.
    Put {
        #[arg(required = true, value_name = "LOCAL... [REMOTE]")]
        args: Vec<String>,
    },
    /// Download files: `get REMOTE [LOCAL]`, or `get REMOTE... LOCAL_DIR`.
    Get {
        /// Continue the download that left LOCAL.part behind.
        #[arg(long)]
        resume: bool,
        /// Do not wait for the disk before renaming a download into place.
        #[arg(long)]
        no_fsync: bool,
        #[arg(required = true, value_name = "REMOTE... [LOCAL]")]
        args: Vec<String>,
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
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
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
        Command::Put { args } => {
            let items = put_items(args)?;
            let mut client = session(global).await?;
            let labels: Vec<String> = items.iter().map(|i| i.remote.clone()).collect();
            let meter = Meter::start(global, &labels);
            let results = client
                .put_files(&items, true, &mut meter.progress())
                .await?;
            let outcome = meter.finish(&results);
            client.quit().await?;
            outcome
        }
        Command::Get {
            resume,
            no_fsync,
            args,
        } => {
            let items = get_items(args)?;
            let mut client = session(global).await?;
            client.set_durable_downloads(!no_fsync);
            let labels: Vec<String> = items.iter().map(|i| i.remote.clone()).collect();
            let meter = Meter::start(global, &labels);
            let results = client
                .get_files(&items, resume, &mut meter.progress())
                .await?;
            let outcome = meter.finish(&results);
            client.quit().await?;
            outcome
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

/// `LOCAL [REMOTE]` or `LOCAL... DIR/`.
fn put_items(mut args: Vec<String>) -> anyhow::Result<Vec<PutItem>> {
    let name = |local: &Path| -> anyhow::Result<String> {
        local
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .with_context(|| format!("{}: cannot tell the file's name", local.display()))
    };
    let target = match args.len() {
        1 => None,
        2 => args.pop(),
        _ => match args.pop() {
            Some(dir) if dir.ends_with('/') => Some(dir),
            _ => usage(
                "with several files, the last argument must be a remote directory ending in '/'",
            ),
        },
    };
    args.into_iter()
        .map(|local| {
            let local = PathBuf::from(local);
            let remote = match &target {
                Some(dir) if dir.ends_with('/') => format!("{dir}{}", name(&local)?),
                Some(remote) => remote.clone(),
                None => name(&local)?,
            };
            Ok(PutItem { local, remote })
        })
        .collect()
}

/// `REMOTE [LOCAL]` or `REMOTE... LOCAL_DIR`.
fn get_items(mut args: Vec<String>) -> anyhow::Result<Vec<GetItem>> {
    let target = match args.len() {
        1 => None,
        _ => args.pop().map(PathBuf::from),
    };
    if args.len() > 1 && !target.as_deref().is_some_and(Path::is_dir) {
        usage("with several files, the last argument must be an existing local directory");
    }
    args.into_iter()
        .map(|remote| {
            let name = remote
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            if name.is_empty() || name == "." || name == ".." {
                bail!("{remote:?} does not name a file; give a local name");
            }
            let local = match &target {
                Some(dir) if dir.is_dir() => dir.join(name),
                Some(local) => local.clone(),
                None => PathBuf::from(name),
            };
            Ok(GetItem {
                remote: remote.clone(),
                local,
            })
        })
        .collect()
}

/// A usage error: exit status 2, like clap's own.
fn usage(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::InvalidValue, message)
        .exit()
}

/// The progress bar of a transfer (on a terminal) and its closing report.
struct Meter {
    bar: ProgressBar,
    labels: Vec<String>,
    started: Instant,
}

impl Meter {
    fn start(global: &Global, labels: &[String]) -> Meter {
        let labels: Vec<String> = labels
            .iter()
            .map(|l| ftp_shared::text::escape(l).to_string())
            .collect();
        let bar = if global.quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            ProgressBar::new(0).with_style(style)
        };
        Meter {
            bar,
            labels,
            started: Instant::now(),
        }
    }

    /// The callback a transfer reports its progress to.
    fn progress(&self) -> impl FnMut(usize, u64, u64) + Send + use<> {
        let bar = self.bar.clone();
        let labels = self.labels.clone();
        let mut current = usize::MAX;
        move |file, done, total| {
            if file != current {
                current = file;
                bar.set_message(labels.get(file).cloned().unwrap_or_default());
                bar.reset_elapsed();
            }
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Clears the bar, prints each failure (and, on a terminal, a summary);
    /// an error when any file failed.
    fn finish(self, results: &[Result<u64, ClientError>]) -> anyhow::Result<()> {
        let shown = !self.bar.is_hidden();
        self.bar.finish_and_clear();
        let mut failed = 0;
        for result in results {
            if let Err(e) = result {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
        if shown {
            let bytes: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
            let secs = self.started.elapsed().as_secs_f64().max(1e-6);
            let what = match self.labels.as_slice() {
                [one] => one.clone(),
                many => format!("{} files", many.len() - failed),
            };
            eprintln!(
                "{what}: {} in {secs:.2}s ({}/s)",
                indicatif::HumanBytes(bytes),
                indicatif::HumanBytes((bytes as f64 / secs) as u64)
            );
        }
        match failed {
            0 => Ok(()),
            n => Err(Reported(n).into()),
        }
    }
}

/// Failures already printed one per line; only the exit status remains.
#[derive(Debug)]
struct Reported(usize);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} transfer(s) failed", self.0)
    }
}

impl std::error::Error for Reported {}

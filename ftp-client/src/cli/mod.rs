//! The command line: one-shot commands (`login`, `logout`, `ls`, `stat`,
//! `put`, `get`, `mkdir`, `rm`, `rmdir`, `mv`, `completions`), the
//! interactive shell (`shell`, or a bare `USER@HOST`) and batch files
//! (`-b FILE`).
//!
//! Module map: [`args`] holds the remote commands' arguments; [`commands`]
//! runs the remote commands for all three;
//! [`shell`] reads lines (with editing, history and completion, or from a
//! batch file); [`output`] prints results, progress bars and JSON.
//!
//! Exit status: see [`EXIT_STATUS`].

pub mod args;
pub mod commands;
pub mod glob;
pub mod meter;
pub mod output;
pub mod shell;
mod trust;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};

use self::commands::{Remote, RemoteCmd};
use self::output::Output;
use crate::credentials::{self, Store};
use crate::retry::connect_login;
use crate::{ClientError, Secret, Target};
use ftp_shared::tls::Fingerprint;

/// The exit statuses, as `--help` and the README list them.
pub const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  a command failed: refused by the server, a transfer or verification
     failed, a local file could not be read or written, or an entry of a
     recursive transfer could not be copied
  2  usage error: unknown command, bad options or arguments
  3  cannot connect to the server, the server refused the session (busy)
     or ended it (idle timeout, shutdown) before the work was done, the
     connection was lost, the server did not answer within --timeout, or
     it sent more than the client takes (a listing or tree too large)
  4  login failed: wrong password, stale saved keys, or no credentials
  5  the server's identity could not be established: an unknown host not
     accepted, a changed certificate, or a channel binding that did not
     match (someone may be intercepting the connection)
  130  interrupted by Ctrl-C";

/// The exit status of a command stopped by Ctrl-C (as a shell reports SIGINT).
const INTERRUPTED: u8 = 130;

/// Client of the mini-FTP: authenticated, verified file transfer.
#[derive(Debug, Parser)]
#[command(
    name = "ftp-client",
    version,
    subcommand_negates_reqs = true,
    after_help = EXIT_STATUS,
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    /// Run the shell commands in FILE ('-': standard input), stopping at
    /// the first failure. A line starting with '-' may fail without stopping.
    #[arg(short = 'b', long = "batch", value_name = "FILE")]
    batch: Option<PathBuf>,
    /// The server: an interactive shell on it, or the command that follows
    /// (the saved login by default).
    #[arg(value_name = "USER@HOST[:PORT]")]
    target: Option<Target>,
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Print results as JSON, one object per line (per file, listing or entry).
    #[arg(long, global = true)]
    json: bool,
    /// Trust a server seen for the first time and pin its certificate (for
    /// scripts; on a terminal the client asks instead). FTP_ACCEPT_NEW_HOST
    /// set to anything but 0, no, false or off does the same.
    #[arg(long, global = true, env = "FTP_ACCEPT_NEW_HOST",
          value_parser = clap::builder::FalseyValueParser::new())]
    accept_new_host: bool,
    /// The SHA-256 fingerprint the server's certificate must have (pinned
    /// when it matches), as the server prints it: SHA256:AB:CD:...
    #[arg(long, global = true, value_name = "FINGERPRINT")]
    pin: Option<Fingerprint>,
    /// Trust only certificates signed by this CA (PEM) for the host name,
    /// instead of the system's roots and pins.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Talk to a server run with --insecure-plaintext: no encryption, no
    /// server authentication beyond the login; only on a network you trust.
    #[arg(long, global = true)]
    insecure_plaintext: bool,
    /// How long any one wait on the server may take, in seconds: the
    /// connect, the TLS handshake, each reply, each piece of a download.
    #[arg(long, global = true, env = "FTP_TIMEOUT", value_name = "SECS",
          default_value = "30", value_parser = parse_timeout)]
    timeout: std::time::Duration,
}

/// A `--timeout`: a positive number of seconds, at most a day.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err("a number of seconds, more than 0 and at most 86400".into()),
    }
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
    /// Open an interactive shell, like sftp (type `help` in it).
    Shell {
        #[arg(value_name = "USER@HOST[:PORT]")]
        target: Option<Target>,
    },
    /// Forget the pinned certificate of HOST:PORT (after the server got a new one).
    ForgetHost {
        #[arg(value_name = "HOST:PORT")]
        host: String,
    },
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    #[command(flatten)]
    Remote(RemoteCmd),
}

/// No credentials to log in with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NoCredentials(String);

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::client::set_timeout(cli.global.timeout);
    let output = Output {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    if let Some(Command::Completions { shell }) = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "ftp-client",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if cli.batch.is_some() && cli.command.is_some() {
        usage("-b runs a batch file: give no command with it");
    }
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
    let code = match cli.command {
        Some(Command::Login { target }) => report(runtime.block_on(login(&cli.global, &target))),
        Some(Command::Logout { target }) => report(logout(target)),
        Some(Command::ForgetHost { host }) => report(trust::forget_host(&host)),
        Some(Command::Remote(cmd)) => {
            runtime.block_on(one_shot(&cli.global, cli.target, &cmd, &output))
        }
        Some(Command::Shell { target }) => {
            shell::run(&runtime, &cli.global, target.or(cli.target), None, output)
        }
        Some(Command::Completions { .. }) => unreachable!("handled above"),
        None => shell::run(&runtime, &cli.global, cli.target, cli.batch, output),
    };
    ExitCode::from(code)
}

/// The exit status of a command that returned an error (printed here).
fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            // A client error says everything itself (its causes included);
            // other errors are a chain of contexts.
            match e.downcast_ref::<ClientError>() {
                Some(client) => eprintln!("error: {client}"),
                None => eprintln!("error: {e:#}"),
            }
            exit_code(&e)
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<ClientError>() {
        e.exit_code()
    } else if e.is::<NoCredentials>() {
        4
    } else {
        1
    }
}

/// One remote command on its own connection (to `target`, when given
/// before the command).
async fn one_shot(global: &Global, target: Option<Target>, cmd: &RemoteCmd, output: &Output) -> u8 {
    let mut remote = match session(global, target).await {
        Ok(remote) => remote,
        Err(e) => return report(Err(e)),
    };
    // Ctrl-C ends the command in order (downloads not started leave no
    // `.part` behind), then the process, with the shell's status for SIGINT.
    let result = tokio::select! {
        result = remote.run(cmd, output) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted");
            return INTERRUPTED;
        }
    };
    let code = match result {
        Ok(()) => 0,
        Err(failure) => failure.report(output, cmd.name()),
    };
    // The work is done (or failed) by now: a server that says goodbye
    // instead of answering the Quit (shutting down, or gone) changes
    // nothing about it.
    if let Err(e) = remote.quit().await
        && code == 0
        && !output.quiet
    {
        eprintln!("note: the session did not end cleanly ({e}); the command completed");
    }
    code
}

async fn login(global: &Global, target: &Target) -> anyhow::Result<()> {
    let password = match given_password(global)? {
        Some(p) => p,
        None => prompt_password(target)?,
    };
    let transport = trust::transport(global)?;
    let (client, saved) = connect_login(
        &target.addr(),
        &transport,
        &target.user,
        Secret::Password(&password),
    )
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

/// Connects and logs in to `target` (or `--server`, or the saved default)
/// with, in order: a given password, the saved keys of the target, or a
/// password typed at a prompt.
async fn session(global: &Global, target: Option<Target>) -> anyhow::Result<Remote> {
    let path = credentials::default_path()?;
    let store = Store::load(&path)?;
    let target = match target.or_else(|| global.server.clone()) {
        Some(t) => t,
        None => store.default_target()?.ok_or_else(|| {
            NoCredentials(
                "not logged in: run `ftp-client login USER@HOST[:PORT]` or pass --server USER@HOST[:PORT]"
                    .into(),
            )
        })?,
    };
    let password = given_password(global)?;
    let saved = store.get(&target)?;
    let password = match (password, &saved) {
        (Some(p), _) => Some(p),
        (None, Some(_)) => None,
        (None, None) => Some(prompt_password(&target)?),
    };
    let transport = trust::transport(global)?;
    let secret = match (&password, &saved) {
        (Some(p), _) => Secret::Password(p),
        (None, Some(keys)) => Secret::Keys(keys),
        (None, None) => unreachable!("a password was prompted for"),
    };
    let (client, keys) = connect_login(&target.addr(), &transport, &target.user, secret).await?;
    Ok(Remote::new(client, target, keys, transport))
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
            return Err(NoCredentials("no password on standard input".into()).into());
        }
        return Ok(Some(password.to_string()));
    }
    Ok(std::env::var("FTP_PASSWORD").ok().filter(|p| !p.is_empty()))
}

fn prompt_password(target: &Target) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(NoCredentials(format!(
            "no password for {target}: use --password-stdin, FTP_PASSWORD, or `ftp-client login`"
        ))
        .into());
    }
    rpassword::prompt_password(format!("Password for {target}: "))
        .context("cannot read the password")
}

/// A usage error: exit status 2, like clap's own.
pub(crate) fn usage(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

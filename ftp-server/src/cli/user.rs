//! `ftp-server user add|remove|list|passwd|unlock`: the users file, and
//! the locks the server keeps beside it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ftp_shared::scram::{self, StoredCredentials};

use crate::lockout::file::{self as locks, SavedLock};
use crate::users::UsersFile;

#[derive(Debug, Args)]
pub(super) struct UsersArg {
    /// The users file.
    #[arg(long = "users", value_name = "FILE", default_value = "./users.toml")]
    path: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct PasswordArgs {
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// PBKDF2 iterations of the new verifier.
    #[arg(long, default_value_t = scram::DEFAULT_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(scram::MIN_ITERATIONS as i64..=scram::MAX_ITERATIONS as i64))]
    iterations: u32,
}

#[derive(Debug, Subcommand)]
pub(super) enum UserAction {
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
    /// List the users, with the logins locked after repeated failures.
    List {
        #[command(flatten)]
        users: UsersArg,
    },
    /// Lift a user's login locks and brake now, instead of when they expire
    /// (a running server applies it at the user's next login).
    Unlock {
        name: String,
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

pub(super) fn user(action: UserAction) -> anyhow::Result<()> {
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
        UserAction::List { users } => list(&users.path)?,
        UserAction::Unlock { name, users } => {
            let mut file = UsersFile::load(&users.path)?;
            let now = SystemTime::now();
            let lifted = in_force(&users.path, &file, now)?
                .into_iter()
                .filter(|l| l.user.as_deref() == Some(name.as_str()))
                .map(|l| describe(&l, now))
                .collect::<Vec<_>>();
            if !file.unlock(&name, now) {
                bail!("no user {name:?}");
            }
            file.save(&users.path)?;
            if lifted.is_empty() {
                eprintln!("{name} was not locked (any login brake on the name is lifted)");
            } else {
                eprintln!("unlocked {name}: {}", lifted.join("; "));
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

/// The users, a line each; a locked user's line says from where, for how
/// long and after how many failures; then the addresses locked for names
/// not in the users file.
fn list(path: &Path) -> anyhow::Result<()> {
    let file = UsersFile::load(path)?;
    let now = SystemTime::now();
    let locked = in_force(path, &file, now)?;
    for name in file.names() {
        let mine: Vec<String> = locked
            .iter()
            .filter(|l| l.user.as_deref() == Some(name))
            .map(|l| describe(l, now))
            .collect();
        if mine.is_empty() {
            println!("{name}");
        } else {
            println!("{name}  (locked: {})", mine.join("; "));
        }
    }
    for l in locked.iter().filter(|l| l.user.is_none()) {
        println!(
            "address {} locked for names not in the users file: {}",
            l.address,
            describe(l, now)
        );
    }
    Ok(())
}

/// The locks saved beside the users file that hold now.
fn in_force(path: &Path, file: &UsersFile, now: SystemTime) -> anyhow::Result<Vec<SavedLock>> {
    let unlocks = file.unlocks();
    // A damaged lock file hides no user: say so and go on without it.
    let all = locks::load(&locks::path_beside(path)).unwrap_or_else(|e| {
        eprintln!("warning: {e:#}");
        Vec::new()
    });
    Ok(all
        .into_iter()
        .filter(|l| l.in_force(now, l.user.as_ref().and_then(|u| unlocks.get(u).copied())))
        .collect())
}

fn describe(lock: &SavedLock, now: SystemTime) -> String {
    format!(
        "from {} for {} more, after {} failures",
        lock.address,
        span(lock.remaining(now)),
        lock.failures
    )
}

/// `d` as "14m 2s", "45s", "2h 5m".
fn span(d: Duration) -> String {
    let s = d.as_secs().max(1);
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
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

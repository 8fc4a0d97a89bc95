//! `ftp-server user add|remove|list|passwd`: the users file.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ftp_shared::scram::{self, StoredCredentials};

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

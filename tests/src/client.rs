//! The client under test: [`ClientEnv`] (the `ftp-client` binary in a private
//! environment) and the library client ([`login`], [`no_progress`]).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use ftp_client::{Client, Secret};

use crate::bins::{Output, client_bin, run_cmd};
use crate::files::temp_dir;
use crate::server::TestServer;

/// A private environment for `ftp-client`: its own config directory
/// (`XDG_CONFIG_HOME`), `HOME` and working directory, no `FTP_PASSWORD`.
/// Servers seen for the first time are trusted and pinned
/// (`FTP_ACCEPT_NEW_HOST`), as a script would ask, unless the environment
/// is [`ClientEnv::strict`].
#[derive(Debug)]
pub struct ClientEnv {
    tmp: tempfile::TempDir,
    accept_new_hosts: bool,
}

impl Default for ClientEnv {
    fn default() -> Self {
        ClientEnv::new()
    }
}

impl ClientEnv {
    pub fn new() -> ClientEnv {
        let tmp = temp_dir("ftp-client-test-");
        for d in ["config", "home", "work"] {
            std::fs::create_dir(tmp.path().join(d)).expect("mkdir");
        }
        ClientEnv {
            tmp,
            accept_new_hosts: true,
        }
    }

    /// An environment that trusts no new host unless a command says so.
    pub fn strict() -> ClientEnv {
        ClientEnv {
            accept_new_hosts: false,
            ..ClientEnv::new()
        }
    }

    /// Where the client pins certificates.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.tmp
            .path()
            .join("config")
            .join("ftp-client")
            .join("known_hosts")
    }

    /// The working directory of the commands, for local files.
    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// Where `ftp-client login` saves its keys.
    pub fn credentials_path(&self) -> PathBuf {
        self.tmp
            .path()
            .join("config")
            .join("ftp-client")
            .join("credentials.toml")
    }

    /// `ftp-client ARGS...` in this environment.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(client_bin());
        cmd.args(args)
            .current_dir(self.work())
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("HOME", self.tmp.path().join("home"))
            .env_remove("FTP_PASSWORD")
            .env_remove("FTP_ACCEPT_NEW_HOST")
            .env_remove("RUST_LOG");
        if self.accept_new_hosts {
            cmd.env("FTP_ACCEPT_NEW_HOST", "1");
        }
        cmd
    }

    /// Runs `ftp-client ARGS...` with no standard input.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_cmd(self.cmd(args), None)
    }

    /// Runs `ftp-client ARGS...` with `stdin` as standard input.
    pub fn run_stdin<I, S>(&self, args: I, stdin: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_cmd(self.cmd(args), Some(stdin))
    }

    /// Runs `ftp-client login TARGET --password-stdin` with `password` (and a
    /// newline) on standard input, whatever its outcome.
    pub fn try_login(&self, target: &str, password: &str) -> Output {
        self.run_stdin(
            ["login", target, "--password-stdin"],
            &format!("{password}\n"),
        )
    }

    /// `ftp-client login TARGET --password-stdin`, which must succeed.
    pub fn login(&self, target: &str, password: &str) {
        self.try_login(target, password).assert_success();
    }
}

/// A library client logged in as `user`.
pub async fn login(server: &TestServer, user: &str, password: &str) -> Client {
    let mut client = Client::connect(&server.addr().to_string(), &server.transport())
        .await
        .expect("connect to the server");
    client
        .login(user, Secret::Password(password))
        .await
        .unwrap_or_else(|e| panic!("login as {user}: {e}"));
    client
}

/// A progress callback that ignores progress.
pub fn no_progress() -> impl FnMut(u64, u64) + Send {
    |_, _| {}
}

/// A server and a client logged in to it as alice.
pub fn alice() -> (TestServer, ClientEnv) {
    let server = TestServer::start();
    let client = ClientEnv::new();
    client.login(&server.target("alice"), crate::ALICE_PASSWORD);
    (server, client)
}

/// Awaits `fut`, failing the test after [`crate::DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(crate::DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {:?}", crate::DEADLINE))
}

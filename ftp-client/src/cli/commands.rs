//! The remote commands, shared by the one-shot command line, the
//! interactive shell and batch files: `ls`, `stat`, `put`, `get`, `mkdir`,
//! `rm`, `rmdir`, `mv`.
//!
//! A command runs against a [`Remote`]: a logged-in connection, the keys to
//! log in again if the connection is lost, and the remote working directory
//! that relative paths start from.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ftp_shared::ErrorCode;
use ftp_shared::message::{Entry, EntryKind};
use ftp_shared::text::escape;
use serde_json::json;

pub use super::args::{GetArgs, PutArgs, RemoteCmd};
use super::glob::{self, has_wildcard};
use super::meter::{Leg, Meter};
use super::output::{Output, entry_json, full_time, kind_name, mode_string, out, print_entries};
use crate::remote_path::{self, display, file_name, join};
use crate::transfer::Outcome;
use crate::transfer::get_tree::{make_local_dirs, unsafe_local_name};
use crate::{Client, ClientError, GetItem, PutItem, SavedKeys, Secret, Target, Transport};

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Already reported to the user; the exit status it calls for.
    Printed(u8),
    /// Not reported yet: a failure of the command as a whole.
    Error(ClientError),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Error(e)
    }
}

impl Failure {
    /// The exit status (after reporting it, if that is still to do).
    pub fn report(self, output: &Output, op: &str) -> u8 {
        match self {
            Failure::Printed(code) => code,
            Failure::Error(e) => {
                output.failure(op, None, &e);
                e.exit_code()
            }
        }
    }
}

/// Whether an error means the connection is gone.
fn connection_lost(e: &ClientError) -> bool {
    e.exit_code() == 3
}

/// How long ending a session waits for the server's answer.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// A session with a server as the commands see it.
#[derive(Debug)]
pub struct Remote {
    client: Option<Client>,
    pub target: Target,
    keys: SavedKeys,
    transport: Transport,
    /// The remote working directory, home-relative (`""`: the home).
    pub cwd: String,
    last_used: Instant,
}

impl Remote {
    /// A logged-in client and the keys it logged in with.
    pub fn new(client: Client, target: Target, keys: SavedKeys, transport: Transport) -> Remote {
        Remote {
            client: Some(client),
            target,
            keys,
            transport,
            cwd: String::new(),
            last_used: Instant::now(),
        }
    }

    /// The connection, opened again with the same keys if it was lost.
    pub async fn client(&mut self) -> Result<&mut Client, ClientError> {
        if let Some(client) = self.client.as_mut()
            && client.closed_by_server().await
        {
            self.client = None;
        }
        if self.client.is_none() {
            let (client, _) = crate::retry::connect_login(
                &self.target.addr(),
                &self.transport,
                &self.target.user,
                Secret::Keys(&self.keys),
            )
            .await?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    /// Forgets the connection (after it failed or was interrupted): the
    /// next command connects again.
    pub fn disconnect(&mut self) {
        self.client = None;
    }

    /// A remote path as typed, resolved against the working directory.
    pub fn resolve(&self, path: &str) -> Result<String, ClientError> {
        remote_path::resolve(&self.cwd, path)
    }

    /// Ends the session politely; a server that does not answer within
    /// [`QUIT_TIMEOUT`] is left without the goodbye.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        match self.client.take() {
            Some(client) => tokio::time::timeout(QUIT_TIMEOUT, client.quit())
                .await
                .unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Runs a command. A session that sat idle may have been closed by the
    /// server meanwhile (a close that raced the command past the check in
    /// [`Remote::client`]): then the command runs once more on a new
    /// connection. Only a command that lost the connection before it did
    /// anything is run again; one that lost it midway reports what it did
    /// (a `Failure::Printed`).
    pub async fn run(&mut self, cmd: &RemoteCmd, output: &Output) -> Result<(), Failure> {
        let idle = self.last_used.elapsed() > Duration::from_secs(1);
        let mut result = self.attempt(cmd, output).await;
        if idle && matches!(&result, Err(Failure::Error(e)) if connection_lost(e)) {
            self.disconnect();
            result = self.attempt(cmd, output).await;
        }
        if matches!(&result, Err(Failure::Error(e)) if connection_lost(e))
            || matches!(result, Err(Failure::Printed(3)))
        {
            self.disconnect();
        }
        self.last_used = Instant::now();
        result
    }

    async fn attempt(&mut self, cmd: &RemoteCmd, output: &Output) -> Result<(), Failure> {
        match cmd {
            RemoteCmd::Ls { long, all, paths } => {
                let op = Op::Ls {
                    long: *long,
                    all: *all,
                    headers: paths.len() > 1,
                };
                let default = [String::new()];
                let paths = if paths.is_empty() {
                    &default[..]
                } else {
                    paths
                };
                self.each_path(op, paths, output).await
            }
            RemoteCmd::Stat { paths } => self.each_path(Op::Stat, paths, output).await,
            RemoteCmd::Mkdir { parents, paths } => {
                self.each_path(Op::Mkdir { parents: *parents }, paths, output)
                    .await
            }
            RemoteCmd::Rm { paths } => self.each_path(Op::Rm, paths, output).await,
            RemoteCmd::Rmdir { paths } => self.each_path(Op::Rmdir, paths, output).await,
            RemoteCmd::Mv { from, to } => self.mv(from, to, output).await,
            RemoteCmd::Put(args) => self.put(args, output).await,
            RemoteCmd::Get(args) => self.get(args, output).await,
        }
    }

    /// Runs `op` on each path; a refusal is reported and the next path
    /// tried; a lost connection ends the command.
    async fn each_path(
        &mut self,
        op: Op,
        paths: &[String],
        output: &Output,
    ) -> Result<(), Failure> {
        let mut code = 0;
        // Whether the command got anywhere: a reply came (the connection
        // was alive) or something was shown. A lost connection is then
        // reported, not run again.
        let mut progressed = false;
        let lost = |e: ClientError, progressed: bool| {
            if progressed {
                output.failure(op.name(), None, &e);
                Failure::Printed(e.exit_code())
            } else {
                Failure::Error(e)
            }
        };
        // Wildcards name several paths; `ls` lists what they match itself.
        let expands = matches!(op, Op::Rm | Op::Rmdir | Op::Stat);
        for (i, typed) in paths.iter().enumerate() {
            let targets = if expands {
                self.expand(typed).await
            } else {
                self.resolve(typed).map(|path| vec![path])
            };
            let targets = match targets {
                Ok(targets) => targets,
                Err(e) if connection_lost(&e) => return Err(lost(e, progressed)),
                Err(e) => {
                    output.failure(op.name(), Some(typed), &e);
                    code = code.max(e.exit_code());
                    progressed = true;
                    continue;
                }
            };
            // A wildcard was expanded from the server's listing.
            progressed |= expands && has_wildcard(typed);
            for path in targets {
                match self.one(&op, &path, typed.ends_with('/')).await {
                    Ok(done) => op.show(typed, &path, done, i, output),
                    Err(e) if connection_lost(&e) => return Err(lost(e, progressed)),
                    Err(e) => {
                        output.failure(op.name(), Some(typed), &e);
                        code = code.max(e.exit_code());
                    }
                }
                progressed = true;
            }
        }
        match code {
            0 => Ok(()),
            code => Err(Failure::Printed(code)),
        }
    }

    /// `op` on one resolved path; `dirs_only` when it was typed with a
    /// trailing '/' (a wildcard then matches directories only).
    async fn one(&mut self, op: &Op, path: &str, dirs_only: bool) -> Result<Done, ClientError> {
        let client = self.client().await?;
        Ok(match op {
            Op::Ls { .. } => {
                let (dir, pattern) = (parent(path), file_name(path));
                if !has_wildcard(pattern) {
                    return Ok(Done::Entries(client.list(path).await?));
                }
                let mut entries = client.list(dir).await?;
                if dirs_only {
                    entries.retain(|e| e.kind == EntryKind::Directory);
                }
                match glob::matches(pattern, entries.iter().map(|e| e.name.as_str())) {
                    None => Done::Entries(client.list(path).await?),
                    Some(names) if names.is_empty() => {
                        return Err(ClientError::NoMatch {
                            pattern: path.to_string(),
                        });
                    }
                    Some(names) => Done::Entries(
                        entries
                            .into_iter()
                            .filter(|e| names.binary_search(&e.name).is_ok())
                            .collect(),
                    ),
                }
            }
            Op::Stat => Done::Entry(client.stat(path).await?),
            Op::Mkdir { parents } => {
                client.mkdir(path, *parents).await?;
                Done::Nothing
            }
            Op::Rm => {
                client.remove(path).await?;
                Done::Nothing
            }
            Op::Rmdir => {
                client.rmdir(path).await?;
                Done::Nothing
            }
        })
    }

    /// A remote path as typed, resolved, with a wildcard in its last
    /// component expanded against the listing of its directory (see
    /// [`glob`]).
    async fn expand(&mut self, typed: &str) -> Result<Vec<String>, ClientError> {
        let path = self.resolve(typed)?;
        let pattern = file_name(&path);
        if !has_wildcard(pattern) {
            return Ok(vec![path]);
        }
        let dir = parent(&path);
        let mut entries = self.client().await?.list(dir).await?;
        // As in a shell, `*/` matches directories only.
        if typed.ends_with('/') {
            entries.retain(|e| e.kind == EntryKind::Directory);
        }
        match glob::matches(pattern, entries.iter().map(|e| e.name.as_str())) {
            None => Ok(vec![path]),
            Some(names) if names.is_empty() => Err(ClientError::NoMatch {
                pattern: typed.to_string(),
            }),
            Some(names) => Ok(names.iter().map(|n| join(dir, n)).collect()),
        }
    }

    /// Whether a remote path is a directory (`false` when it does not exist).
    async fn is_remote_dir(&mut self, path: &str) -> Result<bool, ClientError> {
        match self.client().await?.stat(path).await {
            Ok(entry) => Ok(entry.kind == EntryKind::Directory),
            Err(e) if e.remote_code() == Some(ErrorCode::NOT_FOUND) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn mv(&mut self, from: &str, to: &str, output: &Output) -> Result<(), Failure> {
        let report = |e: ClientError| {
            output.failure("mv", Some(from), &e);
            Failure::Printed(e.exit_code())
        };
        let planned = async {
            let source = self.resolve(from)?;
            let mut dest = self.resolve(to)?;
            if source.is_empty() {
                return Err(ClientError::Remote {
                    code: ErrorCode::INVALID_PATH,
                    message: "the home directory cannot be moved".into(),
                });
            }
            if to.ends_with('/') || dest.is_empty() || self.is_remote_dir(&dest).await? {
                dest = join(&dest, file_name(&source));
            }
            Ok((source, dest))
        };
        let (source, dest) = match planned.await {
            Ok(planned) => planned,
            // Nothing was changed yet: the command may run again.
            Err(e) if connection_lost(&e) => return Err(e.into()),
            Err(e) => return Err(report(e)),
        };
        let renamed = async { self.client().await?.rename(&source, &dest).await };
        renamed.await.map_err(report)?;
        if output.json {
            output.record(json!({
                "op": "mv", "from": display(&source), "to": display(&dest), "ok": true,
            }));
        }
        Ok(())
    }

    async fn put(&mut self, args: &PutArgs, output: &Output) -> Result<(), Failure> {
        let (typed_sources, target) = split_target(&args.args);
        let mut code = 0;
        let mut sources = Vec::new();
        for typed in typed_sources {
            match glob::expand_local(typed) {
                Ok(found) => sources.extend(found),
                Err(e) => {
                    output.failure("put", Some(typed), &e);
                    code = code.max(e.exit_code());
                }
            }
        }
        // Where the files go: into a directory, or (one source) to a name.
        let (dest, into_dir) = match target {
            None => (self.cwd.clone(), true),
            Some(typed) => {
                let dest = self.resolve(typed)?;
                let into =
                    typed.ends_with('/') || dest.is_empty() || self.is_remote_dir(&dest).await?;
                if sources.len() > 1 && !into {
                    return Err(usage_failure(
                        output,
                        "put",
                        &format!(
                            "{}: with several files, the last argument must be an existing remote directory",
                            escape(typed)
                        ),
                    ));
                }
                (dest, into)
            }
        };
        let mut dirs = Vec::new();
        let mut items = Vec::new();
        for source in &sources {
            let local = PathBuf::from(source);
            if local.is_dir() {
                if !args.recursive {
                    let e = local_error(&local, "is a directory (use put -r)");
                    output.failure("put", Some(source), &e);
                    code = code.max(1);
                    continue;
                }
                let remote = if into_dir {
                    format!("{dest}/")
                } else {
                    dest.clone()
                };
                let tree = match self
                    .client()
                    .await?
                    .plan_put_tree(&local, Some(&remote))
                    .await
                {
                    Ok(tree) => tree,
                    Err(e) if connection_lost(&e) => return Err(e.into()),
                    Err(e) => {
                        output.failure("put", Some(source), &e);
                        code = code.max(e.exit_code());
                        continue;
                    }
                };
                for (path, why) in &tree.skipped {
                    eprintln!(
                        "warning: skipped {}: {why}",
                        escape(&path.to_string_lossy())
                    );
                }
                for (path, why) in &tree.failed {
                    output.left_out("put", "local", &path.to_string_lossy(), why);
                    code = code.max(1);
                }
                dirs.extend(tree.dirs);
                items.extend(tree.files);
                continue;
            }
            let remote = if into_dir {
                match local.file_name().and_then(|n| n.to_str()) {
                    Some(name) => join(&dest, name),
                    None => {
                        let e = local_error(&local, "cannot tell the file's name");
                        output.failure("put", Some(source), &e);
                        code = code.max(1);
                        continue;
                    }
                }
            } else {
                dest.clone()
            };
            items.push(PutItem { local, remote });
        }
        let client = self.client().await?;
        if let Err(e) = client.make_dirs(&dirs).await {
            // Nothing is transferred into a tree whose directories failed.
            output.failure("put", None, &e);
            return Err(Failure::Printed(e.exit_code()));
        }
        let total = items
            .iter()
            .map(|i| std::fs::metadata(&i.local).map(|m| m.len()).unwrap_or(0))
            .sum();
        let legs = items
            .iter()
            .map(|i| Leg::new(&i.local, &i.remote))
            .collect();
        let meter = Meter::start(*output, "put", legs, Some(total));
        let outcome = client.put_many(&items, true, &mut meter.progress()).await;
        finish(meter, outcome, code)
    }

    async fn get(&mut self, args: &GetArgs, output: &Output) -> Result<(), Failure> {
        let (typed_sources, target) = split_target(&args.args);
        let target = target.map(PathBuf::from);
        let mut code = 0;
        let mut sources = Vec::new();
        for typed in typed_sources {
            match self.expand(typed).await {
                Ok(found) => sources.extend(found.into_iter().map(|remote| (typed, remote))),
                Err(e) if connection_lost(&e) => return Err(e.into()),
                Err(e) => {
                    output.failure("get", Some(typed), &e);
                    code = code.max(e.exit_code());
                }
            }
        }
        let target_is_dir = target.as_deref().is_none_or(Path::is_dir);
        if sources.len() > 1 && !target_is_dir {
            return Err(usage_failure(
                output,
                "get",
                "with several files, the last argument must be an existing local directory",
            ));
        }
        // `DIR/` names a directory: one that is not there is not created
        // (as with cp), unless a whole tree is copied into it.
        if let Some(t) = &target
            && !target_is_dir
            && !args.recursive
            && t.as_os_str().as_encoded_bytes().ends_with(b"/")
        {
            let why = if t.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            let e = local_error(t, why);
            output.failure("get", None, &e);
            return Err(Failure::Printed(1));
        }
        let mut items = Vec::new();
        for (source, remote) in sources {
            if args.recursive && (remote.is_empty() || self.is_remote_dir(&remote).await?) {
                let planned = self
                    .client()
                    .await?
                    .plan_get_tree(&remote, target.as_deref())
                    .await
                    .and_then(|tree| make_local_dirs(&tree.dirs).map(|()| tree));
                match planned {
                    Ok(tree) => {
                        for (path, why) in &tree.skipped {
                            eprintln!("warning: skipped {}: {why}", escape(&display(path)));
                        }
                        for (path, why) in &tree.failed {
                            output.left_out("get", "remote", &display(path), why);
                            code = code.max(1);
                        }
                        items.extend(tree.files);
                    }
                    Err(e) if connection_lost(&e) => return Err(e.into()),
                    Err(e) => {
                        output.failure("get", Some(source), &e);
                        code = code.max(e.exit_code());
                    }
                }
                continue;
            }
            let name = file_name(&remote);
            let local = match &target {
                Some(t) if !target_is_dir => t.clone(),
                _ if name.is_empty() => {
                    let e = ClientError::Remote {
                        code: ErrorCode::IS_A_DIRECTORY,
                        message: format!("is a directory (use get -r): {}", escape(source)),
                    };
                    output.failure("get", Some(source), &e);
                    code = code.max(1);
                    continue;
                }
                // The name comes from the server when a wildcard matched it.
                _ if unsafe_local_name(name) => {
                    output.left_out(
                        "get",
                        "remote",
                        &display(&remote),
                        "the name cannot be a local file name",
                    );
                    code = code.max(1);
                    continue;
                }
                Some(dir) => dir.join(name),
                None => PathBuf::from(name),
            };
            items.push(GetItem { remote, local });
        }
        let client = self.client().await?;
        client.set_durable_downloads(!args.no_fsync);
        let legs = items
            .iter()
            .map(|i| Leg::new(&i.local, &i.remote))
            .collect();
        let meter = Meter::start(*output, "get", legs, None);
        let outcome = client
            .get_many(&items, args.resume, &mut meter.progress())
            .await;
        finish(meter, outcome, code)
    }
}

/// The per-file results of a transfer, reported.
fn finish(meter: Meter, outcome: Outcome, code: u8) -> Result<(), Failure> {
    match code.max(meter.finish(outcome)) {
        0 => Ok(()),
        code => Err(Failure::Printed(code)),
    }
}

/// The directory part of a home-relative path (`""` for the home).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// `A... [B]`: the sources and the target, if there are two or more arguments.
fn split_target(args: &[String]) -> (&[String], Option<&str>) {
    match args {
        [one] => (std::slice::from_ref(one), None),
        [sources @ .., last] => (sources, Some(last.as_str())),
        [] => (&[], None),
    }
}

fn local_error(path: &Path, message: &str) -> ClientError {
    ClientError::LocalFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A usage mistake found after parsing: reported, exit status 2.
fn usage_failure(output: &Output, op: &str, message: &str) -> Failure {
    eprintln!("error: {op}: {message}");
    if output.json {
        output.record(json!({"op": op, "ok": false, "error": message}));
    }
    Failure::Printed(2)
}

/// A command applied to each of its paths.
enum Op {
    Ls {
        long: bool,
        all: bool,
        headers: bool,
    },
    Stat,
    Mkdir {
        parents: bool,
    },
    Rm,
    Rmdir,
}

/// What one path's request returned.
enum Done {
    Nothing,
    Entry(Entry),
    Entries(Vec<Entry>),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Ls { .. } => "ls",
            Op::Stat => "stat",
            Op::Mkdir { .. } => "mkdir",
            Op::Rm => "rm",
            Op::Rmdir => "rmdir",
        }
    }

    /// Shows the result for one path (`typed` as given, `path` resolved).
    fn show(&self, typed: &str, path: &str, done: Done, index: usize, output: &Output) {
        match (self, done) {
            (Op::Ls { long, all, headers }, Done::Entries(entries)) => {
                // Names starting with '.' are hidden, unless asked for or named.
                let named_hidden = file_name(path).starts_with('.');
                let shown: Vec<&Entry> = entries
                    .iter()
                    .filter(|e| *all || named_hidden || !e.name.starts_with('.'))
                    .collect();
                if output.json {
                    let entries: Vec<_> = shown.iter().map(|e| entry_json(e)).collect();
                    output.record(json!({"op": "ls", "path": display(path), "entries": entries}));
                    return;
                }
                if *headers {
                    if index > 0 {
                        out!();
                    }
                    out!("{}:", escape(typed));
                }
                print_entries(&shown, *long);
            }
            (Op::Stat, Done::Entry(entry)) => {
                if output.json {
                    let mut record = entry_json(&entry);
                    record["op"] = json!("stat");
                    record["path"] = json!(display(path));
                    output.record(record);
                    return;
                }
                out!("  Path: {}", escape(&display(path)));
                out!("  Type: {}", kind_name(entry.kind));
                out!("  Size: {}", entry.size);
                out!(
                    "  Mode: {:04o} ({})",
                    entry.mode & 0o7777,
                    mode_string(entry.kind, entry.mode)
                );
                out!("  Modified: {}", full_time(entry.modified));
            }
            (op, _) => {
                if output.json {
                    output.record(json!({"op": op.name(), "path": display(path), "ok": true}));
                }
            }
        }
    }
}

//! The interactive shell (`ftp-client shell`, or `ftp-client USER@HOST`)
//! and batch files (`ftp-client -b FILE`).
//!
//! The shell reads one command a line, like `sftp`: the remote commands of
//! [`RemoteCmd`] plus `cd`, `pwd`, `lcd`, `lls`, `lpwd`, `lmkdir`, `help`
//! and `exit`. Lines are split like a POSIX shell splits them (quotes and
//! backslashes), then parsed by clap, so every command has the same options
//! and `--help` as on the command line. On a terminal there is line
//! editing, history (kept in the user's state directory) and tab completion
//! of command names and of remote and local paths; Ctrl-C stops the running
//! command and keeps the shell. A batch file runs the same commands and
//! stops at the first failure with its exit status, unless the line starts
//! with `-`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use clap::{CommandFactory, Parser, Subcommand};
use ftp_shared::message::{Entry, EntryKind};
use ftp_shared::text::{escape, is_unsafe_char};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Context, Editor, Helper, Highlighter, Hinter, Validator};
use tokio::runtime::Runtime;

use super::commands::{Failure, Remote, RemoteCmd};
use super::output::{Output, out, print_entries};
use super::{Global, INTERRUPTED, report, session};
use crate::ClientError;
use crate::remote_path::display;

const PROMPT: &str = "ftp> ";

/// How long Tab waits for a remote listing.
const COMPLETION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// One line of the shell.
#[derive(Debug, Parser)]
#[command(multicall = true, disable_help_subcommand = true)]
struct Line {
    #[command(subcommand)]
    command: ShellCmd,
}

#[derive(Debug, Subcommand)]
enum ShellCmd {
    #[command(flatten)]
    Remote(RemoteCmd),
    /// Change the remote working directory (the home by default).
    Cd { path: Option<String> },
    /// Print the remote working directory.
    Pwd,
    /// Change the local working directory (your home directory by default).
    Lcd { path: Option<PathBuf> },
    /// List local directories.
    Lls {
        #[arg(short)]
        long: bool,
        #[arg(short)]
        all: bool,
        paths: Vec<PathBuf>,
    },
    /// Print the local working directory.
    Lpwd,
    /// Create a local directory.
    Lmkdir {
        #[arg(short, long)]
        parents: bool,
        path: PathBuf,
    },
    /// List the commands, or show the help of one.
    #[command(visible_alias = "?")]
    Help { command: Option<String> },
    /// Leave the shell (Ctrl-D does too).
    #[command(visible_aliases = ["quit", "bye"])]
    Exit,
}

/// What to do after a line.
enum Flow {
    /// Go on; the exit status of the line.
    Next(u8),
    Exit,
}

/// Runs the shell: interactive on a terminal, else the lines of `batch`
/// (a file, or standard input for `-` or when it is not a terminal).
pub(super) fn run(
    runtime: &Runtime,
    global: &Global,
    target: Option<crate::Target>,
    batch: Option<PathBuf>,
    output: Output,
) -> u8 {
    let batch = match batch {
        None if std::io::stdin().is_terminal() => None,
        None => Some(PathBuf::from("-")),
        some => some,
    };
    if batch.as_deref() == Some(Path::new("-")) && global.password_stdin {
        eprintln!(
            "error: --password-stdin cannot be used with commands on standard input: use FTP_PASSWORD or `ftp-client login`"
        );
        return 2;
    }
    let input: Box<dyn BufRead + Send> = match batch.as_deref() {
        None => return interactive(runtime, global, target, output),
        Some(path) if path == Path::new("-") => Box::new(std::io::BufReader::new(std::io::stdin())),
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Box::new(std::io::BufReader::new(file)),
            Err(e) => {
                eprintln!("error: {}", ClientError::local(path, e));
                return 1;
            }
        },
    };
    let mut remote = match runtime.block_on(session(global, target)) {
        Ok(remote) => remote,
        Err(e) => return report(Err(e)),
    };
    // Lines are read on a thread of their own, so that Ctrl-C is noticed
    // while the batch waits for its next line, as while a command runs.
    let (tx, mut lines) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in input.lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut status = 0;
    let mut number = 0;
    loop {
        let next = until_interrupted(runtime, lines.recv());
        let line = match next {
            None => {
                eprintln!("\ninterrupted");
                status = INTERRUPTED;
                break;
            }
            Some(None) => break,
            Some(Some(Ok(line))) => line,
            Some(Some(Err(e))) => {
                eprintln!("error: cannot read the batch: {e}");
                status = 1;
                break;
            }
        };
        number += 1;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (may_fail, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        match exec_line(runtime, &mut remote, text, &output) {
            Flow::Exit => break,
            Flow::Next(0) => {}
            // Ctrl-C ends the batch, whatever the line allowed.
            Flow::Next(code) if may_fail && code != INTERRUPTED => {}
            Flow::Next(code) => {
                eprintln!("batch stopped at line {number}: {}", escape(text));
                status = code;
                break;
            }
        }
    }
    let _ = runtime.block_on(remote.quit());
    status
}

fn interactive(
    runtime: &Runtime,
    global: &Global,
    target: Option<crate::Target>,
    output: Output,
) -> u8 {
    let remote = match runtime.block_on(session(global, target)) {
        Ok(remote) => remote,
        Err(e) => return report(Err(e)),
    };
    if !output.quiet {
        eprintln!(
            "Connected to {}. Type `help` for the commands.",
            remote.target
        );
    }
    let remote = Rc::new(RefCell::new(remote));
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .max_history_size(1000)
        .and_then(|b| b.history_ignore_dups(true))
        .map(|b| b.build());
    let editor = config.and_then(Editor::<ShellHelper, DefaultHistory>::with_config);
    let mut editor = match editor {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("error: cannot read the terminal: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(ShellHelper {
        remote: Rc::clone(&remote),
        runtime,
        listings: RefCell::new(HashMap::new()),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                let flow = exec_line(runtime, &mut remote.borrow_mut(), &line, &output);
                if let Some(helper) = editor.helper() {
                    helper.listings.borrow_mut().clear();
                }
                if let Flow::Exit = flow {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: cannot read the terminal: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    drop(editor);
    let remote = Rc::try_unwrap(remote).map(RefCell::into_inner);
    if let Ok(remote) = remote {
        let _ = runtime.block_on(remote.quit());
    }
    0
}

/// `$XDG_STATE_HOME/ftp-client/history` (or the platform's equivalent).
fn history_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("ftp-client").join("history"))
}

/// Runs one line. Ctrl-C stops a remote command or `cd` (its connection
/// is dropped; the next command opens a new one).
fn exec_line(runtime: &Runtime, remote: &mut Remote, line: &str, output: &Output) -> Flow {
    let Some(words) = shlex::split(line) else {
        eprintln!("error: unbalanced quotes");
        return Flow::Next(2);
    };
    if words.is_empty() {
        return Flow::Next(0);
    }
    let parsed = match Line::try_parse_from(&words) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return Flow::Next(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result: Result<(), Failure> = match parsed.command {
        ShellCmd::Remote(cmd) => until_interrupted(runtime, remote.run(&cmd, output))
            .unwrap_or_else(|| interrupted(remote)),
        ShellCmd::Cd { path } => {
            let typed = path.as_deref().unwrap_or("/");
            until_interrupted(runtime, cd(remote, typed)).unwrap_or_else(|| interrupted(remote))
        }
        ShellCmd::Pwd => {
            out!("{}", escape(&display(&remote.cwd)));
            Ok(())
        }
        ShellCmd::Lcd { path } => {
            let path = path
                .or_else(dirs::home_dir)
                .unwrap_or_else(|| PathBuf::from("/"));
            std::env::set_current_dir(&path).map_err(|e| local(&path, e))
        }
        ShellCmd::Lls { long, all, paths } => lls(&paths, long, all),
        ShellCmd::Lpwd => match std::env::current_dir() {
            Ok(dir) => {
                out!("{}", dir.display());
                Ok(())
            }
            Err(e) => Err(local(Path::new("."), e)),
        },
        ShellCmd::Lmkdir { parents, path } => {
            let made = if parents {
                std::fs::create_dir_all(&path)
            } else {
                std::fs::create_dir(&path)
            };
            made.map_err(|e| local(&path, e))
        }
        ShellCmd::Help { command } => {
            help(command.as_deref());
            Ok(())
        }
        ShellCmd::Exit => return Flow::Exit,
    };
    match result {
        Ok(()) => Flow::Next(0),
        Err(failure) => Flow::Next(failure.report(output, &words[0])),
    }
}

/// Runs `work` to its end, or until Ctrl-C (`None`).
fn until_interrupted<T>(runtime: &Runtime, work: impl Future<Output = T>) -> Option<T> {
    runtime.block_on(async {
        tokio::select! {
            result = work => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    })
}

/// After Ctrl-C stopped a command midway: its connection is in an unknown
/// state, so the next command opens a new one.
fn interrupted(remote: &mut Remote) -> Result<(), Failure> {
    remote.disconnect();
    eprintln!("\ninterrupted");
    Err(Failure::Printed(INTERRUPTED))
}

fn local(path: &Path, source: std::io::Error) -> Failure {
    Failure::Error(ClientError::Local {
        path: path.to_path_buf(),
        source,
    })
}

async fn cd(remote: &mut Remote, typed: &str) -> Result<(), Failure> {
    let path = remote.resolve(typed)?;
    let entry = remote.client().await?.stat(&path).await?;
    if entry.kind != EntryKind::Directory {
        return Err(Failure::Error(ClientError::Remote {
            code: ftp_shared::ErrorCode::NOT_A_DIRECTORY,
            message: format!("not a directory: {}", escape(typed)),
        }));
    }
    remote.cwd = path;
    Ok(())
}

/// `lls [-l] [-a] [PATH...]`: local listings in the format of `ls`.
fn lls(paths: &[PathBuf], long: bool, all: bool) -> Result<(), Failure> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut status = Ok(());
    for (i, path) in paths.iter().enumerate() {
        let entries = match local_entries(path) {
            Ok(entries) => entries,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                status = Err(Failure::Printed(1));
                continue;
            }
        };
        if paths.len() > 1 {
            if i > 0 {
                out!();
            }
            out!("{}:", path.display());
        }
        let shown: Vec<&Entry> = entries
            .iter()
            .filter(|e| all || !e.name.starts_with('.'))
            .collect();
        print_entries(&shown, long);
    }
    let _ = std::io::stdout().flush();
    status
}

/// The entries of a local directory (or the one entry of a file), sorted.
fn local_entries(path: &Path) -> std::io::Result<Vec<Entry>> {
    let describe = |name: String, meta: std::fs::Metadata| {
        let kind = if meta.is_dir() {
            EntryKind::Directory
        } else if meta.is_file() {
            EntryKind::File
        } else if meta.file_type().is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        Entry {
            name,
            kind,
            size: meta.len(),
            modified: meta.mtime(),
            mode: meta.permissions().mode() & 0o7777,
        }
    };
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![describe(
            path.display().to_string(),
            std::fs::symlink_metadata(path)?,
        )]);
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push(describe(name, entry.metadata()?));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn help(command: Option<&str>) {
    let mut line = Line::command();
    match command {
        Some(name) => match line.find_subcommand_mut(name) {
            Some(sub) => {
                let _ = sub.print_long_help();
            }
            None => eprintln!(
                "error: no command {}: type `help` for the list",
                escape(name)
            ),
        },
        None => {
            out!("Commands (`help COMMAND` or `COMMAND --help` for details):");
            for sub in line.get_subcommands() {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                let first = about.lines().next().unwrap_or("");
                out!("  {:<8} {first}", sub.get_name());
            }
            out!("Paths starting with '/' start at your home; others at the working directory.");
        }
    }
}

/// Every command name and alias of the shell.
fn command_names() -> Vec<String> {
    let line = Line::command();
    let mut names: Vec<String> = line
        .get_subcommands()
        .flat_map(|sub| {
            std::iter::once(sub.get_name().to_string())
                .chain(sub.get_visible_aliases().map(str::to_string))
        })
        .collect();
    names.sort();
    names
}

/// Which side of the connection a command's argument names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Remote,
    Command,
    Nothing,
}

/// The side the `position`-th argument (options not counted) of `command` is on.
fn side_of(command: &str, position: usize) -> Side {
    match command {
        "ls" | "cd" | "stat" | "mkdir" | "rm" | "rmdir" | "mv" | "rename" => Side::Remote,
        "lcd" | "lls" | "lmkdir" => Side::Local,
        // Like sftp: the first argument of put is local, the rest remote.
        "put" if position == 0 => Side::Local,
        "put" => Side::Remote,
        "get" if position == 0 => Side::Remote,
        "get" => Side::Local,
        "help" | "?" => Side::Command,
        _ => Side::Nothing,
    }
}

/// Line editing support: completion of commands and paths.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper<'r> {
    remote: Rc<RefCell<Remote>>,
    runtime: &'r Runtime,
    /// Remote directories listed for completion since the last command.
    listings: RefCell<HashMap<String, Vec<Entry>>>,
}

impl Completer for ShellHelper<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let (start, word) = current_word(before);
        let words = shlex::split(&before[..start]).unwrap_or_default();
        let side = match words.split_first() {
            None => Side::Command,
            Some((command, args)) => {
                let position = args.iter().filter(|a| !a.starts_with('-')).count();
                side_of(command, position)
            }
        };
        if word.starts_with('-') && side != Side::Command {
            return Ok((start, Vec::new()));
        }
        let candidates = match side {
            Side::Command => command_names()
                .into_iter()
                .filter(|n| n.starts_with(&word))
                .map(|n| Pair {
                    display: n.clone(),
                    replacement: format!("{n} "),
                })
                .collect(),
            Side::Remote => self.remote_candidates(&word),
            Side::Local => local_candidates(&word),
            Side::Nothing => Vec::new(),
        };
        Ok((start, candidates))
    }
}

impl ShellHelper<'_> {
    fn remote_candidates(&self, word: &str) -> Vec<Pair> {
        let (dir_part, prefix) = split_word(word);
        let Ok(dir) = self.remote.borrow().resolve(dir_part) else {
            return Vec::new();
        };
        let mut listings = self.listings.borrow_mut();
        if !listings.contains_key(&dir) {
            let mut remote = self.remote.borrow_mut();
            // Keys typed meanwhile wait: a server that does not answer
            // soon gets no completion (and a new connection next time).
            let listed = self.runtime.block_on(async {
                let listing = async { remote.client().await?.list(&dir).await };
                tokio::time::timeout(COMPLETION_TIMEOUT, listing).await
            });
            match listed {
                Ok(Ok(entries)) => {
                    listings.insert(dir.clone(), entries);
                }
                Ok(Err(_)) => return Vec::new(),
                Err(_) => {
                    remote.disconnect();
                    return Vec::new();
                }
            }
        }
        let entries = &listings[&dir];
        candidates(
            dir_part,
            prefix,
            entries
                .iter()
                .map(|e| (e.name.as_str(), e.kind == EntryKind::Directory)),
        )
    }
}

fn local_candidates(word: &str) -> Vec<Pair> {
    let (dir_part, prefix) = split_word(word);
    let dir = if dir_part.is_empty() { "." } else { dir_part };
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<(String, bool)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let is_dir = std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
            Some((name, is_dir))
        })
        .collect();
    names.sort();
    candidates(
        dir_part,
        prefix,
        names.iter().map(|(n, d)| (n.as_str(), *d)),
    )
}

/// The names of one directory that complete `prefix`, as replacements for
/// the whole word (`dir_part` kept): a directory gets a '/', a file a space.
fn candidates<'a>(
    dir_part: &str,
    prefix: &str,
    names: impl Iterator<Item = (&'a str, bool)>,
) -> Vec<Pair> {
    names
        .filter(|(name, _)| name.starts_with(prefix))
        // Never put a name that could repaint the terminal on the line.
        .filter(|(name, _)| !name.chars().any(is_unsafe_char))
        .filter(|(name, _)| prefix.starts_with('.') || !name.starts_with('.'))
        .map(|(name, is_dir)| Pair {
            display: format!("{}{}", escape(name), if is_dir { "/" } else { "" }),
            replacement: format!(
                "{}{}",
                quote(&format!("{dir_part}{name}")),
                if is_dir { "/" } else { " " }
            ),
        })
        .collect()
}

/// `a/b/pre` → (`a/b/`, `pre`).
fn split_word(word: &str) -> (&str, &str) {
    match word.rfind('/') {
        Some(i) => word.split_at(i + 1),
        None => ("", word),
    }
}

/// Where the word under the cursor starts, and its text with quotes and
/// backslashes removed.
fn current_word(before: &str) -> (usize, String) {
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote != Some('\'') {
            escaped = true;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else if is_word_break(c) {
            start = i + c.len_utf8();
        }
    }
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in before[start..].chars() {
        if escaped {
            word.push(c);
            escaped = false;
        } else if c == '\\' && quote != Some('\'') {
            escaped = true;
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == '\'' || c == '"') {
            quote = Some(c);
        } else {
            word.push(c);
        }
    }
    (start, word)
}

/// The characters that separate words for the line splitter (`shlex`).
fn is_word_break(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// A name as a shell word: characters the line splitter treats specially
/// get a backslash.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || "'\"\\$`#|&;<>()*?[]{}!~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_under_the_cursor() {
        assert_eq!(current_word("get rep"), (4, "rep".into()));
        assert_eq!(current_word("get "), (4, String::new()));
        assert_eq!(current_word("put my\\ fi"), (4, "my fi".into()));
        assert_eq!(current_word("put 'my fi"), (4, "my fi".into()));
        assert_eq!(current_word("ls 报"), (3, "报".into()));
        // Only what the line splitter splits on separates words.
        assert_eq!(current_word("get a\u{3000}b"), (4, "a\u{3000}b".into()));
        assert_eq!(
            shlex::split("get a\u{3000}b").unwrap(),
            ["get", "a\u{3000}b"]
        );
        assert_eq!(current_word(""), (0, String::new()));
    }

    #[test]
    fn quoted_names_split_back_to_themselves() {
        for name in [
            "plain",
            "with space",
            "it's",
            "报告 2024.txt",
            "a\\b",
            "$HOME",
        ] {
            let line = format!("get {}", quote(name));
            assert_eq!(
                shlex::split(&line).unwrap(),
                vec!["get".to_string(), name.to_string()]
            );
        }
    }

    #[test]
    fn sides_follow_sftp() {
        assert!(side_of("put", 0) == Side::Local);
        assert!(side_of("put", 1) == Side::Remote);
        assert!(side_of("get", 0) == Side::Remote);
        assert!(side_of("get", 1) == Side::Local);
        assert!(side_of("cd", 0) == Side::Remote);
        assert!(side_of("lcd", 0) == Side::Local);
    }

    #[test]
    fn every_command_parses_and_names_complete() {
        let names = command_names();
        for name in [
            "ls", "cd", "pwd", "lcd", "lls", "lpwd", "put", "get", "mkdir", "rm", "rmdir", "mv",
            "stat", "help", "exit", "quit",
        ] {
            assert!(
                names.iter().any(|n| n == name),
                "{name} missing from {names:?}"
            );
        }
        Line::command().debug_assert();
    }
}

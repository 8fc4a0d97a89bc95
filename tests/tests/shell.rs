//! The interactive shell driven as a person drives it: through a
//! pseudo-terminal, keystroke by keystroke, tab completion included; and
//! batch files (`-b FILE`, `-b -`), which stop at the first failure.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rexpect::session::PtySession;
use tests::{ClientEnv, DEFAULT_USERS, ServerDir, alice};

/// `ftp-client ARGS...` on a pseudo-terminal of 100 columns.
fn spawn(client: &ClientEnv, args: &[&str]) -> PtySession {
    let mut cmd = client.cmd(args);
    cmd.env("TERM", "xterm")
        .env("COLUMNS", "100")
        .env("LINES", "40");
    let timeout = tests::DEADLINE.as_millis() as u64;
    rexpect::session::spawn_command(cmd, Some(timeout)).expect("start ftp-client on a pty")
}

/// Waits for a new prompt and returns what came before it. Line editing
/// redraws the prompt as keys are typed; only a new line starts with
/// switching bracketed paste on. Keys typed before the prompt could be
/// lost: the terminal's input is flushed when line editing starts.
fn prompt(shell: &mut PtySession) -> String {
    let before = shell
        .exp_string("\x1b[?2004h")
        .expect("a new prompt (bracketed paste switched on)");
    shell.exp_string("ftp> ").expect("the prompt");
    before
}

/// Types `keys` and Enter, and waits for the next prompt: the line has run.
fn type_line(shell: &mut PtySession, keys: &str) -> String {
    shell.send(keys).expect("type");
    shell.send("\r").expect("enter");
    shell.flush().expect("flush");
    prompt(shell)
}

/// `text` as the terminal session reads it back: one char per byte.
fn raw(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

fn plant(home: &Path) {
    fs::create_dir_all(home.join("docs/deep")).unwrap();
    fs::write(home.join("docs/notes.md"), b"notes\n").unwrap();
    fs::write(home.join("docs/news.txt"), b"news\n").unwrap();
    fs::write(home.join("报告.txt"), "季度报告\n").unwrap();
    fs::write(home.join("with space.txt"), b"spaced\n").unwrap();
}

#[test]
fn shell_commands_and_tab_completion_on_a_terminal() {
    let (server, client) = alice();
    let home = server.home("alice");
    plant(&home);
    let work = client.work();
    fs::write(work.join("local-upload.bin"), b"from the local side").unwrap();

    let mut shell = spawn(&client, &["shell"]);
    prompt(&mut shell);

    // A command name and a remote directory completed by Tab.
    type_line(&mut shell, "c\td\t");
    let out = type_line(&mut shell, "pwd");
    assert!(out.contains("/docs"), "pwd after `cd docs/`: {out:?}");

    // Two candidates: the first Tab completes what they share, the second
    // lists both; Ctrl-U clears the line.
    shell.send("get n\t\t").unwrap();
    shell.flush().unwrap();
    shell
        .exp_string("notes.md")
        .expect("the candidates are listed");
    shell.send("\x15").unwrap();
    // One candidate left after "no": completed, then downloaded.
    type_line(&mut shell, "get no\t");
    assert_eq!(fs::read(work.join("notes.md")).unwrap(), b"notes\n");

    // `..` and an absolute path; a CJK name completed from its first character.
    type_line(&mut shell, "cd ..");
    type_line(&mut shell, "get 报\t");
    assert_eq!(
        fs::read_to_string(work.join("报告.txt")).unwrap(),
        "季度报告\n"
    );
    // A name with a space is completed with a backslash and downloaded.
    type_line(&mut shell, "get wi\t");
    assert_eq!(fs::read(work.join("with space.txt")).unwrap(), b"spaced\n");

    // Local completion for put's first argument, remote for its second.
    type_line(&mut shell, "put local-\t do\t");
    assert_eq!(
        fs::read(home.join("docs/local-upload.bin")).unwrap(),
        b"from the local side"
    );

    // The CJK name lists as itself.
    let out = type_line(&mut shell, "ls");
    assert!(
        out.contains(&raw("报告.txt")),
        "ls shows the CJK name: {out:?}"
    );
    assert!(out.contains("docs"), "{out:?}");

    // mkdir, mv into a directory, stat, rm, rmdir.
    type_line(&mut shell, "mkdir archive");
    type_line(&mut shell, "mv 报告.txt archive");
    assert!(home.join("archive/报告.txt").is_file());
    assert!(!home.join("报告.txt").exists());
    let out = type_line(&mut shell, "stat archive/报告.txt");
    assert!(
        out.contains("Type: file") && out.contains("Size: 13"),
        "{out:?}"
    );
    type_line(&mut shell, "rm archive/报\t");
    type_line(&mut shell, "rmdir archive");
    assert!(!home.join("archive").exists());

    // A refusal is reported and the shell goes on.
    let out = type_line(&mut shell, "rmdir docs");
    assert!(
        out.contains("error: remote: directory not empty"),
        "{out:?}"
    );
    let out = type_line(&mut shell, "cd ../..");
    assert!(out.contains("leads outside the home"), "{out:?}");
    let out = type_line(&mut shell, "frobnicate");
    assert!(out.contains("unrecognized subcommand"), "{out:?}");

    // Local commands.
    type_line(&mut shell, "lmkdir sub");
    type_line(&mut shell, "lcd su\t");
    let out = type_line(&mut shell, "lpwd");
    assert!(out.contains("/work/sub"), "{out:?}");
    type_line(&mut shell, "get docs/news.txt");
    assert_eq!(fs::read(work.join("sub/news.txt")).unwrap(), b"news\n");
    let out = type_line(&mut shell, "lls");
    assert!(out.contains("news.txt"), "{out:?}");

    // Help lists every command.
    let out = type_line(&mut shell, "help");
    for name in [
        "ls", "cd", "lcd", "lls", "put", "get", "mkdir", "rm", "rmdir", "mv", "stat", "exit",
    ] {
        assert!(
            out.contains(&format!("  {name} ")),
            "help lacks {name}: {out:?}"
        );
    }

    // Ctrl-D leaves with status 0; the history was kept.
    shell.send_control('d').unwrap();
    shell.exp_eof().expect("the shell ends at Ctrl-D");
    let status = shell.process_mut().wait().expect("wait for the shell");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    let history = fs::read_to_string(
        client
            .work()
            .parent()
            .unwrap()
            .join("home/.local/state/ftp-client/history"),
    )
    .expect("the history file");
    assert!(history.contains("mkdir archive"), "{history:?}");
    server.assert_healthy();
}

#[test]
fn bare_target_opens_the_shell_and_exit_leaves_it() {
    let (server, client) = alice();
    let target = server.target("alice");
    let mut shell = spawn(&client, &[&target]);
    prompt(&mut shell);
    let out = type_line(&mut shell, "pwd");
    assert!(out.contains('/'), "{out:?}");
    shell.send("quit\r").unwrap();
    shell.flush().unwrap();
    shell.exp_eof().expect("quit ends the shell");
    server.assert_healthy();
}

#[test]
fn the_shell_reconnects_after_the_server_closed_an_idle_session() {
    let server = ServerDir::with_users(DEFAULT_USERS).start_args(&["--idle-timeout", "1"]);
    let client = ClientEnv::new();
    client.login(&server.target("alice"), tests::ALICE_PASSWORD);
    fs::write(server.home("alice").join("f.txt"), b"still here").unwrap();
    let mut shell = spawn(&client, &["shell"]);
    prompt(&mut shell);
    type_line(&mut shell, "cd /");
    // Wait until the server has closed the idle session.
    tests::wait_until(
        Duration::from_secs(10),
        "the idle session is closed",
        || server.stderr().contains("idle timeout"),
    );
    type_line(&mut shell, "get f.txt");
    assert_eq!(
        fs::read(client.work().join("f.txt")).unwrap(),
        b"still here"
    );
    shell.send_control('d').unwrap();
    shell.exp_eof().unwrap();
    server.assert_healthy();
}

#[test]
fn batch_file_runs_commands_and_stops_at_the_first_failure() {
    let (server, client) = alice();
    let home = server.home("alice");
    let work = client.work();
    fs::write(work.join("a.txt"), b"aaa").unwrap();
    fs::write(
        work.join("script"),
        "# a comment, then a blank line\n\n\
         mkdir -p out/in\n\
         cd out\n\
         put a.txt in/\n\
         -rm does-not-exist\n\
         ls in\n\
         rm does-not-exist\n\
         mkdir never\n",
    )
    .unwrap();
    let out = client.run(["-b", "script"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "a.txt\n", "only ls prints: {:?}", out.stdout);
    assert!(home.join("out/in/a.txt").is_file());
    assert!(
        !home.join("never").exists(),
        "a command after the failure ran"
    );
    assert!(
        out.stderr.contains("error: remote: not found")
            && out
                .stderr
                .contains("batch stopped at line 8: rm does-not-exist"),
        "{:?}",
        out.stderr
    );

    // From standard input, with `-b -`; and a usage error stops with 2.
    let out = client.run_stdin(["-b", "-"], "cd out/in\nget a.txt copy.txt\npwd\n");
    out.assert_success();
    assert_eq!(out.stdout, "/out/in\n");
    assert_eq!(fs::read(work.join("copy.txt")).unwrap(), b"aaa");
    let out = client.run_stdin(["-b", "-"], "ls --bogus\nmkdir never\n");
    out.assert_code(2);
    assert!(!home.join("never").exists());
    // Unbalanced quotes are a usage error too.
    client.run_stdin(["-b", "-"], "get 'a.txt\n").assert_code(2);
    // A batch file that does not exist.
    let out = client.run(["-b", "no-such-script"]);
    out.assert_code(1);
    assert!(out.stderr.contains("no-such-script"), "{:?}", out.stderr);
    server.assert_healthy();
}

#[test]
fn batch_output_as_json() {
    let (server, client) = alice();
    plant(&server.home("alice"));
    let out = client.run_stdin(["-b", "-", "--json"], "ls docs\nstat 报告.txt\nmkdir x\n");
    out.assert_success();
    let records = out.json_lines();
    assert_eq!(records.len(), 3, "{:?}", out.stdout);
    assert_eq!(records[0]["op"], "ls");
    let names: Vec<&str> = records[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deep", "news.txt", "notes.md"]);
    assert_eq!(records[0]["entries"][0]["type"], "dir");
    assert_eq!(records[1]["name"], "报告.txt");
    assert_eq!(records[1]["size"], 13);
    assert_eq!(records[1]["type"], "file");
    assert_eq!(
        records[2],
        serde_json::json!({"op": "mkdir", "path": "/x", "ok": true})
    );
    server.assert_healthy();
}

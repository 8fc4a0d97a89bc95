//! The one-shot commands of `ftp-client` as a script or a person runs
//! them: `ls`, `stat`, `mv`, `rm`, `rmdir`, recursive `put -r`/`get -r`,
//! `--json`, `--quiet`, progress on a terminal, `completions`, and the
//! documented exit statuses.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use tests::{ClientEnv, alice, client_bin, files_equal, run_cmd, write_random_file};

/// `sh`/`bash -c SCRIPT` with the environment and working directory of
/// `client`'s commands.
fn shell_cmd(client: &ClientEnv, shell: &str, script: &str) -> Command {
    let env = client.cmd(["unused"]);
    let mut cmd = Command::new(shell);
    cmd.arg("-c").arg(script);
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(env.get_current_dir().expect("a working directory"));
    cmd
}

#[test]
fn ls_stat_mv_rm_rmdir_from_the_command_line() {
    let (server, client) = alice();
    let home = server.home("alice");
    fs::create_dir_all(home.join("docs/empty")).unwrap();
    fs::write(home.join("docs/a.txt"), b"12345").unwrap();
    fs::write(home.join("docs/.hidden"), b"h").unwrap();
    fs::write(home.join("报告.txt"), "报告").unwrap();

    let out = client.run(["ls", "docs"]);
    out.assert_success();
    assert_eq!(out.stdout, "a.txt\nempty\n", "hidden names stay hidden");
    let out = client.run(["ls", "-a", "docs"]);
    assert_eq!(out.stdout, ".hidden\na.txt\nempty\n");
    let out = client.run(["ls", "-l", "/docs"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", out.stdout);
    assert!(
        lines[0].starts_with("-rw-") && lines[0].ends_with(" a.txt"),
        "{lines:?}"
    );
    assert!(lines[0].contains(" 5 "), "the size: {lines:?}");
    assert!(
        lines[1].starts_with("drwx") && lines[1].ends_with(" empty"),
        "{lines:?}"
    );
    // Several paths: a header each.
    let out = client.run(["ls", "docs", "docs/empty"]);
    assert_eq!(out.stdout, "docs:\na.txt\nempty\n\ndocs/empty:\n");
    // The CJK name as itself.
    let out = client.run(["ls"]);
    assert_eq!(out.stdout, "docs\n报告.txt\n");

    let out = client.run(["stat", "docs/a.txt"]);
    out.assert_success();
    assert!(
        out.stdout.contains("Type: file") && out.stdout.contains("Size: 5"),
        "{}",
        out.stdout
    );

    // mv: to a new name, then into a directory (named with or without '/').
    client
        .run(["mv", "docs/a.txt", "docs/b.txt"])
        .assert_success();
    client
        .run(["mv", "docs/b.txt", "docs/empty"])
        .assert_success();
    assert_eq!(fs::read(home.join("docs/empty/b.txt")).unwrap(), b"12345");
    client.run(["mv", "报告.txt", "docs/"]).assert_success();
    assert!(home.join("docs/报告.txt").is_file());

    // Refusals say what and where, with status 1; the rest of the paths go on.
    let out = client.run(["rm", "docs/none", "docs/报告.txt"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: remote: not found: docs/none\n");
    assert!(
        !home.join("docs/报告.txt").exists(),
        "the second path was removed"
    );
    let out = client.run(["rm", "docs"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: remote: is a directory: docs\n");
    let out = client.run(["rmdir", "docs/empty"]);
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "error: remote: directory not empty: docs/empty\n"
    );
    client.run(["rm", "docs/empty/b.txt"]).assert_success();
    client.run(["rmdir", "docs/empty"]).assert_success();
    assert!(!home.join("docs/empty").exists());
    // `..` above the home is refused before anything is sent.
    let out = client.run(["get", "../x"]);
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "error: ../x: leads outside the home directory\n"
    );
    let out = client.run(["ls", "-z"]);
    out.assert_code(2);
    server.assert_healthy();
}

#[test]
fn recursive_put_and_get_through_the_command_line() {
    let (server, client) = alice();
    let work = client.work();
    let tree = work.join("tree");
    for d in 0..6 {
        let dir = tree.join(format!("dir{d}")).join("inner");
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            write_random_file(&dir.join(format!("f{f}.bin")), d * 1000 + f, 1000 + f);
        }
    }
    fs::create_dir_all(tree.join("empty")).unwrap();
    fs::write(tree.join("报告.txt"), "报告").unwrap();
    let outside = tests::temp_dir("ftp-outside-");
    fs::write(outside.path().join("secret"), b"secret").unwrap();
    symlink(outside.path().join("secret"), tree.join("leak")).unwrap();

    // 601 files with at most 512 descriptors: files are opened a window at a time.
    let script = format!(
        "ulimit -n 512 && exec {} put -r tree",
        client_bin().display()
    );
    let cmd = shell_cmd(&client, "sh", &script);
    let out = run_cmd(cmd, None);
    out.assert_success();
    assert!(
        out.stderr.contains("warning: skipped") && out.stderr.contains("leak"),
        "the symlink out of the tree is reported: {:?}",
        out.stderr
    );
    let home = server.home("alice");
    assert!(
        !home.join("tree/leak").exists(),
        "a symlink out of the tree was followed"
    );
    assert!(home.join("tree/empty").is_dir());
    assert!(files_equal(
        &tree.join("dir5/inner/f99.bin"),
        &home.join("tree/dir5/inner/f99.bin")
    ));

    // Into an existing remote directory: `backup/tree`.
    client.run(["mkdir", "backup"]).assert_success();
    client
        .run(["-q", "put", "-r", "tree", "backup"])
        .assert_success();
    assert!(home.join("backup/tree/报告.txt").is_file());

    // And back, as JSON: one record per file.
    let out = client.run(["--json", "get", "-r", "backup/tree", "copy"]);
    out.assert_success();
    let records = out.json_lines();
    assert_eq!(records.len(), 601);
    assert!(records.iter().all(|r| r["op"] == "get" && r["ok"] == true));
    assert!(files_equal(
        &tree.join("dir3/inner/f7.bin"),
        &work.join("copy/dir3/inner/f7.bin")
    ));
    assert!(work.join("copy/empty").is_dir());
    assert_eq!(
        fs::read_to_string(work.join("copy/报告.txt")).unwrap(),
        "报告"
    );

    // Without -r a directory is refused, clearly.
    let out = client.run(["put", "tree"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("is a directory (use put -r)"),
        "{:?}",
        out.stderr
    );
    server.assert_healthy();
}

#[test]
fn json_records_for_transfers_and_failures() {
    let (server, client) = alice();
    let work = client.work();
    fs::write(work.join("a"), b"aaaa").unwrap();
    fs::write(work.join("b"), b"bb").unwrap();
    client.run(["mkdir", "d"]).assert_success();
    let out = client.run(["--json", "put", "a", "b", "missing", "d"]);
    out.assert_code(1);
    let records = out.json_lines();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0],
        serde_json::json!({"op": "put", "local": "a", "remote": "/d/a", "bytes": 4, "ok": true})
    );
    assert_eq!(records[1]["bytes"], 2);
    assert_eq!(records[2]["ok"], false);
    assert!(records[2]["error"].as_str().unwrap().contains("missing"));
    let out = client.run(["--json", "stat", "nothing"]);
    out.assert_code(1);
    let records = out.json_lines();
    assert_eq!(records[0]["ok"], false);
    assert_eq!(records[0]["code"], 6, "NOT_FOUND");
    server.assert_healthy();
}

#[test]
fn exit_status_three_when_the_server_cannot_be_reached() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = ClientEnv::new();
    let mut cmd = client.cmd(["--server", &format!("alice@{addr}"), "ls"]);
    cmd.env("FTP_PASSWORD", "x");
    let out = run_cmd(cmd, None);
    out.assert_code(3);
    assert!(
        out.stderr.starts_with("error: cannot connect to"),
        "{:?}",
        out.stderr
    );
    let help = client.run(["--help"]);
    help.assert_success();
    for line in [
        "0  success",
        "2  usage error",
        "3  cannot connect",
        "4  login failed",
    ] {
        assert!(help.stdout.contains(line), "--help lacks {line:?}");
    }
}

#[test]
fn completions_for_each_shell() {
    let client = ClientEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = client.run(["completions", shell]);
        out.assert_success();
        for word in ["ftp-client", "rmdir", "json"] {
            assert!(out.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = client.run(["completions", "tcsh"]);
    out.assert_code(2);
}

#[test]
fn progress_and_summary_only_on_a_terminal_and_never_with_quiet() {
    let (server, client) = alice();
    let work = client.work();
    for name in ["one", "two", "three"] {
        write_random_file(&work.join(name), 7, 300_000);
    }
    client.run(["mkdir", "d"]).assert_success();
    // Not a terminal: nothing but results (none for a put).
    let out = client.run(["put", "one", "two", "three", "d/"]);
    out.assert_success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));

    // A terminal: a summary of all the files.
    let spawn = |args: &[&str]| {
        let mut cmd = client.cmd(args);
        cmd.env("TERM", "xterm");
        rexpect::session::spawn_command(cmd, Some(30_000)).expect("pty")
    };
    let mut session = spawn(&["put", "one", "two", "three", "d/"]);
    let shown = session.exp_eof().expect("the command ends");
    assert!(shown.contains("3 of 3 files: "), "{shown:?}");
    let mut session = spawn(&["--quiet", "put", "one", "two", "three", "d/"]);
    let shown = session.exp_eof().expect("the command ends");
    assert!(!shown.contains("files"), "--quiet printed {shown:?}");
    server.assert_healthy();
}

#[test]
fn wildcards_expand_against_remote_and_local_directories() {
    let (server, client) = alice();
    let home = server.home("alice");
    let work = client.work();
    fs::create_dir_all(home.join("logs")).unwrap();
    for name in ["a.log", "b.log", "c.txt", ".hidden.log", "report[1].txt"] {
        fs::write(home.join("logs").join(name), name).unwrap();
    }
    // ls shows what matches, hidden names only for a pattern that starts with '.'.
    let out = client.run(["ls", "logs/*.log"]);
    out.assert_success();
    assert_eq!(out.stdout, "a.log\nb.log\n");
    assert_eq!(client.run(["ls", "logs/.*"]).stdout, ".hidden.log\n");
    // A name that is exactly the pattern is that file.
    let out = client.run(["stat", "logs/report[1].txt"]);
    out.assert_success();
    assert!(out.stdout.contains("Size: 13"), "{}", out.stdout);
    // get: several matches into the working directory.
    client.run(["get", "logs/?.log"]).assert_success();
    assert_eq!(fs::read(work.join("a.log")).unwrap(), b"a.log");
    assert_eq!(fs::read(work.join("b.log")).unwrap(), b"b.log");
    assert!(!work.join("c.txt").exists());
    // Several matches cannot go to one local file.
    client.run(["get", "logs/*.log", "one-file"]).assert_code(2);
    // rm with a pattern; a pattern that matches nothing is an error.
    client.run(["rm", "logs/*.log"]).assert_success();
    assert!(!home.join("logs/a.log").exists() && !home.join("logs/b.log").exists());
    assert!(
        home.join("logs/.hidden.log").exists(),
        "* matched a hidden name"
    );
    let out = client.run(["rm", "logs/*.log"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: no match: logs/*.log\n");
    // Local patterns for put, as the shell (and batch files) see them.
    let out = client.run_stdin(["-b", "-"], "put *.log logs\nls logs/*.log\n");
    out.assert_success();
    assert_eq!(out.stdout, "a.log\nb.log\n");
    server.assert_healthy();
}

#[test]
fn a_reader_that_stops_early_ends_only_the_output() {
    let (server, client) = alice();
    let home = server.home("alice");
    for i in 0..3000 {
        fs::write(home.join(format!("file-with-a-long-name-{i:05}")), b"").unwrap();
    }
    let script = format!("set -o pipefail; {} ls | head -n 1", client_bin().display());
    let cmd = shell_cmd(&client, "bash", &script);
    let out = run_cmd(cmd, None);
    out.assert_success();
    assert_eq!(out.stdout, "file-with-a-long-name-00000\n");
    assert!(!out.stderr.contains("panicked"), "{:?}", out.stderr);
    server.assert_healthy();
}

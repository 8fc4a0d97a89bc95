//! Files go up and come back byte for byte through the command-line client,
//! whatever their size or name; failures leave nothing behind.

use tests::{ALICE_PASSWORD, TestServer, alice, files_equal, write_random_file};

#[test]
fn small_files_and_unicode_names_round_trip() {
    let (server, client) = alice();
    let work = client.work();
    let home = server.home("alice");
    std::fs::write(work.join("empty"), b"").unwrap();
    std::fs::write(work.join("one"), b"\x00").unwrap();
    std::fs::write(work.join("报告.txt"), "季度报告\n".as_bytes()).unwrap();

    client.run(["put", "empty"]).assert_success();
    client.run(["put", "one", "one.bin"]).assert_success();
    client.run(["mkdir", "目录"]).assert_success();
    client.run(["put", "报告.txt", "目录/"]).assert_success();
    assert!(files_equal(&work.join("empty"), &home.join("empty")));
    assert!(files_equal(&work.join("one"), &home.join("one.bin")));
    assert!(files_equal(
        &work.join("报告.txt"),
        &home.join("目录/报告.txt")
    ));

    std::fs::create_dir(work.join("back")).unwrap();
    client.run(["get", "empty", "back/empty"]).assert_success();
    client.run(["get", "one.bin", "back/one"]).assert_success();
    client
        .run(["get", "目录/报告.txt", "back"])
        .assert_success();
    assert!(files_equal(&work.join("empty"), &work.join("back/empty")));
    assert!(files_equal(&work.join("one"), &work.join("back/one")));
    assert!(files_equal(
        &work.join("报告.txt"),
        &work.join("back/报告.txt")
    ));
    // No temp or partial file anywhere.
    let mut names: Vec<_> = std::fs::read_dir(work.join("back"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["empty", "one", "报告.txt"]);
    assert!(server.incoming_entries().is_empty());

    // An upload replaces a file whole.
    std::fs::write(work.join("one"), b"second version").unwrap();
    client.run(["put", "one", "one.bin"]).assert_success();
    assert_eq!(
        std::fs::read(home.join("one.bin")).unwrap(),
        b"second version"
    );
}

#[test]
fn mkdir_parents_and_errors() {
    let (server, client) = alice();
    let home = server.home("alice");
    client.run(["mkdir", "-p", "a/b/c"]).assert_success();
    assert!(home.join("a/b/c").is_dir());
    client.run(["mkdir", "-p", "a/b/c"]).assert_success();

    let out = client.run(["mkdir", "a/b/c"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: remote: already exists: a/b/c\n");
    let out = client.run(["mkdir", "x/y"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "error: remote: not found: x/y\n");
    assert!(!home.join("x").exists());
}

#[test]
fn get_of_a_missing_file_fails_and_leaves_no_local_file() {
    let (server, client) = alice();
    let work = client.work();
    std::fs::create_dir(work.join("docs")).unwrap();
    for local in [None, Some("docs/a.txt"), Some("docs")] {
        let mut args = vec!["get", "docs/a.txt"];
        args.extend(local);
        let out = client.run(&args);
        out.assert_code(1);
        assert_eq!(
            out.stderr, "error: remote: not found: docs/a.txt\n",
            "{args:?}"
        );
        assert_eq!(out.stdout, "");
        for leftover in ["a.txt", "a.txt.part", "docs/a.txt", "docs/a.txt.part"] {
            assert!(!work.join(leftover).exists(), "{args:?} left {leftover}");
        }
    }
    // A failed get does not clobber an existing local file.
    std::fs::write(work.join("docs/a.txt"), b"keep me").unwrap();
    client
        .run(["get", "docs/a.txt", "docs/a.txt"])
        .assert_code(1);
    assert_eq!(std::fs::read(work.join("docs/a.txt")).unwrap(), b"keep me");
    assert!(!server.home("alice").join("docs").exists());
}

#[test]
fn hundred_mib_random_file_round_trips() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let (server, client) = alice();
    let work = client.work();
    let original = work.join("big.bin");
    write_random_file(&original, 0x5eed_1234, SIZE);

    client
        .run(["--quiet", "put", "big.bin", "big.bin"])
        .assert_success();
    let stored = server.home("alice").join("big.bin");
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), SIZE);
    assert!(files_equal(&original, &stored), "the stored file differs");
    assert!(server.incoming_entries().is_empty());

    client
        .run(["--quiet", "get", "big.bin", "back.bin"])
        .assert_success();
    assert!(
        files_equal(&original, &work.join("back.bin")),
        "the downloaded file differs"
    );
    assert!(!work.join("back.bin.part").exists());
}

/// Truncates the file being uploaded as soon as the upload starts.
async fn put_shrinking_file(
    server: &TestServer,
    local: &std::path::Path,
) -> (ftp_client::Client, ftp_client::ClientError) {
    tests::write_random_file(local, 77, 4 * 1024 * 1024);
    let mut client = tests::login(server, "alice", ALICE_PASSWORD).await;
    let path = local.to_path_buf();
    let mut truncated = false;
    let err = client
        .put_file(local, "shrinking.bin", &mut |_, _| {
            if !truncated {
                truncated = true;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        })
        .await
        .expect_err("a file that changed while it was sent must not be uploaded");
    (client, err)
}

#[tokio::test]
async fn upload_of_a_file_that_changes_publishes_nothing() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let (mut client, _err) = put_shrinking_file(&server, &local.path().join("f")).await;
    assert!(!server.home("alice").join("shrinking.bin").exists());
    server.wait_incoming_empty();
    // The session is still usable.
    client.mkdir("still-here", false).await.unwrap();
    client.quit().await.unwrap();
}

#[tokio::test]
async fn upload_of_a_file_that_changes_reports_the_local_error() {
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let (_client, err) = put_shrinking_file(&server, &local.path().join("f")).await;
    assert!(
        matches!(&err, ftp_client::ClientError::LocalFile { message, .. } if message.contains("changed")),
        "the user is told {err:?} ({err}) instead of the file having changed"
    );
}

#[test]
fn failed_get_does_not_destroy_an_existing_part_file() {
    let (_server, client) = alice();
    let work = client.work();
    std::fs::write(work.join("a.txt.part"), b"the user's own file").unwrap();
    client.run(["get", "docs/a.txt", "a.txt"]).assert_code(1);
    assert_eq!(
        std::fs::read(work.join("a.txt.part")).ok().as_deref(),
        Some(&b"the user's own file"[..]),
        "a failed download destroyed a.txt.part"
    );
}

//! Interrupted transfers continue where they stopped: an upload cut off is
//! kept by the server and resumed by `ftp-client put` and `put_files` (only
//! when the kept bytes match the local file); a download's `LOCAL.part` is
//! continued by `get --resume` (and thrown away when it proves corrupt).

use std::path::Path;

use ftp_client::PutItem;
use ftp_shared::message::DigestAlgorithm;
use tests::{
    ALICE_PASSWORD, ClientEnv, TestServer, alice, files_equal, login, random_bytes, within,
};

/// Size of the uploaded files: above the 1 MiB from which uploads resume.
const SIZE: usize = 2 * 1024 * 1024 + 12345;
/// How much of it arrives before the connection is cut.
const HEAD: usize = 700_000;

/// Cuts an upload of `size` bytes to `remote` after `head` (see
/// [`tests::cut_upload`]) and waits until the server keeps the
/// `head.len()` bytes for a resume. No other upload may be kept.
fn cut_and_keep(server: &TestServer, remote: &str, size: u64, head: &[u8]) {
    assert!(
        server.kept_partials().is_empty(),
        "an upload is already kept"
    );
    tests::cut_upload(server, remote, size, head, DigestAlgorithm::Blake3);
    server.wait_uploads_settled(&[head.len() as u64]);
}

#[test]
fn cli_put_resumes_a_cut_upload_of_the_same_file() {
    let (server, client) = alice();
    let local = client.work().join("big.bin");
    let data = random_bytes(0xc0ffee, SIZE);
    std::fs::write(&local, &data).unwrap();
    cut_and_keep(&server, "big.bin", SIZE as u64, &data[..HEAD]);
    assert!(!server.home("alice").join("big.bin").exists());

    client.run(["put", "big.bin"]).assert_success();
    assert!(files_equal(&local, &server.home("alice").join("big.bin")));
    // The kept bytes were taken over by the upload.
    // (The log is read from a pipe: wait for the line rather than race it.)
    tests::wait_until(tests::POLL_DEADLINE, "the resume in the log", || {
        server.stderr().contains("resuming an upload")
    });
    assert_eq!(server.kept_partials(), Vec::<u64>::new());
    server.wait_incoming_empty();
}

#[test]
fn cli_put_does_not_resume_when_the_kept_bytes_differ() {
    let (server, client) = alice();
    let local = client.work().join("big.bin");
    let data = random_bytes(0xdead, SIZE);
    std::fs::write(&local, &data).unwrap();
    // Same path, same size, but other first bytes.
    let mut other = data[..HEAD].to_vec();
    other[HEAD / 2] ^= 1;
    cut_and_keep(&server, "big.bin", SIZE as u64, &other);

    client.run(["put", "big.bin"]).assert_success();
    assert!(files_equal(&local, &server.home("alice").join("big.bin")));
    // Uploaded from byte 0: the mismatching kept bytes were not used, and
    // the fresh upload dropped them.
    assert!(!server.stderr().contains("resuming an upload"));
    assert_eq!(server.kept_partials(), Vec::<u64>::new());
    assert!(server.upload_temps().is_empty());
}

#[test]
fn cli_put_does_not_resume_files_under_one_mib() {
    let (server, client) = alice();
    let size = 1024 * 1024 - 1;
    let data = random_bytes(0x5111, size);
    std::fs::write(client.work().join("small.bin"), &data).unwrap();
    cut_and_keep(&server, "small.bin", size as u64, &data[..300_000]);

    client.run(["put", "small.bin"]).assert_success();
    assert_eq!(
        std::fs::read(server.home("alice").join("small.bin")).unwrap(),
        data
    );
    assert!(!server.stderr().contains("resuming an upload"));
    assert_eq!(server.kept_partials(), Vec::<u64>::new());
}

#[tokio::test]
async fn library_put_files_resumes_with_sha256_from_the_kept_offset() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("big.bin");
    let data = random_bytes(0x256, SIZE);
    std::fs::write(&local, &data).unwrap();
    let small = dir.path().join("small.bin");
    std::fs::write(&small, b"beside it").unwrap();
    // The kept bytes do not depend on the digest algorithm of the cut
    // upload (BLAKE3); the resume below uses SHA-256.
    std::fs::create_dir_all(server.home("alice").join("d")).unwrap();
    cut_and_keep(&server, "d/big.bin", SIZE as u64, &data[..HEAD]);

    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    client.set_digest_algorithm(DigestAlgorithm::Sha256);
    let items = [
        PutItem {
            local: small.clone(),
            remote: "d/small.bin".into(),
        },
        PutItem {
            local: local.clone(),
            remote: "d/big.bin".into(),
        },
    ];
    let mut first_done: Vec<Option<u64>> = vec![None; 2];
    let results = within(
        "put_files",
        client.put_files(&items, true, &mut |i, done, _| {
            first_done[i].get_or_insert(done);
        }),
    )
    .await
    .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The big file's upload started at the kept offset.
    assert_eq!(first_done, [Some(0), Some(HEAD as u64)]);
    assert!(files_equal(&local, &server.home("alice").join("d/big.bin")));
    assert!(files_equal(
        &small,
        &server.home("alice").join("d/small.bin")
    ));
    assert!(server.kept_partials().is_empty());
    within("quit", client.quit()).await.unwrap();
}

/// A server with `remote.bin` (`SIZE` random bytes) in alice's home, a client
/// logged in as alice, and the bytes.
fn with_remote_file() -> (TestServer, ClientEnv, Vec<u8>) {
    let (server, client) = alice();
    let data = random_bytes(0x9e7, SIZE);
    std::fs::write(server.home("alice").join("remote.bin"), &data).unwrap();
    (server, client, data)
}

fn part_of(local: &Path) -> std::path::PathBuf {
    ftp_client::transfer::get::part_path(local)
}

#[test]
fn get_resume_completes_a_correct_part_file() {
    let (server, client, data) = with_remote_file();
    let local = client.work().join("local.bin");
    std::fs::write(part_of(&local), &data[..HEAD]).unwrap();

    let out = client.run(["get", "--resume", "remote.bin", "local.bin"]);
    out.assert_success();
    assert_eq!(std::fs::read(&local).unwrap(), data);
    assert!(!part_of(&local).exists(), "local.bin.part is left");
    // Only the missing bytes were sent.
    let log = server.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("sent") && l.contains(&format!("offset={HEAD}"))),
        "no download from offset {HEAD} in the server log:\n{log}"
    );

    // A `.part` that already holds the whole file is verified and renamed.
    let whole = client.work().join("whole.bin");
    std::fs::write(part_of(&whole), &data).unwrap();
    client
        .run(["get", "--resume", "remote.bin", "whole.bin"])
        .assert_success();
    assert_eq!(std::fs::read(&whole).unwrap(), data);
    assert!(!part_of(&whole).exists());
}

#[test]
fn get_resume_with_a_wrong_prefix_fails_and_deletes_the_part_file() {
    let (_server, client, data) = with_remote_file();
    let local = client.work().join("local.bin");
    let mut wrong = data[..HEAD].to_vec();
    wrong[0] ^= 0xff;
    std::fs::write(part_of(&local), &wrong).unwrap();

    let out = client.run(["get", "--resume", "remote.bin", "local.bin"]);
    out.assert_code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("failed verification"),
        "{:?}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(!local.exists(), "a corrupt download was saved");
    assert!(!part_of(&local).exists(), "the corrupt .part is kept");

    // A retry now starts from scratch and succeeds.
    client
        .run(["get", "--resume", "remote.bin", "local.bin"])
        .assert_success();
    assert_eq!(std::fs::read(&local).unwrap(), data);
}

#[test]
fn get_without_resume_leaves_an_existing_part_file_alone() {
    let (_server, client, data) = with_remote_file();
    let local = client.work().join("local.bin");
    std::fs::write(part_of(&local), &data[..HEAD]).unwrap();

    let out = client.run(["get", "remote.bin", "local.bin"]);
    out.assert_code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("--resume"),
        "{:?}",
        out.stderr
    );
    assert!(!local.exists());
    assert_eq!(std::fs::read(part_of(&local)).unwrap(), &data[..HEAD]);
}

#[test]
fn get_resume_of_two_files_with_one_local_name_never_mixes_them() {
    let (server, client) = alice();
    let home = server.home("alice");
    for (dir, seed) in [("a", 1), ("b", 2)] {
        std::fs::create_dir(home.join(dir)).unwrap();
        std::fs::write(home.join(dir).join("f"), random_bytes(seed, 5000)).unwrap();
    }
    let work = client.work();
    std::fs::create_dir(work.join("back")).unwrap();
    let out = client.run(["get", "--resume", "a/f", "b/f", "back"]);
    // Whatever the outcome of each file, back/f is one of them, whole.
    let got = std::fs::read(work.join("back/f")).unwrap_or_default();
    let (a, b) = (random_bytes(1, 5000), random_bytes(2, 5000));
    assert!(
        got == a || got == b,
        "back/f holds {} bytes: neither a/f nor b/f ({out:?})",
        got.len()
    );
}

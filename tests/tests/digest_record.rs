//! A stored file's digest, recorded when its upload was published, is what
//! a download sends without hashing the file again. It never stands in for
//! a changed file: a file changed on the host is hashed again, and one
//! changed behind a forged record fails the client's verification instead
//! of passing corrupt bytes.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use tests::{alice, files_equal, write_random_file};

const SIZE: u64 = 3 * 1024 * 1024 + 17;

/// Overwrites one byte in the middle of `path` on the host.
fn flip_a_byte(path: &std::path::Path) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(SIZE / 2)).unwrap();
    let mut byte = [0u8];
    std::io::Read::read_exact(&mut f, &mut byte).unwrap();
    f.seek(SeekFrom::Start(SIZE / 2)).unwrap();
    f.write_all(&[byte[0] ^ 0x5a]).unwrap();
}

#[test]
fn downloads_of_recorded_files_verify_also_when_resumed() {
    let (server, client) = alice();
    let work = client.work();
    write_random_file(&work.join("data.bin"), 11, SIZE);
    client.run(["put", "data.bin"]).assert_success();

    std::fs::create_dir(work.join("back")).unwrap();
    client
        .run(["get", "data.bin", "back/data.bin"])
        .assert_success();
    assert!(files_equal(
        &work.join("data.bin"),
        &work.join("back/data.bin")
    ));

    // A resumed download: the server skips to the offset and sends the
    // recorded digest, which the client checks against the whole file.
    let part = work.join("back/again.bin.part");
    std::fs::copy(work.join("data.bin"), &part).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(SIZE / 3)
        .unwrap();
    client
        .run(["get", "--resume", "data.bin", "back/again.bin"])
        .assert_success();
    assert!(files_equal(
        &work.join("data.bin"),
        &work.join("back/again.bin")
    ));

    // A resume whose kept bytes are wrong fails verification: the digest
    // still covers the whole file.
    let part = work.join("back/bad.bin.part");
    std::fs::write(&part, vec![0u8; (SIZE / 3) as usize]).unwrap();
    let out = client.run(["get", "--resume", "data.bin", "back/bad.bin"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("failed verification"), "{out:?}");
    assert!(!work.join("back/bad.bin").exists());
    server.assert_healthy();
}

#[test]
fn a_file_changed_on_the_host_is_hashed_again() {
    let (server, client) = alice();
    let work = client.work();
    write_random_file(&work.join("data.bin"), 12, SIZE);
    client.run(["put", "data.bin"]).assert_success();
    let stored = server.home("alice").join("data.bin");
    flip_a_byte(&stored);

    client
        .run(["get", "data.bin", "changed.bin"])
        .assert_success();
    assert!(files_equal(&stored, &work.join("changed.bin")));
    assert!(!files_equal(
        &work.join("data.bin"),
        &work.join("changed.bin")
    ));
    server.assert_healthy();
}

#[test]
fn a_change_hidden_behind_the_old_modification_time_fails_verification() {
    let (server, client) = alice();
    let work = client.work();
    write_random_file(&work.join("data.bin"), 13, SIZE);
    client.run(["put", "data.bin"]).assert_success();
    let stored = server.home("alice").join("data.bin");
    let mtime = std::fs::metadata(&stored).unwrap().modified().unwrap();
    flip_a_byte(&stored);
    // The record's size and time match again, the bytes do not.
    OpenOptions::new()
        .write(true)
        .open(&stored)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let out = client.run(["get", "data.bin", "hidden.bin"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("failed verification"), "{out:?}");
    assert!(
        !work.join("hidden.bin").exists(),
        "a corrupt file was saved"
    );
    assert!(!work.join("hidden.bin.part").exists());
    server.assert_healthy();
}

//! Recursive transfers through the library: `plan_put_tree` + `make_dirs` +
//! `put_files` (what `put -r` runs) and `plan_get_tree` +
//! `make_local_dirs` + `get_files` (what `get -r` runs): a nested tree round
//! trip, the `cp -r` rules for naming the target, local symlinks that must
//! not lead out of the tree, remote symlinks and special files that are not
//! followed, sources that are not directories, and a tree of thousands of
//! files. Every scenario that runs a server ends with
//! [`tests::TestServer::assert_healthy`]; one scenario talks to a scripted
//! peer instead, to send the names no real server would list.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use ftp_client::transfer::{GetTree, PutTree, make_local_dirs};
use ftp_client::{Client, ClientError, Transport};
use ftp_shared::message::{EntryKind, PROTOCOL_VERSION};
use ftp_shared::{ErrorCode, Request, Response};
use tests::{
    ALICE_PASSWORD, DEFAULT_USERS, Entry, OUTSIDE_SECRET, READ_TIMEOUT, ServerDir, TestServer,
    XorShift, files_equal, login, random_bytes, read_msg, snapshot, temp_dir, within, write_msg,
};

/// Planning a tree of a few thousand files locally takes well under a
/// second; this bound only leaves room for a loaded test machine.
const PLAN_WITHIN: Duration = Duration::from_secs(3);

/// Has the server open alice's home (it creates it on first use) and
/// returns its path on disk, for planting files in it.
async fn open_home(client: &mut Client, server: &TestServer) -> PathBuf {
    within("stat", client.stat(""))
        .await
        .expect("stat of the home");
    server.home("alice")
}

/// Plans `put -r local [remote]`.
async fn plan_put(client: &mut Client, local: &Path, remote: Option<&str>) -> PutTree {
    within("plan_put_tree", client.plan_put_tree(local, remote))
        .await
        .unwrap_or_else(|e| panic!("plan_put_tree {}: {e}", local.display()))
}

/// Plans `get -r remote [local]`.
async fn plan_get(client: &mut Client, remote: &str, local: Option<&Path>) -> GetTree {
    within("plan_get_tree", client.plan_get_tree(remote, local))
        .await
        .unwrap_or_else(|e| panic!("plan_get_tree {remote}: {e}"))
}

/// Runs a `put -r` plan: the directories, then every file, each of which must succeed.
async fn upload(client: &mut Client, tree: &PutTree) {
    within("make_dirs", client.make_dirs(&tree.dirs))
        .await
        .expect("make_dirs");
    let results = within(
        "put_files",
        client.put_files(&tree.files, true, &mut |_, _, _| {}),
    )
    .await
    .expect("put_files");
    for (item, result) in tree.files.iter().zip(&results) {
        assert!(result.is_ok(), "{}: {result:?}", item.remote);
    }
}

/// Runs a `get -r` plan: the directories, then every file, each of which must succeed.
async fn download(client: &mut Client, tree: &GetTree) {
    make_local_dirs(&tree.dirs).expect("make_local_dirs");
    let results = within(
        "get_files",
        client.get_files(&tree.files, false, &mut |_, _, _| {}),
    )
    .await
    .expect("get_files");
    for (item, result) in tree.files.iter().zip(&results) {
        assert!(result.is_ok(), "{}: {result:?}", item.remote);
    }
}

/// The reasons of local entries left out, by path relative to `base`.
fn reasons(list: &[(PathBuf, String)], base: &Path) -> BTreeMap<String, String> {
    list.iter()
        .map(|(path, reason)| {
            let rel = path.strip_prefix(base).unwrap_or(path);
            (rel.to_string_lossy().into_owned(), reason.clone())
        })
        .collect()
}

/// The remote paths a plan uploads to, sorted.
fn remote_files(tree: &PutTree) -> Vec<&str> {
    let mut files: Vec<&str> = tree.files.iter().map(|f| f.remote.as_str()).collect();
    files.sort_unstable();
    files
}

/// Every directory in `dirs` comes after its parent (when its parent is in the list).
#[track_caller]
fn assert_parents_first<T: AsRef<Path>>(dirs: &[T]) {
    for (i, dir) in dirs.iter().enumerate() {
        let Some(parent) = dir.as_ref().parent() else {
            continue;
        };
        if let Some(j) = dirs.iter().position(|d| d.as_ref() == parent) {
            assert!(j < i, "{} comes before its parent", dir.as_ref().display());
        }
    }
}

/// Panics if any file under `dir` holds `secret`.
#[track_caller]
fn assert_nothing_holds(dir: &Path, secret: &[u8]) {
    for (path, entry) in snapshot(dir, &[]) {
        if let Entry::File(data) = entry {
            assert!(
                !data.windows(secret.len()).any(|w| w == secret),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

/// Writes `count` files `NAME{i:03}.bin` of 0..=`max` random bytes into `dir`.
fn write_files(dir: &Path, prefix: &str, count: usize, max: u64, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = XorShift::new(seed);
    for i in 0..count {
        let len = rng.next_u64() % (max + 1);
        let data = random_bytes(rng.next_u64(), len as usize);
        std::fs::write(dir.join(format!("{prefix}{i:03}.bin")), data).unwrap();
    }
}

#[tokio::test]
async fn nested_tree_round_trips_byte_for_byte() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let local = temp_dir("recursive-src-");
    let proj = local.path().join("proj");
    // 300 small files across nested directories, an empty directory, a CJK
    // name, an empty file and one file larger than a transfer chunk.
    for (i, dir) in ["", "a", "a/b", "a/b/c", "docs", "docs/old"]
        .iter()
        .enumerate()
    {
        write_files(&proj.join(dir), "f", 50, 4096, 0x7000 + i as u64);
    }
    std::fs::create_dir_all(proj.join("empty")).unwrap();
    std::fs::create_dir_all(proj.join("a/b/c/hollow")).unwrap();
    std::fs::write(proj.join("报告.txt"), "季度报告\n").unwrap();
    std::fs::write(proj.join("docs/空.txt"), b"").unwrap();
    tests::write_random_file(&proj.join("docs/big.bin"), 0xb16, 700_000);

    let tree = plan_put(&mut client, &proj, None).await;
    assert!(tree.skipped.is_empty(), "{:?}", tree.skipped);
    assert_eq!(tree.files.len(), 303);
    assert_eq!(tree.dirs[0], "proj");
    let mut dirs = tree.dirs.clone();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "proj",
            "proj/a",
            "proj/a/b",
            "proj/a/b/c",
            "proj/a/b/c/hollow",
            "proj/docs",
            "proj/docs/old",
            "proj/empty",
        ]
    );
    assert_parents_first(&tree.dirs);
    assert!(remote_files(&tree).contains(&"proj/报告.txt"));
    upload(&mut client, &tree).await;

    let home = server.home("alice");
    let original = snapshot(&proj, &[]);
    assert_eq!(original.len(), 303 + 7);
    assert!(
        snapshot(&home.join("proj"), &[]) == original,
        "the remote copy differs from the local tree"
    );
    server.wait_incoming_empty();

    // Back into a fresh directory: an existing directory receives `proj/`.
    let back = temp_dir("recursive-back-");
    let tree = plan_get(&mut client, "proj", Some(back.path())).await;
    assert!(tree.skipped.is_empty(), "{:?}", tree.skipped);
    assert_eq!(tree.files.len(), 303);
    assert_eq!(tree.dirs.len(), 8);
    assert_eq!(tree.dirs[0], back.path().join("proj"));
    assert_parents_first(&tree.dirs);
    download(&mut client, &tree).await;
    assert!(
        snapshot(&back.path().join("proj"), &[]) == original,
        "the downloaded copy differs from the original tree"
    );
    assert!(files_equal(
        &proj.join("docs/big.bin"),
        &back.path().join("proj/docs/big.bin")
    ));

    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn targets_are_named_like_cp_r() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let home = open_home(&mut client, &server).await;
    let local = temp_dir("recursive-src-");
    let photos = local.path().join("photos");
    std::fs::create_dir_all(photos.join("2024")).unwrap();
    std::fs::write(photos.join("2024/a.jpg"), b"jpeg a").unwrap();
    std::fs::write(photos.join("b.jpg"), b"jpeg b").unwrap();

    // No target, or the home: `photos` in the home.
    for remote in [None, Some("")] {
        let tree = plan_put(&mut client, &photos, remote).await;
        assert_eq!(tree.dirs, ["photos", "photos/2024"], "{remote:?}");
        assert_eq!(
            remote_files(&tree),
            ["photos/2024/a.jpg", "photos/b.jpg"],
            "{remote:?}"
        );
    }
    // An existing directory receives the copy under its name.
    within("mkdir", client.mkdir("dest", false)).await.unwrap();
    let tree = plan_put(&mut client, &photos, Some("dest")).await;
    assert_eq!(tree.dirs, ["dest/photos", "dest/photos/2024"]);
    upload(&mut client, &tree).await;
    assert_eq!(
        std::fs::read(home.join("dest/photos/2024/a.jpg")).unwrap(),
        b"jpeg a"
    );
    // Again: the directories exist already, which is fine.
    upload(&mut client, &tree).await;
    // A new name becomes the copy itself.
    let tree = plan_put(&mut client, &photos, Some("copy")).await;
    assert_eq!(tree.dirs, ["copy", "copy/2024"]);
    assert_eq!(remote_files(&tree), ["copy/2024/a.jpg", "copy/b.jpg"]);
    upload(&mut client, &tree).await;
    assert_eq!(std::fs::read(home.join("copy/b.jpg")).unwrap(), b"jpeg b");
    assert!(!home.join("copy/photos").exists());
    // A trailing '/' means "inside this directory", created when missing.
    let tree = plan_put(&mut client, &photos, Some("inbox/new/")).await;
    assert_eq!(tree.dirs, ["inbox/new/photos", "inbox/new/photos/2024"]);
    upload(&mut client, &tree).await;
    assert_eq!(
        std::fs::read(home.join("inbox/new/photos/b.jpg")).unwrap(),
        b"jpeg b"
    );
    // A remote directory named as the copy: a path inside one works too.
    let tree = plan_put(&mut client, &photos, Some("dest/photos")).await;
    assert_eq!(tree.dirs[0], "dest/photos/photos");
    // `.` is named after the directory it is.
    let tree = plan_put(&mut client, &photos.join("."), None).await;
    assert_eq!(tree.dirs[0], "photos");
    // An existing remote file cannot become a directory.
    std::fs::write(home.join("afile"), b"a file").unwrap();
    let err = within("plan", client.plan_put_tree(&photos, Some("afile")))
        .await
        .expect_err("a file as the target");
    assert_eq!(err.remote_code(), Some(ErrorCode::NOT_A_DIRECTORY), "{err}");
    assert!(err.to_string().contains("afile"), "{err}");

    // Downloads: an existing local directory receives `photos/`.
    let back = temp_dir("recursive-back-");
    let tree = plan_get(&mut client, "dest/photos", Some(back.path())).await;
    let inside = back.path().join("photos");
    assert_eq!(tree.dirs, [inside.clone(), inside.join("2024")]);
    download(&mut client, &tree).await;
    assert_eq!(std::fs::read(inside.join("2024/a.jpg")).unwrap(), b"jpeg a");
    // A new local name becomes the copy itself.
    let named = back.path().join("renamed");
    let tree = plan_get(&mut client, "dest/photos/", Some(&named)).await;
    assert_eq!(tree.dirs, [named.clone(), named.join("2024")]);
    download(&mut client, &tree).await;
    assert_eq!(std::fs::read(named.join("b.jpg")).unwrap(), b"jpeg b");
    assert!(!named.join("photos").exists());
    // A local target ending in '/' means "inside this directory".
    let mut slash = back.path().join("fresh").into_os_string();
    slash.push("/");
    let tree = plan_get(&mut client, "copy", Some(Path::new(&slash))).await;
    assert_eq!(tree.dirs[0], back.path().join("fresh/copy"));
    // No target: `./NAME`.
    let tree = plan_get(&mut client, "inbox/new/photos", None).await;
    assert_eq!(
        tree.dirs,
        [PathBuf::from("photos"), PathBuf::from("photos/2024")]
    );
    assert!(
        tree.files
            .iter()
            .any(|f| f.local == Path::new("photos/b.jpg"))
    );
    // The home has no name: it is copied into the local directory itself.
    let whole = back.path().join("whole");
    let tree = plan_get(&mut client, "", Some(&whole)).await;
    assert_eq!(tree.dirs[0], whole);
    assert!(tree.files.iter().any(|f| f.local == whole.join("afile")));
    let err = within("plan", client.plan_get_tree("", None))
        .await
        .expect_err("the home without a local target");
    assert!(matches!(err, ClientError::LocalFile { .. }), "{err:?}");
    // An existing local file cannot become a directory.
    let file = back.path().join("file");
    std::fs::write(&file, b"local").unwrap();
    let err = within("plan", client.plan_get_tree("copy", Some(&file)))
        .await
        .expect_err("a local file as the target");
    match &err {
        ClientError::LocalFile { path, message } => {
            assert_eq!(path, &file);
            assert!(message.contains("not a directory"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"local");

    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn local_symlinks_never_lead_out_of_the_tree() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let home = open_home(&mut client, &server).await;
    let other = temp_dir("recursive-other-");
    let secret = b"LOCAL-SECRET-0b9e44";
    std::fs::write(other.path().join("secret.txt"), secret).unwrap();
    std::fs::create_dir(other.path().join("private")).unwrap();
    std::fs::write(other.path().join("private/key"), secret).unwrap();

    let local = temp_dir("recursive-src-");
    let tree_dir = local.path().join("tree");
    std::fs::create_dir_all(tree_dir.join("data")).unwrap();
    std::fs::create_dir_all(tree_dir.join("sub")).unwrap();
    std::fs::write(tree_dir.join("real.txt"), b"real content").unwrap();
    std::fs::write(tree_dir.join("data/d.txt"), b"data file").unwrap();
    // Out of the tree: absolute and relative, to a file and to a directory.
    symlink(other.path().join("secret.txt"), tree_dir.join("leak")).unwrap();
    symlink("../../../../../../../../../../..", tree_dir.join("to_root")).unwrap();
    symlink(other.path().join("private"), tree_dir.join("sub/outdir")).unwrap();
    let rel = Path::new("../../..")
        .join(other.path().file_name().unwrap())
        .join("secret.txt");
    symlink(&rel, tree_dir.join("sub/leak_rel")).unwrap();
    assert_eq!(
        std::fs::read(tree_dir.join("sub/leak_rel")).unwrap(),
        secret
    );
    // Inside the tree: a file and a directory, followed.
    symlink("real.txt", tree_dir.join("alias.txt")).unwrap();
    symlink("../data", tree_dir.join("sub/data_link")).unwrap();
    // Loops, broken links, a socket and a name that is not UTF-8.
    symlink("..", tree_dir.join("sub/up")).unwrap();
    symlink(&tree_dir, tree_dir.join("data/top")).unwrap();
    symlink("self", tree_dir.join("self")).unwrap();
    symlink("nowhere", tree_dir.join("broken")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(tree_dir.join("sock")).unwrap();
    let bad = tree_dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    std::fs::write(&bad, b"bad name").unwrap();
    std::fs::write(tree_dir.join("esc\u{1b}[31m"), b"escape").unwrap();

    let plan = within(
        "plan_put_tree on a tree with loops",
        client.plan_put_tree(&tree_dir, None),
    )
    .await
    .expect("plan_put_tree");
    let skipped = reasons(&plan.skipped, &tree_dir);
    let expected: BTreeMap<String, String> = [
        ("leak", "symlink leads outside the tree"),
        ("to_root", "symlink leads outside the tree"),
        ("sub/outdir", "symlink leads outside the tree"),
        ("sub/leak_rel", "symlink leads outside the tree"),
        ("sub/up", "directory loop"),
        ("data/top", "directory loop"),
        // Reached again through `sub/data_link`.
        ("sub/data_link/top", "directory loop"),
        ("self", "symlink loop"),
        ("broken", "broken symlink"),
        ("sock", "not a regular file"),
    ]
    .into_iter()
    .map(|(p, r)| (p.to_string(), r.to_string()))
    .collect();
    assert_eq!(skipped, expected);
    // The two names the server would refuse (not UTF-8; a control
    // character) make the copy incomplete: they are failures.
    let unnamed = reasons(&plan.failed, &tree_dir);
    assert_eq!(unnamed.len(), 2, "{unnamed:?}");
    assert!(unnamed.values().any(|r| r.contains("UTF-8")), "{unnamed:?}");
    assert!(
        unnamed.values().any(|r| r.contains("control")),
        "{unnamed:?}"
    );
    assert_eq!(
        remote_files(&plan),
        [
            "tree/alias.txt",
            "tree/data/d.txt",
            "tree/real.txt",
            "tree/sub/data_link/d.txt",
        ]
    );
    assert_eq!(
        plan.dirs,
        ["tree", "tree/data", "tree/sub", "tree/sub/data_link"]
    );
    upload(&mut client, &plan).await;

    assert_nothing_holds(&home, secret);
    let copy = home.join("tree");
    let alias = std::fs::symlink_metadata(copy.join("alias.txt")).unwrap();
    assert!(alias.is_file(), "an in-tree symlink arrives as a file");
    assert_eq!(
        std::fs::read(copy.join("alias.txt")).unwrap(),
        b"real content"
    );
    assert_eq!(
        std::fs::read(copy.join("sub/data_link/d.txt")).unwrap(),
        b"data file"
    );
    for absent in [
        "leak",
        "to_root",
        "sub/outdir",
        "sub/leak_rel",
        "sub/up",
        "self",
    ] {
        assert!(
            std::fs::symlink_metadata(copy.join(absent)).is_err(),
            "{absent} was uploaded"
        );
    }

    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn remote_symlinks_and_special_files_are_not_downloaded() {
    let dir = ServerDir::with_users(DEFAULT_USERS);
    let shared = dir.root().join("alice/shared");
    std::fs::create_dir_all(shared.join("sub/empty")).unwrap();
    std::fs::write(shared.join("ok.txt"), b"fine").unwrap();
    std::fs::write(shared.join("sub/deep.txt"), b"deep").unwrap();
    let outside = dir.base().join("outside");
    symlink(&outside, shared.join("to_outside")).unwrap();
    symlink(outside.join("secret.txt"), shared.join("sub/secret_link")).unwrap();
    symlink("ok.txt", shared.join("to_file")).unwrap();
    symlink("sub", shared.join("to_dir")).unwrap();
    symlink("..", shared.join("sub/up")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(shared.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    // Names no server should serve as they are.
    std::fs::write(shared.join("esc\u{1b}[2J"), b"escape").unwrap();
    std::fs::write(shared.join("back\\slash"), b"backslash").unwrap();
    let server = dir.start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;

    let back = temp_dir("recursive-back-");
    let plan = plan_get(&mut client, "shared", Some(back.path())).await;
    let skipped: BTreeMap<&str, &str> = plan
        .skipped
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect();
    for link in [
        "shared/to_outside",
        "shared/sub/secret_link",
        "shared/to_file",
        "shared/to_dir",
        "shared/sub/up",
    ] {
        assert_eq!(
            skipped.get(link),
            Some(&"symlink not followed"),
            "{skipped:?}"
        );
    }
    assert_eq!(skipped.get("shared/fifo"), Some(&"not a regular file"));
    // Names listed by the server that no local file should be given.
    let failed: BTreeMap<&str, &str> = plan
        .failed
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        failed,
        BTreeMap::from([
            (
                "shared/esc\u{1b}[2J",
                "the name cannot be a local file name"
            ),
            ("shared/back\\slash", "the name cannot be a local file name"),
        ])
    );
    let mut files: Vec<&str> = plan.files.iter().map(|f| f.remote.as_str()).collect();
    files.sort_unstable();
    assert_eq!(files, ["shared/ok.txt", "shared/sub/deep.txt"]);
    let copy = back.path().join("shared");
    assert_eq!(
        plan.dirs,
        [copy.clone(), copy.join("sub"), copy.join("sub/empty")]
    );
    download(&mut client, &plan).await;

    let got = snapshot(&copy, &[]);
    let expected = BTreeMap::from([
        (PathBuf::from("ok.txt"), Entry::File(b"fine".to_vec())),
        (PathBuf::from("sub"), Entry::Dir),
        (PathBuf::from("sub/deep.txt"), Entry::File(b"deep".to_vec())),
        (PathBuf::from("sub/empty"), Entry::Dir),
    ]);
    assert_eq!(got, expected);
    assert_nothing_holds(back.path(), OUTSIDE_SECRET);

    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn sources_that_are_not_directories_are_refused() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let home = open_home(&mut client, &server).await;
    let local = temp_dir("recursive-src-");
    let file = local.path().join("plain.txt");
    std::fs::write(&file, b"plain").unwrap();

    let err = within("plan", client.plan_put_tree(&file, None))
        .await
        .expect_err("a local file as the source");
    match &err {
        ClientError::LocalFile { path, message } => {
            assert_eq!(path, &file);
            assert_eq!(message, "not a directory");
        }
        other => panic!("{other:?}"),
    }
    let missing = local.path().join("missing");
    let err = within("plan", client.plan_put_tree(&missing, None))
        .await
        .expect_err("a missing local source");
    assert!(
        matches!(&err, ClientError::Local { path, source }
            if path == &missing && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );

    std::fs::write(home.join("remote.txt"), b"remote").unwrap();
    let back = temp_dir("recursive-back-");
    let err = within(
        "plan",
        client.plan_get_tree("remote.txt", Some(back.path())),
    )
    .await
    .expect_err("a remote file as the source");
    assert_eq!(err.remote_code(), Some(ErrorCode::NOT_A_DIRECTORY), "{err}");
    assert!(err.to_string().contains("remote.txt"), "{err}");
    let err = within("plan", client.plan_get_tree("nothing", Some(back.path())))
        .await
        .expect_err("a missing remote source");
    assert_eq!(err.remote_code(), Some(ErrorCode::NOT_FOUND), "{err}");
    assert_eq!(std::fs::read_dir(back.path()).unwrap().count(), 0);

    // The session goes on.
    let tree = plan_put(&mut client, local.path(), Some("after")).await;
    upload(&mut client, &tree).await;
    assert_eq!(
        std::fs::read(home.join("after/plain.txt")).unwrap(),
        b"plain"
    );
    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn make_dirs_reads_every_reply_and_returns_the_first_refusal() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let home = open_home(&mut client, &server).await;
    std::fs::write(home.join("afile"), b"a file").unwrap();
    let dirs: Vec<String> = [
        "one",
        "one/two",
        "afile/x",
        "three",
        "afile/y",
        "three/four",
    ]
    .map(String::from)
    .into();
    let err = within("make_dirs", client.make_dirs(&dirs))
        .await
        .expect_err("a directory under a file");
    assert!(err.remote_code().is_some(), "{err:?}");
    assert!(
        err.to_string().contains("afile/x"),
        "the first refusal: {err}"
    );
    for made in ["one/two", "three/four"] {
        assert!(home.join(made).is_dir(), "{made}");
    }
    // Every reply was read: the next request gets its own.
    let entry = within("stat", client.stat("three")).await.unwrap();
    assert_eq!(entry.kind, EntryKind::Directory);
    within("make_dirs", client.make_dirs(&dirs[..2]))
        .await
        .expect("existing directories are fine");
    within("make_dirs", client.make_dirs(&[])).await.unwrap();
    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

#[tokio::test]
async fn thousands_of_files_plan_quickly_and_transfer() {
    let server = TestServer::start();
    let mut client = login(&server, "alice", ALICE_PASSWORD).await;
    let local = temp_dir("recursive-src-");
    let big = local.path().join("big");
    // 3000 files of up to 64 bytes in 60 directories two levels deep.
    for top in 0..6 {
        for sub in 0..10 {
            write_files(
                &big.join(format!("t{top}/s{sub}")),
                "x",
                50,
                64,
                (top * 10 + sub) as u64 + 1,
            );
        }
    }

    let started = Instant::now();
    let tree = plan_put(&mut client, &big, None).await;
    let took = started.elapsed();
    assert!(took < PLAN_WITHIN, "planning the upload took {took:?}");
    assert_eq!(tree.files.len(), 3000);
    assert_eq!(tree.dirs.len(), 1 + 6 + 60);
    upload(&mut client, &tree).await;
    server.wait_incoming_empty();

    let back = temp_dir("recursive-back-");
    let started = Instant::now();
    let tree = plan_get(&mut client, "big", Some(back.path())).await;
    let took = started.elapsed();
    assert!(took < PLAN_WITHIN, "planning the download took {took:?}");
    assert_eq!(tree.files.len(), 3000);
    assert_eq!(tree.dirs.len(), 67);
    download(&mut client, &tree).await;
    assert!(
        snapshot(&back.path().join("big"), &[]) == snapshot(&big, &[]),
        "the downloaded copy differs"
    );
    within("quit", client.quit()).await.unwrap();
    server.assert_healthy();
}

/// A remote entry as a scripted peer lists it.
fn remote_entry(name: &str, kind: EntryKind) -> ftp_shared::message::Entry {
    ftp_shared::message::Entry {
        name: name.into(),
        kind,
        size: 0,
        modified: 0,
        mode: 0o755,
    }
}

#[tokio::test]
async fn names_from_a_hostile_peer_are_never_joined_to_a_local_path() {
    // A scripted peer: `d` is a directory listing names that would climb out
    // of the target or mean something else locally, beside `ok.txt` and `sub/`.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hostile = ["..", ".", "", "a/b", "../../escaped", "nul\0byte", "..\\x"];
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut requests = Vec::new();
        while let Some(request) = read_msg::<Request>(&mut stream) {
            let reply = match &request {
                Request::Hello { .. } => Response::Hello {
                    version: PROTOCOL_VERSION,
                    server: "scripted".into(),
                },
                Request::Stat { path } if path == "d" => Response::Stat {
                    entry: remote_entry("d", EntryKind::Directory),
                },
                Request::List { path } if path == "d" => {
                    let mut entries: Vec<_> = hostile
                        .iter()
                        .map(|name| remote_entry(name, EntryKind::Directory))
                        .collect();
                    entries.push(remote_entry("a/b", EntryKind::File));
                    entries.push(remote_entry("..", EntryKind::File));
                    entries.push(remote_entry("ok.txt", EntryKind::File));
                    entries.push(remote_entry("sub", EntryKind::Directory));
                    Response::Entries {
                        entries,
                        more: false,
                    }
                }
                Request::List { path } if path == "d/sub" => Response::Entries {
                    entries: vec![remote_entry("f", EntryKind::File)],
                    more: false,
                },
                _ => Response::error(ErrorCode::NOT_FOUND, "not scripted"),
            };
            requests.push(request);
            write_msg(&mut stream, &reply).unwrap();
        }
        requests
    });

    let target = temp_dir("recursive-back-");
    // The scripted peer speaks plaintext: what is tested is the planning.
    let mut client = within(
        "connect",
        Client::connect(&addr.to_string(), &Transport::InsecurePlaintext),
    )
    .await
    .unwrap();
    let plan = plan_get(&mut client, "d", Some(target.path())).await;
    drop(client);
    let requests = peer.join().expect("the scripted peer");
    // One Stat, then one List per directory: never one of a hostile name.
    assert_eq!(
        requests[1..],
        [
            Request::Stat { path: "d".into() },
            Request::List { path: "d".into() },
            Request::List {
                path: "d/sub".into()
            },
        ]
    );

    let top = target.path().join("d");
    assert_eq!(plan.dirs, [top.clone(), top.join("sub")]);
    let files: Vec<(&str, &Path)> = plan
        .files
        .iter()
        .map(|f| (f.remote.as_str(), f.local.as_path()))
        .collect();
    assert_eq!(
        files,
        [
            ("d/ok.txt", top.join("ok.txt").as_path()),
            ("d/sub/f", top.join("sub/f").as_path()),
        ]
    );
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    assert_eq!(plan.failed.len(), hostile.len() + 2, "{:?}", plan.failed);
    assert!(
        plan.failed
            .iter()
            .all(|(_, reason)| reason == "the name cannot be a local file name"),
        "{:?}",
        plan.failed
    );
    for dir in &plan.dirs {
        assert!(dir.starts_with(target.path()));
        assert!(!dir.components().any(|c| c == Component::ParentDir));
    }
    // Nothing was created by planning.
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}

//! A burst of clients from one machine against a server whose slots for
//! connections not yet logged in fill up: the server answers `BUSY` (or
//! replaces the oldest waiting connection, which is told `BUSY`), and each
//! client tries again after a growing pause with jitter, so that every one
//! of them gets its work done.

use std::process::{Child, Stdio};
use std::time::Instant;

use tests::{ClientEnv, DEFAULT_USERS, ServerDir, files_equal};

#[test]
fn a_burst_of_clients_from_one_address_all_get_in() {
    const CLIENTS: usize = 24;
    let dir = ServerDir::with_users(DEFAULT_USERS);
    // A share of 2 waiting connections per address: the burst cannot fit.
    let server = dir.start_args(&["--max-unauthenticated-per-address", "2"]);
    let client = ClientEnv::new();
    client.login(&server.target("alice"), tests::ALICE_PASSWORD);
    for i in 0..CLIENTS {
        std::fs::write(client.work().join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }

    let started = Instant::now();
    let children: Vec<(usize, Child)> = (0..CLIENTS)
        .map(|i| {
            let child = client
                .cmd(["--quiet", "put", &format!("f{i}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ftp-client");
            (i, child)
        })
        .collect();
    let mut failed = Vec::new();
    for (i, child) in children {
        let out = child.wait_with_output().expect("wait for ftp-client");
        if !out.status.success() {
            failed.push((i, String::from_utf8_lossy(&out.stderr).into_owned()));
        }
    }
    eprintln!(
        "{CLIENTS} parallel clients from one address done in {:?}",
        started.elapsed()
    );
    assert!(failed.is_empty(), "clients failed: {failed:#?}");
    for i in 0..CLIENTS {
        let name = format!("f{i}");
        assert!(files_equal(
            &client.work().join(&name),
            &server.home("alice").join(&name)
        ));
    }
    server.assert_healthy();
}

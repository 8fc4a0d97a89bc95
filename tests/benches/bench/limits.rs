//! The machine's limits the figures are held against: a plain TCP copy,
//! a write+fsync, and the digests' speed on one core.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use super::measure::{MIB, median, rate};

/// The limit of a network copy: one thread reads the file into the socket,
/// one writes the socket into a file; 1 MiB buffers; no fsync.
pub fn tcp_copy(from: &Path, to: &Path) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let to = to.to_path_buf();
    let receiver = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut out = std::fs::File::create(&to).expect("create");
        let mut buf = vec![0u8; MIB as usize];
        loop {
            let n = socket.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).expect("write");
        }
    });
    let mut socket = TcpStream::connect(addr).expect("connect");
    let mut input = std::fs::File::open(from).expect("open");
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = input.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        socket.write_all(&buf[..n]).expect("send");
    }
    drop(socket);
    receiver.join().expect("receiver");
}

/// The limit of durable storage: copy the file, then fsync it.
pub fn write_fsync(from: &Path, to: &PathBuf) {
    let mut input = std::fs::File::open(from).expect("open");
    let mut out = std::fs::File::create(to).expect("create");
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = input.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).expect("write");
    }
    out.sync_all().expect("fsync");
}

/// Bytes per second of BLAKE3 and SHA-256 over 256 MiB in memory.
pub fn digest_speeds() -> (f64, f64) {
    use sha2::Digest as _;
    let data = tests::random_bytes(7, 256 * MIB as usize);
    let blake3 = median(3, || {
        rate(data.len() as u64, || {
            std::hint::black_box(blake3::hash(&data));
        })
    });
    let sha256 = median(3, || {
        rate(data.len() as u64, || {
            std::hint::black_box(sha2::Sha256::digest(&data));
        })
    });
    (blake3, sha256)
}

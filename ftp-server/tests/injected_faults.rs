//! Faults injected in the storage layer, through the real server library and
//! the real client over 127.0.0.1: a disk that fills up while an upload is
//! written or while it is flushed, and a panic inside a storage call. Each
//! must give a clear error, leave the previous version and nothing partial
//! behind, and let the same session (and everyone else) go on.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ftp_client::{Client, ClientError, Secret, TlsOptions};
use ftp_server::tls::{self, Transport};
use ftp_server::users::UsersFile;
use ftp_server::{Limits, Shared, Users};
use ftp_shared::ErrorCode;
use ftp_shared::scram::StoredCredentials;
use ftp_storage::{
    Entry, FsHome, FsReader, FsStorage, FsUpload, Home, Listing, Storage, StorageError, Upload,
    VPath,
};

/// What the storage should do wrong.
#[derive(Debug, Default)]
struct Plan {
    /// Writes fail with ENOSPC once an upload holds this many bytes (0: never).
    full_after: AtomicU64,
    /// Publishing fails with ENOSPC (as an fsync on a full disk does).
    full_at_commit: AtomicBool,
}

#[derive(Debug)]
struct Faulty {
    inner: FsStorage,
    plan: Arc<Plan>,
}

#[derive(Debug)]
struct FaultyHome {
    inner: FsHome,
    plan: Arc<Plan>,
}

#[derive(Debug)]
struct FaultyUpload {
    inner: FsUpload,
    plan: Arc<Plan>,
    written: u64,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl Storage for Faulty {
    type Home = FaultyHome;
    fn home(&self, user: &str) -> Result<FaultyHome, StorageError> {
        Ok(FaultyHome {
            inner: self.inner.home(user)?,
            plan: self.plan.clone(),
        })
    }
}

impl FaultyHome {
    fn wrap(&self, inner: FsUpload) -> FaultyUpload {
        FaultyUpload {
            inner,
            plan: self.plan.clone(),
            written: 0,
        }
    }
}

impl Home for FaultyHome {
    type Reader = FsReader;
    type Upload = FaultyUpload;

    fn mkdir(&self, path: &VPath, parents: bool) -> Result<(), StorageError> {
        if path.as_str() == "boom" {
            panic!("injected panic in a storage call");
        }
        self.inner.mkdir(path, parents)
    }

    fn open_read(&self, path: &VPath) -> Result<(FsReader, u64), StorageError> {
        self.inner.open_read(path)
    }

    fn create_upload(&self, path: &VPath, size: u64) -> Result<FaultyUpload, StorageError> {
        Ok(self.wrap(self.inner.create_upload(path, size)?))
    }

    fn partial(&self, path: &VPath, size: u64) -> Result<Option<(FsReader, u64)>, StorageError> {
        self.inner.partial(path, size)
    }

    fn usage(&self) -> Result<u64, StorageError> {
        self.inner.usage()
    }

    fn list(&self, path: Option<&VPath>) -> Result<Listing, StorageError> {
        self.inner.list(path)
    }

    fn stat(&self, path: Option<&VPath>) -> Result<Entry, StorageError> {
        self.inner.stat(path)
    }

    fn remove(&self, path: &VPath) -> Result<u64, StorageError> {
        self.inner.remove(path)
    }

    fn rmdir(&self, path: &VPath) -> Result<(), StorageError> {
        self.inner.rmdir(path)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> Result<u64, StorageError> {
        self.inner.rename(from, to)
    }

    fn resume_upload(
        &self,
        path: &VPath,
        size: u64,
    ) -> Result<(FaultyUpload, FsReader, u64), StorageError> {
        let (upload, reader, kept) = self.inner.resume_upload(path, size)?;
        Ok((self.wrap(upload), reader, kept))
    }
}

impl Write for FaultyUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.plan.full_after.load(Ordering::SeqCst);
        if limit > 0 && self.written + buf.len() as u64 > limit {
            return Err(enospc());
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Upload for FaultyUpload {
    fn commit(self) -> Result<u64, StorageError> {
        if self.plan.full_at_commit.load(Ordering::SeqCst) {
            self.inner.abort();
            return Err(enospc().into());
        }
        self.inner.commit()
    }
    fn suspend(self) -> ftp_storage::Suspended {
        self.inner.suspend()
    }
    fn abort(self) {
        self.inner.abort()
    }
}

/// A server on 127.0.0.1:0 over a faulty storage, and a way to stop it.
struct Fixture {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    plan: Arc<Plan>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    fingerprint: ftp_shared::tls::Fingerprint,
}

const PASSWORD: &str = "fault-injection";

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        let mut file = UsersFile::new();
        file.set("alice", &StoredCredentials::new(PASSWORD.as_bytes(), 4096))
            .unwrap();
        file.save(&users).unwrap();
        let plan = Arc::new(Plan::default());
        let (cert_pem, key_pem) = tls::self_signed().unwrap();
        let cert = tls::from_pem(&cert_pem, &key_pem).unwrap();
        let shared = Arc::new(Shared {
            storage: Faulty {
                inner: FsStorage::open(&dir.path().join("root")).unwrap(),
                plan: plan.clone(),
            },
            users: Users::load(&users).unwrap(),
            limits: Limits::default(),
            lockouts: Default::default(),
            log_limit: Default::default(),
            quotas: Default::default(),
            transport: Transport::tls_with(cert.key.clone()).unwrap(),
            listings: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ftp_server::run(listener, shared, async {
            let _ = stopped.await;
        }));
        Fixture {
            dir,
            addr,
            plan,
            stop: Some(stop),
            fingerprint: cert.fingerprint,
        }
    }

    async fn client(&self) -> Client {
        let transport = ftp_client::Transport::Tls(TlsOptions::pinned(self.fingerprint));
        let mut client = Client::connect(&self.addr.to_string(), &transport)
            .await
            .unwrap();
        client
            .login("alice", Secret::Password(PASSWORD))
            .await
            .unwrap();
        client
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("root").join("alice")
    }

    /// Upload temps (`*.part`) left in the temp area.
    fn temps(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("root").join(".incoming"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn write_file(path: &Path, len: usize, seed: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

fn no_progress() -> impl FnMut(u64, u64) + Send {
    |_, _| {}
}

fn assert_code(result: Result<u64, ClientError>, code: ErrorCode) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.remote_code(), Some(code), "{e}");
            let text = e.to_string();
            assert!(!text.contains("os error"), "{text}");
            assert!(!text.contains("panicked"), "{text}");
            text
        }
        Ok(n) => panic!("expected {code:?}, the transfer of {n} bytes succeeded"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_while_writing_or_flushing_keeps_the_old_version() {
    let fx = Fixture::start().await;
    let local = tempfile::tempdir().unwrap();
    let old = write_file(&local.path().join("old.bin"), 100_000, 1);
    let mut client = fx.client().await;
    client
        .put_file(&local.path().join("old.bin"), "doc.bin", &mut no_progress())
        .await
        .unwrap();
    let new_path = local.path().join("new.bin");
    write_file(&new_path, 3 * 1024 * 1024, 2);

    // The disk fills up half-way through the new version.
    fx.plan.full_after.store(1024 * 1024, Ordering::SeqCst);
    let message = assert_code(
        client
            .put_file(&new_path, "doc.bin", &mut no_progress())
            .await,
        ErrorCode::NO_SPACE,
    );
    assert!(message.contains("no space left on the server"), "{message}");
    assert!(!message.contains(&fx.dir.path().display().to_string()));
    assert_eq!(std::fs::read(fx.home().join("doc.bin")).unwrap(), old);
    assert!(fx.temps().is_empty(), "temps left: {:?}", fx.temps());
    fx.plan.full_after.store(0, Ordering::SeqCst);

    // The disk is full when the upload is flushed and published.
    fx.plan.full_at_commit.store(true, Ordering::SeqCst);
    assert_code(
        client
            .put_file(&new_path, "doc.bin", &mut no_progress())
            .await,
        ErrorCode::NO_SPACE,
    );
    let small = local.path().join("small.bin");
    write_file(&small, 1000, 3);
    assert_code(
        client
            .put_file(&small, "small.bin", &mut no_progress())
            .await,
        ErrorCode::NO_SPACE,
    );
    assert_eq!(std::fs::read(fx.home().join("doc.bin")).unwrap(), old);
    assert!(!fx.home().join("small.bin").exists());
    assert!(fx.temps().is_empty(), "temps left: {:?}", fx.temps());
    fx.plan.full_at_commit.store(false, Ordering::SeqCst);

    // The same session goes on working.
    let back = local.path().join("back.bin");
    client
        .get_file("doc.bin", &back, &mut no_progress())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), old);
    client
        .put_file(&new_path, "doc.bin", &mut no_progress())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(fx.home().join("doc.bin")).unwrap(),
        std::fs::read(&new_path).unwrap()
    );
    client.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_storage_call_fails_that_request_only() {
    let fx = Fixture::start().await;
    let mut client = fx.client().await;
    let mut other = fx.client().await;
    match client.mkdir("boom", false).await {
        Err(e) => {
            assert_eq!(e.remote_code(), Some(ErrorCode::INTERNAL), "{e}");
            assert!(!e.to_string().contains("panic"), "{e}");
        }
        Ok(()) => panic!("the injected panic did not fail the request"),
    }
    // The same session, another session and a new one all go on.
    client.mkdir("after", false).await.unwrap();
    other.mkdir("other", false).await.unwrap();
    fx.client().await.mkdir("fresh", false).await.unwrap();
    for dir in ["after", "other", "fresh"] {
        assert!(fx.home().join(dir).is_dir());
    }
}

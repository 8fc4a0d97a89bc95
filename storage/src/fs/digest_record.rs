//! The digest of a stored file, recorded with it when an upload is
//! published, so that a download can send it without hashing the file
//! again (and a resumed download need not read what it skips).
//!
//! The record is the extended attribute `user.miniftp.digest` of the file:
//! `1 <algorithm> <hex digest> <size> <mtime seconds>.<nanoseconds>`. It is
//! written after the last byte and before the data is flushed, so it is as
//! durable as the file, and it follows the file through renames. It names
//! the size and modification time the file had then: a file changed since
//! (uploads never change a file in place; this is someone on the host) no
//! longer matches and is hashed as before. The client verifies every byte
//! against the digest it is sent, so a stale or forged record can fail a
//! download, never pass a corrupt one. Where the filesystem has no user
//! extended attributes nothing is recorded and downloads hash the file.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;

use ftp_shared::Digest;
use rustix::fs::XattrFlags;

const NAME: &str = "user.miniftp.digest";

fn stamp(meta: &Metadata) -> String {
    format!("{} {}.{:09}", meta.len(), meta.mtime(), meta.mtime_nsec())
}

fn algorithm(d: &Digest) -> (&'static str, &[u8; 32]) {
    match d {
        Digest::Sha256(b) => ("sha256", b),
        Digest::Blake3(b) => ("blake3", b),
    }
}

/// Records `digest` as the digest of `file` as it is now.
pub(super) fn record(file: &File, digest: &Digest) {
    let Ok(meta) = file.metadata() else {
        return;
    };
    let (name, bytes) = algorithm(digest);
    let value = format!("1 {name} {} {}", hex::encode(bytes), stamp(&meta));
    if let Err(e) = rustix::fs::fsetxattr(file, NAME, value.as_bytes(), XattrFlags::empty()) {
        tracing::debug!(error = %e, "the digest of a stored file was not recorded");
    }
}

/// The digest recorded for `file`, if one was and the file (whose metadata
/// is `meta`) has not changed since.
pub(super) fn recorded(file: &File, meta: &Metadata) -> Option<Digest> {
    let mut buf = [0u8; 192];
    let len = rustix::fs::fgetxattr(file, NAME, &mut buf).ok()?;
    parse(std::str::from_utf8(buf.get(..len)?).ok()?, &stamp(meta))
}

fn parse(value: &str, stamp_now: &str) -> Option<Digest> {
    let mut fields = value.splitn(4, ' ');
    let (version, name, digest, stamp) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if version != "1" || stamp != stamp_now {
        return None;
    }
    let bytes: [u8; 32] = hex::decode(digest).ok()?.try_into().ok()?;
    match name {
        "sha256" => Some(Digest::Sha256(bytes)),
        "blake3" => Some(Digest::Blake3(bytes)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_holds_only_for_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let file = File::open(&path).unwrap();
        let digest = Digest::Blake3([7; 32]);
        record(&file, &digest);
        let meta = file.metadata().unwrap();
        if rustix::fs::fgetxattr(&file, NAME, &mut [0u8; 192]).is_err() {
            // No user extended attributes here: nothing is recorded.
            assert_eq!(recorded(&file, &meta), None);
            return;
        }
        assert_eq!(recorded(&file, &meta), Some(digest));
        // Renamed: the record goes along.
        let moved = dir.path().join("g");
        std::fs::rename(&path, &moved).unwrap();
        let file = File::open(&moved).unwrap();
        assert_eq!(recorded(&file, &file.metadata().unwrap()), Some(digest));
        // Changed in place: it no longer holds.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&moved)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"!"))
            .unwrap();
        let file = File::open(&moved).unwrap();
        assert_eq!(recorded(&file, &file.metadata().unwrap()), None);
    }

    #[test]
    fn malformed_records_are_ignored() {
        let stamp = "5 1700000000.000000001";
        let hex32 = "07".repeat(32);
        assert!(parse(&format!("1 blake3 {hex32} {stamp}"), stamp).is_some());
        for bad in [
            format!("2 blake3 {hex32} {stamp}"),
            format!("1 md5 {hex32} {stamp}"),
            format!("1 blake3 {} {stamp}", "07".repeat(31)),
            format!("1 blake3 zz{} {stamp}", "07".repeat(31)),
            format!("1 blake3 {hex32} 6 1700000000.000000001"),
            "1 blake3".to_string(),
            String::new(),
        ] {
            assert_eq!(parse(&bad, stamp), None, "{bad:?}");
        }
    }
}

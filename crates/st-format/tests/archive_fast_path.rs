//! In-memory archives take a fast path for stored data; files take the general inflater. Both
//! must produce the same bytes and the same verdicts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_format::Manifest;
use st_format::archive::{
    ArchiveError, ArchiveIndex, ArchiveLimits, ReadAt, read_entry, write_os_package,
};
use std::io;

/// A source that hides its slice, as a file does.
struct NoSlice(Vec<u8>);

impl ReadAt for NoSlice {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.as_slice().read_exact_at(offset, buf)
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn package(kernel: &[u8], initramfs: &[u8]) -> Vec<u8> {
    let m = Manifest::new("", "boot/k", "boot/i", "").unwrap();
    write_os_package(Vec::new(), &m, kernel, initramfs, &mut |_| {}).unwrap()
}

fn read_both(
    zip: Vec<u8>,
    name: &str,
) -> (Result<Vec<u8>, ArchiveError>, Result<Vec<u8>, ArchiveError>) {
    let limits = ArchiveLimits::default();
    let read = |src: &dyn Fn(&mut Vec<u8>) -> Result<u64, ArchiveError>| {
        let mut out = Vec::new();
        src(&mut out).map(|_| out)
    };
    let index = ArchiveIndex::parse(zip.as_slice(), &limits).unwrap();
    let entry = index.get(name).unwrap().clone();
    let slow = NoSlice(zip.clone());
    let fast = read(&|out| read_entry(zip.as_slice(), &entry, out));
    let general = read(&|out| read_entry(&slow, &entry, out));
    (fast, general)
}

#[test]
fn same_bytes_on_both_paths() {
    let kernel = random(3 << 20); // incompressible: stored blocks
    let initramfs = b"compressible ".repeat(100_000); // compressed blocks
    let zip = package(&kernel, &initramfs);
    let (fast, general) = read_both(zip.clone(), "boot/k");
    assert_eq!(fast.unwrap(), kernel);
    assert_eq!(general.unwrap(), kernel);
    let (fast, general) = read_both(zip, "boot/i");
    assert_eq!(fast.unwrap(), initramfs);
    assert_eq!(general.unwrap(), initramfs);
}

#[test]
fn same_verdicts_on_damaged_stored_data() {
    let kernel = random(300_000);
    let zip = package(&kernel, b"i");
    let at = zip
        .windows(64)
        .position(|w| w == &kernel[1000..1064])
        .unwrap();
    // A changed payload byte: the CRC catches it on both paths.
    let mut bad = zip.clone();
    bad[at] ^= 1;
    let (fast, general) = read_both(bad, "boot/k");
    assert!(
        matches!(fast, Err(ArchiveError::CrcMismatch { .. })),
        "{fast:?}"
    );
    assert!(
        matches!(general, Err(ArchiveError::CrcMismatch { .. })),
        "{general:?}"
    );
    // A broken stored-block header (NLEN): the fast path declines, the inflater rejects.
    let mut bad = zip;
    let header = at - 1000 - 5 + 3;
    bad[header] ^= 0xff;
    let (fast, general) = read_both(bad, "boot/k");
    assert!(fast.is_err() && general.is_err(), "{fast:?} / {general:?}");
}

//! stboot's path verifies the structure, then inflates the kernel and initramfs once while
//! checking their CRC-32s. A properly signed archive whose kernel bytes do not match their CRC
//! must fail at extraction, so it can never be handed to the kernel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::archive::{ArchiveError, ArchiveLimits, write_os_package};
use st_format::{Descriptor, Manifest, SignatureThreshold};
use st_sign::{CertOptions, SigningKey, make_root, sign_descriptor};
use st_verify::{HashedArchive, Policy, SigningRoots, Threshold, UnixTime, verify_hashed};

#[test]
fn a_signed_archive_with_a_bad_crc_fails_extraction() {
    let manifest = Manifest::new("crc", "boot/vmlinuz", "boot/initrd", "console=ttyS0").unwrap();
    // Incompressible bytes, so the writer stores them and they appear verbatim in the zip.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let kernel: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut zip = write_os_package(
        Vec::new(),
        &manifest,
        &kernel[..],
        &b"initrd"[..],
        &mut |_| {},
    )
    .unwrap();
    // Flip a byte inside the kernel's stored deflate data (after its local header).
    let at = zip
        .windows(64)
        .position(|w| w == &kernel[5000..5064])
        .unwrap();
    zip[at] ^= 0xff;

    let key = SigningKey::from_seed(&[3; 32]).unwrap();
    let opts = CertOptions {
        not_before: UnixTime::from_secs(0),
        not_after: UnixTime::from_secs(4_000_000_000),
        serial: [1; 16],
    };
    let root = make_root(&key, &opts).unwrap();
    let archive = HashedArchive::new(zip);
    let mut d = Descriptor::unsigned("").unwrap();
    sign_descriptor(&mut d, &archive.digest(), &key, root.as_bytes()).unwrap();
    let roots = SigningRoots::from_pem(root.as_bytes()).unwrap();
    let limits = ArchiveLimits::default();
    let policy = Policy::new(
        &roots,
        Threshold::AtLeast(SignatureThreshold::new(1).unwrap()),
        UnixTime::from_secs(1_800_000_000),
        &limits,
    );
    let verified = verify_hashed(&d, archive, &policy).expect("signatures and structure are fine");
    let mut sink = Vec::new();
    match verified.extract_kernel(&mut sink) {
        Err(ArchiveError::CrcMismatch { .. }) => {}
        other => panic!("expected a CRC mismatch, got {other:?}"),
    }
    assert_eq!(verified.extract_initramfs(&mut Vec::new()).unwrap(), 6);
}

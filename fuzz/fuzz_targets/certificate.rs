#![no_main]
//! Certificate input: a signing-root PEM file, and the same bytes as a descriptor's signer
//! certificate (DER wrapped in PEM) judged against a fixed root.
use libfuzzer_sys::fuzz_target;
use st_format::{Descriptor, SignatureEntry, SignatureThreshold};
use st_verify::{ArchiveDigest, SigningRoots, Threshold, UnixTime, check_signatures};

const ROOT: &[u8] = include_bytes!("../../testdata/go-reference/keys/root.cert.pem");

fuzz_target!(|data: &[u8]| {
    let _ = SigningRoots::from_pem(data);
    let Ok(roots) = SigningRoots::from_pem(ROOT) else {
        return;
    };
    let pem = pem_wrap(data);
    let Ok(entry) = SignatureEntry::new(pem.into_bytes(), vec![0; 64]) else {
        return;
    };
    let Ok(mut d) = Descriptor::unsigned("") else {
        return;
    };
    if d.push(entry).is_ok() {
        let t = Threshold::AtLeast(SignatureThreshold::new(1).expect("1 is non-zero"));
        let report = check_signatures(
            &d,
            &ArchiveDigest::of(b"x"),
            &roots,
            t,
            UnixTime::from_secs(1_800_000_000),
        );
        // A zero signature never verifies.
        assert_eq!(report.valid(), 0);
    }
});

fn pem_wrap(der: &[u8]) -> String {
    use std::fmt::Write as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        let _ = writeln!(out, "{}", String::from_utf8_lossy(line));
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

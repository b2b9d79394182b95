#![no_main]
//! age files (st-age): the header parser, the identity unwrap and the streaming decryptor, with
//! the identity of most C2SP CCTV vectors (so the seeds reach the payload). Must never panic;
//! one write and byte-at-a-time writes give the same verdict and the same released plaintext.
//! The same bytes as an identities file must never panic either.
use std::io::Write;

use libfuzzer_sys::fuzz_target;

const IDENTITY: &[u8] =
    b"AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

fn decrypt(
    ids: &st_age::Identities,
    data: &[u8],
    piece: usize,
) -> (Vec<u8>, Result<(), st_age::AgeError>) {
    let mut out = Vec::new();
    let mut d = st_age::Decryptor::new(ids, &mut out);
    for p in data.chunks(piece.max(1)) {
        if d.write_all(p).is_err() {
            break;
        }
    }
    let r = d.finish().map(|_| ());
    (out, r)
}

fuzz_target!(|data: &[u8]| {
    let _ = st_age::Identities::parse(data);
    let ids = st_age::Identities::parse(IDENTITY).expect("the fixed identity parses");
    let whole = decrypt(&ids, data, data.len());
    let split = decrypt(&ids, data, 1 + data.first().copied().unwrap_or(0) as usize);
    assert_eq!(whole, split);
    if whole.1.is_ok() {
        // What decrypted is at most the ciphertext's size.
        assert!(whole.0.len() < data.len());
    }
});

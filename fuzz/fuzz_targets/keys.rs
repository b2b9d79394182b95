#![no_main]
//! Key file input of stmgr: private keys (PKCS#8, OpenSSH) and public keys (PKIX, ssh-ed25519).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = st_sign::SigningKey::from_pem(data);
    let _ = st_sign::parse_public_key(data);
});

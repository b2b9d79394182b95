//! `cargo xtask bench-attest`: the time to verify one attestation (the committed real swtpm
//! quote `testdata/good`: EK chain of RSA-3072 CAs, ECDSA quote, two event logs, the OS
//! package's Ed25519 signature and Sigsum proof, release list, service key), and to make one
//! credential. Configuration (trust directory, vendor CAs, Sigsum policy) is loaded once,
//! outside the timing, as a long-running verifier would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use st_attest::{
    Attestation, CredentialRandomness, Expectations, Keys, ReleaseList, ServiceKey,
    TrustExpectation, UnixTime, VendorCas, challenge, verify,
};
use st_verify::TrustDir;
use std::path::Path;
use std::time::{Duration, Instant};

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut o = [0; 32];
    o.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    o
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap();
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} |",
        v.len(),
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(mean)
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = root.join("../..");
    let json = std::fs::read(root.join("testdata/good/attestation.json")).unwrap();
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("testdata/good/verifier.json")).unwrap())
            .unwrap();
    let nonce = unhex(side["nonce"].as_str().unwrap());
    let secret = unhex(side["secret"].as_str().unwrap());
    let now = UnixTime::parse_rfc3339(side["now"].as_str().unwrap()).unwrap();
    let cas =
        VendorCas::from_pem(&std::fs::read(root.join("testdata/vendor-ca.pem")).unwrap()).unwrap();
    let dir_path = repo.join("testdata/vectors/trust/sigsum-2");
    let dir = TrustDir::load(|f, _| match std::fs::read(dir_path.join(f)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .unwrap();
    let policy = dir.sigsum_policy().unwrap().clone();
    let archive =
        std::fs::read(repo.join("testdata/vectors/cases/sigsum-and-plain-mix/ospkg.zip")).unwrap();
    let releases = ReleaseList::new(vec![sha256(&archive)]);
    let exp = Expectations {
        nonce: &nonce,
        secret: &secret,
        vendor_cas: &cas,
        trust: TrustExpectation::Dir(&dir),
        sigsum: Some(&policy),
        releases: Some(&releases),
        service_key: Some(ServiceKey::WireGuard(sha256(b"fixture wireguard key"))),
        now,
    };
    let n = 300;
    let mut parse_verify = Vec::with_capacity(n);
    let mut verify_only = Vec::with_capacity(n);
    let parsed = Attestation::from_json(&json).unwrap();
    for _ in 0..n {
        let t = Instant::now();
        let a = Attestation::from_json(&json).unwrap();
        let v = verify(&a, &exp).unwrap();
        parse_verify.push(t.elapsed());
        std::hint::black_box(v);
        let t = Instant::now();
        let v = verify(&parsed, &exp).unwrap();
        verify_only.push(t.elapsed());
        std::hint::black_box(v);
    }
    let keys = Keys {
        ek_public: parsed.ek_public.clone(),
        ek_certificate: parsed.ek_certificate.clone(),
        ak_public: parsed.ak_public.clone(),
        binding: parsed.binding.clone(),
    };
    let random = CredentialRandomness {
        seed: [1; 32],
        oaep_seed: [2; 32],
    };
    let mut cred = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(challenge(&keys, &[3; 32], &[4; 32], &random).unwrap());
        cred.push(t.elapsed());
    }
    println!(
        "st-attest, release build, {} CPU(s); attestation JSON {} bytes",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        json.len()
    );
    println!("| step | runs | min ms | median ms | mean ms |");
    println!("|---|---|---|---|---|");
    stats("verify (parsed attestation)", verify_only);
    stats("parse JSON + verify", parse_verify);
    stats("challenge (MakeCredential, RSA-2048 OAEP)", cred);
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

//! Test support: the vectors' OS packages and trust policies, the fixture files, and (in
//! `agent`) an attestation agent played by swtpm + tpm2-tools.

pub mod agent;

use st_attest::{Attestation, Expectations, ReleaseList, TrustExpectation, UnixTime, VendorCas};
use st_verify::TrustDir;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A trust policy directory of the vectors (`trust/<name>`).
pub fn trust_dir(name: &str) -> TrustDir {
    let dir = repo().join("testdata/vectors/trust").join(name);
    TrustDir::load(|file, _| match std::fs::read(dir.join(file)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .unwrap()
}

/// A case of the vectors: (archive, descriptor).
pub fn package(case: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = repo().join("testdata/vectors/cases").join(case);
    (
        std::fs::read(dir.join("ospkg.zip")).unwrap(),
        std::fs::read(dir.join("ospkg.json")).unwrap(),
    )
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    let mut o = [0; 32];
    o.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    o
}

/// What a fixture's verifier used: the nonce and secret it sent, and its time.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct VerifierSide {
    pub nonce: String,
    pub secret: String,
    /// RFC 3339.
    pub now: String,
    /// The case and trust policy the boot used (for the tests' expectations).
    pub case: String,
    pub trust: String,
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A committed fixture: the attestation and the verifier's side.
pub struct Fixture {
    pub attestation: Attestation,
    pub side: VerifierSide,
    pub nonce: Vec<u8>,
    pub secret: Vec<u8>,
    pub now: UnixTime,
}

pub fn fixture(name: &str) -> Fixture {
    let dir = testdata().join(name);
    let attestation =
        Attestation::from_json(&std::fs::read(dir.join("attestation.json")).unwrap()).unwrap();
    let side: VerifierSide =
        serde_json::from_slice(&std::fs::read(dir.join("verifier.json")).unwrap()).unwrap();
    Fixture {
        attestation,
        nonce: unhex(&side.nonce),
        secret: unhex(&side.secret),
        now: UnixTime::parse_rfc3339(&side.now).unwrap(),
        side,
    }
}

/// The vendor CAs of the fixtures (swtpm_localca's root and intermediate).
pub fn vendor_cas() -> VendorCas {
    VendorCas::from_pem(&std::fs::read(testdata().join("vendor-ca.pem")).unwrap()).unwrap()
}

/// The Sigsum policy of the vectors' trust/sigsum-2.
pub fn sigsum_policy() -> st_sigsum::Policy {
    trust_dir("sigsum-2").sigsum_policy().unwrap().clone()
}

/// Everything a verifier of `f` expects, under trust directory `dir`.
pub fn expectations<'a>(f: &'a Fixture, cas: &'a VendorCas, dir: &'a TrustDir) -> Expectations<'a> {
    Expectations {
        nonce: &f.nonce,
        secret: &f.secret,
        vendor_cas: cas,
        trust: TrustExpectation::Dir(dir),
        sigsum: None,
        releases: None,
        service_key: None,
        now: f.now,
    }
}

pub fn releases(cases: &[&str]) -> ReleaseList {
    ReleaseList::new(cases.iter().map(|c| sha256(&package(c).0)).collect())
}

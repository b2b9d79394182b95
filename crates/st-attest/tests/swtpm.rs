#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Real TPM quotes: swtpm with an EK certificate from swtpm_localca, tpm2-tools as the agent's
//! TPM side, st-attest as the verifier (software MakeCredential recovered by
//! `tpm2_activatecredential`, quotes cross-checked with `tpm2_checkquote`).
//!
//! `ST_ATTEST_REGEN=1 cargo test -p st-attest --test swtpm -- regenerate` (or
//! `crates/st-attest/testdata/regenerate.sh`) rewrites the committed fixtures in `testdata/`.

mod support;

use st_attest::tpm::Public;
use st_attest::{
    Attestation, Credential, CredentialRandomness, TrustExpectation, UnixTime, VendorCas,
    challenge, qualifying_data, verify,
};
use std::path::Path;
use support::agent::{Swtpm, bind, measure, swtpm_with_ek_cert};
use support::{VerifierSide, sha256, trust_dir};

fn random32() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

fn randomness() -> CredentialRandomness {
    CredentialRandomness {
        seed: random32(),
        oaep_seed: random32(),
    }
}

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime::from_secs(i64::try_from(secs).unwrap())
}

fn ak_name(tpm: &Swtpm) -> Vec<u8> {
    let name = Public::parse(&tpm.read("ak.pub")).unwrap().name();
    // Our name computation is tpm2-tools' (tpm2_createak -n).
    assert_eq!(name, tpm.read("ak.name"));
    name
}

/// One attestation, as the agent on `quoting` answers the verifier; the keys it presents have
/// the EK of `ek_of` (the same TPM, unless the test makes a forgery).
struct Made {
    attestation: Attestation,
    nonce: [u8; 32],
    secret: [u8; 32],
}

fn attest(quoting: &Swtpm, ek_of: &Swtpm, case: &str, trust: &str, firmware: bool) -> Made {
    let boot = measure(quoting, case, trust, firmware);
    let name = ak_name(quoting);
    let binding = bind(quoting, &name);
    let mut keys = quoting.keys(&binding);
    keys.ek_public = ek_of.read("ek.pub");
    keys.ek_certificate = Some(ek_of.read("ek.der"));
    let (nonce, secret) = (random32(), random32());
    let req = challenge(&keys, &nonce, &secret, &randomness()).unwrap();
    let cred = Credential {
        id_object: req.credential_blob.clone(),
        encrypted_secret: req.encrypted_secret.clone(),
    };
    let recovered = match quoting.activate(&cred) {
        Ok(s) => {
            assert!(
                std::ptr::eq(quoting, ek_of),
                "activation must fail on another TPM"
            );
            assert_eq!(s, secret, "the TPM recovered another secret");
            s
        }
        Err(e) => {
            assert!(!std::ptr::eq(quoting, ek_of), "activation failed: {e}");
            // The best a TPM without the EK can do: a quote over some other secret.
            vec![0u8; 32]
        }
    };
    let qualifying = qualifying_data(&nonce, &recovered, binding.as_bytes());
    let (attest, signature, pcrs) = quoting.quote(&qualifying);
    Made {
        attestation: Attestation {
            version: 1,
            attest,
            signature,
            ak_public: keys.ak_public,
            ek_public: keys.ek_public,
            ek_certificate: keys.ek_certificate,
            binding,
            pcrs: pcrs.into_iter().collect(),
            firmware_event_log: boot.firmware_log,
            stboot_event_log: Some(boot.stboot_log),
            descriptor: Some(boot.descriptor),
            archive_sha256: Some(boot.archive_sha256),
        },
        nonce,
        secret,
    }
}

fn vendor_ca_pem(ca: &Path) -> Vec<u8> {
    [
        std::fs::read(ca.join("swtpm-localca-rootca-cert.pem")).unwrap(),
        std::fs::read(ca.join("issuercert.pem")).unwrap(),
    ]
    .concat()
}

#[test]
fn a_fresh_swtpm_attestation_verifies_and_a_replay_does_not() {
    let ca = tempfile::tempdir().unwrap();
    let tpm = swtpm_with_ek_cert(ca.path());
    tpm.make_keys();
    let made = attest(&tpm, &tpm, "sigsum-and-plain-mix", "sigsum-2", true);
    let cas = VendorCas::from_pem(&vendor_ca_pem(ca.path())).unwrap();
    let dir = trust_dir("sigsum-2");
    let policy = dir.sigsum_policy().unwrap().clone();
    let exp = st_attest::Expectations {
        nonce: &made.nonce,
        secret: &made.secret,
        vendor_cas: &cas,
        trust: TrustExpectation::Dir(&dir),
        sigsum: Some(&policy),
        releases: None,
        service_key: Some(st_attest::ServiceKey::WireGuard(sha256(
            b"fixture wireguard key",
        ))),
        now: now(),
    };
    let v = verify(&made.attestation, &exp).unwrap();
    let line = v.summary();
    assert!(line.starts_with("runs os-1.zip "), "{line}");
    assert!(line.contains("signed by 2 of 2"), "{line}");
    assert!(line.contains("logged at index 3"), "{line}");
    assert!(
        v.firmware == st_attest::FirmwarePcrs::Checked((0..8).collect()),
        "{line}"
    );
    // The same quote against the next request's nonce: refused.
    let other = random32();
    let e = verify(
        &made.attestation,
        &st_attest::Expectations {
            nonce: &other,
            ..exp
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "not-fresh", "{e}");
}

fn write_fixture(dir: &Path, made: &Made, case: &str, trust: &str, now: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("attestation.json"), made.attestation.to_json()).unwrap();
    let side = VerifierSide {
        nonce: st_measure::hex(&made.nonce),
        secret: st_measure::hex(&made.secret),
        now: now.to_string(),
        case: case.to_string(),
        trust: trust.to_string(),
    };
    let mut json = serde_json::to_vec_pretty(&side).unwrap();
    json.push(b'\n');
    std::fs::write(dir.join("verifier.json"), json).unwrap();
}

fn rfc3339(t: UnixTime) -> String {
    // Days from civil (Howard Hinnant's algorithm), enough for a fixture's timestamp.
    let secs = t.as_secs();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Rewrites `testdata/` (only with `ST_ATTEST_REGEN=1`): the vendor CA, and three real quotes:
/// `good` (the vectors' sigsum-and-plain-mix under trust/sigsum-2, a firmware log), `unlogged`
/// (good-2-of-3, plain signatures only, under trust/sigsum-2, no firmware log) and `other-ek`
/// (a second TPM's AK and quote presented with the first TPM's EK and certificate: its
/// activation fails, so it quotes another secret).
#[test]
fn regenerate() {
    if std::env::var_os("ST_ATTEST_REGEN").is_none() {
        eprintln!("set ST_ATTEST_REGEN=1 to rewrite crates/st-attest/testdata");
        return;
    }
    let out = support::testdata();
    let ca = tempfile::tempdir().unwrap();
    let a = swtpm_with_ek_cert(ca.path());
    a.make_keys();
    let b = swtpm_with_ek_cert(ca.path());
    b.make_keys();
    // An hour after the CA was made: every certificate is valid then.
    let when = rfc3339(UnixTime::from_secs(now().as_secs() + 3600));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("vendor-ca.pem"), vendor_ca_pem(ca.path())).unwrap();
    let good = attest(&a, &a, "sigsum-and-plain-mix", "sigsum-2", true);
    write_fixture(
        &out.join("good"),
        &good,
        "sigsum-and-plain-mix",
        "sigsum-2",
        &when,
    );
    // PCRs 12-15 only grow: a second boot needs a TPM reset.
    let unlogged = attest_after_reset(&a, "good-2-of-3", "sigsum-2");
    write_fixture(
        &out.join("unlogged"),
        &unlogged,
        "good-2-of-3",
        "sigsum-2",
        &when,
    );
    let forged = attest(&b, &a, "sigsum-and-plain-mix", "sigsum-2", true);
    write_fixture(
        &out.join("other-ek"),
        &forged,
        "sigsum-and-plain-mix",
        "sigsum-2",
        &when,
    );
}

/// Reset the TPM (PCRs back to zero, as at a reboot) and attest another boot.
fn attest_after_reset(tpm: &Swtpm, case: &str, trust: &str) -> Made {
    tpm.reset();
    attest(tpm, tpm, case, trust, false)
}

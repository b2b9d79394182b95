//! Certificate rules of the verifier that the scenario vectors do not cover one by one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use st_format::{Descriptor, SignatureEntry, SignatureThreshold};
use st_sign::SigningKey;
use st_verify::{ArchiveDigest, SigningRoots, SkipReason, Threshold, UnixTime, check_signatures};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn key(seed: u8) -> (SigningKey, KeyPair) {
    let k = SigningKey::from_seed(&[seed; 32]).unwrap();
    let pem = k.to_pkcs8_pem();
    (k, KeyPair::from_pem(&pem).unwrap())
}

fn params(ca: bool, usages: Vec<KeyUsagePurpose>) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, if ca { "root" } else { "leaf" });
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p.key_usages = usages;
    p
}

/// Verify one signature by a leaf made from `leaf_params`, issued by a root made from
/// `root_params`.
fn verdict(
    root_params: CertificateParams,
    leaf_params: CertificateParams,
) -> Result<(), SkipReason> {
    let (_, root_kp) = key(1);
    let root = root_params.self_signed(&root_kp).unwrap();
    let issuer = Issuer::new(root_params, root_kp);
    let (leaf_key, leaf_kp) = key(2);
    let leaf = leaf_params.signed_by(&leaf_kp, &issuer).unwrap();
    let digest = ArchiveDigest::of(b"archive");
    let mut d = Descriptor::unsigned("").unwrap();
    d.push(
        SignatureEntry::new(
            leaf.pem().into_bytes(),
            leaf_key.sign(digest.as_bytes()).to_vec(),
        )
        .unwrap(),
    )
    .unwrap();
    let roots = SigningRoots::from_pem(root.pem().as_bytes()).unwrap();
    let t = Threshold::AtLeast(SignatureThreshold::new(1).unwrap());
    let report = check_signatures(&d, &digest, &roots, t, NOW);
    report.outcomes[0].verdict.clone()
}

#[test]
fn a_well_formed_leaf_counts() {
    let root = params(
        true,
        vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ],
    );
    assert_eq!(
        verdict(root, params(false, vec![KeyUsagePurpose::DigitalSignature])),
        Ok(())
    );
}

#[test]
fn leaf_key_usage_must_allow_digital_signature() {
    let root = params(true, vec![KeyUsagePurpose::KeyCertSign]);
    let leaf = params(false, vec![KeyUsagePurpose::KeyEncipherment]);
    assert_eq!(verdict(root, leaf), Err(SkipReason::KeyUsage));
}

#[test]
fn issuing_root_must_be_a_ca_allowed_to_sign_certificates() {
    let not_ca = params(false, vec![]);
    assert!(matches!(
        verdict(not_ca, params(false, vec![])),
        Err(SkipReason::RootMayNotIssue { .. })
    ));
    let no_cert_sign = params(true, vec![KeyUsagePurpose::DigitalSignature]);
    assert!(matches!(
        verdict(no_cert_sign, params(false, vec![])),
        Err(SkipReason::RootMayNotIssue { .. })
    ));
}

#[test]
fn signing_roots_must_be_ed25519() {
    let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params(true, vec![]).self_signed(&kp).unwrap();
    let err = SigningRoots::from_pem(cert.pem().as_bytes())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("certificate 0") && err.contains("Ed25519"),
        "{err}"
    );
    assert!(SigningRoots::from_pem(b"").is_err());
    assert!(
        SigningRoots::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
}

#[test]
fn several_roots_each_sign_their_own_leaves() {
    let (_, a_kp) = key(3);
    let (_, b_kp) = key(4);
    let pa = params(true, vec![]);
    let mut pb = params(true, vec![]);
    pb.distinguished_name
        .push(rcgen::DnType::CommonName, "root b");
    let a = pa.self_signed(&a_kp).unwrap();
    let b = pb.self_signed(&b_kp).unwrap();
    let ib = Issuer::new(pb, b_kp);
    let (leaf_key, leaf_kp) = key(5);
    let leaf = params(false, vec![]).signed_by(&leaf_kp, &ib).unwrap();
    let digest = ArchiveDigest::of(b"x");
    let mut d = Descriptor::unsigned("").unwrap();
    d.push(
        SignatureEntry::new(
            leaf.pem().into_bytes(),
            leaf_key.sign(digest.as_bytes()).to_vec(),
        )
        .unwrap(),
    )
    .unwrap();
    let t = Threshold::AtLeast(SignatureThreshold::new(1).unwrap());
    let both = SigningRoots::from_pem(format!("{}{}", a.pem(), b.pem()).as_bytes()).unwrap();
    assert_eq!(both.len(), 2);
    assert!(check_signatures(&d, &digest, &both, t, NOW).threshold_met());
    let only_a = SigningRoots::from_pem(a.pem().as_bytes()).unwrap();
    let r = check_signatures(&d, &digest, &only_a, t, NOW);
    assert_eq!(r.outcomes[0].verdict, Err(SkipReason::NotIssuedByRoot));
}

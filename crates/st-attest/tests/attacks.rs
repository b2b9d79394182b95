#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Every way the verifier says no, on real swtpm quotes (the committed fixtures of
//! `testdata/`, made by `tests/swtpm.rs`'s `regenerate`), and what it says when it says yes.

mod support;

use st_attest::{
    Attestation, FirmwarePcrs, Refusal, ServiceKey, TrustExpectation, UnixTime, VendorCas, verify,
};
use support::{
    Fixture, expectations, fixture, releases, sha256, sigsum_policy, trust_dir, vendor_cas,
};

fn wireguard() -> ServiceKey {
    ServiceKey::WireGuard(sha256(b"fixture wireguard key"))
}

fn refusal(f: &Fixture, att: &Attestation, trust: &str) -> Refusal {
    let cas = vendor_cas();
    let dir = trust_dir(trust);
    verify(att, &expectations(f, &cas, &dir)).unwrap_err()
}

#[test]
fn the_good_attestation_is_accepted_and_explained() {
    let f = fixture("good");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let policy = sigsum_policy();
    let list = releases(&["sigsum-and-plain-mix"]);
    let mut exp = expectations(&f, &cas, &dir);
    exp.sigsum = Some(&policy);
    exp.releases = Some(&list);
    exp.service_key = Some(wireguard());
    let v = verify(&f.attestation, &exp).unwrap();
    let archive = st_measure::hex(&sha256(&support::package("sigsum-and-plain-mix").0));
    assert_eq!(
        v.summary(),
        format!(
            "runs os-1.zip {archive}, signed by 2 of 2 ({}; threshold 2), logged at index 3, \
             released, service key {} bound",
            v.signers.join(", "),
            wireguard()
        )
    );
    // The vectors' signers are named by their key (CN = base64 of the public key).
    assert_eq!(v.signers.len(), 2);
    assert!(
        v.signers.iter().all(|s| s.starts_with("CN=")),
        "{:?}",
        v.signers
    );
    assert_eq!(v.identity, "host-1");
    assert_eq!(v.firmware, FirmwarePcrs::Checked((0..8).collect()));
    assert_eq!(v.logged.as_ref().unwrap().tree_size, 6);
    assert_eq!(v.logged.as_ref().unwrap().entry, 0);
    assert_eq!(v.ek_chain.len(), 3, "{:?}", v.ek_chain);
    assert!(
        v.ek_chain[2].contains("swtpm-localca-rootca"),
        "{:?}",
        v.ek_chain
    );
    // The reasons say each step, in order.
    let reasons = v.reasons.join("\n");
    for want in [
        "EK (RSA 2048) certified",
        "quote signed by the AK (ECC NIST P-256",
        "fresh",
        "PCRs 12-14 equal the replay of stboot's event log (7 events",
        "PCR 15 is the binding statement",
        "equal the replay of the firmware's event log",
        "PCR 13: the expected trust policy",
        "signed by 2 of 2",
        "Sigsum-logged under the given policy",
        "on the release list",
        "is bound in the quote",
    ] {
        assert!(reasons.contains(want), "{want:?} not in\n{reasons}");
    }
    let json = v.to_json();
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["archive"]["sha256"], archive);
    assert_eq!(json["logged"]["leaf_index"], 3);
    assert_eq!(
        json["firmware_pcrs"]["checked"].as_array().unwrap().len(),
        8
    );
}

#[test]
fn the_trust_policy_may_be_given_by_its_pcr13_value() {
    let f = fixture("good");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let by_dir = verify(&f.attestation, &expectations(&f, &cas, &dir)).unwrap();
    // What `stmgr measure predict` gives for trust/sigsum-2: stboot's PCR 13 events from zero.
    let mut exp = expectations(&f, &cas, &dir);
    exp.trust = TrustExpectation::Pcr13(by_dir.trust_policy_pcr13);
    let by_hash = verify(&f.attestation, &exp).unwrap();
    assert_eq!(by_hash.summary(), by_dir.summary());
    exp.trust = TrustExpectation::Pcr13([0; 32]);
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "trust-policy", "{e}");
}

#[test]
fn another_os_package_booted_is_not_released() {
    // The boot ran good-2-of-3 (signed by 2, under the same trust policy); the verifier
    // expects the one release.
    let f = fixture("unlogged");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let list = releases(&["sigsum-and-plain-mix"]);
    let mut exp = expectations(&f, &cas, &dir);
    exp.releases = Some(&list);
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "not-released", "{e}");
    // Without archive_sha256 the archive is looked for on the list: not there either.
    let mut att = f.attestation.clone();
    att.archive_sha256 = None;
    let e = verify(&att, &exp).unwrap_err();
    assert_eq!(e.code(), "not-released", "{e}");
}

#[test]
fn another_os_package_booted_cannot_be_passed_off_as_the_released_one() {
    let f = fixture("unlogged");
    let good = fixture("good");
    // The released package's descriptor in place of the booted one's.
    let mut att = f.attestation.clone();
    att.descriptor = good.attestation.descriptor.clone();
    let e = refusal(&f, &att, "sigsum-2");
    assert_eq!(e.code(), "descriptor-digest", "{e}");
    // The released archive's SHA-256 claimed.
    let mut att = f.attestation.clone();
    att.archive_sha256 = good.attestation.archive_sha256;
    let e = refusal(&f, &att, "sigsum-2");
    assert_eq!(e.code(), "archive-digest", "{e}");
    // The released package's whole stboot log: PCR 12 does not replay.
    let mut att = f.attestation.clone();
    att.stboot_event_log = good.attestation.stboot_event_log.clone();
    att.descriptor = good.attestation.descriptor.clone();
    att.archive_sha256 = good.attestation.archive_sha256;
    let e = refusal(&f, &att, "sigsum-2");
    assert!(matches!(e, Refusal::Pcr { pcr: 12, .. }), "{e}");
}

#[test]
fn another_trust_policy_is_refused_naming_the_event() {
    let f = fixture("good");
    for (trust, event) in [
        ("sigsum-1", "trust-policy"),
        ("policy-2", "sigsum-policy"),
        ("two-roots-2", "signing-root"),
    ] {
        match refusal(&f, &f.attestation, trust) {
            Refusal::TrustPolicy { event: e, .. } => assert_eq!(e, event, "{trust}"),
            other => panic!("{trust}: {other}"),
        }
    }
}

/// The log without record `index` (among the records after the header).
fn without_event(log: &[u8], index: usize) -> Vec<u8> {
    let parsed = st_measure::parse_log(log).unwrap();
    let start = parsed.events[index].offset;
    let end = parsed
        .events
        .get(index + 1)
        .map_or(log.len() - parsed.trailing_zeros, |e| e.offset);
    [&log[..start], &log[end..]].concat()
}

#[test]
fn an_event_log_edited_to_hide_an_event_does_not_replay() {
    let f = fixture("good");
    let log = f.attestation.stboot_event_log.clone().unwrap();
    // Hide the Sigsum policy event (PCR 13), then the TLS roots.
    for (index, pcr) in [(5, 13), (4, 13), (6, 14), (0, 12)] {
        let mut att = f.attestation.clone();
        att.stboot_event_log = Some(without_event(&log, index));
        match refusal(&f, &att, "sigsum-2") {
            Refusal::Pcr { pcr: p, .. } => assert_eq!(p, pcr, "event {index}"),
            other => panic!("event {index}: {other}"),
        }
    }
    // The firmware's log, one event hidden.
    let mut att = f.attestation.clone();
    att.firmware_event_log = Some(without_event(att.firmware_event_log.as_ref().unwrap(), 0));
    let e = refusal(&f, &att, "sigsum-2");
    assert!(matches!(e, Refusal::Pcr { pcr: 0, .. }), "{e}");
}

#[test]
fn an_event_whose_data_is_not_what_was_measured_is_refused() {
    // The digests (and so the replay) unchanged, the trust policy event's data rewritten to a
    // threshold of 1: the content check catches it.
    let f = fixture("good");
    let log = f.attestation.stboot_event_log.clone().unwrap();
    let from = br#""ospkg_signature_threshold":2"#;
    let to = br#""ospkg_signature_threshold":1"#;
    let at = log.windows(from.len()).position(|w| w == from).unwrap();
    let mut edited = log.clone();
    edited[at..at + to.len()].copy_from_slice(to);
    let mut att = f.attestation.clone();
    att.stboot_event_log = Some(edited);
    let e = refusal(&f, &att, "sigsum-1");
    assert!(matches!(e, Refusal::StbootLayout { index: 2, .. }), "{e}");
}

#[test]
fn a_replayed_old_quote_is_refused() {
    let f = fixture("good");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let mut exp = expectations(&f, &cas, &dir);
    let fresh = [0x55u8; 32];
    exp.nonce = &fresh;
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "not-fresh", "{e}");
    // The nonce alone is not enough: the secret the credential wrapped must be in it too.
    let mut exp = expectations(&f, &cas, &dir);
    exp.secret = &fresh;
    assert_eq!(
        verify(&f.attestation, &exp).unwrap_err().code(),
        "not-fresh"
    );
}

#[test]
fn a_substituted_service_key_is_refused() {
    let f = fixture("good");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let mut exp = expectations(&f, &cas, &dir);
    exp.service_key = Some(ServiceKey::WireGuard([9; 32]));
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "service-key", "{e}");
    exp.service_key = Some(ServiceKey::TlsSpkiSha256([9; 32]));
    assert_eq!(
        verify(&f.attestation, &exp).unwrap_err().code(),
        "service-key"
    );
    exp.service_key = Some(ServiceKey::TlsSpkiSha256(sha256(b"fixture tls spki")));
    verify(&f.attestation, &exp).unwrap();
    // A man in the middle rewriting the binding to carry its own key: the quote does not cover
    // that binding.
    let mut att = f.attestation.clone();
    let theirs = ServiceKey::WireGuard([9; 32]).to_string();
    let ours = wireguard().to_string();
    att.binding = att.binding.replace(
        ours.trim_start_matches("wireguard:"),
        theirs.trim_start_matches("wireguard:"),
    );
    assert_ne!(att.binding, f.attestation.binding);
    exp.service_key = Some(ServiceKey::WireGuard([9; 32]));
    assert_eq!(verify(&att, &exp).unwrap_err().code(), "not-fresh");
}

#[test]
fn an_ak_not_on_the_eks_tpm_is_refused() {
    // A second TPM's AK and quote, presented with the first TPM's EK and its valid certificate:
    // the credential was made for the first EK, the second TPM could not recover the secret.
    let f = fixture("other-ek");
    let e = refusal(&f, &f.attestation, "sigsum-2");
    assert_eq!(e.code(), "not-fresh", "{e}");
    // Everything else about it is in order: the EK certificate and the quote signature pass.
    assert!(e.to_string().contains("AK not on the EK's TPM"), "{e}");
}

#[test]
fn an_ak_that_is_not_a_restricted_fixed_signing_key_is_refused() {
    let f = fixture("good");
    let mut att = f.attestation.clone();
    // TPM2B size (2), type (2), nameAlg (2), then objectAttributes: clear fixedTPM (bit 1).
    att.ak_public[9] &= !0x02;
    match refusal(&f, &att, "sigsum-2") {
        Refusal::AkAttributes { missing, .. } => assert_eq!(missing, "fixedtpm"),
        other => panic!("{other}"),
    }
    let mut att = f.attestation.clone();
    att.ak_public[7] &= !0x01; // restricted (bit 16)
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "ak-attributes");
}

#[test]
fn a_package_not_logged_is_refused_when_sigsum_is_required() {
    let f = fixture("unlogged");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let policy = sigsum_policy();
    let mut exp = expectations(&f, &cas, &dir);
    exp.sigsum = Some(&policy);
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "not-logged", "{e}");
    // Without the requirement it is accepted, and says it is not logged and that the
    // firmware PCRs are unchecked (this boot sent no firmware log).
    let list = releases(&["good-2-of-3"]);
    let mut exp = expectations(&f, &cas, &dir);
    exp.releases = Some(&list);
    let v = verify(&f.attestation, &exp).unwrap();
    let want = format!(
        "signed by 2 of 2 ({}; threshold 2), not Sigsum-logged, released",
        v.signers.join(", ")
    );
    assert!(v.summary().contains(&want), "{}", v.summary());
    assert!(
        v.summary()
            .ends_with("; firmware PCRs 0-7 unchecked (no firmware log)"),
        "{}",
        v.summary()
    );
    assert_eq!(v.firmware, FirmwarePcrs::NoLog);
}

#[test]
fn a_package_not_signed_by_the_threshold_is_refused() {
    // The same boot judged under a stricter reading is not possible (PCR 13 fixes the policy),
    // but the signatures are re-checked: at a time the signers' certificates are not valid,
    // the threshold is not met.
    let f = fixture("unlogged");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let mut exp = expectations(&f, &cas, &dir);
    exp.now = UnixTime::parse_rfc3339("2100-01-01T00:00:00Z").unwrap();
    // The EK chain is valid until 9999, so the signatures are what fail.
    let e = verify(&f.attestation, &exp).unwrap_err();
    assert_eq!(e.code(), "signatures", "{e}");
}

#[test]
fn the_ek_certificate_must_chain_to_the_vendor_cas_and_certify_the_ek() {
    let f = fixture("good");
    let dir = trust_dir("sigsum-2");
    let none = VendorCas::new(&[], &[]).unwrap();
    let e = verify(&f.attestation, &expectations(&f, &none, &dir)).unwrap_err();
    assert_eq!(e.code(), "ek-chain", "{e}");
    // The root alone, without the intermediate that issued the EK certificate.
    let pem = std::fs::read(support::testdata().join("vendor-ca.pem")).unwrap();
    let ders = st_attest::ekcert::pem_certificates(&pem).unwrap();
    let root_only = VendorCas::new(&ders[..1], &[]).unwrap();
    let e = verify(&f.attestation, &expectations(&f, &root_only, &dir)).unwrap_err();
    assert_eq!(e.code(), "ek-chain", "{e}");
    // Before the CA existed.
    let cas = vendor_cas();
    let mut exp = expectations(&f, &cas, &dir);
    exp.now = UnixTime::parse_rfc3339("2020-01-01T00:00:00Z").unwrap();
    assert_eq!(verify(&f.attestation, &exp).unwrap_err().code(), "ek-chain");
    // No certificate at all.
    let mut att = f.attestation.clone();
    att.ek_certificate = None;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "no-ek-certificate");
    // An EK that is not the certified one (one modulus byte changed).
    let mut att = f.attestation.clone();
    let n = att.ek_public.len();
    att.ek_public[n - 10] ^= 1;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "ek-certificate-key");
}

#[test]
fn a_tampered_quote_or_pcr_value_is_refused() {
    let f = fixture("good");
    let mut att = f.attestation.clone();
    let n = att.attest.len();
    att.attest[n - 1] ^= 1; // the PCR digest
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "quote-signature");
    let mut att = f.attestation.clone();
    let n = att.signature.len();
    att.signature[n - 1] ^= 1;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "quote-signature");
    let mut att = f.attestation.clone();
    att.pcrs.get_mut(&13).unwrap()[0] ^= 1;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "pcr-digest");
    let mut att = f.attestation.clone();
    att.pcrs.remove(&0);
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "pcr-selection");
    let mut att = f.attestation.clone();
    att.pcrs.insert(16, vec![0; 32]);
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "pcr-selection");
}

#[test]
fn missing_evidence_is_refused() {
    let f = fixture("good");
    let mut att = f.attestation.clone();
    att.descriptor = None;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "no-descriptor");
    let mut att = f.attestation.clone();
    att.stboot_event_log = None;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "event-log");
    let mut att = f.attestation.clone();
    att.archive_sha256 = None;
    assert_eq!(refusal(&f, &att, "sigsum-2").code(), "archive-unknown");
    // With the release list the archive is found on it.
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let list = releases(&["good-1-of-1", "sigsum-and-plain-mix"]);
    let mut exp = expectations(&f, &cas, &dir);
    exp.releases = Some(&list);
    let v = verify(&att, &exp).unwrap();
    assert_eq!(v.released, Some(true));
    let e = Refusal::NoDescriptor.to_json();
    assert_eq!(e["code"], "no-descriptor");
}

#[test]
fn the_committed_attestations_parse_from_their_json() {
    for name in ["good", "unlogged", "other-ek"] {
        let f = fixture(name);
        let again = Attestation::from_json(&f.attestation.to_json()).unwrap();
        assert_eq!(again, f.attestation, "{name}");
    }
}

#[test]
fn byte_flips_anywhere_in_the_tpm_structures_and_logs_never_panic() {
    // Every flip is either refused or (event data the replay does not cover, such as the
    // firmware's event data) harmless; none may panic or be accepted with a changed verdict.
    let f = fixture("good");
    let cas = vendor_cas();
    let dir = trust_dir("sigsum-2");
    let exp = expectations(&f, &cas, &dir);
    let good = verify(&f.attestation, &exp).unwrap().summary();
    type Field = fn(&mut Attestation) -> &mut Vec<u8>;
    let fields: [(&str, Field); 6] = [
        ("attest", |a| &mut a.attest),
        ("signature", |a| &mut a.signature),
        ("ak_public", |a| &mut a.ak_public),
        ("ek_public", |a| &mut a.ek_public),
        ("stboot_event_log", |a| a.stboot_event_log.as_mut().unwrap()),
        ("firmware_event_log", |a| {
            a.firmware_event_log.as_mut().unwrap()
        }),
    ];
    let mut refused = 0;
    for (name, field) in fields {
        let len = field(&mut f.attestation.clone()).len();
        // Every byte of the small structures, every 5th of the logs.
        let step = if len > 600 { 5 } else { 1 };
        for i in (0..len).step_by(step) {
            let mut att = f.attestation.clone();
            field(&mut att)[i] ^= 0x41;
            match verify(&att, &exp) {
                // The archive's name is event data no digest covers: a changed name is
                // reported as unmeasured, the package still named by its SHA-256.
                Ok(v) if !v.archive_label_measured => {
                    assert_eq!(name, "stboot_event_log");
                    assert!(
                        v.summary().contains("by the log, unmeasured"),
                        "{}",
                        v.summary()
                    );
                    let rest = |s: &str, sep: &str| s.split_once(sep).map(|(_, r)| r.to_string());
                    assert_eq!(rest(&v.summary(), "unmeasured), "), rest(&good, ", "));
                }
                Ok(v) => assert_eq!(v.summary(), good, "{name}[{i}] changed the verdict"),
                Err(_) => refused += 1,
            }
        }
    }
    assert!(refused > 500, "{refused}");
}

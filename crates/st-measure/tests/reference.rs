//! Layout v1 against the Go reference: a package made by the reference's stmgr, and the facts
//! read from the reference's code (stboot 3934def), pinned byte for byte.
//!
//! Expected values were computed outside this crate (Python hashlib and `openssl x509 -outform
//! DER` over the same files), not with the code under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_format::{Descriptor, TrustPolicy};
use st_measure::{
    ArchiveSource, Bank, EventKind, EventLog, Inputs, events, hex, parse_log, predict, replay,
};

const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/go-reference");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{REF}/{path}")).unwrap()
}

fn der(path: &str) -> Vec<u8> {
    let mut ders = st_verify::parse_certificate_pems(&read(path)).unwrap();
    assert_eq!(ders.len(), 1);
    ders.remove(0)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Bank::Sha256.hash(b).try_into().unwrap()
}

struct Fixture {
    archive: Vec<u8>,
    descriptor_bytes: Vec<u8>,
    descriptor: Descriptor,
    policy: TrustPolicy,
    root: Vec<u8>,
    tls: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let descriptor_bytes = read("cases/01-good-1sig.json");
    Fixture {
        archive: read("cases/01-good-1sig.zip"),
        descriptor: Descriptor::from_json(&descriptor_bytes).unwrap(),
        descriptor_bytes,
        policy: TrustPolicy::from_json(&read("policy-threshold-1.json")).unwrap(),
        root: der("keys/root.cert.pem"),
        // Two certificates standing in for TLS roots: any DER works, order matters.
        tls: vec![
            der("keys/rogue-root.cert.pem"),
            der("keys/signer1.cert.pem"),
        ],
    }
}

fn the_events(f: &Fixture, source: ArchiveSource<'_>, identity: &[u8]) -> Vec<st_measure::Event> {
    let roots = [f.root.as_slice()];
    let tls: Vec<&[u8]> = f.tls.iter().map(Vec::as_slice).collect();
    events(&Inputs {
        archive_sha256: sha256(&f.archive),
        archive_source: source,
        descriptor_bytes: &f.descriptor_bytes,
        descriptor: &f.descriptor,
        trust_policy: &f.policy,
        signing_roots: &roots,
        tls_roots: &tls,
        identity,
        sigsum_policy: None,
    })
}

#[test]
fn go_made_package_gives_the_pinned_events_and_pcrs() {
    let f = fixture();
    let ev = the_events(&f, ArchiveSource::Initramfs, b"host-1");
    let kinds: Vec<_> = ev.iter().map(|e| e.kind().unwrap()).collect();
    // The reference's six, in its order (no Sigsum policy here).
    assert_eq!(
        kinds,
        [
            EventKind::OspkgArchive,
            EventKind::OspkgDescriptor,
            EventKind::TrustPolicy,
            EventKind::SigningRoot,
            EventKind::TlsRoots,
            EventKind::Identity
        ]
    );
    let measured: Vec<String> = ev.iter().map(|e| hex(&e.measured)).collect();
    assert_eq!(
        measured,
        [
            "1e817aa5785d2cad6557f91ff91fd201e7f45daceeb83bca57221d350b5350cb",
            "e4a1490d07bf0bc1ca6b6b28362063649a165e911360d21d83b7561ee649ea74",
            "f692db9769d75412df7c1f14c572025ba372782e2104d45fa83ac085ecf4d869",
            "89e2a45ee4239188fe9428425873f1570fa2bfd9ea0cef380ed143883ddc7e2e",
            "026616f84277fb654f42d0898b98b9d2b15fb0d2372f8042b3b09522f6e69c98",
            "4a1796ac493525ff45c4e74eef19d7a30d2bfff7e693ef67e2a7e8efe62a98ef",
        ]
    );
    // stboot.go: an OS package from the initramfs is named "OS package from initramfs".
    assert_eq!(ev[0].data, b"OS package from initramfs");
    // Descriptor event data: stboot measures `osp.DescriptorBytes()` = ospkg/descriptor.go
    // `Descriptor.Bytes()` = json.MarshalIndent(d, "", "  "). The reference's stmgr v0.2.2
    // wrote this file with the same function (ospkg/sign.go: osp.DescriptorBytes(), stboot
    // v0.2.0, whose descriptor.go equals 3934def's), so the re-serialisation is the file.
    assert_eq!(ev[1].data, f.descriptor_bytes);
    // trust/policy.go: Policy{SignatureThreshold int `json:"ospkg_signature_threshold"`,
    // FetchMethod `json:"ospkg_fetch_method"`}, FetchMethod.MarshalJSON -> its string; stboot.go
    // measures json.Marshal(stOptions.TrustPolicy): compact, this field order.
    assert_eq!(
        ev[2].data,
        br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#
    );
    assert_eq!(ev[3].data, f.root);
    // stboot.go: buf.Write(c.Raw) for each HTTPS root, in file order.
    assert_eq!(ev[4].data, [f.tls[0].clone(), f.tls[1].clone()].concat());
    assert_eq!(ev[5].data, b"host-1");
    for e in &ev {
        // u-root tss.Measure (TPM 2.0): sha256.Sum256(data) then PCRExtend(AlgSHA256): the
        // sha256 bank gets SHA-256(measured).
        assert_eq!(e.digest(Bank::Sha256), Bank::Sha256.hash(&e.measured));
    }

    let pcrs = predict(&ev, &Bank::ALL);
    let want = [
        (Bank::Sha1, 12, "ad52c30779441d0916411e944f3f3a55c2fe1c70"),
        (Bank::Sha1, 13, "2d51a8361a8c00df8c580b3155db361f0303d1ef"),
        (Bank::Sha1, 14, "245d5adf517014e184730fd6bff227535a2565f1"),
        (
            Bank::Sha256,
            12,
            "bc706b23a28685557d791b5d5da087c451bf3c4f969034655cc94855018880cc",
        ),
        (
            Bank::Sha256,
            13,
            "b470d18bcb1bd0b64d387138f6885c0886db1b31c0d25ec4131a88b55f79fc21",
        ),
        (
            Bank::Sha256,
            14,
            "74aa00c4eb447a2e2367f3fb20f6406f5927d8cff2aab617206b6f9c4fdbb233",
        ),
        (
            Bank::Sha384,
            12,
            "e6d7d65bc426a39d9f78ff88bb45649e6bb2c2aee1ff7b627b65e420ac8bd0827e7653b3282324ccd9c088b7eb89e903",
        ),
        (
            Bank::Sha512,
            14,
            "714fe3e298e23e6ed37478ad26d9b5923c0ca96f370aca2fba005e544559d82af40e5f6a2bff39874d5c2a592831480a7bd68a0b3d8605806c80946f438f48aa",
        ),
    ];
    for (bank, pcr, value) in want {
        assert_eq!(hex(pcrs.get(bank, pcr).unwrap()), value, "{bank} PCR {pcr}");
    }
    assert_eq!(pcrs.pcrs(Bank::Sha256).count(), 3);

    // Our log replays to exactly those values.
    let mut log = EventLog::new(&Bank::ALL);
    for e in &ev {
        log.push(e);
    }
    let r = replay(&parse_log(log.as_bytes()).unwrap());
    assert_eq!(r.pcrs, pcrs);
    assert!(r.unsupported_algorithms.is_empty() && r.incomplete_banks.is_empty());
}

#[test]
fn network_archive_name_and_policy_change_only_their_pcr() {
    let f = fixture();
    let a = predict(&the_events(&f, ArchiveSource::Initramfs, b""), &Bank::ALL);
    let net = the_events(
        &f,
        ArchiveSource::Network {
            file_name: b"os.zip",
        },
        b"",
    );
    assert_eq!(net[0].data, b"os.zip");
    // The archive event's measured value is the archive hash, not the name's: only the log
    // data differs, PCR 12 does not.
    let b = predict(&net, &Bank::ALL);
    assert_eq!(a, b);
    // The empty identity: SHA-256("") measured.
    assert_eq!(
        hex(&net[5].measured),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let mut g = fixture();
    g.policy = TrustPolicy::from_json(&read("policy-threshold-2.json")).unwrap();
    let c = predict(&the_events(&g, ArchiveSource::Initramfs, b""), &Bank::ALL);
    for bank in Bank::ALL {
        assert_eq!(a.get(bank, 12), c.get(bank, 12));
        assert_ne!(a.get(bank, 13), c.get(bank, 13));
        assert_eq!(a.get(bank, 14), c.get(bank, 14));
    }
}

/// The reference's log header (host/tpm.go specIDEvent) lists sha1 and sha256; ours with the
/// same two banks is the same bytes.
#[test]
fn header_for_sha1_and_sha256_is_the_references() {
    let mut want = vec![0, 0, 0, 0, 3, 0, 0, 0];
    want.extend([0; 20]);
    want.extend([0x25, 0, 0, 0]);
    want.extend(b"Spec ID Event03\0");
    want.extend([
        0, 0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0x04, 0, 20, 0, 0x0b, 0, 32, 0, 0,
    ]);
    assert_eq!(EventLog::new(&[Bank::Sha1, Bank::Sha256]).as_bytes(), want);
}

/// The reference's own event record (host/tpm.go addEvent) carries SHA-256(content), which does
/// not replay; ours carries what was extended.
#[test]
fn our_record_carries_the_extended_digest_not_the_references_inner_one() {
    let f = fixture();
    let ev = the_events(&f, ArchiveSource::Initramfs, b"");
    let mut log = EventLog::new(&[Bank::Sha256]);
    log.push(&ev[2]);
    let parsed = parse_log(log.as_bytes()).unwrap();
    let d = parsed.events[0].digest(0x000b).unwrap();
    assert_eq!(d, Bank::Sha256.hash(&ev[2].measured));
    assert_ne!(d, ev[2].measured);
    // Replaying the reference's digests would give another value than its TPM holds.
    let reference_replay = Bank::Sha256.extend(&[0; 32], &ev[2].measured);
    let tpm = Bank::Sha256.extend(&[0; 32], &Bank::Sha256.hash(&ev[2].measured));
    assert_ne!(reference_replay, tpm);
    assert_eq!(
        replay(&parsed).pcrs.get(Bank::Sha256, 13).unwrap(),
        tpm.as_slice()
    );
}

/// Several signing roots (ST 1.3): one event over the DERs concatenated in file order; a single
/// root gives the reference's value (SHA-256 of its DER).
#[test]
fn several_signing_roots_are_one_event_over_the_concatenation() {
    let f = fixture();
    let other = der("keys/rogue-root.cert.pem");
    let one = the_events(&f, ArchiveSource::Initramfs, b"");
    assert_eq!(one[3].measured, sha256(&f.root));
    let roots = [f.root.as_slice(), other.as_slice()];
    let none: [&[u8]; 0] = [];
    let two = events(&Inputs {
        archive_sha256: sha256(&f.archive),
        archive_source: ArchiveSource::Initramfs,
        descriptor_bytes: &f.descriptor_bytes,
        descriptor: &f.descriptor,
        trust_policy: &f.policy,
        signing_roots: &roots,
        tls_roots: &none,
        identity: b"",
        sigsum_policy: None,
    });
    assert_eq!(two.len(), 6);
    assert_eq!(two[3].data, [f.root.clone(), other.clone()].concat());
    assert_eq!(two[3].measured, sha256(&two[3].data));
    // No TLS roots file: SHA-256 of nothing.
    assert!(two[4].data.is_empty());
    assert_eq!(two[4].measured, sha256(b""));
}

/// A Sigsum policy in the trust policy directory (ST 1.3) is measured as a seventh event
/// (ours) into PCR 13, after the TLS roots: the file as written. Without one, the events are
/// the reference's six, unchanged.
#[test]
fn a_sigsum_policy_is_a_seventh_event_into_pcr_13() {
    let f = fixture();
    let policy =
        b"log 4644af2abd40f4895a003bca350f9d5912ab301a49c77f13e5b6d905c20a5fe6\nquorum none\n";
    let roots = [f.root.as_slice()];
    let tls: Vec<&[u8]> = f.tls.iter().map(Vec::as_slice).collect();
    let inputs = |sigsum_policy| Inputs {
        archive_sha256: sha256(&f.archive),
        archive_source: ArchiveSource::Initramfs,
        descriptor_bytes: &f.descriptor_bytes,
        descriptor: &f.descriptor,
        trust_policy: &f.policy,
        signing_roots: &roots,
        tls_roots: &tls,
        identity: b"host-1",
        sigsum_policy,
    };
    let without = events(&inputs(None));
    let with = events(&inputs(Some(policy)));
    assert_eq!(with.len(), 7);
    assert_eq!(with[5].kind(), Some(EventKind::SigsumPolicy));
    assert_eq!((with[5].pcr, with[5].event_type), (13, 0xa000_0006));
    assert_eq!(with[5].data, policy);
    assert_eq!(with[5].measured, sha256(policy));
    assert_eq!(&with[..5], &without[..5]);
    assert_eq!(with[6], without[5]);
    let banks = [Bank::Sha256];
    let (a, b) = (predict(&without, &banks), predict(&with, &banks));
    assert_eq!(a.get(Bank::Sha256, 12), b.get(Bank::Sha256, 12));
    assert_ne!(a.get(Bank::Sha256, 13), b.get(Bank::Sha256, 13));
    assert_eq!(a.get(Bank::Sha256, 14), b.get(Bank::Sha256, 14));
}

//! Proof parsing and verification: a real proof from a public log, and proofs from a test log
//! with one test per rejection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testlog::{TestKey, TestLog};
use crate::*;

const HELLO_PROOF: &[u8] = include_bytes!("../testdata/hello-sigsum.proof");
const TEST_POLICY: &[u8] = include_bytes!("../testdata/sigsum-test-2025-3.policy");
const GENERIC_POLICY: &[u8] = include_bytes!("../testdata/sigsum-generic-2025-1.policy");

fn unhex32(s: &str) -> [u8; 32] {
    codec::unhex::<32>(s.as_bytes()).unwrap()
}

#[test]
fn a_real_proof_from_a_public_test_log_verifies() {
    let proof = Proof::parse(HELLO_PROOF).unwrap();
    let policy = Policy::parse(TEST_POLICY).unwrap();
    let message = sha256(b"Hello, Sigsum!\n");
    let key = unhex32("99ed58583e8750b20548e69df4a4e1a592379a9a66c51cd32e42fbe4e1bde78a");
    let logged = verify(&proof, &policy, &key, &message).unwrap();
    assert_eq!(logged.tree_size, 381_382);
    assert_eq!(logged.leaf_index, 381_381);
    assert_eq!(
        logged.log_url.as_deref(),
        Some("https://serviceberry.tlog.stagemole.eu")
    );
    assert!(logged.witnesses.len() >= 4, "{:?}", logged.witnesses);
    // The writer gives back the file byte for byte.
    assert_eq!(proof.to_ascii(), HELLO_PROOF);
    // Another message, another signer, the production policy: each refused for its reason.
    let other = sha256(b"Hello, Sigsum?\n");
    assert_eq!(
        verify(&proof, &policy, &key, &other),
        Err(SigsumError::LeafSignature)
    );
    let mut wrong = key;
    wrong[0] ^= 1;
    assert!(matches!(
        verify(&proof, &policy, &wrong, &message),
        Err(SigsumError::LeafKeyMismatch { .. })
    ));
    let generic = Policy::parse(GENERIC_POLICY).unwrap();
    let e = verify(&proof, &generic, &key, &message).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the proof is from log {}, which the Sigsum policy does not list",
            proof.log
        )
    );
}

#[test]
fn the_production_policy_parses() {
    let p = Policy::parse(GENERIC_POLICY).unwrap();
    assert_eq!(p.logs().len(), 2);
    assert_eq!(p.witnesses().len(), 3);
    assert_eq!(p.groups()[0].k, 2);
}

struct Fixture {
    log: TestLog,
    submitter: TestKey,
    witnesses: Vec<TestKey>,
    message: [u8; 32],
    index: usize,
    policy: Policy,
}

fn key(n: u8) -> TestKey {
    TestKey::from_seed(&[n; 32]).unwrap()
}

/// A log of 7 leaves with ours at index 4, three witnesses w1..w3, quorum 2 of 3.
fn fixture() -> Fixture {
    let mut log = TestLog::new(key(1));
    let submitter = key(2);
    let witnesses = vec![key(3), key(4), key(5)];
    let other = key(9);
    for i in 0..4u8 {
        log.add(&other, &[i; 32]);
    }
    let message = sha256(b"archive");
    let index = log.add(&submitter, &message);
    log.add(&other, &[7; 32]);
    log.add(&other, &[8; 32]);
    let text = format!(
        "{}{}{}{}group q 2 w1 w2 w3\nquorum q\n",
        log.key().log_line(),
        witnesses[0].witness_line("w1"),
        witnesses[1].witness_line("w2"),
        witnesses[2].witness_line("w3"),
    );
    let policy = Policy::parse(text.as_bytes()).unwrap();
    Fixture {
        log,
        submitter,
        witnesses,
        message,
        index,
        policy,
    }
}

impl Fixture {
    fn proof(&self, cosigners: &[usize]) -> Proof {
        let c: Vec<(&TestKey, u64)> = cosigners
            .iter()
            .map(|&i| (&self.witnesses[i], 1_700_000_000 + i as u64))
            .collect();
        self.log.proof(self.index, &c).unwrap()
    }
    fn check(&self, p: &Proof) -> Result<Logged, SigsumError> {
        // Every proof goes through its text form, as it would from a descriptor.
        let p = Proof::parse(&p.to_ascii()).unwrap();
        verify(&p, &self.policy, &self.submitter.public(), &self.message)
    }
}

#[test]
fn a_test_log_proof_verifies_and_says_what_was_logged() {
    let f = fixture();
    let logged = f.check(&f.proof(&[0, 2])).unwrap();
    assert_eq!(logged.tree_size, 7);
    assert_eq!(logged.leaf_index, 4);
    assert_eq!(logged.witnesses, vec!["w1", "w3"]);
    assert_eq!(logged.log, f.log.key().key_hash());
    assert_eq!(logged.version, ProofVersion::V2);
}

#[test]
fn every_leaf_of_the_test_log_verifies_for_its_own_message_only() {
    let mut log = TestLog::new(key(1));
    let s = key(2);
    let policy =
        Policy::parse(format!("{}quorum none\n", log.key().log_line()).as_bytes()).unwrap();
    let messages: Vec<[u8; 32]> = (0..5u8).map(|i| sha256(&[i])).collect();
    for m in &messages {
        log.add(&s, m);
    }
    for (i, m) in messages.iter().enumerate() {
        let p = log.proof(i, &[]).unwrap();
        verify(&p, &policy, &s.public(), m).unwrap();
        let other = &messages[(i + 1) % messages.len()];
        assert_eq!(
            verify(&p, &policy, &s.public(), other),
            Err(SigsumError::LeafSignature)
        );
    }
}

#[test]
fn a_tree_of_one_leaf_has_no_inclusion_block_and_its_leaf_is_the_root() {
    let mut log = TestLog::new(key(1));
    let s = key(2);
    let m = sha256(b"only");
    log.add(&s, &m);
    let p = log.proof(0, &[]).unwrap();
    let text = p.to_ascii();
    assert!(!String::from_utf8_lossy(&text).contains("leaf_index"));
    let policy =
        Policy::parse(format!("{}quorum none\n", log.key().log_line()).as_bytes()).unwrap();
    let parsed = Proof::parse(&text).unwrap();
    assert_eq!(parsed, p);
    verify(&parsed, &policy, &s.public(), &m).unwrap();
    // A root that is not the leaf hash (re-signed, so only inclusion can catch it).
    let mut bad = p.clone();
    bad.tree_head.root_hash[0] ^= 1;
    bad.tree_head.signature = log
        .key()
        .sign(tree_head_signed_data(&bad.log, 1, &bad.tree_head.root_hash).as_bytes());
    assert_eq!(
        verify(&bad, &policy, &s.public(), &m),
        Err(SigsumError::Inclusion(InclusionError::RootMismatch))
    );
}

#[test]
fn wrong_log_key() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    let stranger = key(42).key_hash();
    p.log = stranger;
    let e = f.check(&p).unwrap_err();
    assert_eq!(e, SigsumError::UnknownLog(stranger));
    assert!(e.to_string().contains(&stranger.to_string()), "{e}");
}

#[test]
fn bad_log_signature() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    p.tree_head.signature[10] ^= 1;
    let e = f.check(&p).unwrap_err();
    assert_eq!(e, SigsumError::LogSignature(f.log.key().key_hash()));
    assert!(e.to_string().contains("tree head signature"), "{e}");
}

#[test]
fn quorum_not_met_names_the_witnesses_seen_and_the_rule() {
    let f = fixture();
    let e = f.check(&f.proof(&[1])).unwrap_err();
    let SigsumError::QuorumNotMet {
        verified,
        bad,
        unknown,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(
        (verified.as_slice(), bad.len(), *unknown),
        (&["w2".to_string()][..], 0, 0)
    );
    assert_eq!(
        e.to_string(),
        "witness quorum not met: quorum group \"q\" needs 2 of 3, 1 met: witness \"w1\" (no valid \
         cosignature), witness \"w2\" (cosigned), witness \"w3\" (no valid cosignature); \
         cosignatures verified from [w2], bad from [], 0 from witnesses the policy does not name"
    );
    assert!(matches!(
        f.check(&f.proof(&[])),
        Err(SigsumError::QuorumNotMet { .. })
    ));
}

#[test]
fn a_bad_cosignature_from_a_known_witness_is_ignored_while_the_quorum_holds() {
    let f = fixture();
    let mut p = f.proof(&[0, 1, 2]);
    p.tree_head.cosignatures[1].signature[0] ^= 1;
    let logged = f.check(&p).unwrap();
    assert_eq!(logged.witnesses, vec!["w1", "w3"]);
    // ...and named when the quorum then fails.
    let mut p = f.proof(&[0, 1]);
    p.tree_head.cosignatures[1].signature[0] ^= 1;
    let e = f.check(&p).unwrap_err().to_string();
    assert!(e.contains("verified from [w1], bad from [w2]"), "{e}");
}

#[test]
fn a_cosignature_over_another_timestamp_is_bad() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    p.tree_head.cosignatures[0].timestamp += 1;
    let e = f.check(&p).unwrap_err().to_string();
    assert!(e.contains("bad from [w1]"), "{e}");
}

#[test]
fn cosignatures_from_unknown_witnesses_are_ignored_and_counted() {
    let f = fixture();
    let stranger = key(77);
    let c: Vec<(&TestKey, u64)> = vec![(&stranger, 5), (&f.witnesses[0], 6)];
    let p = f.log.proof(f.index, &c).unwrap();
    let e = f.check(&p).unwrap_err().to_string();
    assert!(
        e.contains("1 from witnesses the policy does not name"),
        "{e}"
    );
    let c: Vec<(&TestKey, u64)> = vec![(&stranger, 5), (&f.witnesses[0], 6), (&f.witnesses[2], 0)];
    assert_eq!(
        f.check(&f.log.proof(f.index, &c).unwrap())
            .unwrap()
            .witnesses,
        vec!["w1", "w3"]
    );
}

#[test]
fn cosignature_timestamps_are_not_checked() {
    // A witness may state any time (0, far future): only the signature over it counts.
    let f = fixture();
    let c: Vec<(&TestKey, u64)> = vec![(&f.witnesses[0], 0), (&f.witnesses[1], i64::MAX as u64)];
    f.check(&f.log.proof(f.index, &c).unwrap()).unwrap();
}

#[test]
fn duplicate_cosignature_is_a_parse_error() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    let dup = p.tree_head.cosignatures[0].clone();
    p.tree_head.cosignatures.push(dup.clone());
    let e = Proof::parse(&p.to_ascii()).unwrap_err();
    assert_eq!(e.kind, ProofErrorKind::DuplicateCosignature(dup.key_hash));
    assert_eq!(e.line, 10);
}

#[test]
fn leaf_key_not_the_signers() {
    let f = fixture();
    let p = f.proof(&[0, 1]);
    let other = key(99);
    let e = verify(&p, &f.policy, &other.public(), &f.message).unwrap_err();
    assert_eq!(
        e,
        SigsumError::LeafKeyMismatch {
            proof: f.submitter.key_hash(),
            expected: other.key_hash()
        }
    );
}

#[test]
fn proof_for_another_message() {
    let f = fixture();
    let p = f.proof(&[0, 1]);
    let e = verify(&p, &f.policy, &f.submitter.public(), &sha256(b"other")).unwrap_err();
    assert_eq!(e, SigsumError::LeafSignature);
    assert!(e.to_string().contains("made for another message"), "{e}");
}

#[test]
fn bad_leaf_signature() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    p.leaf.signature[63] ^= 0x10;
    assert_eq!(f.check(&p), Err(SigsumError::LeafSignature));
}

#[test]
fn bad_inclusion_path() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    p.inclusion.path[1][5] ^= 1;
    let e = f.check(&p).unwrap_err();
    assert_eq!(e, SigsumError::Inclusion(InclusionError::RootMismatch));
    assert_eq!(
        e.to_string(),
        "inclusion proof: the inclusion path does not lead from the leaf to the tree head's root hash"
    );
    let mut p = f.proof(&[0, 1]);
    p.inclusion.leaf_index = 3;
    assert_eq!(
        f.check(&p),
        Err(SigsumError::Inclusion(InclusionError::RootMismatch))
    );
    let mut p = f.proof(&[0, 1]);
    p.inclusion.leaf_index = 7;
    assert!(matches!(
        f.check(&p),
        Err(SigsumError::Inclusion(InclusionError::IndexOutOfRange {
            index: 7,
            size: 7
        }))
    ));
    let mut p = f.proof(&[0, 1]);
    p.inclusion.path.pop();
    assert!(matches!(
        f.check(&p),
        Err(SigsumError::Inclusion(InclusionError::PathLength {
            got: 2,
            want: 3,
            ..
        }))
    ));
}

#[test]
fn version_1_proofs_are_accepted_when_their_short_checksum_matches() {
    let f = fixture();
    let mut p = f.proof(&[0, 1]);
    let checksum = leaf_checksum(&f.message);
    p.version = ProofVersion::V1 {
        short_checksum: [checksum[0], checksum[1]],
    };
    let text = p.to_ascii();
    assert!(text.starts_with(b"version=1\n"));
    let logged = f.check(&p).unwrap();
    assert_eq!(logged.version, p.version);
    p.version = ProofVersion::V1 {
        short_checksum: [checksum[0], checksum[1] ^ 1],
    };
    let e = f.check(&p).unwrap_err();
    assert!(matches!(e, SigsumError::OtherMessage { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("the proof is for another message"),
        "{e}"
    );
}

/// Every proof file rejection names its line and its reason.
#[test]
fn malformed_proofs_name_the_line() {
    let f = fixture();
    let good = String::from_utf8(f.proof(&[0, 1]).to_ascii()).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let with = |i: usize, new: &str| {
        let mut l = lines.clone();
        l[i] = new;
        l.join("\n") + "\n"
    };
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "missing version"),
        (
            good.trim_end().to_string(),
            lines.len(),
            "does not end in a newline",
        ),
        (good.replace('\n', "\r\n"), 1, "not a decimal integer"),
        (with(0, "version=3"), 1, "unknown proof version 3"),
        (with(0, "version=02"), 1, "version: not a decimal"),
        (
            with(0, "verzion=2"),
            1,
            "expected version=..., found \"verzion\"",
        ),
        (with(0, "version 2"), 1, "expected a version=... line"),
        (
            with(1, "log=abcd"),
            2,
            "log: 2 bytes of hex, expected 32 bytes",
        ),
        (
            with(2, &lines[2].replacen(' ', "  ", 1)),
            3,
            "leaf: 3 space-separated values, expected 2",
        ),
        (with(3, "x"), 4, "expected an empty line before size"),
        (with(4, "size=0"), 5, "tree size 0"),
        (with(4, "size=-1"), 5, "size: not a decimal"),
        (
            with(5, "root_hash=zz"),
            6,
            "root_hash: not a hex digit at character 1",
        ),
        (with(7, "cosignature=00 1 00"), 8, "cosignature key hash"),
        (
            with(7, &lines[7].replace(" 1700000000 ", " 01700000000 ")),
            8,
            "cosignature timestamp",
        ),
        (with(10, "leaf_index=x"), 11, "leaf_index: not a decimal"),
        (
            with(9, "node_hash=00"),
            10,
            "expected cosignature=..., found \"node_hash\"",
        ),
        (
            good.replace("\nleaf_index=4\n", "\nleaf_index=4\n\n"),
            12,
            "unexpected empty line",
        ),
        (good.clone() + "\n", 15, "unexpected empty line"),
        (
            good.clone() + "junk=1\n",
            15,
            "expected node_hash=..., found \"junk\"",
        ),
    ];
    for (input, line, want) in cases {
        let e = Proof::parse(input.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(want), "{input:?}: {text}");
        assert_eq!(e.line, line, "{text}");
    }
    // Caps.
    let big = vec![b'x'; ascii::MAX_PROOF_BYTES + 1];
    assert!(matches!(
        Proof::parse(&big).unwrap_err().kind,
        ProofErrorKind::TooLarge { .. }
    ));
    let mut p = f.proof(&[0]);
    p.inclusion.path = vec![[0; 32]; ascii::MAX_NODE_HASHES + 1];
    assert!(matches!(
        Proof::parse(&p.to_ascii()).unwrap_err().kind,
        ProofErrorKind::TooMany {
            what: "node_hash",
            ..
        }
    ));
    let mut p = f.proof(&[0]);
    p.tree_head.cosignatures = (0..=ascii::MAX_COSIGNATURES)
        .map(|i| Cosignature {
            key_hash: KeyHash(sha256(&i.to_be_bytes())),
            timestamp: 1,
            signature: [0; 64],
        })
        .collect();
    assert!(matches!(
        Proof::parse(&p.to_ascii()).unwrap_err().kind,
        ProofErrorKind::TooMany {
            what: "cosignature",
            ..
        }
    ));
    // Size 1 with an inclusion block; size 2 without one.
    let mut p = f.proof(&[0]);
    p.tree_head.size = 1;
    let mut text = p.to_ascii();
    text.extend_from_slice(b"\nleaf_index=0\nnode_hash=00\n");
    assert_eq!(
        Proof::parse(&text).unwrap_err().kind,
        ProofErrorKind::InclusionForSizeOne
    );
    let cut = good.split("\n\nleaf_index").next().unwrap().to_string() + "\n";
    assert_eq!(
        Proof::parse(cut.as_bytes()).unwrap_err().kind,
        ProofErrorKind::Missing("leaf_index")
    );
    let cut = good.split("node_hash").next().unwrap();
    assert_eq!(
        Proof::parse(cut.as_bytes()).unwrap_err().kind,
        ProofErrorKind::Missing("node_hash")
    );
}

#[test]
fn uppercase_hex_parses_to_the_same_proof() {
    let f = fixture();
    let p = f.proof(&[0, 1]);
    let text = String::from_utf8(p.to_ascii()).unwrap();
    let upper: String = text
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => format!("{k}={}\n", v.to_uppercase()),
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(Proof::parse(upper.as_bytes()).unwrap(), p);
}

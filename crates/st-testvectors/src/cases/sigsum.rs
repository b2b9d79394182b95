//! Sigsum-logged OS packages (ST 1.3): a small deterministic test log (fixed-seed log and
//! witness keys, an RFC 6962 tree over filler leaves and the package's leaf, a signed tree
//! head, witness cosignatures) writes real proof files; one case per rejection.

use super::{Case, Pki, Result, Spec, Verdict, case, descriptor, sig, standard_entries};
use crate::pki::{self, Signer};
use crate::zip;
use st_format::{FetchMethod, SignatureThreshold, TrustPolicy};
use st_sigsum::testlog::{TestKey, TestLog};
use st_sigsum::{Proof, ProofVersion};
use st_verify::ArchiveDigest;
use std::collections::BTreeMap;

/// The time every witness states in its cosignature (2025-11-14T22:13:20Z).
const COSIGNED_AT: u64 = 1_763_158_400;

pub(super) struct Keys {
    log: TestKey,
    witnesses: [TestKey; 3],
}

fn test_key(label: &str) -> Result<TestKey> {
    TestKey::from_seed(&pki::derive(&format!("sigsum/{label}"))).ok_or_else(|| "seed".into())
}

pub(super) fn keys() -> Result<Keys> {
    Ok(Keys {
        log: test_key("log")?,
        witnesses: [
            test_key("witness-1")?,
            test_key("witness-2")?,
            test_key("witness-3")?,
        ],
    })
}

/// The Sigsum policy of the `sigsum-*` trust directories: the test log, three witnesses,
/// 2 of 3. Written the way operators write them (comments, aligned columns, a trailing
/// comment), which sigsum-go v0.11.2 accepts.
fn policy_text(k: &Keys) -> String {
    let hex = |key: &TestKey| st_sigsum_hex(&key.public());
    format!(
        "# Sigsum policy of the stboot-rs test vectors (ST 1.3 ospkg_trust_policy)\n\
         log {} https://log.example.org/test   # the vectors' test log\n\
         \n\
         witness witness-1.example.org  {}\n\
         witness witness-2.example.org  {}\n\
         witness witness-3.example.org  {}\n\
         \n\
         group  quorum-rule 2 witness-1.example.org witness-2.example.org witness-3.example.org\n\
         quorum quorum-rule\n",
        hex(&k.log),
        hex(&k.witnesses[0]),
        hex(&k.witnesses[1]),
        hex(&k.witnesses[2]),
    )
}

fn st_sigsum_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `trust/sigsum-{1,2}/` (threshold 1 or 2 with the Sigsum policy) and
/// `trust/sigsum-required-1/` (threshold 1, `ospkg_sigsum_required`).
pub(super) fn trust_files(p: &Pki, k: &Keys, t: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let one = SignatureThreshold::new(1).ok_or("threshold")?;
    let two = SignatureThreshold::new(2).ok_or("threshold")?;
    let dirs = [
        ("sigsum-1", TrustPolicy::new(one, FetchMethod::Network)),
        ("sigsum-2", TrustPolicy::new(two, FetchMethod::Network)),
        (
            "sigsum-required-1",
            TrustPolicy::new(one, FetchMethod::Network).with_sigsum_required(true),
        ),
    ];
    for (dir, policy) in dirs {
        t.insert(
            format!("trust/{dir}/trust_policy.json"),
            policy.to_pretty_json(),
        );
        t.insert(
            format!("trust/{dir}/ospkg_signing_root.pem"),
            p.root.cert.as_bytes().to_vec(),
        );
        t.insert(
            format!("trust/{dir}/ospkg_trust_policy"),
            policy_text(k).into_bytes(),
        );
    }
    Ok(())
}

/// How a case's proof is made or spoiled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Twist {
    None,
    /// Only witness 1 cosigns.
    OnlyWitness1,
    /// All three cosign; witness 2's cosignature is corrupted.
    BadCosignatureOfThree,
    /// Witness 1's cosignature appears twice.
    DuplicateCosignature,
    /// Written as a version-1 proof (short checksum on the leaf line).
    Version1,
    /// Version 1 with the short checksum of another archive.
    Version1OtherChecksum,
    /// The log is another log, not in the policy.
    OtherLog,
    /// The leaf is for another archive's digest.
    OtherArchive,
    /// A node hash of the inclusion path is flipped.
    BadInclusion,
    /// The log's tree head signature is flipped.
    BadLogSignature,
}

/// A proof for `digest` signed (as a Sigsum leaf) by `submitter`, in a log of 6 leaves (3
/// fillers, the package's, 2 fillers), with the twist applied.
fn proof_for(
    k: &Keys,
    submitter: &st_sign::SigningKey,
    digest: &[u8; 32],
    twist: Twist,
) -> Result<Vec<u8>> {
    let mut log = TestLog::new(test_key(if twist == Twist::OtherLog {
        "other-log"
    } else {
        "log"
    })?);
    let filler = test_key("filler-submitter")?;
    for i in 0..3u8 {
        log.add(&filler, &pki::derive(&format!("sigsum/filler/{i}")));
    }
    let message = if twist == Twist::OtherArchive {
        pki::derive("sigsum/another-archive")
    } else {
        *digest
    };
    let checksum = st_sigsum::leaf_checksum(&message);
    let signature = submitter.sign(&st_sigsum::leaf_signed_data(&checksum));
    let key_hash = st_sigsum::KeyHash::of(&submitter.public());
    let index = log.add_signed(&message, key_hash, signature);
    for i in 3..5u8 {
        log.add(&filler, &pki::derive(&format!("sigsum/filler/{i}")));
    }
    let [w1, w2, w3] = &k.witnesses;
    let cosigners: Vec<(&TestKey, u64)> = match twist {
        Twist::OnlyWitness1 => vec![(w1, COSIGNED_AT)],
        Twist::BadCosignatureOfThree => {
            vec![(w1, COSIGNED_AT), (w2, COSIGNED_AT), (w3, COSIGNED_AT)]
        }
        _ => vec![(w1, COSIGNED_AT), (w2, COSIGNED_AT + 1)],
    };
    let mut proof: Proof = log.proof(index, &cosigners).ok_or("proof")?;
    match twist {
        Twist::BadCosignatureOfThree => flip(&mut proof.tree_head.cosignatures, 1)?,
        Twist::DuplicateCosignature => {
            let first = proof
                .tree_head
                .cosignatures
                .first()
                .cloned()
                .ok_or("cosig")?;
            proof.tree_head.cosignatures.push(first);
        }
        Twist::Version1 | Twist::Version1OtherChecksum => {
            let c = st_sigsum::leaf_checksum(digest);
            let mut short = [c[0], c[1]];
            if twist == Twist::Version1OtherChecksum {
                short[1] ^= 0x5a;
            }
            proof.version = ProofVersion::V1 {
                short_checksum: short,
            };
        }
        Twist::BadInclusion => {
            let h = proof.inclusion.path.get_mut(1).ok_or("path")?;
            h[7] ^= 0x01;
        }
        Twist::BadLogSignature => proof.tree_head.signature[20] ^= 0x01,
        _ => {}
    }
    Ok(proof.to_ascii())
}

fn flip(cosignatures: &mut [st_sigsum::Cosignature], i: usize) -> Result<()> {
    let c = cosignatures.get_mut(i).ok_or("cosignature")?;
    c.signature[0] ^= 0x01;
    Ok(())
}

fn key(s: &Signer) -> Result<&st_sign::SigningKey> {
    s.key.as_ref().ok_or_else(|| "signer without key".into())
}

/// One entry of a case's descriptor.
enum Entry<'a> {
    /// A plain signature by this signer.
    Plain(&'a Signer),
    /// A proof signed by `submitter`'s key, paired with `cert`'s certificate.
    Proof {
        cert: &'a Signer,
        submitter: &'a Signer,
        twist: Twist,
    },
}

struct SigsumSpec<'a> {
    name: &'static str,
    policy: &'static str,
    verdict: Verdict,
    reason: Option<&'static str>,
    reference: Option<&'static str>,
    description: &'static str,
    entries: Vec<Entry<'a>>,
}

fn build_case(k: &Keys, s: SigsumSpec<'_>, files: &mut BTreeMap<String, Vec<u8>>) -> Result<Case> {
    let zip = zip::build(&standard_entries(s.name)?);
    let digest = *ArchiveDigest::of(&zip).as_bytes();
    let mut entries = Vec::new();
    for e in &s.entries {
        match e {
            Entry::Plain(signer) => entries.push((*signer, sig(signer, &zip)?)),
            Entry::Proof {
                cert,
                submitter,
                twist,
            } => {
                let proof = proof_for(k, key(submitter)?, &digest, *twist)?;
                // The proof file as sigsum-submit would leave it next to the archive.
                files.insert(format!("cases/{}/ospkg.zip.proof", s.name), proof.clone());
                entries.push((*cert, proof));
            }
        }
    }
    let json = descriptor(entries)?;
    Ok(case(
        Spec {
            name: s.name,
            policy: s.policy.into(),
            verdict: s.verdict,
            reason: s.reason,
            reference: s.reference,
            description: s.description,
        },
        zip,
        json,
    ))
}

#[allow(clippy::too_many_lines)]
pub(super) fn cases(p: &Pki, k: &Keys, files: &mut BTreeMap<String, Vec<u8>>) -> Result<Vec<Case>> {
    use Verdict::{Accept, Threshold};
    let proof = |cert, twist| Entry::Proof {
        cert,
        submitter: cert,
        twist,
    };
    let specs = vec![
        SigsumSpec {
            name: "sigsum-logged",
            policy: "sigsum-1",
            verdict: Accept(1, 1),
            reason: None,
            reference: None,
            description: "signer1's Sigsum proof (log of 6 leaves, ours at index 3, witnesses 1 and 2 of a 2-of-3 quorum cosign) in place of a signature; threshold 1.",
            entries: vec![proof(&p.s1, Twist::None)],
        },
        SigsumSpec {
            name: "sigsum-and-plain-mix",
            policy: "sigsum-2",
            verdict: Accept(2, 2),
            reason: None,
            reference: None,
            description: "signer1's Sigsum proof and signer2's plain signature; threshold 2: they count together.",
            entries: vec![proof(&p.s1, Twist::None), Entry::Plain(&p.s2)],
        },
        SigsumSpec {
            name: "sigsum-same-key-plain-and-proof",
            policy: "sigsum-2",
            verdict: Threshold(2, 1),
            reason: Some("same signing key"),
            reference: None,
            description: "signer1's plain signature and signer1's Sigsum proof; threshold 2: one key counts once.",
            entries: vec![Entry::Plain(&p.s1), proof(&p.s1, Twist::None)],
        },
        SigsumSpec {
            name: "sigsum-logged-when-logging-required",
            policy: "sigsum-required-1",
            verdict: Accept(1, 1),
            reason: None,
            reference: None,
            description: "signer1's Sigsum proof under a trust policy with \"ospkg_sigsum_required\": true.",
            entries: vec![proof(&p.s1, Twist::None)],
        },
        SigsumSpec {
            name: "plain-when-logging-required",
            policy: "sigsum-required-1",
            verdict: Threshold(1, 0),
            reason: Some("requires Sigsum-logged signatures"),
            reference: Some(
                "accepts: \"ospkg_sigsum_required\" is our addition, an unknown field the reference ignores",
            ),
            description: "signer1's valid plain signature under \"ospkg_sigsum_required\": true.",
            entries: vec![Entry::Plain(&p.s1)],
        },
        SigsumSpec {
            name: "sigsum-no-policy",
            policy: "policy-1",
            verdict: Threshold(1, 0),
            reason: Some("no ospkg_trust_policy"),
            reference: None,
            description: "signer1's good Sigsum proof, judged under trust/policy-1, which has no ospkg_trust_policy.",
            entries: vec![proof(&p.s1, Twist::None)],
        },
        SigsumSpec {
            name: "sigsum-wrong-log-key",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("which the Sigsum policy does not list"),
            reference: None,
            description: "A proof from another log (its own key, properly signed and cosigned), not the policy's.",
            entries: vec![proof(&p.s1, Twist::OtherLog)],
        },
        SigsumSpec {
            name: "sigsum-quorum-not-met",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("witness quorum not met"),
            reference: None,
            description: "Only witness 1 cosigns; the quorum is 2 of 3.",
            entries: vec![proof(&p.s1, Twist::OnlyWitness1)],
        },
        SigsumSpec {
            name: "sigsum-bad-cosignature-quorum-holds",
            policy: "sigsum-1",
            verdict: Accept(1, 1),
            reason: None,
            reference: Some(
                "accepts (sigsum-go: a bad cosignature is ignored, the quorum decides); the Rust sigsum crate 0.3 rejects the whole proof",
            ),
            description: "All three witnesses cosign, witness 2's cosignature is corrupted; witnesses 1 and 3 still meet 2 of 3.",
            entries: vec![proof(&p.s1, Twist::BadCosignatureOfThree)],
        },
        SigsumSpec {
            name: "sigsum-duplicate-cosignature",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("duplicate cosignature"),
            reference: Some(
                "rejects (sigsum-go refuses to parse the proof); the Rust sigsum crate 0.3 accepts it",
            ),
            description: "Witness 1's cosignature line appears twice (witness 2's once).",
            entries: vec![proof(&p.s1, Twist::DuplicateCosignature)],
        },
        SigsumSpec {
            name: "sigsum-v1-proof",
            policy: "sigsum-1",
            verdict: Accept(1, 1),
            reason: None,
            reference: Some(
                "accepts (sigsum-go reads version 1); the Rust sigsum crate 0.3 rejects it",
            ),
            description: "A version-1 proof (leaf=<short checksum> <key hash> <signature>) with the right short checksum.",
            entries: vec![proof(&p.s1, Twist::Version1)],
        },
        SigsumSpec {
            name: "sigsum-v1-short-checksum-mismatch",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("the proof is for another message"),
            reference: Some(
                "accepts: sigsum-go v0.11.2 checks only that the short checksum is 2 bytes of hex (the signature covers the full checksum)",
            ),
            description: "A version-1 proof whose short checksum is not this archive's (the rest is valid).",
            entries: vec![proof(&p.s1, Twist::Version1OtherChecksum)],
        },
        SigsumSpec {
            name: "sigsum-proof-for-another-archive",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("made for another message"),
            reference: None,
            description: "A valid proof (leaf, tree head, cosignatures, inclusion) for another archive's SHA-256, attached to this package.",
            entries: vec![proof(&p.s1, Twist::OtherArchive)],
        },
        SigsumSpec {
            name: "sigsum-leaf-key-not-certificate",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("is not the signer's key hash"),
            reference: None,
            description: "signer2's valid proof paired with signer1's certificate.",
            entries: vec![Entry::Proof {
                cert: &p.s1,
                submitter: &p.s2,
                twist: Twist::None,
            }],
        },
        SigsumSpec {
            name: "sigsum-bad-inclusion-path",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("inclusion path does not lead"),
            reference: None,
            description: "One bit of the second node_hash of the inclusion path is flipped.",
            entries: vec![proof(&p.s1, Twist::BadInclusion)],
        },
        SigsumSpec {
            name: "sigsum-bad-log-signature",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("tree head signature"),
            reference: None,
            description: "One bit of the log's tree head signature is flipped.",
            entries: vec![proof(&p.s1, Twist::BadLogSignature)],
        },
        SigsumSpec {
            name: "sigsum-expired-certificate",
            policy: "sigsum-1",
            verdict: Threshold(1, 0),
            reason: Some("expired"),
            reference: None,
            description: "A good proof by the expired signer's key with its certificate (valid 2020..2021): the certificate rules apply to proofs too.",
            entries: vec![proof(&p.expired, Twist::None)],
        },
    ];
    specs.into_iter().map(|s| build_case(k, s, files)).collect()
}

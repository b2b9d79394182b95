#![no_main]
//! Sigsum (st-sigsum): the proof parser (ASCII, versions 1 and 2) and the policy parser on the
//! same bytes. A proof that parses is written back and parses to the same value, then is
//! verified against the vectors' Sigsum policy for the `sigsum-logged` case's archive and
//! signer: mutations of a seed that leave the signatures intact (inclusion path, leaf index)
//! reach the Merkle check. Must never panic; what verifies is consistent with the proof.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use st_sigsum::{Policy, Proof};

struct Fixed {
    policy: Policy,
    key: [u8; 32],
    message: [u8; 32],
}

static FIXED: LazyLock<Fixed> = LazyLock::new(|| Fixed {
    policy: Policy::parse(include_bytes!(
        "../../testdata/vectors/trust/sigsum-1/ospkg_trust_policy"
    ))
    .expect("the vectors' policy parses"),
    key: st_sign::SigningKey::from_pem(include_bytes!(
        "../../testdata/vectors/trust/signer1.key.pem"
    ))
    .expect("signer1's key parses")
    .public(),
    message: *st_verify::ArchiveDigest::of(include_bytes!(
        "../../testdata/vectors/cases/sigsum-logged/ospkg.zip"
    ))
    .as_bytes(),
});

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = Policy::parse(data) {
        let n = policy.witnesses().len();
        let _ = policy.quorum_met(&vec![true; n]);
        let _ = policy.explain_quorum(&vec![false; n]);
    }
    let Ok(proof) = Proof::parse(data) else {
        return;
    };
    let again = Proof::parse(&proof.to_ascii()).expect("a parsed proof, written out, parses");
    assert_eq!(again, proof);
    let f = &*FIXED;
    let _ = st_sigsum::check_leaf(&proof, &f.key, &f.message);
    if let Ok(logged) = st_sigsum::verify(&proof, &f.policy, &f.key, &f.message) {
        assert_eq!(logged.tree_size, proof.tree_head.size);
        assert_eq!(logged.leaf_index, proof.inclusion.leaf_index);
        assert!(logged.leaf_index < logged.tree_size);
        assert_eq!(logged.version, proof.version);
    }
});

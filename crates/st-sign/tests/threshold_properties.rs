//! Properties of the threshold rule, over descriptors built from a pool of good, bad, duplicate
//! and foreign signatures in any order:
//! - adding an invalid or duplicate signature never raises the valid count;
//! - removing a valid signature never turns a rejection into an acceptance;
//! - the valid count is the number of distinct good keys present, whatever the order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use st_format::{Descriptor, SignatureEntry, SignatureThreshold};
use st_sign::{CertOptions, SigningKey, make_leaf, make_root};
use st_verify::{ArchiveDigest, SigningRoots, Threshold, UnixTime, check_signatures};
use std::sync::OnceLock;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

struct Pool {
    roots: SigningRoots,
    digest: ArchiveDigest,
    /// (entry, key id when it is a good signature by an accepted key)
    entries: Vec<(SignatureEntry, Option<u8>)>,
}

fn opts(serial: u8) -> CertOptions {
    CertOptions {
        not_before: UnixTime::parse_rfc3339("2020-01-01T00:00:00Z").unwrap(),
        not_after: UnixTime::parse_rfc3339("2099-01-01T00:00:00Z").unwrap(),
        serial: [serial; 16],
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let root_key = SigningKey::from_seed(&[1; 32]).unwrap();
        let root = make_root(&root_key, &opts(1)).unwrap();
        let rogue_key = SigningKey::from_seed(&[2; 32]).unwrap();
        let rogue = make_root(&rogue_key, &opts(2)).unwrap();
        let digest = ArchiveDigest::of(b"archive bytes");
        let mut entries = Vec::new();
        for id in 0..3u8 {
            let key = SigningKey::from_seed(&[10 + id; 32]).unwrap();
            let cert = make_leaf(&key.public(), &root, &root_key, &opts(10 + id)).unwrap();
            // A second certificate for the same key.
            let cert2 = make_leaf(&key.public(), &root, &root_key, &opts(20 + id)).unwrap();
            let sig = key.sign(digest.as_bytes()).to_vec();
            let mut bad = sig.clone();
            bad[0] ^= 1;
            entries.push((
                SignatureEntry::new(cert.clone().into_bytes(), sig.clone()).unwrap(),
                Some(id),
            ));
            entries.push((
                SignatureEntry::new(cert2.into_bytes(), sig).unwrap(),
                Some(id),
            ));
            entries.push((SignatureEntry::new(cert.into_bytes(), bad).unwrap(), None));
        }
        // Properly signed, but under a certificate from another root.
        let foreign = SigningKey::from_seed(&[30; 32]).unwrap();
        let fcert = make_leaf(&foreign.public(), &rogue, &rogue_key, &opts(30)).unwrap();
        entries.push((
            SignatureEntry::new(fcert.into_bytes(), foreign.sign(digest.as_bytes()).to_vec())
                .unwrap(),
            None,
        ));
        Pool {
            roots: SigningRoots::from_pem(root.as_bytes()).unwrap(),
            digest,
            entries,
        }
    })
}

fn descriptor(indices: &[usize]) -> Descriptor {
    let mut d = Descriptor::unsigned("").unwrap();
    for &i in indices {
        d.push(pool().entries[i].0.clone()).unwrap();
    }
    d
}

fn valid(indices: &[usize]) -> usize {
    let p = pool();
    let t = Threshold::AtLeast(SignatureThreshold::new(1).unwrap());
    check_signatures(&descriptor(indices), &p.digest, &p.roots, t, NOW).valid()
}

fn index_list() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..10usize, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_count_is_distinct_good_keys(indices in index_list()) {
        let mut keys: Vec<u8> = indices.iter().filter_map(|&i| pool().entries[i].1).collect();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(valid(&indices), keys.len());
    }

    #[test]
    fn adding_an_invalid_or_duplicate_never_raises_the_count(
        indices in index_list(), at in 0..8usize, extra in 0..10usize
    ) {
        let before = valid(&indices);
        let key = pool().entries[extra].1;
        let duplicate = key.is_some() && indices.iter().any(|&i| pool().entries[i].1 == key);
        prop_assume!(key.is_none() || duplicate);
        let mut more = indices.clone();
        more.insert(at.min(more.len()), extra);
        prop_assert_eq!(valid(&more), before);
    }

    #[test]
    fn removing_a_signature_never_turns_reject_into_accept(
        indices in index_list(), threshold in 1..4u32, remove in 0..8usize
    ) {
        prop_assume!(!indices.is_empty());
        let p = pool();
        let t = Threshold::AtLeast(SignatureThreshold::new(threshold).unwrap());
        let full = check_signatures(&descriptor(&indices), &p.digest, &p.roots, t, NOW);
        let mut fewer = indices.clone();
        fewer.remove(remove % indices.len());
        let less = check_signatures(&descriptor(&fewer), &p.digest, &p.roots, t, NOW);
        prop_assert!(!less.threshold_met() || full.threshold_met());
        prop_assert!(less.valid() <= full.valid());
    }
}

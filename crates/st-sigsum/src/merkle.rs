//! RFC 6962 Merkle trees, as Sigsum logs build them: leaf hash `SHA-256(0x00 || leaf)`,
//! interior node `SHA-256(0x01 || left || right)`.
//!
//! [`verify_inclusion`] is what a verifier runs. [`root`] and [`inclusion_path`] compute a
//! tree's head and audit paths from all its leaf hashes (RFC 6962 §2.1 `MTH` and §2.1.1
//! `PATH`); they serve test logs and generators, and the tests of the verifier.

use ring::digest::{Context, SHA256};

/// A SHA-256 value in the tree.
pub type Hash = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut c = Context::new(&SHA256);
    for p in parts {
        c.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// The hash of a leaf: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha256(&[&[0x00], leaf])
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn interior_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// Why an inclusion proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The proof's leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The audit path has the wrong number of hashes for this index and size.
    #[error(
        "the inclusion path has {got} hashes, a leaf at index {index} of a tree of size {size} needs {want}"
    )]
    PathLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the position needs.
        want: usize,
        /// The proof's leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// Hashing the leaf up the path gives another root.
    #[error("the inclusion path does not lead from the leaf to the tree head's root hash")]
    RootMismatch,
}

/// The audit path length of leaf `index` in a tree of `size` leaves (`index < size`).
fn path_length(index: u64, size: u64) -> usize {
    let k = 64 - (index ^ (size - 1)).leading_zeros();
    let shifted = index.checked_shr(k).unwrap_or(0);
    (k + shifted.count_ones()) as usize
}

/// Check that `leaf` (a leaf hash) is at `index` of the tree of `size` leaves whose root is
/// `root`, by the audit `path` (RFC 9162 §2.1.3.2). With `size == 1` the path is empty and the
/// leaf hash must be the root.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    root: &Hash,
    path: &[Hash],
) -> Result<(), InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    let want = path_length(index, size);
    if path.len() != want {
        return Err(InclusionError::PathLength {
            got: path.len(),
            want,
            index,
            size,
        });
    }
    let mut r = *leaf;
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut hashes = path.iter();
    while sn > 0 {
        if fn_ & 1 == 1 {
            let Some(p) = hashes.next() else {
                return Err(InclusionError::RootMismatch);
            };
            r = interior_hash(p, &r);
        } else if fn_ < sn {
            let Some(p) = hashes.next() else {
                return Err(InclusionError::RootMismatch);
            };
            r = interior_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if hashes.next().is_some() || r != *root {
        return Err(InclusionError::RootMismatch);
    }
    Ok(())
}

/// The largest power of two below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root of the tree over `leaves` (leaf hashes), RFC 6962 `MTH`; the empty tree's root is
/// `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => sha256(&[]),
        [one] => *one,
        _ => {
            let (l, r) = leaves.split_at(split(leaves.len()));
            interior_hash(&root(l), &root(r))
        }
    }
}

/// The audit path of leaf `index` in the tree over `leaves`, RFC 6962 `PATH`, leaf level
/// first; `None` when `index` is not a leaf.
pub fn inclusion_path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    if leaves.len() == 1 {
        return Some(Vec::new());
    }
    let k = split(leaves.len());
    let (l, r) = leaves.split_at(k);
    let mut path = if index < k {
        let mut p = inclusion_path(l, index)?;
        p.push(root(r));
        p
    } else {
        let mut p = inclusion_path(r, index - k)?;
        p.push(root(l));
        p
    };
    path.shrink_to_fit();
    Some(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_verifies_and_nothing_else_does() {
        for n in 1..=33usize {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let path = inclusion_path(&l, i).unwrap();
                let (idx, size) = (i as u64, n as u64);
                verify_inclusion(&l[i], idx, size, &r, &path).unwrap();
                assert_eq!(path.len(), path_length(idx, size));
                // Another leaf, another index, a flipped path hash: all fail.
                let other = leaf_hash(b"other");
                assert_eq!(
                    verify_inclusion(&other, idx, size, &r, &path),
                    Err(InclusionError::RootMismatch)
                );
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(verify_inclusion(&l[i], j as u64, size, &r, &path).is_err());
                    let mut bad = path.clone();
                    bad[0][0] ^= 1;
                    assert_eq!(
                        verify_inclusion(&l[i], idx, size, &r, &bad),
                        Err(InclusionError::RootMismatch)
                    );
                    assert!(matches!(
                        verify_inclusion(&l[i], idx, size, &r, &path[1..]),
                        Err(InclusionError::PathLength { .. })
                    ));
                }
            }
            assert_eq!(inclusion_path(&l, n), None);
            assert!(matches!(
                verify_inclusion(&l[0], n as u64, n as u64, &r, &[]),
                Err(InclusionError::IndexOutOfRange { .. })
            ));
        }
    }

    /// RFC 6962's 7-leaf example: PATH(d0, D7) = [b, h, l] in the RFC's naming.
    #[test]
    fn seven_leaf_example_has_the_rfc_shape() {
        let l = leaves(7);
        let p = inclusion_path(&l, 0).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], l[1]);
        assert_eq!(p[1], interior_hash(&l[2], &l[3]));
        assert_eq!(p[2], root(&l[4..]));
        assert_eq!(path_length(6, 7), 2);
        assert_eq!(
            inclusion_path(&l, 6).unwrap(),
            vec![interior_hash(&l[4], &l[5]), root(&l[..4])]
        );
    }

    #[test]
    fn the_largest_tree_sizes_do_not_overflow() {
        let size = i64::MAX as u64;
        assert_eq!(path_length(size - 1, size), 62);
        assert_eq!(path_length(0, size), 63);
        assert_eq!(path_length(0, 1), 0);
    }
}

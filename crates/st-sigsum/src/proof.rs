//! A Sigsum proof of logging, as a typed value, independent of how it was written down.
//!
//! [`Proof::parse`] reads the one format there is today, the Sigsum ASCII proof (versions 2
//! and 1, module [`ascii`](crate::ascii)). When the C2SP `tlog-proof` format arrives it gets a
//! module of its own that yields the same [`Proof`]; [`crate::verify`] and everything above it
//! stay as they are.

use crate::KeyHash;
use crate::merkle::Hash;

/// Which proof format version a proof was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofVersion {
    /// `version=1`: the leaf line also carries the first two bytes of the leaf checksum.
    V1 {
        /// The first 16 bits of `SHA-256(message)` as the proof states them.
        short_checksum: [u8; 2],
    },
    /// `version=2`, what `sigsum-submit` writes since sigsum-go v0.10.
    V2,
}

/// The submitter's part of the logged leaf (the checksum is not carried: it is computed from
/// the message being verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofLeaf {
    /// SHA-256 of the submitter's public key.
    pub key_hash: KeyHash,
    /// The submitter's Ed25519 signature over the leaf's signed data.
    pub signature: [u8; 64],
}

/// A witness cosignature of the tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// SHA-256 of the witness's public key.
    pub key_hash: KeyHash,
    /// The time the witness states (Unix seconds; signed, not otherwise checked).
    pub timestamp: u64,
    /// The witness's Ed25519 signature.
    pub signature: [u8; 64],
}

/// The log's signed tree head and the witnesses' cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of leaves (at least 1).
    pub size: u64,
    /// The Merkle root.
    pub root_hash: Hash,
    /// The log's Ed25519 signature over the tree head text.
    pub signature: [u8; 64],
    /// Cosignatures, in proof order, key hashes distinct.
    pub cosignatures: Vec<Cosignature>,
}

/// The leaf's position and audit path (empty for a tree of size 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    /// The leaf's index.
    pub leaf_index: u64,
    /// The audit path, leaf level first.
    pub path: Vec<Hash>,
}

/// A parsed proof that a signed leaf is in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The format version it was read from.
    pub version: ProofVersion,
    /// SHA-256 of the log's public key.
    pub log: KeyHash,
    /// The submitter's key hash and leaf signature.
    pub leaf: ProofLeaf,
    /// The cosigned tree head.
    pub tree_head: TreeHead,
    /// Where the leaf is in that tree.
    pub inclusion: Inclusion,
}

impl Proof {
    /// Parse a proof file (Sigsum ASCII proof, version 2 or 1).
    pub fn parse(bytes: &[u8]) -> Result<Self, crate::ProofError> {
        crate::ascii::parse(bytes)
    }

    /// The proof in the Sigsum ASCII format of its version (what `sigsum-submit` writes, for
    /// version 2).
    pub fn to_ascii(&self) -> Vec<u8> {
        crate::ascii::write(self)
    }
}

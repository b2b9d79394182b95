//! Sigsum for System Transparency: the Sigsum policy and proof formats, and the offline check
//! that a signature over an OS package was logged.
//!
//! # Design overview
//!
//! ST 1.3 lets a signer log its signature in a Sigsum transparency log: `sigsum-submit`
//! signs `SHA-256(archive)` with the signer's key, the log includes the signed leaf, witnesses
//! cosign the log's tree head, and the resulting *proof* file takes the place of a plain
//! signature in the OS package descriptor. This crate
//!
//! - parses the policy file that says which logs and witnesses are trusted ([`Policy::parse`],
//!   module [`policy`]),
//! - parses proofs into a typed [`Proof`] (module [`proof`]; the only wire format today, the
//!   Sigsum ASCII proof, lives in module [`ascii`], so a C2SP `tlog-proof` reader can be added
//!   beside it later without touching verification),
//! - and [`verify`]s a proof for a message and a submitter key against a policy, returning
//!   what was established ([`Logged`]) or a [`SigsumError`] whose text names the reason.
//!
//! One Ed25519 verifier, ring's (as for every other signature stboot checks; it rejects
//! non-canonical `S` as Go's `crypto/ed25519` does). Semantics where implementations differ
//! are chosen as sigsum-go (v0.11.2, what ST 1.3 uses) does, see `docs/compatibility.md`:
//! a bad cosignature from a known witness is ignored and the quorum decides; a duplicated
//! cosignature key hash is a parse error; version-1 proofs are accepted; cosignature
//! timestamps are signed but not checked.
//!
//! This crate does no IO and never reads the clock.

#![forbid(unsafe_code)]

pub mod ascii;
mod codec;
pub mod merkle;
pub mod policy;
pub mod proof;
#[cfg(any(test, feature = "testlog"))]
pub mod testlog;
#[cfg(test)]
mod tests;

pub use codec::HexError;
pub use merkle::InclusionError;
pub use policy::{Policy, PolicyError, PolicyErrorKind};
pub use proof::{Cosignature, Inclusion, Proof, ProofLeaf, ProofVersion, TreeHead};

use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, UnparsedPublicKey};
use std::fmt;

/// The namespace of the submitter's leaf signature.
pub const LEAF_NAMESPACE: &[u8] = b"sigsum.org/v1/tree-leaf";

/// SHA-256 of an Ed25519 public key: how Sigsum names logs, witnesses and submitters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The key hash of a public key.
    pub fn of(key: &[u8; 32]) -> Self {
        Self(sha256(key))
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&codec::hex(&self.0))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

fn ed25519_ok(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    UnparsedPublicKey::new(&ED25519, key)
        .verify(msg, sig)
        .is_ok()
}

/// The leaf checksum of a message: `SHA-256(message)`. For ST the message is
/// `SHA-256(archive)`.
pub fn leaf_checksum(message: &[u8; 32]) -> [u8; 32] {
    sha256(message)
}

/// The bytes the submitter signs: `"sigsum.org/v1/tree-leaf" || 0x00 || checksum`.
pub fn leaf_signed_data(checksum: &[u8; 32]) -> Vec<u8> {
    [LEAF_NAMESPACE, &[0], checksum].concat()
}

/// The 128-byte tree leaf: `checksum || signature || key_hash`.
pub fn tree_leaf(checksum: &[u8; 32], signature: &[u8; 64], key_hash: &KeyHash) -> Vec<u8> {
    [&checksum[..], &signature[..], &key_hash.0[..]].concat()
}

/// The leaf's hash in the log's Merkle tree.
pub fn leaf_hash(checksum: &[u8; 32], signature: &[u8; 64], key_hash: &KeyHash) -> merkle::Hash {
    merkle::leaf_hash(&tree_leaf(checksum, signature, key_hash))
}

/// The tree head text the log signs (checkpoint body): origin
/// `sigsum.org/v1/tree/<hex log key hash>`, size, base64 root hash, each line ending in `\n`.
pub fn tree_head_signed_data(log: &KeyHash, size: u64, root_hash: &merkle::Hash) -> String {
    format!(
        "sigsum.org/v1/tree/{log}\n{size}\n{}\n",
        codec::base64(root_hash)
    )
}

/// The bytes a witness signs: `"cosignature/v1\ntime <timestamp>\n"` and the tree head text.
pub fn cosignature_signed_data(
    log: &KeyHash,
    size: u64,
    root_hash: &merkle::Hash,
    timestamp: u64,
) -> String {
    format!(
        "cosignature/v1\ntime {timestamp}\n{}",
        tree_head_signed_data(log, size, root_hash)
    )
}

/// Why a proof file was refused: the line (1-based; 0 for the file as a whole) and what is
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", if *line > 0 { format!("proof line {line}: ") } else { String::new() })]
pub struct ProofError {
    /// The line, counting from 1; 0 when about the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: ProofErrorKind,
}

/// What is wrong in a proof file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofErrorKind {
    /// Over [`ascii::MAX_PROOF_BYTES`].
    #[error("the proof is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The last line has no `\n`.
    #[error("the line does not end in a newline")]
    Unterminated,
    /// A line without `=`.
    #[error("expected a {expected}=... line")]
    NotKeyValue {
        /// The key expected.
        expected: &'static str,
    },
    /// Another key than the one the format has here.
    #[error("expected {expected}=..., found {found:?}")]
    WrongKey {
        /// The key expected.
        expected: &'static str,
        /// The key found.
        found: String,
    },
    /// The proof ends, or a block ends, where this key must come.
    #[error("missing {0}=... line")]
    Missing(&'static str),
    /// A block separator is missing.
    #[error("expected an empty line before {before}=...")]
    ExpectedEmptyLine {
        /// The key of the next block.
        before: &'static str,
    },
    /// An empty line where none may be.
    #[error("unexpected empty line")]
    UnexpectedEmptyLine,
    /// A version other than 1 and 2.
    #[error("unknown proof version {0} (versions 1 and 2 are understood)")]
    UnknownVersion(u64),
    /// Not a decimal integer of the format.
    #[error("{0}: not a decimal integer from 0 to 2^63-1 without sign or leading zero")]
    Integer(&'static str),
    /// Bad hex.
    #[error("{field}: {reason}, expected {want} bytes of hex")]
    Hex {
        /// Which value.
        field: &'static str,
        /// What is wrong.
        reason: HexError,
        /// Bytes expected.
        want: usize,
    },
    /// Wrong number of space-separated values.
    #[error("{field}: {got} space-separated values, expected {want}")]
    ValueCount {
        /// The key.
        field: &'static str,
        /// Values found.
        got: usize,
        /// Values expected.
        want: usize,
    },
    /// `size=0`.
    #[error("tree size 0: an empty tree includes nothing")]
    EmptyTree,
    /// An inclusion block for a tree of size 1 (the leaf must be the root).
    #[error("a tree of size 1 has no inclusion proof block")]
    InclusionForSizeOne,
    /// The same witness key hash twice (sigsum-go refuses this too).
    #[error("duplicate cosignature from key hash {0}")]
    DuplicateCosignature(KeyHash),
    /// Too many lines of one kind.
    #[error("more than {max} {what} lines")]
    TooMany {
        /// The key.
        what: &'static str,
        /// The cap.
        max: usize,
    },
}

/// What a verified proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The log's key hash.
    pub log: KeyHash,
    /// The log's URL from the policy, when it names one.
    pub log_url: Option<String>,
    /// The cosigned tree's size.
    pub tree_size: u64,
    /// The leaf's index in it.
    pub leaf_index: u64,
    /// The witnesses whose cosignatures verified (policy names, policy order).
    pub witnesses: Vec<String>,
    /// The proof format version.
    pub version: ProofVersion,
}

/// Why a proof does not show that the message was logged. The text names the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigsumError {
    /// The proof file does not parse.
    #[error("malformed proof: {0}")]
    Malformed(ProofError),
    /// A version-1 proof whose short checksum is not that of this message.
    #[error(
        "the proof is for another message: its checksum starts {proof}, this message's starts {ours}"
    )]
    OtherMessage {
        /// Hex of the proof's short checksum.
        proof: String,
        /// Hex of the first two bytes of this message's checksum.
        ours: String,
    },
    /// The proof's leaf was signed by another key than the one expected.
    #[error("the proof's leaf key hash {proof} is not the signer's key hash {expected}")]
    LeafKeyMismatch {
        /// The leaf key hash in the proof.
        proof: KeyHash,
        /// SHA-256 of the expected submitter key.
        expected: KeyHash,
    },
    /// The proof names a log the policy does not trust.
    #[error("the proof is from log {0}, which the Sigsum policy does not list")]
    UnknownLog(KeyHash),
    /// The leaf signature does not verify for this message.
    #[error(
        "the leaf signature does not verify over this message's checksum: the proof was made for \
         another message, or its signature is corrupt"
    )]
    LeafSignature,
    /// The log's tree head signature does not verify.
    #[error("the tree head signature of log {0} does not verify")]
    LogSignature(KeyHash),
    /// Not enough witnesses cosigned.
    #[error(
        "witness quorum not met: {rule}; cosignatures verified from [{}], bad from [{}], {unknown} from witnesses the policy does not name",
        .verified.join(", "), .bad.join(", ")
    )]
    QuorumNotMet {
        /// Names of witnesses whose cosignatures verified.
        verified: Vec<String>,
        /// Names of known witnesses whose cosignatures did not verify.
        bad: Vec<String>,
        /// Cosignatures from key hashes the policy does not name (ignored).
        unknown: usize,
        /// The quorum rule and how far it got.
        rule: String,
    },
    /// The inclusion proof does not lead to the tree head.
    #[error("inclusion proof: {0}")]
    Inclusion(InclusionError),
}

/// The submitter's part of a proof only (what `stmgr ospkg sigsum` checks before attaching
/// one, as the reference does): steps 1, 2 and 4 of [`verify`], no policy, no tree head.
pub fn check_leaf(
    proof: &Proof,
    submitter_key: &[u8; 32],
    message: &[u8; 32],
) -> Result<(), SigsumError> {
    let checksum = check_message_and_key(proof, submitter_key, message)?;
    if !ed25519_ok(
        submitter_key,
        &leaf_signed_data(&checksum),
        &proof.leaf.signature,
    ) {
        return Err(SigsumError::LeafSignature);
    }
    Ok(())
}

/// Steps 1 and 2: the checksum (and a version-1 proof's short checksum), the leaf key hash.
fn check_message_and_key(
    proof: &Proof,
    submitter_key: &[u8; 32],
    message: &[u8; 32],
) -> Result<[u8; 32], SigsumError> {
    let checksum = leaf_checksum(message);
    if let ProofVersion::V1 { short_checksum } = proof.version
        && checksum.get(..2) != Some(&short_checksum[..])
    {
        return Err(SigsumError::OtherMessage {
            proof: codec::hex(&short_checksum),
            ours: codec::hex(checksum.get(..2).unwrap_or_default()),
        });
    }
    let expected = KeyHash::of(submitter_key);
    if proof.leaf.key_hash != expected {
        return Err(SigsumError::LeafKeyMismatch {
            proof: proof.leaf.key_hash,
            expected,
        });
    }
    Ok(checksum)
}

/// Check that `proof` shows `message`, signed by `submitter_key`, logged as `policy`
/// requires. In the order of sigsum-go's verifier (st13-formats §1.5):
///
/// 1. `checksum = SHA-256(message)`; a version-1 proof's short checksum must match it;
/// 2. the leaf key hash is `SHA-256(submitter_key)`;
/// 3. the log key hash names a log of the policy;
/// 4. the leaf signature verifies over `"sigsum.org/v1/tree-leaf\0" || checksum`;
/// 5. the log's signature over the tree head text verifies;
/// 6. each cosignature from a witness of the policy is verified (those from other key hashes
///    are ignored; a bad one from a known witness is recorded, not fatal);
/// 7. the verified witnesses meet the quorum;
/// 8. the inclusion path leads from the leaf hash to the root hash (size 1: leaf hash = root).
pub fn verify(
    proof: &Proof,
    policy: &Policy,
    submitter_key: &[u8; 32],
    message: &[u8; 32],
) -> Result<Logged, SigsumError> {
    let checksum = check_message_and_key(proof, submitter_key, message)?;
    let log = policy
        .log(&proof.log)
        .ok_or(SigsumError::UnknownLog(proof.log))?;
    if !ed25519_ok(
        submitter_key,
        &leaf_signed_data(&checksum),
        &proof.leaf.signature,
    ) {
        return Err(SigsumError::LeafSignature);
    }
    let th = &proof.tree_head;
    let head = tree_head_signed_data(&log.key_hash, th.size, &th.root_hash);
    if !ed25519_ok(&log.key, head.as_bytes(), &th.signature) {
        return Err(SigsumError::LogSignature(log.key_hash));
    }
    let mut cosigned = vec![false; policy.witnesses().len()];
    let mut bad = Vec::new();
    let mut unknown = 0usize;
    for c in &th.cosignatures {
        let Some((i, w)) = policy.witness(&c.key_hash) else {
            unknown += 1;
            continue;
        };
        let msg = cosignature_signed_data(&log.key_hash, th.size, &th.root_hash, c.timestamp);
        if ed25519_ok(&w.key, msg.as_bytes(), &c.signature) {
            if let Some(slot) = cosigned.get_mut(i) {
                *slot = true;
            }
        } else {
            bad.push(w.name.clone());
        }
    }
    let verified: Vec<String> = policy
        .witnesses()
        .iter()
        .zip(&cosigned)
        .filter(|(_, ok)| **ok)
        .map(|(w, _)| w.name.clone())
        .collect();
    if !policy.quorum_met(&cosigned) {
        return Err(SigsumError::QuorumNotMet {
            verified,
            bad,
            unknown,
            rule: policy.explain_quorum(&cosigned),
        });
    }
    let leaf = leaf_hash(&checksum, &proof.leaf.signature, &proof.leaf.key_hash);
    merkle::verify_inclusion(
        &leaf,
        proof.inclusion.leaf_index,
        th.size,
        &th.root_hash,
        &proof.inclusion.path,
    )
    .map_err(SigsumError::Inclusion)?;
    Ok(Logged {
        log: log.key_hash,
        log_url: log.url.clone(),
        tree_size: th.size,
        leaf_index: proof.inclusion.leaf_index,
        witnesses: verified,
        version: proof.version,
    })
}

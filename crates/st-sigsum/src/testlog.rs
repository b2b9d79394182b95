//! A small Sigsum log in memory, for tests and test vector generators (feature `testlog`):
//! fixed-seed Ed25519 keys, a Merkle tree over signed leaves, the log's signed tree head and
//! witness cosignatures, written out as a real [`Proof`].

use crate::merkle::{self, Hash};
use crate::proof::{Cosignature, Inclusion, Proof, ProofLeaf, ProofVersion, TreeHead};
use crate::{KeyHash, cosignature_signed_data, leaf_checksum, leaf_signed_data};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// An Ed25519 key from a fixed seed.
pub struct TestKey {
    pair: Ed25519KeyPair,
    public: [u8; 32],
}

impl TestKey {
    /// The key for `seed`; `None` only if ring refuses the seed (it never does for 32 bytes).
    pub fn from_seed(seed: &[u8; 32]) -> Option<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).ok()?;
        let public = <[u8; 32]>::try_from(pair.public_key().as_ref()).ok()?;
        Some(Self { pair, public })
    }
    /// The raw public key.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
    /// Its key hash.
    pub fn key_hash(&self) -> KeyHash {
        KeyHash::of(&self.public)
    }
    /// Sign `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
    /// The policy line `witness <name> <hex key>`.
    pub fn witness_line(&self, name: &str) -> String {
        format!("witness {name} {}\n", crate::codec::hex(&self.public))
    }
    /// The policy line `log <hex key>`.
    pub fn log_line(&self) -> String {
        format!("log {}\n", crate::codec::hex(&self.public))
    }
}

struct Entry {
    key_hash: KeyHash,
    signature: [u8; 64],
}

/// A log: its key and its leaves.
pub struct TestLog {
    key: TestKey,
    leaves: Vec<Hash>,
    entries: Vec<Entry>,
}

impl TestLog {
    /// An empty log signing with `key`.
    pub fn new(key: TestKey) -> Self {
        Self {
            key,
            leaves: Vec::new(),
            entries: Vec::new(),
        }
    }
    /// The log's key.
    pub fn key(&self) -> &TestKey {
        &self.key
    }
    /// Leaves so far.
    pub fn size(&self) -> usize {
        self.leaves.len()
    }

    /// Append a leaf for `message` whose signature (over
    /// [`leaf_signed_data`]`(SHA-256(message))`) was made by the key with hash `key_hash`;
    /// returns its index.
    pub fn add_signed(
        &mut self,
        message: &[u8; 32],
        key_hash: KeyHash,
        signature: [u8; 64],
    ) -> usize {
        let checksum = leaf_checksum(message);
        self.leaves
            .push(crate::leaf_hash(&checksum, &signature, &key_hash));
        self.entries.push(Entry {
            key_hash,
            signature,
        });
        self.leaves.len() - 1
    }

    /// Append a leaf for `message` signed by `submitter`; returns its index.
    pub fn add(&mut self, submitter: &TestKey, message: &[u8; 32]) -> usize {
        let sig = submitter.sign(&leaf_signed_data(&leaf_checksum(message)));
        self.add_signed(message, submitter.key_hash(), sig)
    }

    /// A version-2 proof for leaf `index` in the tree of all leaves so far, cosigned by each
    /// `(witness, timestamp)`; `None` when `index` is not a leaf.
    pub fn proof(&self, index: usize, cosigners: &[(&TestKey, u64)]) -> Option<Proof> {
        let entry = self.entries.get(index)?;
        let size = u64::try_from(self.leaves.len()).ok()?;
        let root_hash = merkle::root(&self.leaves);
        let log = self.key.key_hash();
        let signature = self
            .key
            .sign(crate::tree_head_signed_data(&log, size, &root_hash).as_bytes());
        let cosignatures = cosigners
            .iter()
            .map(|(w, ts)| Cosignature {
                key_hash: w.key_hash(),
                timestamp: *ts,
                signature: w.sign(cosignature_signed_data(&log, size, &root_hash, *ts).as_bytes()),
            })
            .collect();
        Some(Proof {
            version: ProofVersion::V2,
            log,
            leaf: ProofLeaf {
                key_hash: entry.key_hash,
                signature: entry.signature,
            },
            tree_head: TreeHead {
                size,
                root_hash,
                signature,
                cosignatures,
            },
            inclusion: Inclusion {
                leaf_index: u64::try_from(index).ok()?,
                path: merkle::inclusion_path(&self.leaves, index)?,
            },
        })
    }
}

//! The Sigsum ASCII proof format (sigsum-go `doc/sigsum-proof.md`, `pkg/proof`), read exactly
//! as sigsum-go v0.11.2 reads it, plus caps on size and counts:
//!
//! ```text
//! version=2
//! log=<hex log key hash>
//! leaf=<hex submitter key hash> <hex leaf signature>      (v1: <4 hex> before the key hash)
//!
//! size=<N>
//! root_hash=<hex>
//! signature=<hex>
//! cosignature=<hex witness key hash> <timestamp> <hex>    (0 or more)
//!
//! leaf_index=<N>                                          (this block absent when size=1)
//! node_hash=<hex>                                         (1 or more)
//! ```
//!
//! Every line ends in `\n` (a last line without one is an error, and so is a `\r`: it would be
//! part of the value); `key=value` is cut at the first `=`; values are separated by exactly
//! one space; hex is either case; integers have no sign and no leading zero and are at most
//! 2^63 - 1; a cosignature key hash may appear only once.

use crate::codec::{self, HexError};
use crate::merkle::Hash;
use crate::proof::{Cosignature, Inclusion, Proof, ProofLeaf, ProofVersion, TreeHead};
use crate::{KeyHash, ProofError, ProofErrorKind};

/// Largest proof accepted: 64 KiB. A proof with [`MAX_COSIGNATURES`] cosignatures and
/// [`MAX_NODE_HASHES`] node hashes is about 33 KiB; real ones are 1-3 KiB.
pub const MAX_PROOF_BYTES: usize = 64 << 10;

/// Most `cosignature` lines: 128, twice the witnesses a policy may name.
pub const MAX_COSIGNATURES: usize = 128;

/// Most `node_hash` lines: 63, sigsum-go's limit and the longest path a tree of at most
/// 2^63 - 1 leaves has.
pub const MAX_NODE_HASHES: usize = 63;

struct Lines<'a> {
    rest: &'a [u8],
    line: usize,
}

enum Next<'a> {
    Line(&'a [u8]),
    Empty,
    Eof,
}

impl<'a> Lines<'a> {
    fn err(&self, kind: ProofErrorKind) -> ProofError {
        ProofError {
            line: self.line,
            kind,
        }
    }

    fn next(&mut self) -> Result<Next<'a>, ProofError> {
        if self.rest.is_empty() {
            return Ok(Next::Eof);
        }
        self.line += 1;
        let Some(end) = self.rest.iter().position(|&c| c == b'\n') else {
            return Err(self.err(ProofErrorKind::Unterminated));
        };
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest.get(1..).unwrap_or_default();
        Ok(if line.is_empty() {
            Next::Empty
        } else {
            Next::Line(line)
        })
    }

    /// The value of a `key=value` line; `Ok(None)` at an empty line or the end.
    fn value(&mut self, key: &'static str) -> Result<Option<&'a [u8]>, ProofError> {
        match self.next()? {
            Next::Line(line) => {
                let Some(eq) = line.iter().position(|&c| c == b'=') else {
                    return Err(self.err(ProofErrorKind::NotKeyValue { expected: key }));
                };
                let (k, v) = line.split_at(eq);
                if k != key.as_bytes() {
                    return Err(self.err(ProofErrorKind::WrongKey {
                        expected: key,
                        found: String::from_utf8_lossy(k).into_owned(),
                    }));
                }
                Ok(Some(v.get(1..).unwrap_or_default()))
            }
            Next::Empty | Next::Eof => Ok(None),
        }
    }

    fn required(&mut self, key: &'static str) -> Result<&'a [u8], ProofError> {
        let at_end = self.rest.is_empty();
        match self.value(key)? {
            Some(v) => Ok(v),
            // At the end, the missing line would have been the next one.
            None if at_end => Err(ProofError {
                line: self.line + 1,
                kind: ProofErrorKind::Missing(key),
            }),
            None => Err(self.err(ProofErrorKind::Missing(key))),
        }
    }

    fn empty_line(&mut self, before: &'static str) -> Result<(), ProofError> {
        match self.next()? {
            Next::Empty => Ok(()),
            _ => Err(self.err(ProofErrorKind::ExpectedEmptyLine { before })),
        }
    }

    fn hex<const N: usize>(&self, field: &'static str, v: &[u8]) -> Result<[u8; N], ProofError> {
        codec::unhex::<N>(v).map_err(|reason: HexError| {
            self.err(ProofErrorKind::Hex {
                field,
                reason,
                want: N,
            })
        })
    }

    fn int(&self, field: &'static str, v: &[u8]) -> Result<u64, ProofError> {
        codec::decimal(v).ok_or_else(|| self.err(ProofErrorKind::Integer(field)))
    }

    fn values<const N: usize>(
        &self,
        field: &'static str,
        v: &'a [u8],
    ) -> Result<[&'a [u8]; N], ProofError> {
        let parts: Vec<&[u8]> = v.split(|&c| c == b' ').collect();
        <[&[u8]; N]>::try_from(parts.as_slice()).map_err(|_| {
            self.err(ProofErrorKind::ValueCount {
                field,
                got: parts.len(),
                want: N,
            })
        })
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Proof, ProofError> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofError {
            line: 0,
            kind: ProofErrorKind::TooLarge {
                size: bytes.len(),
                max: MAX_PROOF_BYTES,
            },
        });
    }
    let mut l = Lines {
        rest: bytes,
        line: 0,
    };
    let v = l.required("version")?;
    let version = match l.int("version", v)? {
        1 => 1,
        2 => 2,
        n => return Err(l.err(ProofErrorKind::UnknownVersion(n))),
    };
    let v = l.required("log")?;
    let log = KeyHash(l.hex("log", v)?);
    let v = l.required("leaf")?;
    let (version, key_hash, signature) = if version == 1 {
        let [short, key, sig] = l.values::<3>("leaf", v)?;
        let short_checksum = l.hex::<2>("leaf short checksum", short)?;
        (ProofVersion::V1 { short_checksum }, key, sig)
    } else {
        let [key, sig] = l.values::<2>("leaf", v)?;
        (ProofVersion::V2, key, sig)
    };
    let leaf = ProofLeaf {
        key_hash: KeyHash(l.hex("leaf key hash", key_hash)?),
        signature: l.hex("leaf signature", signature)?,
    };
    l.empty_line("size")?;

    let v = l.required("size")?;
    let size = l.int("size", v)?;
    if size == 0 {
        return Err(l.err(ProofErrorKind::EmptyTree));
    }
    let v = l.required("root_hash")?;
    let root_hash: Hash = l.hex("root_hash", v)?;
    let v = l.required("signature")?;
    let tree_signature = l.hex("signature", v)?;
    let mut cosignatures: Vec<Cosignature> = Vec::new();
    let ended_by_empty_line = loop {
        let at_end = l.rest.is_empty();
        let Some(v) = l.value("cosignature")? else {
            break !at_end;
        };
        let [key, ts, sig] = l.values::<3>("cosignature", v)?;
        let c = Cosignature {
            key_hash: KeyHash(l.hex("cosignature key hash", key)?),
            timestamp: l.int("cosignature timestamp", ts)?,
            signature: l.hex("cosignature signature", sig)?,
        };
        if cosignatures.iter().any(|o| o.key_hash == c.key_hash) {
            return Err(l.err(ProofErrorKind::DuplicateCosignature(c.key_hash)));
        }
        if cosignatures.len() >= MAX_COSIGNATURES {
            return Err(l.err(ProofErrorKind::TooMany {
                what: "cosignature",
                max: MAX_COSIGNATURES,
            }));
        }
        cosignatures.push(c);
    };
    let tree_head = TreeHead {
        size,
        root_hash,
        signature: tree_signature,
        cosignatures,
    };
    if size == 1 {
        if ended_by_empty_line {
            return Err(l.err(ProofErrorKind::InclusionForSizeOne));
        }
        return Ok(Proof {
            version,
            log,
            leaf,
            tree_head,
            inclusion: Inclusion {
                leaf_index: 0,
                path: Vec::new(),
            },
        });
    }
    if !ended_by_empty_line {
        return Err(l.err(ProofErrorKind::Missing("leaf_index")));
    }
    let v = l.required("leaf_index")?;
    let leaf_index = l.int("leaf_index", v)?;
    let mut path: Vec<Hash> = Vec::new();
    while !l.rest.is_empty() {
        let Some(v) = l.value("node_hash")? else {
            return Err(l.err(ProofErrorKind::UnexpectedEmptyLine));
        };
        if path.len() >= MAX_NODE_HASHES {
            return Err(l.err(ProofErrorKind::TooMany {
                what: "node_hash",
                max: MAX_NODE_HASHES,
            }));
        }
        path.push(l.hex("node_hash", v)?);
    }
    if path.is_empty() {
        return Err(l.err(ProofErrorKind::Missing("node_hash")));
    }
    Ok(Proof {
        version,
        log,
        leaf,
        tree_head,
        inclusion: Inclusion { leaf_index, path },
    })
}

pub(crate) fn write(p: &Proof) -> Vec<u8> {
    let mut s = String::new();
    let hex = codec::hex;
    match p.version {
        ProofVersion::V1 { short_checksum } => {
            s.push_str("version=1\n");
            s.push_str(&format!("log={}\n", hex(&p.log.0)));
            s.push_str(&format!(
                "leaf={} {} {}\n",
                hex(&short_checksum),
                hex(&p.leaf.key_hash.0),
                hex(&p.leaf.signature)
            ));
        }
        ProofVersion::V2 => {
            s.push_str("version=2\n");
            s.push_str(&format!("log={}\n", hex(&p.log.0)));
            s.push_str(&format!(
                "leaf={} {}\n",
                hex(&p.leaf.key_hash.0),
                hex(&p.leaf.signature)
            ));
        }
    }
    let th = &p.tree_head;
    s.push_str(&format!(
        "\nsize={}\nroot_hash={}\nsignature={}\n",
        th.size,
        hex(&th.root_hash),
        hex(&th.signature)
    ));
    for c in &th.cosignatures {
        s.push_str(&format!(
            "cosignature={} {} {}\n",
            hex(&c.key_hash.0),
            c.timestamp,
            hex(&c.signature)
        ));
    }
    if th.size > 1 {
        s.push_str(&format!("\nleaf_index={}\n", p.inclusion.leaf_index));
        for h in &p.inclusion.path {
            s.push_str(&format!("node_hash={}\n", hex(h)));
        }
    }
    s.into_bytes()
}

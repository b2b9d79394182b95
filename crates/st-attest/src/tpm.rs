//! TPM 2.0 structures a verifier reads (TPM 2.0 Part 2, "Structures"): `TPMT_PUBLIC` (inside a
//! `TPM2B_PUBLIC`), the object's name, `TPMS_ATTEST` of a quote and `TPMT_SIGNATURE`. Every
//! parser is bounded (sizes capped, every length checked against what is left, no trailing
//! bytes) and fails with a [`TpmError`] naming the structure, the field and the offset.

use std::fmt;

/// `TPM_ALG_RSA`.
pub const ALG_RSA: u16 = 0x0001;
/// `TPM_ALG_SHA1`.
pub const ALG_SHA1: u16 = 0x0004;
/// `TPM_ALG_AES`.
pub const ALG_AES: u16 = 0x0006;
/// `TPM_ALG_KEYEDHASH`.
pub const ALG_KEYEDHASH: u16 = 0x0008;
/// `TPM_ALG_SHA256`.
pub const ALG_SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA384`.
pub const ALG_SHA384: u16 = 0x000C;
/// `TPM_ALG_SHA512`.
pub const ALG_SHA512: u16 = 0x000D;
/// `TPM_ALG_NULL`.
pub const ALG_NULL: u16 = 0x0010;
/// `TPM_ALG_RSASSA` (PKCS#1 v1.5 signatures).
pub const ALG_RSASSA: u16 = 0x0014;
/// `TPM_ALG_RSAPSS`.
pub const ALG_RSAPSS: u16 = 0x0016;
/// `TPM_ALG_ECDSA`.
pub const ALG_ECDSA: u16 = 0x0018;
/// `TPM_ALG_ECDAA` (its scheme carries a count after the hash).
pub const ALG_ECDAA: u16 = 0x001A;
/// `TPM_ALG_ECC`.
pub const ALG_ECC: u16 = 0x0023;
/// `TPM_ALG_SYMCIPHER`.
pub const ALG_SYMCIPHER: u16 = 0x0025;
/// `TPM_ALG_CFB`.
pub const ALG_CFB: u16 = 0x0043;
/// `TPM_ECC_NIST_P256`.
pub const ECC_NIST_P256: u16 = 0x0003;
/// `TPM_ECC_NIST_P384`.
pub const ECC_NIST_P384: u16 = 0x0004;
/// `TPM_GENERATED_VALUE`: the magic of every structure the TPM signs.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
pub const ST_ATTEST_QUOTE: u16 = 0x8018;
/// `TPM_RH_ENDORSEMENT`: the endorsement hierarchy's handle (the first element of a primary
/// key's qualified name).
pub const RH_ENDORSEMENT: u32 = 0x4000_000B;

/// The largest `TPM2B_PUBLIC`/`TPMT_PUBLIC` accepted (an RSA-4096 key with a 64-byte policy is
/// under 700 bytes).
pub const MAX_PUBLIC_BYTES: usize = 2048;
/// The largest `TPMS_ATTEST` accepted (a quote is under 300 bytes).
pub const MAX_ATTEST_BYTES: usize = 2048;
/// The largest `TPMT_SIGNATURE` accepted (RSA-4096: 518 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 1024;

/// Why a TPM structure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure}: offset {offset}: {field}: {kind}")]
pub struct TpmError {
    /// The structure being read (`TPMT_PUBLIC`, `TPMS_ATTEST`, `TPMT_SIGNATURE`).
    pub structure: &'static str,
    /// The field.
    pub field: &'static str,
    /// Byte offset of the field in the input.
    pub offset: usize,
    /// What is wrong.
    pub kind: TpmErrorKind,
}

/// What is wrong with a TPM structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TpmErrorKind {
    /// The input ends inside the field.
    #[error("truncated: {needed} bytes needed, {available} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes after the structure.
    #[error("{0} bytes after the end of the structure")]
    Trailing(usize),
    /// Larger than the cap.
    #[error("{size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// A value this verifier does not handle (an algorithm, an object type, a curve).
    #[error("unsupported value {0:#06x}")]
    Unsupported(u32),
    /// A value that is wrong for this structure (a magic, a type tag, a size).
    #[error("expected {expected:#x}, found {found:#x}")]
    Unexpected {
        /// What the structure requires.
        expected: u32,
        /// What is there.
        found: u32,
    },
}

/// A bounded big-endian reader over one structure.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        structure: &'static str,
        bytes: &'a [u8],
        max: usize,
    ) -> Result<Self, TpmError> {
        let r = Self {
            bytes,
            pos: 0,
            structure,
        };
        if bytes.len() > max {
            return Err(r.err(
                "size",
                TpmErrorKind::TooLarge {
                    size: bytes.len(),
                    max,
                },
            ));
        }
        Ok(r)
    }

    pub(crate) fn err(&self, field: &'static str, kind: TpmErrorKind) -> TpmError {
        TpmError {
            structure: self.structure,
            field,
            offset: self.pos,
            kind,
        }
    }

    pub(crate) fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], TpmError> {
        let available = self.bytes.len().saturating_sub(self.pos);
        let end = self.pos.checked_add(n).filter(|_| n <= available);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(
                field,
                TpmErrorKind::Truncated {
                    needed: n,
                    available,
                },
            )),
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, TpmError> {
        let b = self.take(field, 1)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, TpmError> {
        let b = self.take(field, 2)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, TpmError> {
        let b = self.take(field, 4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, TpmError> {
        let b = self.take(field, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A `TPM2B_*`: a u16 size, then that many bytes.
    pub(crate) fn tpm2b(&mut self, field: &'static str) -> Result<&'a [u8], TpmError> {
        let n = self.u16(field)?;
        self.take(field, usize::from(n))
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn finish(self) -> Result<(), TpmError> {
        let left = self.bytes.len().saturating_sub(self.pos);
        if left == 0 {
            Ok(())
        } else {
            Err(self.err("end", TpmErrorKind::Trailing(left)))
        }
    }
}

/// A hash algorithm a TPM names objects with or signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// `TPM_ALG_SHA1`.
    Sha1,
    /// `TPM_ALG_SHA256`.
    Sha256,
    /// `TPM_ALG_SHA384`.
    Sha384,
    /// `TPM_ALG_SHA512`.
    Sha512,
}

impl HashAlg {
    /// The algorithm for a `TPM_ALG_ID`, if it is one of these hashes.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            ALG_SHA1 => Some(Self::Sha1),
            ALG_SHA256 => Some(Self::Sha256),
            ALG_SHA384 => Some(Self::Sha384),
            ALG_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }
    /// The `TPM_ALG_ID`.
    pub fn id(self) -> u16 {
        match self {
            Self::Sha1 => ALG_SHA1,
            Self::Sha256 => ALG_SHA256,
            Self::Sha384 => ALG_SHA384,
            Self::Sha512 => ALG_SHA512,
        }
    }
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        self.ring().output_len()
    }
    /// `sha256`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
    /// The hash of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(self.ring());
        for p in parts {
            ctx.update(p);
        }
        ctx.finish().as_ref().to_vec()
    }
    pub(crate) fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `TPMA_OBJECT`, the object attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectAttributes(pub u32);

impl ObjectAttributes {
    /// `fixedTPM` (bit 1): the key cannot leave this TPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// `stClear` (bit 2).
    pub const ST_CLEAR: u32 = 1 << 2;
    /// `fixedParent` (bit 4): the key cannot be moved to another parent.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// `sensitiveDataOrigin` (bit 5): the TPM made the private part.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// `userWithAuth` (bit 6).
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// `adminWithPolicy` (bit 7).
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// `noDA` (bit 10).
    pub const NO_DA: u32 = 1 << 10;
    /// `restricted` (bit 16): signs only TPM-generated structures (or decrypts only its own).
    pub const RESTRICTED: u32 = 1 << 16;
    /// `decrypt` (bit 17).
    pub const DECRYPT: u32 = 1 << 17;
    /// `sign` (bit 18).
    pub const SIGN: u32 = 1 << 18;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// The names of the set bits, tpm2-tools style (`fixedtpm|fixedparent|...`).
    pub fn names(self) -> String {
        const NAMES: [(u32, &str); 10] = [
            (ObjectAttributes::FIXED_TPM, "fixedtpm"),
            (ObjectAttributes::ST_CLEAR, "stclear"),
            (ObjectAttributes::FIXED_PARENT, "fixedparent"),
            (
                ObjectAttributes::SENSITIVE_DATA_ORIGIN,
                "sensitivedataorigin",
            ),
            (ObjectAttributes::USER_WITH_AUTH, "userwithauth"),
            (ObjectAttributes::ADMIN_WITH_POLICY, "adminwithpolicy"),
            (ObjectAttributes::NO_DA, "noda"),
            (ObjectAttributes::RESTRICTED, "restricted"),
            (ObjectAttributes::DECRYPT, "decrypt"),
            (ObjectAttributes::SIGN, "sign"),
        ];
        NAMES
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// `TPMT_SYM_DEF_OBJECT`: the symmetric algorithm of a storage key (`None` when NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDef {
    /// `TPM_ALG_AES`, ...
    pub algorithm: u16,
    /// Key size in bits.
    pub key_bits: u16,
    /// `TPM_ALG_CFB`, ...
    pub mode: u16,
}

/// A signing or encryption scheme with its hash (`TPMT_*_SCHEME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// `TPM_ALG_ECDSA`, `TPM_ALG_RSASSA`, `TPM_ALG_OAEP`, ...
    pub scheme: u16,
    /// The scheme's hash algorithm (0 for schemes without one, such as RSAES).
    pub hash: u16,
}

/// The algorithm-specific part of a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `TPM_ALG_RSA`: `TPMS_RSA_PARMS` and `TPM2B_PUBLIC_KEY_RSA`.
    Rsa {
        /// Symmetric algorithm of a storage key.
        symmetric: Option<SymDef>,
        /// Scheme (`None` when NULL).
        scheme: Option<Scheme>,
        /// Modulus size in bits.
        key_bits: u16,
        /// Public exponent (0 in the structure means 65537; this field holds the effective
        /// value).
        exponent: u32,
        /// The modulus, big-endian.
        modulus: Vec<u8>,
    },
    /// `TPM_ALG_ECC`: `TPMS_ECC_PARMS` and `TPMS_ECC_POINT`.
    Ecc {
        /// Symmetric algorithm of a storage key.
        symmetric: Option<SymDef>,
        /// Scheme (`None` when NULL).
        scheme: Option<Scheme>,
        /// `TPM_ECC_NIST_P256`, ...
        curve: u16,
        /// KDF scheme (`None` when NULL).
        kdf: Option<Scheme>,
        /// x coordinate, big-endian.
        x: Vec<u8>,
        /// y coordinate, big-endian.
        y: Vec<u8>,
    },
}

/// A parsed `TPMT_PUBLIC`, with the exact bytes it was parsed from (the name hashes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    /// The `TPMT_PUBLIC` bytes.
    pub bytes: Vec<u8>,
    /// `type`.
    pub alg: u16,
    /// `nameAlg`.
    pub name_alg: HashAlg,
    /// `objectAttributes`.
    pub attributes: ObjectAttributes,
    /// `authPolicy`.
    pub auth_policy: Vec<u8>,
    /// `parameters` and `unique`.
    pub key: PublicKey,
}

fn sym_def(r: &mut Reader<'_>) -> Result<Option<SymDef>, TpmError> {
    let algorithm = r.u16("parameters.symmetric.algorithm")?;
    if algorithm == ALG_NULL {
        return Ok(None);
    }
    let key_bits = r.u16("parameters.symmetric.keyBits")?;
    let mode = r.u16("parameters.symmetric.mode")?;
    Ok(Some(SymDef {
        algorithm,
        key_bits,
        mode,
    }))
}

fn scheme(r: &mut Reader<'_>, field: &'static str) -> Result<Option<Scheme>, TpmError> {
    let scheme = r.u16(field)?;
    match scheme {
        ALG_NULL => Ok(None),
        // TPMS_ENC_SCHEME_RSAES is empty.
        0x0015 => Ok(Some(Scheme { scheme, hash: 0 })),
        ALG_ECDAA => {
            let hash = r.u16(field)?;
            let _count = r.u16(field)?;
            Ok(Some(Scheme { scheme, hash }))
        }
        _ => Ok(Some(Scheme {
            scheme,
            hash: r.u16(field)?,
        })),
    }
}

impl Public {
    /// Parse a `TPMT_PUBLIC` (no size prefix), all of `bytes`.
    pub fn parse_tpmt(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = Reader::new("TPMT_PUBLIC", bytes, MAX_PUBLIC_BYTES)?;
        let alg = r.u16("type")?;
        let at = r.pos();
        let name_alg_id = r.u16("nameAlg")?;
        let name_alg = HashAlg::from_id(name_alg_id).ok_or(TpmError {
            structure: "TPMT_PUBLIC",
            field: "nameAlg",
            offset: at,
            kind: TpmErrorKind::Unsupported(u32::from(name_alg_id)),
        })?;
        let attributes = ObjectAttributes(r.u32("objectAttributes")?);
        let auth_policy = r.tpm2b("authPolicy")?.to_vec();
        let key = match alg {
            ALG_RSA => {
                let symmetric = sym_def(&mut r)?;
                let scheme = scheme(&mut r, "parameters.scheme")?;
                let key_bits = r.u16("parameters.keyBits")?;
                let exponent = match r.u32("parameters.exponent")? {
                    0 => 65537,
                    e => e,
                };
                let modulus = r.tpm2b("unique.rsa")?.to_vec();
                PublicKey::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                    modulus,
                }
            }
            ALG_ECC => {
                let symmetric = sym_def(&mut r)?;
                let scheme = scheme(&mut r, "parameters.scheme")?;
                let curve = r.u16("parameters.curveID")?;
                let kdf = scheme_kdf(&mut r)?;
                let x = r.tpm2b("unique.ecc.x")?.to_vec();
                let y = r.tpm2b("unique.ecc.y")?.to_vec();
                PublicKey::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                    x,
                    y,
                }
            }
            other => {
                return Err(TpmError {
                    structure: "TPMT_PUBLIC",
                    field: "type",
                    offset: 0,
                    kind: TpmErrorKind::Unsupported(u32::from(other)),
                });
            }
        };
        r.finish()?;
        Ok(Self {
            bytes: bytes.to_vec(),
            alg,
            name_alg,
            attributes,
            auth_policy,
            key,
        })
    }

    /// Parse a `TPM2B_PUBLIC` (u16 size, then the `TPMT_PUBLIC`), all of `bytes`.
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = Reader::new("TPM2B_PUBLIC", bytes, MAX_PUBLIC_BYTES + 2)?;
        let inner = r.tpm2b("size")?;
        r.finish()?;
        Self::parse_tpmt(inner)
    }

    /// Parse either form: a `TPM2B_PUBLIC` when the first two bytes are the size of the rest,
    /// otherwise a `TPMT_PUBLIC` (its first two bytes are the type, 0x0001 or 0x0023, which no
    /// valid public area is as short as). The agent's messages carry a `TPM2B_PUBLIC`; tools
    /// also write the bare `TPMT_PUBLIC`.
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        match bytes {
            [a, b, rest @ ..] if usize::from(u16::from_be_bytes([*a, *b])) == rest.len() => {
                Self::parse_tpm2b(bytes)
            }
            _ => Self::parse_tpmt(bytes),
        }
    }

    /// The TPM name: `nameAlg || H_nameAlg(TPMT_PUBLIC)`.
    pub fn name(&self) -> Vec<u8> {
        let mut out = self.name_alg.id().to_be_bytes().to_vec();
        out.extend_from_slice(&self.name_alg.hash(&[&self.bytes]));
        out
    }

    /// A short description: `ECC NIST P-256`, `RSA 2048`.
    pub fn describe(&self) -> String {
        match &self.key {
            PublicKey::Rsa { key_bits, .. } => format!("RSA {key_bits}"),
            PublicKey::Ecc { curve, .. } => match *curve {
                ECC_NIST_P256 => "ECC NIST P-256".to_string(),
                ECC_NIST_P384 => "ECC NIST P-384".to_string(),
                c => format!("ECC curve {c:#06x}"),
            },
        }
    }
}

fn scheme_kdf(r: &mut Reader<'_>) -> Result<Option<Scheme>, TpmError> {
    let scheme = r.u16("parameters.kdf")?;
    if scheme == ALG_NULL {
        return Ok(None);
    }
    Ok(Some(Scheme {
        scheme,
        hash: r.u16("parameters.kdf.hashAlg")?,
    }))
}

/// The qualified name of an object (TPM 2.0 Part 1 §16): `nameAlg || H(QN(parent) || name)`;
/// a primary key's parent QN is its hierarchy's handle.
pub fn qualified_name(parent_qn: &[u8], name: &[u8], alg: HashAlg) -> Vec<u8> {
    let mut out = alg.id().to_be_bytes().to_vec();
    out.extend_from_slice(&alg.hash(&[parent_qn, name]));
    out
}

/// One `TPMS_PCR_SELECTION`: a bank and the PCRs selected in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm id.
    pub hash: u16,
    /// The selected PCR indices, ascending.
    pub pcrs: Vec<u32>,
}

/// `TPMS_CLOCK_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was made.
    pub clock: u64,
    /// TPM resets (reboots) so far.
    pub reset_count: u32,
    /// TPM restarts (resume from hibernation) since the last reset.
    pub restart_count: u32,
    /// Whether `clock` was never set back.
    pub safe: bool,
}

/// A parsed `TPMS_ATTEST` of type quote, with the exact bytes (what the signature covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The `TPMS_ATTEST` bytes.
    pub bytes: Vec<u8>,
    /// `qualifiedSigner`: the signing key's qualified name.
    pub qualified_signer: Vec<u8>,
    /// `extraData`: the caller's qualifying data.
    pub extra_data: Vec<u8>,
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// `attested.quote.pcrSelect`.
    pub pcr_select: Vec<PcrSelection>,
    /// `attested.quote.pcrDigest`.
    pub pcr_digest: Vec<u8>,
}

/// More banks than any TPM has.
const MAX_PCR_BANKS: u32 = 16;

impl Quote {
    /// Parse a `TPMS_ATTEST` (the contents of the `TPM2B_ATTEST` that `TPM2_Quote` returns),
    /// all of `bytes`; it must be a quote.
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = Reader::new("TPMS_ATTEST", bytes, MAX_ATTEST_BYTES)?;
        let magic = r.u32("magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(TpmError {
                structure: "TPMS_ATTEST",
                field: "magic",
                offset: 0,
                kind: TpmErrorKind::Unexpected {
                    expected: TPM_GENERATED_VALUE,
                    found: magic,
                },
            });
        }
        let tag = r.u16("type")?;
        if tag != ST_ATTEST_QUOTE {
            return Err(TpmError {
                structure: "TPMS_ATTEST",
                field: "type",
                offset: 4,
                kind: TpmErrorKind::Unexpected {
                    expected: u32::from(ST_ATTEST_QUOTE),
                    found: u32::from(tag),
                },
            });
        }
        let qualified_signer = r.tpm2b("qualifiedSigner")?.to_vec();
        let extra_data = r.tpm2b("extraData")?.to_vec();
        let clock = r.u64("clockInfo.clock")?;
        let reset_count = r.u32("clockInfo.resetCount")?;
        let restart_count = r.u32("clockInfo.restartCount")?;
        let safe = r.u8("clockInfo.safe")? != 0;
        let firmware_version = r.u64("firmwareVersion")?;
        let at = r.pos();
        let count = r.u32("pcrSelect.count")?;
        if count > MAX_PCR_BANKS {
            return Err(TpmError {
                structure: "TPMS_ATTEST",
                field: "pcrSelect.count",
                offset: at,
                kind: TpmErrorKind::Unsupported(count),
            });
        }
        let mut pcr_select = Vec::new();
        for _ in 0..count {
            let hash = r.u16("pcrSelect.hash")?;
            let size = r.u8("pcrSelect.sizeofSelect")?;
            let bits = r.take("pcrSelect.pcrSelect", usize::from(size))?;
            let mut pcrs = Vec::new();
            for (i, byte) in bits.iter().enumerate() {
                for bit in 0..8u32 {
                    if byte & (1 << bit) != 0 {
                        // i < 256, so this fits.
                        pcrs.push(u32::try_from(i).unwrap_or(u32::MAX / 8) * 8 + bit);
                    }
                }
            }
            pcr_select.push(PcrSelection { hash, pcrs });
        }
        let pcr_digest = r.tpm2b("pcrDigest")?.to_vec();
        r.finish()?;
        Ok(Self {
            bytes: bytes.to_vec(),
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            pcr_select,
            pcr_digest,
        })
    }
}

/// A parsed `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// `TPM_ALG_ECDSA`: hash and (r, s), big-endian, as the TPM wrote them.
    Ecdsa {
        /// The hash signed with.
        hash: u16,
        /// r.
        r: Vec<u8>,
        /// s.
        s: Vec<u8>,
    },
    /// `TPM_ALG_RSASSA` (PKCS#1 v1.5) or `TPM_ALG_RSAPSS`.
    Rsa {
        /// `TPM_ALG_RSASSA` or `TPM_ALG_RSAPSS`.
        scheme: u16,
        /// The hash signed with.
        hash: u16,
        /// The signature.
        sig: Vec<u8>,
    },
}

impl Signature {
    /// Parse a `TPMT_SIGNATURE`, all of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = Reader::new("TPMT_SIGNATURE", bytes, MAX_SIGNATURE_BYTES)?;
        let alg = r.u16("sigAlg")?;
        let sig = match alg {
            ALG_ECDSA => {
                let hash = r.u16("signature.ecdsa.hash")?;
                let sr = r.tpm2b("signature.ecdsa.signatureR")?.to_vec();
                let ss = r.tpm2b("signature.ecdsa.signatureS")?.to_vec();
                Self::Ecdsa { hash, r: sr, s: ss }
            }
            ALG_RSASSA | ALG_RSAPSS => {
                let hash = r.u16("signature.rsa.hash")?;
                let sig = r.tpm2b("signature.rsa.sig")?.to_vec();
                Self::Rsa {
                    scheme: alg,
                    hash,
                    sig,
                }
            }
            other => {
                return Err(TpmError {
                    structure: "TPMT_SIGNATURE",
                    field: "sigAlg",
                    offset: 0,
                    kind: TpmErrorKind::Unsupported(u32::from(other)),
                });
            }
        };
        r.finish()?;
        Ok(sig)
    }

    /// The hash algorithm id the signature was made with.
    pub fn hash(&self) -> u16 {
        match self {
            Self::Ecdsa { hash, .. } | Self::Rsa { hash, .. } => *hash,
        }
    }

    /// `ECDSA`, `RSASSA`, `RSAPSS`.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            Self::Ecdsa { .. } => "ECDSA",
            Self::Rsa {
                scheme: ALG_RSAPSS, ..
            } => "RSAPSS",
            Self::Rsa { .. } => "RSASSA",
        }
    }
}

/// Why a quote's signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The key is not a kind this verifier checks signatures of.
    #[error("the AK is {0}: not a signing key type this verifier checks")]
    UnsupportedKey(String),
    /// The signature's scheme or hash does not fit the key (or is not supported).
    #[error("a {scheme} signature with hash {hash:#06x} does not fit an AK of type {key}")]
    Mismatch {
        /// Signature scheme.
        scheme: &'static str,
        /// Signature hash.
        hash: u16,
        /// Key description.
        key: String,
    },
    /// A coordinate or integer is longer than the curve allows.
    #[error("ECDSA {0} is {1} bytes, longer than the curve's {2}")]
    ComponentTooLong(&'static str, usize, usize),
    /// The signature is not valid for the message under the key.
    #[error("signature does not verify")]
    Invalid,
}

fn left_pad(v: &[u8], len: usize, what: &'static str) -> Result<Vec<u8>, SignatureError> {
    let trimmed: &[u8] = match v.iter().position(|&b| b != 0) {
        Some(i) => v.get(i..).unwrap_or_default(),
        None => &[],
    };
    if trimmed.len() > len {
        return Err(SignatureError::ComponentTooLong(what, v.len(), len));
    }
    let mut out = vec![0u8; len - trimmed.len()];
    out.extend_from_slice(trimmed);
    Ok(out)
}

/// Verify `sig` over `message` (the `TPMS_ATTEST` bytes) with the public key `key`: ECDSA
/// P-256/SHA-256 and P-384/SHA-384, RSASSA and RSA-PSS with SHA-256/384/512.
pub fn verify_signature(
    key: &Public,
    message: &[u8],
    sig: &Signature,
) -> Result<(), SignatureError> {
    use ring::signature as rs;
    let mismatch = || SignatureError::Mismatch {
        scheme: sig.scheme_name(),
        hash: sig.hash(),
        key: key.describe(),
    };
    match (&key.key, sig) {
        (PublicKey::Ecc { curve, x, y, .. }, Signature::Ecdsa { hash, r, s }) => {
            let (alg, len): (&'static rs::EcdsaVerificationAlgorithm, usize) = match (*curve, *hash)
            {
                (ECC_NIST_P256, ALG_SHA256) => (&rs::ECDSA_P256_SHA256_FIXED, 32),
                (ECC_NIST_P384, ALG_SHA384) => (&rs::ECDSA_P384_SHA384_FIXED, 48),
                _ => return Err(mismatch()),
            };
            let mut point = vec![0x04];
            point.extend_from_slice(&left_pad(x, len, "x")?);
            point.extend_from_slice(&left_pad(y, len, "y")?);
            let mut rs_bytes = left_pad(r, len, "r")?;
            rs_bytes.extend_from_slice(&left_pad(s, len, "s")?);
            rs::UnparsedPublicKey::new(alg, &point)
                .verify(message, &rs_bytes)
                .map_err(|_| SignatureError::Invalid)
        }
        (
            PublicKey::Rsa {
                modulus, exponent, ..
            },
            Signature::Rsa { scheme, hash, sig },
        ) => {
            let alg: &'static rs::RsaParameters = match (*scheme, *hash) {
                (ALG_RSASSA, ALG_SHA256) => &rs::RSA_PKCS1_2048_8192_SHA256,
                (ALG_RSASSA, ALG_SHA384) => &rs::RSA_PKCS1_2048_8192_SHA384,
                (ALG_RSASSA, ALG_SHA512) => &rs::RSA_PKCS1_2048_8192_SHA512,
                (ALG_RSAPSS, ALG_SHA256) => &rs::RSA_PSS_2048_8192_SHA256,
                (ALG_RSAPSS, ALG_SHA384) => &rs::RSA_PSS_2048_8192_SHA384,
                (ALG_RSAPSS, ALG_SHA512) => &rs::RSA_PSS_2048_8192_SHA512,
                _ => return Err(mismatch()),
            };
            let e = exponent.to_be_bytes();
            rs::RsaPublicKeyComponents {
                n: modulus.as_slice(),
                e: &e[..],
            }
            .verify(alg, message, sig)
            .map_err(|_| SignatureError::Invalid)
        }
        (PublicKey::Ecc { .. } | PublicKey::Rsa { .. }, _) => Err(mismatch()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An AK's TPMT_PUBLIC as tpm2_createak -G ecc -g sha256 -s ecdsa -f tpmt wrote it.
    const AK_TPMT: &str = "0023000b00050072000000100018000b000300100020bf9daf7f227be3b80fe19e94203e2bd02ee81b49992f6c94372acad259850acc00201b96ea0af016a9e48df48399c29857ada846180e7e6a2a335b68758e1c5f8600";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ecc_ak_public_parses_with_its_attributes() {
        let bytes = unhex(AK_TPMT);
        let p = Public::parse(&bytes).unwrap();
        assert_eq!(p.alg, ALG_ECC);
        assert_eq!(p.name_alg, HashAlg::Sha256);
        assert_eq!(p.attributes.0, 0x0005_0072);
        assert_eq!(
            p.attributes.names(),
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
        );
        assert!(p.auth_policy.is_empty());
        match &p.key {
            PublicKey::Ecc {
                symmetric,
                scheme,
                curve,
                kdf,
                x,
                y,
            } => {
                assert_eq!(*symmetric, None);
                assert_eq!(
                    *scheme,
                    Some(Scheme {
                        scheme: ALG_ECDSA,
                        hash: ALG_SHA256
                    })
                );
                assert_eq!(*curve, ECC_NIST_P256);
                assert_eq!(*kdf, None);
                assert_eq!((x.len(), y.len()), (32, 32));
            }
            other => panic!("{other:?}"),
        }
        // The TPM2B form parses to the same, and the name is nameAlg || SHA-256(TPMT).
        let mut tpm2b = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        tpm2b.extend_from_slice(&bytes);
        assert_eq!(Public::parse(&tpm2b).unwrap(), p);
        let name = p.name();
        assert_eq!(&name[..2], &[0x00, 0x0b]);
        assert_eq!(name[2..], *HashAlg::Sha256.hash(&[&bytes]));
    }

    #[test]
    fn truncated_or_trailing_public_is_refused_with_the_field() {
        let bytes = unhex(AK_TPMT);
        for n in 0..bytes.len() {
            let e = Public::parse_tpmt(&bytes[..n]).unwrap_err();
            assert!(matches!(e.kind, TpmErrorKind::Truncated { .. }), "{n}: {e}");
        }
        let mut long = bytes.clone();
        long.push(0);
        let e = Public::parse_tpmt(&long).unwrap_err();
        assert_eq!(e.kind, TpmErrorKind::Trailing(1));
        assert_eq!(e.field, "end");
        let mut keyedhash = bytes;
        keyedhash[1] = 0x08;
        let e = Public::parse_tpmt(&keyedhash).unwrap_err();
        assert_eq!(e.field, "type");
        assert_eq!(e.kind, TpmErrorKind::Unsupported(8));
        assert!(Public::parse(&vec![0; MAX_PUBLIC_BYTES + 3]).is_err());
    }

    fn quote_bytes(extra: &[u8], select: &[u8], digest: &[u8]) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
        q.extend_from_slice(&ST_ATTEST_QUOTE.to_be_bytes());
        q.extend_from_slice(&[0, 2, 0xaa, 0xbb]);
        q.extend_from_slice(&u16::try_from(extra.len()).unwrap().to_be_bytes());
        q.extend_from_slice(extra);
        q.extend_from_slice(&7u64.to_be_bytes());
        q.extend_from_slice(&3u32.to_be_bytes());
        q.extend_from_slice(&1u32.to_be_bytes());
        q.push(1);
        q.extend_from_slice(&0x2019_1023u64.to_be_bytes());
        q.extend_from_slice(&1u32.to_be_bytes());
        q.extend_from_slice(&ALG_SHA256.to_be_bytes());
        q.push(u8::try_from(select.len()).unwrap());
        q.extend_from_slice(select);
        q.extend_from_slice(&u16::try_from(digest.len()).unwrap().to_be_bytes());
        q.extend_from_slice(digest);
        q
    }

    #[test]
    fn quote_parses_selection_and_fields() {
        let bytes = quote_bytes(b"nonce", &[0xff, 0x00, 0xf0], &[9; 32]);
        let q = Quote::parse(&bytes).unwrap();
        assert_eq!(q.qualified_signer, [0xaa, 0xbb]);
        assert_eq!(q.extra_data, b"nonce");
        assert_eq!(
            q.clock_info,
            ClockInfo {
                clock: 7,
                reset_count: 3,
                restart_count: 1,
                safe: true
            }
        );
        assert_eq!(q.firmware_version, 0x2019_1023);
        assert_eq!(
            q.pcr_select,
            [PcrSelection {
                hash: ALG_SHA256,
                pcrs: vec![0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23]
            }]
        );
        assert_eq!(q.pcr_digest, [9; 32]);
        for n in 0..bytes.len() {
            assert!(Quote::parse(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn attest_that_is_not_a_tpm_quote_is_refused() {
        let mut bytes = quote_bytes(b"", &[0, 0, 0], &[]);
        bytes[0] = 0;
        let e = Quote::parse(&bytes).unwrap_err();
        assert_eq!(e.field, "magic");
        let mut bytes = quote_bytes(b"", &[0, 0, 0], &[]);
        bytes[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        let e = Quote::parse(&bytes).unwrap_err();
        assert_eq!(e.field, "type");
    }

    #[test]
    fn signature_parses_and_ecdsa_verifies_with_ring() {
        use ring::rand::SystemRandom;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = kp.public_key().as_ref();
        let mut bytes = unhex(AK_TPMT);
        bytes.truncate(bytes.len() - 68);
        bytes.extend_from_slice(&[0, 32]);
        bytes.extend_from_slice(&point[1..33]);
        bytes.extend_from_slice(&[0, 32]);
        bytes.extend_from_slice(&point[33..]);
        let key = Public::parse_tpmt(&bytes).unwrap();
        let sig = kp.sign(&rng, b"attest").unwrap();
        let sig = sig.as_ref();
        let mut t = Vec::new();
        t.extend_from_slice(&ALG_ECDSA.to_be_bytes());
        t.extend_from_slice(&ALG_SHA256.to_be_bytes());
        // r with a leading zero byte stripped is still accepted (left-padded).
        t.extend_from_slice(&[0, 32]);
        t.extend_from_slice(&sig[..32]);
        t.extend_from_slice(&[0, 32]);
        t.extend_from_slice(&sig[32..]);
        let s = Signature::parse(&t).unwrap();
        verify_signature(&key, b"attest", &s).unwrap();
        assert_eq!(
            verify_signature(&key, b"attesT", &s),
            Err(SignatureError::Invalid)
        );
        let Signature::Ecdsa { hash, r, s: ss } = s else {
            panic!()
        };
        let wrong_hash = Signature::Ecdsa {
            hash: ALG_SHA384,
            r: r.clone(),
            s: ss.clone(),
        };
        assert!(matches!(
            verify_signature(&key, b"attest", &wrong_hash),
            Err(SignatureError::Mismatch { .. })
        ));
        let long = Signature::Ecdsa {
            hash,
            r: vec![1; 33],
            s: ss,
        };
        assert!(matches!(
            verify_signature(&key, b"attest", &long),
            Err(SignatureError::ComponentTooLong("r", 33, 32))
        ));
        let mut trailing = t.clone();
        trailing.push(0);
        assert!(Signature::parse(&trailing).is_err());
    }

    #[test]
    fn qualified_name_chains_hierarchy_and_names() {
        let ek = [0u8, 0x0b, 1, 2];
        let qn_ek = qualified_name(&RH_ENDORSEMENT.to_be_bytes(), &ek, HashAlg::Sha256);
        assert_eq!(qn_ek.len(), 34);
        assert_eq!(
            qn_ek[2..],
            *HashAlg::Sha256.hash(&[&[0x40, 0, 0, 0x0b], &ek])
        );
    }
}

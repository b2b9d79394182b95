//! The verdict on each signature, and on the package as a whole.

use crate::time::UnixTime;
use st_format::SignatureThreshold;
use std::fmt;

/// How many valid signatures a package needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// At least this many distinct valid signers (`trust_policy.json`).
    AtLeast(SignatureThreshold),
    /// Every signature present must be valid, and there must be at least one
    /// (`stmgr ospkg verify --root-certs`; the reference also accepts zero signatures here, we
    /// do not).
    All,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtLeast(n) => write!(f, "{n}"),
            Self::All => f.write_str("all (at least 1)"),
        }
    }
}

/// Why one signature did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The certificate's DER does not parse.
    CertificateMalformed(String),
    /// The signer's key is not Ed25519.
    NotEd25519 {
        /// The key type found.
        algorithm: String,
    },
    /// No signing root issued the certificate (subject/issuer mismatch or bad issuer signature).
    NotIssuedByRoot,
    /// The signer certificate is outside its validity period at the verification time.
    CertificateValidity(crate::cert::Validity),
    /// The root that issued it is outside its validity period.
    RootValidity {
        /// The root's subject.
        root: String,
        /// The validity failure.
        validity: crate::cert::Validity,
    },
    /// A CA certificate that is not itself a signing root.
    CaNotRoot,
    /// The issuing root is not a CA (basicConstraints CA:FALSE) or may not sign certificates.
    RootMayNotIssue {
        /// The root's subject.
        root: String,
    },
    /// The signer's keyUsage lacks digitalSignature.
    KeyUsage,
    /// The signer's extendedKeyUsage allows neither codeSigning nor any usage.
    ExtendedKeyUsage,
    /// The signer certificate has a critical extension we do not understand.
    UnknownCriticalExtension {
        /// Its OID.
        oid: String,
    },
    /// The signature is not 64 bytes.
    SignatureLength {
        /// Actual length.
        len: usize,
    },
    /// The Ed25519 signature does not verify over SHA-256(archive).
    BadSignature,
    /// The same key already counted at an earlier index.
    DuplicateSigner {
        /// Index of the counted signature by the same key.
        first: usize,
    },
    /// The entry is a Sigsum proof, but the trust policy directory has no
    /// `ospkg_trust_policy` to check it against.
    SigsumWithoutPolicy,
    /// The entry is a Sigsum proof that does not show this archive, signed by this
    /// certificate's key, logged as the Sigsum policy requires.
    Sigsum(st_sigsum::SigsumError),
    /// A valid plain signature, but the trust policy requires every counted signature to be
    /// Sigsum-logged (`ospkg_sigsum_required`).
    NotLogged,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CertificateMalformed(e) => write!(f, "certificate does not parse: {e}"),
            Self::NotEd25519 { algorithm } => {
                write!(
                    f,
                    "certificate key is {algorithm}, only Ed25519 signs OS packages"
                )
            }
            Self::NotIssuedByRoot => f.write_str("certificate was not issued by any signing root"),
            Self::CertificateValidity(v) => write!(f, "certificate {v}"),
            Self::RootValidity { root, validity } => write!(f, "signing root {root} {validity}"),
            Self::CaNotRoot => f.write_str(
                "certificate is a CA but not a signing root; CA certificates cannot sign",
            ),
            Self::RootMayNotIssue { root } => {
                write!(
                    f,
                    "signing root {root} is not a CA allowed to sign certificates"
                )
            }
            Self::KeyUsage => f.write_str("certificate keyUsage lacks digitalSignature"),
            Self::ExtendedKeyUsage => {
                f.write_str("certificate extendedKeyUsage allows neither codeSigning nor any usage")
            }
            Self::UnknownCriticalExtension { oid } => {
                write!(f, "certificate has an unknown critical extension {oid}")
            }
            Self::SignatureLength { len } => {
                write!(f, "signature is {len} bytes, an Ed25519 signature is 64")
            }
            Self::BadSignature => {
                f.write_str("signature does not verify over SHA-256 of the archive")
            }
            Self::DuplicateSigner { first } => {
                write!(
                    f,
                    "same signing key as signature {first}, which already counted"
                )
            }
            Self::SigsumWithoutPolicy => f.write_str(
                "a Sigsum proof, but the trust policy has no ospkg_trust_policy (Sigsum policy) \
                 to check it against",
            ),
            Self::Sigsum(e) => write!(f, "Sigsum proof: {e}"),
            Self::NotLogged => f.write_str(
                "a valid plain signature, but the trust policy requires Sigsum-logged signatures \
                 (ospkg_sigsum_required) and this one is not logged",
            ),
        }
    }
}

/// Who made a signature, as far as the certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Certificate subject (RFC 4514 text), or the key fingerprint when the subject is empty.
    pub name: String,
    /// `sha256:<hex>` of the raw Ed25519 public key, when the key is Ed25519.
    pub key: Option<String>,
}

/// What a descriptor entry's signature bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// A 64-byte Ed25519 signature over SHA-256(archive) (or anything not a proof).
    Plain,
    /// A Sigsum proof file (bytes beginning `version=`), ST 1.3.
    SigsumProof,
}

impl SignatureKind {
    /// How the bytes are told apart: a Sigsum proof file begins with `version=`, which no
    /// 64-byte signature is mistaken for in practice (and if one were, it would be judged as a
    /// proof and fail, never count wrongly).
    pub fn of(signature: &[u8]) -> Self {
        if signature.starts_with(b"version=") {
            Self::SigsumProof
        } else {
            Self::Plain
        }
    }
    /// `plain` or `sigsum-proof`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::SigsumProof => "sigsum-proof",
        }
    }
}

/// The outcome for one descriptor entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureOutcome {
    /// Index in the descriptor.
    pub index: usize,
    /// The signer, when its certificate parsed.
    pub signer: Option<Signer>,
    /// A plain signature or a Sigsum proof.
    pub kind: SignatureKind,
    /// For a Sigsum proof that verified: which log, tree size, leaf index and witnesses.
    pub logged: Option<st_sigsum::Logged>,
    /// `Ok` when it counted towards the threshold.
    pub verdict: Result<(), SkipReason>,
}

/// Per-signature outcomes and the threshold decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// One outcome per descriptor entry, in order.
    pub outcomes: Vec<SignatureOutcome>,
    /// The rule applied.
    pub threshold: Threshold,
    /// The time certificates were checked against.
    pub time: UnixTime,
    /// Hex SHA-256 of the archive.
    pub archive_sha256: String,
}

impl VerifyReport {
    /// `"<what> <index>: <reason>"` for every entry that did not count, in order (for one-line
    /// refusals).
    pub fn skip_reasons(&self, what: &str) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|o| {
                o.verdict
                    .as_ref()
                    .err()
                    .map(|r| format!("{what} {}: {r}", o.index))
            })
            .collect()
    }
    /// The certificate subjects of the signers that counted, in order.
    pub fn counted_signers(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.verdict.is_ok())
            .filter_map(|o| o.signer.as_ref().map(|s| s.name.clone()))
            .collect()
    }
    /// Signatures present.
    pub fn found(&self) -> usize {
        self.outcomes.len()
    }
    /// Signatures that counted (distinct valid signers).
    pub fn valid(&self) -> usize {
        self.outcomes.iter().filter(|o| o.verdict.is_ok()).count()
    }
    /// Whether the threshold is met.
    pub fn threshold_met(&self) -> bool {
        match self.threshold {
            Threshold::AtLeast(n) => self.valid() >= n.get() as usize,
            Threshold::All => self.found() >= 1 && self.valid() == self.found(),
        }
    }
}

impl fmt::Display for VerifyReport {
    /// One line per signature, then the decision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.outcomes {
            let who = o
                .signer
                .as_ref()
                .map_or_else(|| "unknown signer".to_string(), |s| s.name.clone());
            let logged = o.logged.as_ref().map_or_else(String::new, |l| {
                format!(
                    " (Sigsum-logged: log {}, tree size {}, leaf {}, witnesses {})",
                    l.log,
                    l.tree_size,
                    l.leaf_index,
                    l.witnesses.join(", ")
                )
            });
            match &o.verdict {
                Ok(()) => writeln!(f, "signature {} by {who}: counted{logged}", o.index)?,
                Err(r) => writeln!(f, "signature {} by {who}: skipped: {r}", o.index)?,
            }
        }
        write!(
            f,
            "{} signatures found, {} valid, {} required: {}",
            self.found(),
            self.valid(),
            self.threshold,
            if self.threshold_met() {
                "threshold met"
            } else {
                "threshold NOT met"
            }
        )
    }
}

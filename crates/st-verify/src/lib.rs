//! System Transparency OS package verification, written once.
//!
//! # Design overview
//!
//! [`verify`] (whole archive available, e.g. a file) and [`verify_hashed`] (archive hashed while
//! it arrived, e.g. a download) run the complete acceptance path that stboot runs before it boots
//! anything, and that `stmgr ospkg verify` runs for an operator:
//!
//! 1. `digest = SHA-256(archive bytes)`.
//! 2. For every (certificate, signature) pair of the descriptor, in order
//!    ([`check_signatures`]): the certificate parses; its key is Ed25519; it *is* a signing root,
//!    or a signing root issued it (names match, root is a CA, the root's Ed25519 signature over
//!    the certificate verifies); it and its root are valid at the time passed in; it is not a CA
//!    unless it is a root; keyUsage (if present) allows digitalSignature; extendedKeyUsage (if
//!    present) allows codeSigning or any usage; no unknown critical extension; the signature is
//!    a valid Ed25519 signature over `digest`; and no earlier signature by the same *key* counted.
//! 3. The package is accepted only when the [`Threshold`] is met.
//! 4. Only then is the archive's structure trusted: [`st_format::archive::OsPackageLayout`]
//!    checks the zip strictly, the manifest, kernel and initramfs, and every entry's CRC-32 and
//!    size (on [`verify_hashed`]'s path those of the kernel and initramfs as they are
//!    extracted; the verdict is the same).
//!
//! The result is a [`Verdict`] ([`verify`]) or a [`VerifiedOsPackage`] that owns the accepted
//! bytes ([`verify_hashed`]); only this crate can make either. A [`VerifyReport`] says for every
//! signature whether it counted and why not.
//!
//! This crate does no network IO, touches no filesystem and never reads the clock: the caller
//! passes bytes (or a [`ReadAt`] source), the roots and the time.

mod arrival;
mod cert;
mod report;
mod time;
mod trust_dir;

pub use arrival::HashingBuffer;
pub use cert::{RootsError, SigningRoots, Validity, certificate_valid_at, parse_certificate_pems};
pub use report::{SignatureKind, SignatureOutcome, Signer, SkipReason, Threshold, VerifyReport};
pub use st_sigsum;
pub use time::UnixTime;
pub use trust_dir::{SourceError, TrustDir, TrustDirError, TrustDirErrorKind};

use cert::CertFacts;
use ring::digest::{Context, SHA256};
use ring::signature::{ED25519, UnparsedPublicKey};
use st_format::archive::{ArchiveError, ArchiveLimits, OsPackageLayout, ReadAt};
use st_format::{Descriptor, SignatureEntry};
use std::fmt;
use std::io;

/// SHA-256 of an OS package archive: the message every signature signs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ArchiveDigest([u8; 32]);

impl ArchiveDigest {
    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// A digest computed elsewhere: a remote attestation verifier knows the booted archive
    /// only by its SHA-256 (checked against the measurement), and judges the signatures over it.
    pub fn from_sha256(digest: [u8; 32]) -> Self {
        Self(digest)
    }
    /// SHA-256 of an in-memory archive.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = ArchiveHasher::new();
        h.update(bytes);
        h.finish()
    }
}

impl fmt::Display for ArchiveDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ArchiveDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveDigest({self})")
    }
}

/// Incremental SHA-256, for hashing an archive as its bytes arrive.
pub struct ArchiveHasher(Context);

impl ArchiveHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self(Context::new(&SHA256))
    }
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest of everything fed.
    pub fn finish(self) -> ArchiveDigest {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        ArchiveDigest(out)
    }
}

impl Default for ArchiveHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// An archive held in memory together with the digest of exactly those bytes. The only way to
/// make one is to hash the bytes, so a digest can never be paired with other bytes.
pub struct HashedArchive {
    bytes: Vec<u8>,
    digest: ArchiveDigest,
}

impl HashedArchive {
    /// Hash bytes already in memory.
    pub fn new(bytes: Vec<u8>) -> Self {
        let digest = ArchiveDigest::of(&bytes);
        Self { bytes, digest }
    }
    /// The archive bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// SHA-256 of [`Self::bytes`].
    pub fn digest(&self) -> ArchiveDigest {
        self.digest
    }
    /// Give the bytes back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// What a package is checked against. [`TrustDir::verify_policy`] builds one from a trust
/// policy directory.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    /// Signing roots.
    pub roots: &'a SigningRoots,
    /// Signatures required.
    pub threshold: Threshold,
    /// The time certificates must be valid at.
    pub now: UnixTime,
    /// Caps for the archive reader.
    pub limits: &'a ArchiveLimits,
    /// The Sigsum policy (`ospkg_trust_policy`) proofs are checked against; without one a
    /// proof never counts.
    pub sigsum: Option<&'a st_sigsum::Policy>,
    /// Only Sigsum-logged signatures count (`ospkg_sigsum_required`).
    pub sigsum_required: bool,
}

impl<'a> Policy<'a> {
    /// Roots, threshold, time and caps, without Sigsum (proofs do not count).
    pub fn new(
        roots: &'a SigningRoots,
        threshold: Threshold,
        now: UnixTime,
        limits: &'a ArchiveLimits,
    ) -> Self {
        Self {
            roots,
            threshold,
            now,
            limits,
            sigsum: None,
            sigsum_required: false,
        }
    }
}

/// How Sigsum proofs are judged: against this policy (if any), and whether plain signatures
/// count at all.
#[derive(Clone, Copy, Default)]
struct Logging<'a> {
    policy: Option<&'a st_sigsum::Policy>,
    required: bool,
}

/// Why a package was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not enough valid signatures. The report says why each one was skipped.
    #[error("{report}")]
    ThresholdNotMet {
        /// Per-signature outcomes.
        report: Box<VerifyReport>,
    },
    /// Signatures are fine but the archive is not a well-formed OS package.
    #[error("archive: {error}")]
    Archive {
        /// Per-signature outcomes (the threshold was met).
        report: Box<VerifyReport>,
        /// What is wrong with the archive.
        error: ArchiveError,
    },
    /// The archive could not be read.
    #[error("reading archive: {0}")]
    Io(#[source] io::Error),
}

impl VerifyError {
    /// The signature report, when verification got that far.
    pub fn report(&self) -> Option<&VerifyReport> {
        match self {
            Self::ThresholdNotMet { report } | Self::Archive { report, .. } => Some(report),
            Self::Io(_) => None,
        }
    }
}

/// The acceptance of an archive: the signature report, the checked layout and the digest of
/// the bytes that were accepted. Only [`verify`] and [`verify_hashed`] make one.
#[derive(Debug, Clone)]
pub struct Verdict {
    report: VerifyReport,
    layout: OsPackageLayout,
    digest: ArchiveDigest,
}

impl Verdict {
    /// Per-signature outcomes.
    pub fn report(&self) -> &VerifyReport {
        &self.report
    }
    /// Manifest, kernel and initramfs entries of the verified archive.
    pub fn layout(&self) -> &OsPackageLayout {
        &self.layout
    }
    /// SHA-256 of the verified archive.
    pub fn digest(&self) -> ArchiveDigest {
        self.digest
    }
}

/// A package that passed every check, holding the very bytes that were checked, so nothing
/// later can pair the verdict with other bytes. Only [`verify_hashed`] makes one.
pub struct VerifiedOsPackage {
    verdict: Verdict,
    archive: HashedArchive,
}

impl fmt::Debug for VerifiedOsPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedOsPackage")
            .field("verdict", &self.verdict)
            .field("archive_bytes", &self.archive.bytes().len())
            .finish()
    }
}

impl VerifiedOsPackage {
    /// The verdict (report, layout, digest).
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    /// Per-signature outcomes.
    pub fn report(&self) -> &VerifyReport {
        &self.verdict.report
    }
    /// Manifest, kernel and initramfs entries of the verified archive.
    pub fn layout(&self) -> &OsPackageLayout {
        &self.verdict.layout
    }
    /// SHA-256 of the verified archive.
    pub fn digest(&self) -> ArchiveDigest {
        self.verdict.digest
    }
    /// Size of the archive in bytes.
    pub fn archive_len(&self) -> u64 {
        self.archive.bytes().len() as u64
    }

    /// Stream the kernel into `out`, checking its CRC-32 and size as the bytes go. On any
    /// error the bytes written so far must be discarded, never booted.
    pub fn extract_kernel<W: io::Write>(&self, out: &mut W) -> Result<u64, ArchiveError> {
        st_format::archive::read_entry(self.archive.bytes(), self.verdict.layout.kernel(), out)
    }

    /// Like [`Self::extract_kernel`], for the initramfs.
    pub fn extract_initramfs<W: io::Write>(&self, out: &mut W) -> Result<u64, ArchiveError> {
        st_format::archive::read_entry(self.archive.bytes(), self.verdict.layout.initramfs(), out)
    }

    /// Free the archive bytes (after extraction), keeping the verdict.
    pub fn into_verdict(self) -> Verdict {
        self.verdict
    }
}

/// `sha256:<hex>` of a raw Ed25519 public key: how reports name a signing key.
pub fn key_fingerprint(key: &[u8; 32]) -> String {
    format!("sha256:{}", ArchiveDigest::of(key))
}

/// Step 2 and 3 of the acceptance path: judge every signature over `digest`, without a Sigsum
/// policy (a Sigsum proof entry is skipped with [`SkipReason::SigsumWithoutPolicy`]).
pub fn check_signatures(
    descriptor: &Descriptor,
    digest: &ArchiveDigest,
    roots: &SigningRoots,
    threshold: Threshold,
    now: UnixTime,
) -> VerifyReport {
    check_all(
        descriptor.entries(),
        digest,
        roots,
        threshold,
        now,
        Logging::default(),
    )
}

/// The same rule over any (certificate, signature) pairs that sign a 32-byte `digest`: every
/// certificate check of an OS package signer, an Ed25519 signature over `digest`, once per key,
/// the threshold. For signed statements other than OS packages (the attestation go-ahead,
/// docs/attestation.md), whose `digest` is the SHA-256 of the statement; Sigsum proofs do not
/// count here.
pub fn check_signed_entries(
    entries: &[SignatureEntry],
    digest: &ArchiveDigest,
    roots: &SigningRoots,
    threshold: Threshold,
    now: UnixTime,
) -> VerifyReport {
    check_all(entries, digest, roots, threshold, now, Logging::default())
}

/// Step 2 and 3 of the acceptance path under a whole [`Policy`]: plain signatures and Sigsum
/// proofs (checked against `policy.sigsum`) count together, once per key.
pub fn check_policy_signatures(
    descriptor: &Descriptor,
    digest: &ArchiveDigest,
    policy: &Policy<'_>,
) -> VerifyReport {
    check_all(
        descriptor.entries(),
        digest,
        policy.roots,
        policy.threshold,
        policy.now,
        Logging {
            policy: policy.sigsum,
            required: policy.sigsum_required,
        },
    )
}

fn check_all(
    entries: &[SignatureEntry],
    digest: &ArchiveDigest,
    roots: &SigningRoots,
    threshold: Threshold,
    now: UnixTime,
    logging: Logging<'_>,
) -> VerifyReport {
    let mut counted: Vec<([u8; 32], usize)> = Vec::new();
    let outcomes = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let kind = SignatureKind::of(entry.signature());
            let (signer, result) = check_one(entry, kind, digest, roots, now, logging);
            let (result, logged) = match result {
                Ok((key, logged)) => (Ok(key), logged),
                Err(e) => (Err(e), None),
            };
            let verdict = result.and_then(|key| match counted.iter().find(|(k, _)| *k == key) {
                Some(&(_, first)) => Err(SkipReason::DuplicateSigner { first }),
                None => {
                    counted.push((key, index));
                    Ok(())
                }
            });
            SignatureOutcome {
                index,
                signer,
                kind,
                logged,
                verdict,
            }
        })
        .collect();
    VerifyReport {
        outcomes,
        threshold,
        time: now,
        archive_sha256: digest.to_string(),
    }
}

fn ed25519_ok(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, key)
        .verify(msg, sig)
        .is_ok()
}

/// Whether `sig` is a valid Ed25519 signature by `key` over `msg` (the verifier stboot uses;
/// signing tools check what an external signer returned with it).
pub fn ed25519_signature_ok(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ed25519_ok(key, msg, sig)
}

/// What a counted entry established: the signer's key (for de-duplication) and, for a proof,
/// what was logged.
type Counted = ([u8; 32], Option<st_sigsum::Logged>);

/// Judge one entry.
fn check_one(
    entry: &SignatureEntry,
    kind: SignatureKind,
    digest: &ArchiveDigest,
    roots: &SigningRoots,
    now: UnixTime,
    logging: Logging<'_>,
) -> (Option<Signer>, Result<Counted, SkipReason>) {
    let cert = match CertFacts::from_der(entry.certificate_der()) {
        Ok(c) => c,
        Err(e) => return (None, Err(SkipReason::CertificateMalformed(e))),
    };
    let signer = Signer {
        name: cert.display_name(),
        key: cert.ed25519_key.as_ref().map(key_fingerprint),
    };
    let result = check_certificate(&cert, roots, now).and_then(|key| match kind {
        SignatureKind::Plain => {
            check_plain(&key, entry.signature(), digest)?;
            if logging.required {
                return Err(SkipReason::NotLogged);
            }
            Ok((key, None))
        }
        SignatureKind::SigsumProof => {
            let policy = logging.policy.ok_or(SkipReason::SigsumWithoutPolicy)?;
            let logged = check_proof(&key, entry.signature(), digest, policy)?;
            Ok((key, Some(logged)))
        }
    });
    (Some(signer), result)
}

/// The Sigsum proof path: the proof must show `SHA-256(archive)`, signed by the certificate's
/// key, in a log of the policy, cosigned by a quorum of its witnesses.
fn check_proof(
    key: &[u8; 32],
    proof: &[u8],
    digest: &ArchiveDigest,
    policy: &st_sigsum::Policy,
) -> Result<st_sigsum::Logged, SkipReason> {
    let proof = st_sigsum::Proof::parse(proof)
        .map_err(|e| SkipReason::Sigsum(st_sigsum::SigsumError::Malformed(e)))?;
    st_sigsum::verify(&proof, policy, key, digest.as_bytes()).map_err(SkipReason::Sigsum)
}

fn check_plain(key: &[u8; 32], signature: &[u8], digest: &ArchiveDigest) -> Result<(), SkipReason> {
    if signature.len() != 64 {
        return Err(SkipReason::SignatureLength {
            len: signature.len(),
        });
    }
    if !ed25519_ok(key, digest.as_bytes(), signature) {
        return Err(SkipReason::BadSignature);
    }
    Ok(())
}

/// The certificate checks every entry gets, plain or proof; returns its Ed25519 key.
fn check_certificate(
    cert: &CertFacts,
    roots: &SigningRoots,
    now: UnixTime,
) -> Result<[u8; 32], SkipReason> {
    let key = cert.ed25519_key.ok_or_else(|| SkipReason::NotEd25519 {
        algorithm: cert.key_algorithm.clone(),
    })?;
    let is_root = roots.iter().any(|r| r.der == cert.der);
    if !is_root {
        let root = roots
            .iter()
            .find(|r| {
                r.subject_raw == cert.issuer_raw
                    && cert.signature_is_ed25519
                    && r.ed25519_key
                        .is_some_and(|rk| ed25519_ok(&rk, &cert.tbs, &cert.signature))
            })
            .ok_or(SkipReason::NotIssuedByRoot)?;
        if !root.is_ca || root.key_usage.is_some_and(|ku| !ku.key_cert_sign) {
            return Err(SkipReason::RootMayNotIssue {
                root: root.display_name(),
            });
        }
        root.validity_at(now)
            .map_err(|validity| SkipReason::RootValidity {
                root: root.display_name(),
                validity,
            })?;
        if cert.is_ca {
            return Err(SkipReason::CaNotRoot);
        }
    }
    cert.validity_at(now)
        .map_err(SkipReason::CertificateValidity)?;
    if let Some(oid) = &cert.unknown_critical {
        return Err(SkipReason::UnknownCriticalExtension { oid: oid.clone() });
    }
    if cert.key_usage.is_some_and(|ku| !ku.digital_signature) {
        return Err(SkipReason::KeyUsage);
    }
    if cert.eku.is_some_and(|eku| !eku.any && !eku.code_signing) {
        return Err(SkipReason::ExtendedKeyUsage);
    }
    Ok(key)
}

/// The decision, in the order of the acceptance path: the archive is only looked at (and
/// `layout` only called) when the signatures met the threshold.
fn decide(
    report: VerifyReport,
    digest: ArchiveDigest,
    layout: impl FnOnce() -> Result<OsPackageLayout, ArchiveError>,
) -> Result<Verdict, VerifyError> {
    if !report.threshold_met() {
        return Err(VerifyError::ThresholdNotMet {
            report: Box::new(report),
        });
    }
    match layout() {
        Ok(layout) => Ok(Verdict {
            report,
            layout,
            digest,
        }),
        Err(error) => Err(VerifyError::Archive {
            report: Box::new(report),
            error,
        }),
    }
}

/// Hashing chunk size: large enough to amortise calls, small enough to keep memory flat.
const HASH_CHUNK: usize = 1 << 20;

/// SHA-256 of a whole archive source, read in 1 MiB chunks; `progress` gets bytes done.
pub fn hash_archive<R: ReadAt + ?Sized>(
    src: &R,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<ArchiveDigest> {
    let mut hasher = ArchiveHasher::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let len = src.len();
    let mut offset = 0u64;
    while offset < len {
        let n = usize::try_from((len - offset).min(HASH_CHUNK as u64)).unwrap_or(HASH_CHUNK);
        let chunk = &mut buf[..n];
        src.read_exact_at(offset, chunk)?;
        hasher.update(chunk);
        offset += n as u64;
        progress(offset);
    }
    Ok(hasher.finish())
}

fn check_layout<R: ReadAt + ?Sized>(
    src: &R,
    limits: &ArchiveLimits,
) -> Result<OsPackageLayout, ArchiveError> {
    let layout = OsPackageLayout::check(src, limits)?;
    layout.check_contents(src)?;
    Ok(layout)
}

/// The complete acceptance path over an archive that can be read at random (a file, a buffer).
///
/// Hashing and the structural reading of the archive run on two threads at once, but the
/// structural result is only consulted after the signatures met the threshold, so an unsigned
/// archive can cause work but never acceptance. `progress` is called with the number of bytes
/// hashed so far.
pub fn verify<R: ReadAt + Sync + ?Sized>(
    descriptor: &Descriptor,
    archive: &R,
    policy: &Policy<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verdict, VerifyError> {
    let (digest, layout) = std::thread::scope(|s| {
        let hashing = s.spawn(|| hash_archive(archive, progress));
        let layout = check_layout(archive, policy.limits);
        let digest = hashing
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("hashing thread failed")));
        (digest, layout)
    });
    let digest = digest.map_err(VerifyError::Io)?;
    decide(check_policy(descriptor, &digest, policy), digest, || layout)
}

/// The acceptance path for an archive hashed as it arrived ([`HashingBuffer`]): signatures
/// first, and the archive's structure is read only if they meet the threshold.
///
/// The verdict is the one [`verify`] gives, with the work split differently: every entry except
/// the kernel and the initramfs (directories, the manifest, any other file) is inflated and
/// checked here ([`OsPackageLayout::check_other_contents`]), while the kernel and initramfs are
/// inflated exactly once, by [`VerifiedOsPackage::extract_kernel`] and
/// [`VerifiedOsPackage::extract_initramfs`], which check their CRC-32 and size as the bytes go
/// and fail before anything is handed to the kernel. (For a 256 MiB package under emulation that
/// saves a second full pass over the initramfs.) A package is bootable exactly when this and
/// both extractions succeed, which is exactly when [`verify`] accepts it.
///
/// The accepted package keeps the archive: a rejected one is dropped here.
pub fn verify_hashed(
    descriptor: &Descriptor,
    archive: HashedArchive,
    policy: &Policy<'_>,
) -> Result<VerifiedOsPackage, VerifyError> {
    let digest = archive.digest();
    let verdict = decide(check_policy(descriptor, &digest, policy), digest, || {
        let layout = OsPackageLayout::check(archive.bytes(), policy.limits)?;
        layout.check_other_contents(archive.bytes())?;
        Ok(layout)
    })?;
    Ok(VerifiedOsPackage { verdict, archive })
}

fn check_policy(descriptor: &Descriptor, digest: &ArchiveDigest, p: &Policy<'_>) -> VerifyReport {
    check_policy_signatures(descriptor, digest, p)
}

/// The raw Ed25519 public key of a certificate (`None` for other key types); an error when the
/// DER does not parse. Used by signing tools to match keys with certificates.
pub fn certificate_ed25519_key(der: &[u8]) -> Result<Option<[u8; 32]>, String> {
    CertFacts::from_der(der).map(|c| c.ed25519_key)
}

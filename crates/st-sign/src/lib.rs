//! Operator-side System Transparency: keys, certificates and OS package signatures.
//!
//! Keys are Ed25519 only, as in the reference. They are read from PKCS#8 PEM (`PRIVATE KEY`,
//! what stmgr, Go and OpenSSL write) or unencrypted OpenSSH private keys, and written as PKCS#8
//! v1 PEM. Certificates follow the reference layout (st-reference §2.4). This crate does no
//! filesystem IO; the binary reads and writes the files.

mod keys;

pub use keys::{KeyError, SigningKey, parse_public_key};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyUsagePurpose,
    SerialNumber,
};
use st_format::{Descriptor, SignatureEntry};
use st_verify::{ArchiveDigest, UnixTime};

/// Errors from certificate generation and signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A certificate input is not usable.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// This signer already signed the package.
    #[error(
        "the package already has a signature by this key (signature {index}); refusing to sign twice"
    )]
    AlreadySigned {
        /// Index of the existing signature.
        index: usize,
    },
    /// An external signer (e.g. ssh-agent) failed.
    #[error("signer: {0}")]
    Signer(String),
    /// Validity window is empty.
    #[error("validity: not-after {not_after} is not after not-before {not_before}")]
    Validity {
        /// Start.
        not_before: UnixTime,
        /// End.
        not_after: UnixTime,
    },
    /// The descriptor is full or otherwise refused the entry.
    #[error(transparent)]
    Descriptor(#[from] st_format::DescriptorError),
}

/// What a new certificate should say. Defaults follow `stmgr keygen certificate`.
#[derive(Debug, Clone)]
pub struct CertOptions {
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
    /// Serial number bytes (big-endian, positive). Random in stmgr; fixed in test vectors.
    pub serial: [u8; 16],
}

fn offset_time(t: UnixTime) -> Result<time::OffsetDateTime, SignError> {
    time::OffsetDateTime::from_unix_timestamp(t.as_secs())
        .map_err(|e| SignError::Certificate(format!("time {t} out of range: {e}")))
}

/// Subject/issuer common name used by the reference: base64(SHA-256(raw Ed25519 public key)).
pub fn key_common_name(public: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(ArchiveDigest::of(public).as_bytes())
}

fn base_params(public: &[u8; 32], opts: &CertOptions) -> Result<CertificateParams, SignError> {
    if opts.not_after <= opts.not_before {
        return Err(SignError::Validity {
            not_before: opts.not_before,
            not_after: opts.not_after,
        });
    }
    let mut params = CertificateParams::default();
    params.not_before = offset_time(opts.not_before)?;
    params.not_after = offset_time(opts.not_after)?;
    let mut serial = opts.serial;
    serial[0] &= 0x7f; // keep the INTEGER positive
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, key_common_name(public));
    params.distinguished_name = dn;
    Ok(params)
}

fn rcgen_err(e: rcgen::Error) -> SignError {
    SignError::Certificate(e.to_string())
}

/// A self-signed root: CA:TRUE, keyUsage digitalSignature + keyCertSign, no EKU. PEM text.
pub fn make_root(key: &SigningKey, opts: &CertOptions) -> Result<String, SignError> {
    let mut params = base_params(&key.public(), opts)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&key.rcgen_key()?).map_err(rcgen_err)?;
    Ok(cert.pem())
}

/// A leaf issued by `root_cert_pem`/`root_key`: keyUsage digitalSignature, no basic
/// constraints, no EKU. PEM text.
pub fn make_leaf(
    leaf_public: &[u8; 32],
    root_cert_pem: &str,
    root_key: &SigningKey,
    opts: &CertOptions,
) -> Result<String, SignError> {
    let root_der = single_certificate_der(root_cert_pem.as_bytes())?;
    if st_verify::certificate_ed25519_key(&root_der).map_err(SignError::Certificate)?
        != Some(root_key.public())
    {
        return Err(SignError::KeyMismatch);
    }
    let issuer =
        Issuer::from_ca_cert_der(&root_der.into(), root_key.rcgen_key()?).map_err(rcgen_err)?;
    let mut params = base_params(leaf_public, opts)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let spki = rcgen::SubjectPublicKeyInfo::from_der(&keys::ed25519_spki_der(leaf_public))
        .map_err(rcgen_err)?;
    let cert = params.signed_by(&spki, &issuer).map_err(rcgen_err)?;
    Ok(cert.pem())
}

/// The DER of a file that must hold exactly one PEM `CERTIFICATE` block (stmgr `-cert` rule).
pub fn single_certificate_der(pem_text: &[u8]) -> Result<Vec<u8>, SignError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| SignError::Certificate(e.to_string()))?;
    match blocks.as_slice() {
        [one] if one.tag() == "CERTIFICATE" => Ok(one.contents().to_vec()),
        [one] => Err(SignError::Certificate(format!(
            "PEM block is {:?}, expected CERTIFICATE",
            one.tag()
        ))),
        [] => Err(SignError::Certificate("no PEM block found".into())),
        more => Err(SignError::Certificate(format!(
            "{} PEM blocks, expected exactly one CERTIFICATE",
            more.len()
        ))),
    }
}

/// Add `key`'s signature over `digest` (with `cert_pem`) to `descriptor`. Refuses a certificate
/// whose key differs from `key`, and a second signature by the same key.
pub fn sign_descriptor(
    descriptor: &mut Descriptor,
    digest: &ArchiveDigest,
    key: &dyn Ed25519Signer,
    cert_pem: &[u8],
) -> Result<(), SignError> {
    let der = single_certificate_der(cert_pem)?;
    let cert_key = st_verify::certificate_ed25519_key(&der).map_err(SignError::Certificate)?;
    if cert_key != Some(key.public()) {
        return Err(SignError::KeyMismatch);
    }
    for (index, entry) in descriptor.entries().iter().enumerate() {
        let existing = st_verify::certificate_ed25519_key(entry.certificate_der())
            .ok()
            .flatten();
        if existing == Some(key.public()) || entry.certificate_der() == der.as_slice() {
            return Err(SignError::AlreadySigned { index });
        }
    }
    let signature = key.sign_message(digest.as_bytes())?;
    if !st_verify::ed25519_signature_ok(&key.public(), digest.as_bytes(), &signature) {
        return Err(SignError::Signer(
            "the signature does not verify with the key".into(),
        ));
    }
    descriptor.push(SignatureEntry::new(cert_pem.to_vec(), signature.to_vec())?)?;
    Ok(())
}

/// Something that makes Ed25519 signatures: a key in memory ([`SigningKey`]) or elsewhere
/// (stmgr's ssh-agent client).
pub trait Ed25519Signer {
    /// The raw public key.
    fn public(&self) -> [u8; 32];
    /// Pure Ed25519 over `msg`.
    fn sign_message(&self, msg: &[u8]) -> Result<[u8; 64], SignError>;
}

impl Ed25519Signer for SigningKey {
    fn public(&self) -> [u8; 32] {
        Self::public(self)
    }
    fn sign_message(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        Ok(self.sign(msg))
    }
}

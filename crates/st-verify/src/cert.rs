//! X.509 certificates as the verifier needs them: parsed once into the few facts that matter.
//!
//! ST's hierarchy is flat (st-reference §2.1): a signing root signs OS packages itself, or signs
//! leaf certificates that do. There are no intermediates, so "chain building" is one step and is
//! written out here instead of borrowing a Web-PKI path builder with Web-PKI rules.

use crate::time::UnixTime;
use st_format::limits::{MAX_CERTIFICATE_BYTES, MAX_ROOT_CERTIFICATES, MAX_ROOTS_FILE_BYTES};
use std::fmt;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The facts about one certificate that verification uses. Built only from DER that parsed
/// completely (no trailing bytes).
#[derive(Clone)]
pub(crate) struct CertFacts {
    pub(crate) der: Vec<u8>,
    pub(crate) subject: String,
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) issuer_raw: Vec<u8>,
    /// Raw Ed25519 public key, `None` when the key is of another type.
    pub(crate) ed25519_key: Option<[u8; 32]>,
    pub(crate) key_algorithm: String,
    pub(crate) not_before: UnixTime,
    pub(crate) not_after: UnixTime,
    pub(crate) is_ca: bool,
    /// `None` when the certificate has no keyUsage extension.
    pub(crate) key_usage: Option<KeyUsageBits>,
    /// `None` when the certificate has no extendedKeyUsage extension.
    pub(crate) eku: Option<Eku>,
    pub(crate) unknown_critical: Option<String>,
    pub(crate) tbs: Vec<u8>,
    pub(crate) signature_is_ed25519: bool,
    pub(crate) signature: Vec<u8>,
}

#[derive(Clone, Copy)]
pub(crate) struct KeyUsageBits {
    pub(crate) digital_signature: bool,
    pub(crate) key_cert_sign: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct Eku {
    pub(crate) any: bool,
    pub(crate) code_signing: bool,
}

impl CertFacts {
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, String> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(format!(
                "certificate is {} bytes, over the limit",
                der.len()
            ));
        }
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let spki = cert.public_key();
        let ed25519_key = (spki.algorithm.algorithm == OID_SIG_ED25519)
            .then(|| <[u8; 32]>::try_from(spki.subject_public_key.data.as_ref()).ok())
            .flatten();
        let key_algorithm = if spki.algorithm.algorithm == OID_SIG_ED25519 {
            "Ed25519".to_string()
        } else {
            oid_name(&spki.algorithm.algorithm.to_id_string())
        };
        let ext_err = |e: x509_parser::error::X509Error| format!("bad extension: {e}");
        let is_ca = cert
            .basic_constraints()
            .map_err(ext_err)?
            .is_some_and(|b| b.value.ca);
        let key_usage = cert.key_usage().map_err(ext_err)?.map(|k| KeyUsageBits {
            digital_signature: k.value.digital_signature(),
            key_cert_sign: k.value.key_cert_sign(),
        });
        let eku = cert.extended_key_usage().map_err(ext_err)?.map(|e| Eku {
            any: e.value.any,
            code_signing: e.value.code_signing,
        });
        let unknown_critical = cert
            .extensions()
            .iter()
            .find(|e| {
                e.critical
                    && !matches!(
                        e.parsed_extension(),
                        ParsedExtension::BasicConstraints(_)
                            | ParsedExtension::KeyUsage(_)
                            | ParsedExtension::ExtendedKeyUsage(_)
                            | ParsedExtension::SubjectKeyIdentifier(_)
                            | ParsedExtension::AuthorityKeyIdentifier(_)
                            | ParsedExtension::SubjectAlternativeName(_)
                    )
            })
            .map(|e| e.oid.to_id_string());
        let signature_is_ed25519 = cert.signature_algorithm.algorithm == OID_SIG_ED25519
            && cert.tbs_certificate.signature.algorithm == OID_SIG_ED25519;
        Ok(Self {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            ed25519_key,
            key_algorithm,
            not_before: UnixTime::from_secs(cert.validity().not_before.timestamp()),
            not_after: UnixTime::from_secs(cert.validity().not_after.timestamp()),
            is_ca,
            key_usage,
            eku,
            unknown_critical,
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature_is_ed25519,
            signature: cert.signature_value.data.to_vec(),
        })
    }

    /// What an operator recognises a signer by: its subject, or its key when the subject is empty.
    pub(crate) fn display_name(&self) -> String {
        if self.subject.is_empty() {
            match &self.ed25519_key {
                Some(k) => format!("key {}", crate::key_fingerprint(k)),
                None => "<no subject>".into(),
            }
        } else {
            self.subject.clone()
        }
    }

    /// Is `now` inside [not_before, not_after]?
    pub(crate) fn validity_at(&self, now: UnixTime) -> Result<(), Validity> {
        if now < self.not_before {
            Err(Validity::NotYetValid {
                not_before: self.not_before,
            })
        } else if now > self.not_after {
            Err(Validity::Expired {
                not_after: self.not_after,
            })
        } else {
            Ok(())
        }
    }
}

/// Why a certificate is outside its validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// `now` is after `not_after`.
    Expired {
        /// End of validity.
        not_after: UnixTime,
    },
    /// `now` is before `not_before`.
    NotYetValid {
        /// Start of validity.
        not_before: UnixTime,
    },
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired { not_after } => write!(f, "expired at {not_after}"),
            Self::NotYetValid { not_before } => write!(f, "not valid before {not_before}"),
        }
    }
}

fn oid_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.2.840.10045.2.1" => "ECDSA".into(),
        "1.3.101.113" => "Ed448".into(),
        other => format!("OID {other}"),
    }
}

/// The trusted OS package signing roots (`ospkg_signing_root.pem`). ST 1.3 allows several.
#[derive(Clone)]
pub struct SigningRoots {
    roots: Vec<CertFacts>,
}

/// Why a signing root file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RootsError {
    /// The file is larger than the cap.
    #[error("{size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The PEM text is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// No `CERTIFICATE` block.
    #[error("no PEM block of type CERTIFICATE found")]
    Empty,
    /// Too many certificates.
    #[error("{count} certificates, over the limit of {max}")]
    TooMany {
        /// Count found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A certificate block does not parse, or is unusable as a signing root.
    #[error("certificate {index}: {reason}")]
    Certificate {
        /// Index among the CERTIFICATE blocks (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Parse every `CERTIFICATE` block of a PEM file into DER (other block types are skipped, as in
/// the reference). Shared by signing roots and TLS roots.
pub fn parse_certificate_pems(bytes: &[u8]) -> Result<Vec<Vec<u8>>, RootsError> {
    if bytes.len() > MAX_ROOTS_FILE_BYTES {
        return Err(RootsError::TooLarge {
            size: bytes.len(),
            max: MAX_ROOTS_FILE_BYTES,
        });
    }
    let blocks = pem::parse_many(bytes).map_err(|e| RootsError::Pem(e.to_string()))?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        return Err(RootsError::Empty);
    }
    if ders.len() > MAX_ROOT_CERTIFICATES {
        return Err(RootsError::TooMany {
            count: ders.len(),
            max: MAX_ROOT_CERTIFICATES,
        });
    }
    Ok(ders)
}

/// Is a certificate (of any key type: TLS roots are often ECDSA or RSA) inside its validity
/// window at `now`? `Ok(name)` when it is, with the name an operator knows it by; `Err` with the
/// reason (unparsable, expired, not yet valid) naming it. For `tls_roots.pem`, whose
/// certificates the reference's Go verifier uses only while they are valid.
pub fn certificate_valid_at(der: &[u8], now: UnixTime) -> Result<String, String> {
    let facts = CertFacts::from_der(der)?;
    let name = facts.display_name();
    facts
        .validity_at(now)
        .map(|()| name.clone())
        .map_err(|v| format!("{name}: {v}"))
}

impl SigningRoots {
    /// Parse `ospkg_signing_root.pem`: one or more Ed25519 certificates.
    pub fn from_pem(bytes: &[u8]) -> Result<Self, RootsError> {
        let roots = parse_certificate_pems(bytes)?
            .iter()
            .enumerate()
            .map(|(index, der)| {
                let facts = CertFacts::from_der(der)
                    .map_err(|reason| RootsError::Certificate { index, reason })?;
                if facts.ed25519_key.is_none() {
                    return Err(RootsError::Certificate {
                        index,
                        reason: format!(
                            "{}: public key is {}; signing roots must be Ed25519",
                            facts.display_name(),
                            facts.key_algorithm
                        ),
                    });
                }
                Ok(facts)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { roots })
    }

    /// Number of roots.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Always false: a root set is never empty.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// DER of each root, in file order (what stboot measures).
    pub fn ders(&self) -> impl Iterator<Item = &[u8]> {
        self.roots.iter().map(|r| r.der.as_slice())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &CertFacts> {
        self.roots.iter()
    }
}

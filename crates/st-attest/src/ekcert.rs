//! The EK certificate: its chain to a configured set of TPM vendor CAs, and its key against the
//! EK's public area.
//!
//! A TPM's NV holds only the EK certificate; vendors publish their intermediate and root CAs.
//! The verifier is configured with both ([`VendorCas`]): the chain is built from the EK
//! certificate through intermediates (at most [`MAX_CHAIN`] certificates) to an anchor, each
//! link checked for names, the issuer being a CA, validity at the time passed in and the
//! signature (RSA PKCS#1 v1.5 SHA-256/384/512, ECDSA P-256/SHA-256, P-384/SHA-384, with
//! `ring`). Web-PKI rules (name constraints, EKUs of the TCG) are not applied.

use crate::tpm::{ECC_NIST_P256, ECC_NIST_P384, Public, PublicKey};
use st_verify::UnixTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as X509Key;

/// The longest chain built: EK certificate, intermediates, anchor.
pub const MAX_CHAIN: usize = 5;
/// The largest certificate accepted.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The most CA certificates in a [`VendorCas`].
pub const MAX_CAS: usize = 256;

/// One parsed certificate.
#[derive(Clone)]
struct Cert {
    der: Vec<u8>,
    subject: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    tbs: Vec<u8>,
    sig_oid: String,
    signature: Vec<u8>,
    key: CertKey,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.subject)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CertKey {
    /// RSAPublicKey DER (for ring), modulus and exponent (leading zeros stripped).
    Rsa {
        der: Vec<u8>,
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// Uncompressed point, with the curve's OID.
    Ec {
        point: Vec<u8>,
        curve: String,
    },
    Other(String),
}

const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const OID_RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn strip(v: &[u8]) -> Vec<u8> {
    let i = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    v.get(i..).unwrap_or_default().to_vec()
}

impl Cert {
    fn parse(der: &[u8]) -> Result<Self, String> {
        if der.len() > MAX_CERT_BYTES {
            return Err(format!(
                "{} bytes, over the {MAX_CERT_BYTES}-byte limit",
                der.len()
            ));
        }
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let spki = cert.public_key();
        let key = match spki.parsed() {
            Ok(X509Key::RSA(rsa)) => CertKey::Rsa {
                der: spki.subject_public_key.data.to_vec(),
                modulus: strip(rsa.modulus),
                exponent: strip(rsa.exponent),
            },
            Ok(X509Key::EC(point)) => CertKey::Ec {
                point: point.data().to_vec(),
                curve: spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default(),
            },
            _ => CertKey::Other(spki.algorithm.algorithm.to_id_string()),
        };
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| format!("bad basicConstraints: {e}"))?
            .is_some_and(|b| b.value.ca);
        Ok(Self {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca,
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            sig_oid: cert.signature_algorithm.algorithm.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            key,
        })
    }

    fn name(&self) -> String {
        if self.subject.is_empty() {
            "<no subject>".into()
        } else {
            self.subject.clone()
        }
    }

    /// Whether `issuer`'s key signed this certificate.
    fn signed_by(&self, issuer: &Self) -> Result<(), String> {
        use ring::signature as rs;
        let ok = match (self.sig_oid.as_str(), &issuer.key) {
            (OID_RSA_SHA256 | OID_RSA_SHA384 | OID_RSA_SHA512, CertKey::Rsa { der, .. }) => {
                let alg = match self.sig_oid.as_str() {
                    OID_RSA_SHA256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                    OID_RSA_SHA384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                    _ => &rs::RSA_PKCS1_2048_8192_SHA512,
                };
                rs::UnparsedPublicKey::new(alg, der)
                    .verify(&self.tbs, &self.signature)
                    .is_ok()
            }
            (OID_ECDSA_SHA256 | OID_ECDSA_SHA384, CertKey::Ec { point, curve }) => {
                let alg = match (self.sig_oid.as_str(), curve.as_str()) {
                    (OID_ECDSA_SHA256, OID_P256) => &rs::ECDSA_P256_SHA256_ASN1,
                    (OID_ECDSA_SHA384, OID_P384) => &rs::ECDSA_P384_SHA384_ASN1,
                    (OID_ECDSA_SHA256, OID_P384) => &rs::ECDSA_P384_SHA256_ASN1,
                    (OID_ECDSA_SHA384, OID_P256) => &rs::ECDSA_P256_SHA384_ASN1,
                    _ => {
                        return Err(format!(
                            "signature algorithm {} with an issuer key on curve {curve}: not \
                             supported",
                            self.sig_oid
                        ));
                    }
                };
                rs::UnparsedPublicKey::new(alg, point)
                    .verify(&self.tbs, &self.signature)
                    .is_ok()
            }
            (oid, _) => {
                return Err(format!(
                    "signature algorithm {oid} with the issuer's key type: not supported"
                ));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the signature by {} does not verify",
                issuer.name()
            ))
        }
    }

    fn valid_at(&self, now: UnixTime) -> Result<(), String> {
        let t = now.as_secs();
        if t < self.not_before {
            Err(format!(
                "{} is not valid before {}",
                self.name(),
                self.not_before
            ))
        } else if t > self.not_after {
            Err(format!("{} expired at {}", self.name(), self.not_after))
        } else {
            Ok(())
        }
    }
}

/// The TPM vendor CAs a verifier trusts: anchors (roots) and intermediates that may be used
/// to reach them. Built from DER or PEM.
#[derive(Debug, Clone, Default)]
pub struct VendorCas {
    anchors: Vec<Cert>,
    intermediates: Vec<Cert>,
}

/// Why a vendor CA set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A certificate does not parse.
    #[error("CA certificate {index}: {reason}")]
    Certificate {
        /// Its position in the input.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The PEM text is invalid.
    #[error("PEM: {0}")]
    Pem(String),
    /// More than [`MAX_CAS`] certificates.
    #[error("more than {MAX_CAS} CA certificates")]
    TooMany,
    /// A certificate that is not a CA.
    #[error("CA certificate {index} ({subject}) is not a CA (basicConstraints)")]
    NotCa {
        /// Its position in the input.
        index: usize,
        /// Its subject.
        subject: String,
    },
}

fn parse_cas(ders: &[Vec<u8>], offset: usize) -> Result<Vec<Cert>, CaError> {
    if ders.len() > MAX_CAS {
        return Err(CaError::TooMany);
    }
    ders.iter()
        .enumerate()
        .map(|(i, d)| {
            let index = offset + i;
            let c = Cert::parse(d).map_err(|reason| CaError::Certificate { index, reason })?;
            if !c.is_ca {
                return Err(CaError::NotCa {
                    index,
                    subject: c.name(),
                });
            }
            Ok(c)
        })
        .collect()
}

/// The DER of every `CERTIFICATE` block of a PEM text.
pub fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, CaError> {
    let blocks = pem::parse_many(text).map_err(|e| CaError::Pem(e.to_string()))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}

impl VendorCas {
    /// Anchors and intermediates, each DER; every one must be a CA certificate.
    pub fn new(anchors: &[Vec<u8>], intermediates: &[Vec<u8>]) -> Result<Self, CaError> {
        Ok(Self {
            anchors: parse_cas(anchors, 0)?,
            intermediates: parse_cas(intermediates, anchors.len())?,
        })
    }

    /// From PEM files: every certificate of `pem` that is self-issued is an anchor, the others
    /// are intermediates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CaError> {
        let all = parse_cas(&pem_certificates(pem)?, 0)?;
        let (anchors, intermediates) = all.into_iter().partition(|c| c.subject_raw == c.issuer_raw);
        Ok(Self {
            anchors,
            intermediates,
        })
    }

    /// How many anchors.
    pub fn anchors(&self) -> usize {
        self.anchors.len()
    }

    /// Build and check the chain of the EK certificate `ek_der` at `now`. Returns the subjects
    /// from the EK certificate to the anchor.
    pub fn verify_chain(&self, ek_der: &[u8], now: UnixTime) -> Result<Vec<String>, String> {
        let leaf = Cert::parse(ek_der).map_err(|e| format!("EK certificate: {e}"))?;
        leaf.valid_at(now)?;
        let mut path = vec![leaf.name()];
        let mut current = leaf;
        let mut last_error = None;
        for _ in 0..MAX_CHAIN {
            // An anchor that issued it ends the chain.
            for a in self
                .anchors
                .iter()
                .filter(|a| a.subject_raw == current.issuer_raw)
            {
                match current.signed_by(a).and_then(|()| a.valid_at(now)) {
                    Ok(()) => {
                        path.push(a.name());
                        return Ok(path);
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            let next = self
                .intermediates
                .iter()
                .filter(|c| c.subject_raw == current.issuer_raw && c.der != current.der)
                .find(
                    |c| match current.signed_by(c).and_then(|()| c.valid_at(now)) {
                        Ok(()) => true,
                        Err(e) => {
                            last_error = Some(e);
                            false
                        }
                    },
                );
            match next {
                Some(c) => {
                    path.push(c.name());
                    current = c.clone();
                }
                None => break,
            }
        }
        Err(match last_error {
            Some(e) => format!("no chain to a vendor CA: {e}"),
            None => format!(
                "no vendor CA or intermediate issued {} (chain so far: {})",
                current.name(),
                path.join(" <- ")
            ),
        })
    }
}

/// Whether the EK certificate's key is the EK's public key (RSA modulus and exponent, or the
/// ECC point and curve).
pub fn certificate_key_matches(ek_der: &[u8], ek: &Public) -> Result<(), String> {
    let cert = Cert::parse(ek_der).map_err(|e| format!("EK certificate: {e}"))?;
    match (&cert.key, &ek.key) {
        (
            CertKey::Rsa {
                modulus, exponent, ..
            },
            PublicKey::Rsa {
                modulus: m,
                exponent: e,
                ..
            },
        ) => {
            if *modulus == strip(m) && *exponent == strip(&e.to_be_bytes()) {
                Ok(())
            } else {
                Err("the EK certificate's RSA key is not the EK's".into())
            }
        }
        (CertKey::Ec { point, curve }, PublicKey::Ecc { curve: c, x, y, .. }) => {
            let want = match *c {
                ECC_NIST_P256 => OID_P256,
                ECC_NIST_P384 => OID_P384,
                _ => "",
            };
            let mut p = vec![4u8];
            p.extend_from_slice(x);
            p.extend_from_slice(y);
            if curve == want && *point == p {
                Ok(())
            } else {
                Err("the EK certificate's EC key is not the EK's".into())
            }
        }
        (CertKey::Other(oid), _) => Err(format!(
            "the EK certificate's key type {oid} is not supported"
        )),
        _ => Err(format!(
            "the EK certificate's key type differs from the EK's ({})",
            ek.describe()
        )),
    }
}

//! The trust policy directory, parsed by one loader for every program that reads one: stboot
//! (from its image), `stmgr ospkg verify`, `stmgr image`, `stmgr measure predict` and
//! `st-image`. The caller supplies the bytes of each file by name (this crate reads no files);
//! the loader decides which files are required, caps their sizes, parses them and refuses
//! files it cannot honour.

use crate::cert::{RootsError, SigningRoots, parse_certificate_pems};
use crate::{Policy, Threshold, UnixTime};
use st_format::archive::ArchiveLimits;
use st_format::image::trust_files;
use st_format::limits::{MAX_ROOTS_FILE_BYTES, MAX_TRUST_POLICY_BYTES};
use st_format::{TrustPolicy, TrustPolicyError};

/// A boxed error from whoever supplied a file's bytes (an `io::Error`, say).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// A parsed trust policy directory, with the bytes it was parsed from.
#[derive(Clone)]
pub struct TrustDir {
    policy: TrustPolicy,
    policy_json: Vec<u8>,
    roots: SigningRoots,
    roots_pem: Vec<u8>,
    tls_roots: Vec<Vec<u8>>,
    tls_roots_pem: Option<Vec<u8>>,
    sigsum: Option<st_sigsum::Policy>,
    sigsum_text: Option<Vec<u8>>,
    identities: Option<st_age::Identities>,
    identities_text: Option<Vec<u8>>,
}

/// Why a trust policy directory was refused: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {kind}")]
pub struct TrustDirError {
    /// The file's name inside the directory (one of [`trust_files`]).
    pub file: &'static str,
    /// What is wrong.
    pub kind: TrustDirErrorKind,
}

/// What is wrong with one file of the trust policy directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustDirErrorKind {
    /// A required file is absent.
    #[error("missing (required)")]
    Missing,
    /// Larger than its cap.
    #[error("{size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Bytes supplied.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The bytes could not be read.
    #[error("{0}")]
    Read(#[source] SourceError),
    /// `trust_policy.json` is invalid.
    #[error("{0}")]
    Policy(#[source] TrustPolicyError),
    /// A certificate file is invalid.
    #[error("{0}")]
    Roots(#[source] RootsError),
    /// `ospkg_trust_policy` is not a valid Sigsum policy.
    #[error("Sigsum policy: {0}")]
    SigsumPolicy(#[source] st_sigsum::PolicyError),
    /// `trust_policy.json` requires Sigsum-logged signatures but there is no Sigsum policy.
    #[error(
        "\"ospkg_sigsum_required\" is true, but the directory has no ospkg_trust_policy (the \
         Sigsum policy that proofs are checked against)"
    )]
    SigsumRequiredWithoutPolicy,
    /// `decryption_identities` is not a valid age identity file (the message names the line,
    /// never a key).
    #[error("age identities: {0}")]
    Identities(#[source] st_age::KeyFileError),
}

impl std::fmt::Debug for TrustDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustDir")
            .field("policy", &self.policy)
            .field("signing_roots", &self.roots.len())
            .field("tls_roots", &self.tls_roots.len())
            .field("sigsum_policy", &self.sigsum.is_some())
            .field(
                "decryption_identities",
                &self.identities.as_ref().map(st_age::Identities::len),
            )
            .finish()
    }
}

impl TrustDir {
    /// Load the directory through `read(name, cap)`, which returns a file's bytes, `Ok(None)`
    /// when the file does not exist, or an error. `read` may return more than `cap` bytes (it is
    /// checked here); a careful reader stops at `cap + 1`.
    pub fn load<E>(
        mut read: impl FnMut(&'static str, usize) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Self, TrustDirError>
    where
        E: Into<SourceError>,
    {
        let mut get = |file: &'static str, max: usize| -> Result<Option<Vec<u8>>, TrustDirError> {
            let err = |kind| TrustDirError { file, kind };
            match read(file, max) {
                Ok(Some(bytes)) if bytes.len() > max => Err(err(TrustDirErrorKind::TooLarge {
                    size: bytes.len(),
                    max,
                })),
                Ok(found) => Ok(found),
                Err(e) => Err(err(TrustDirErrorKind::Read(e.into()))),
            }
        };
        let required = |found: Option<Vec<u8>>, file| {
            found.ok_or(TrustDirError {
                file,
                kind: TrustDirErrorKind::Missing,
            })
        };
        let policy_json = required(
            get(trust_files::TRUST_POLICY, MAX_TRUST_POLICY_BYTES)?,
            trust_files::TRUST_POLICY,
        )?;
        let policy = TrustPolicy::from_json(&policy_json).map_err(|e| TrustDirError {
            file: trust_files::TRUST_POLICY,
            kind: TrustDirErrorKind::Policy(e),
        })?;
        let roots_pem = required(
            get(trust_files::SIGNING_ROOTS, MAX_ROOTS_FILE_BYTES)?,
            trust_files::SIGNING_ROOTS,
        )?;
        let roots = SigningRoots::from_pem(&roots_pem).map_err(|e| TrustDirError {
            file: trust_files::SIGNING_ROOTS,
            kind: TrustDirErrorKind::Roots(e),
        })?;
        let tls_roots_pem = get(trust_files::TLS_ROOTS, MAX_ROOTS_FILE_BYTES)?;
        let tls_roots = match &tls_roots_pem {
            Some(pem) => parse_certificate_pems(pem).map_err(|e| TrustDirError {
                file: trust_files::TLS_ROOTS,
                kind: TrustDirErrorKind::Roots(e),
            })?,
            None => Vec::new(),
        };
        let sigsum_text = get(
            trust_files::SIGSUM_POLICY,
            st_sigsum::policy::MAX_POLICY_BYTES,
        )?;
        let sigsum = match &sigsum_text {
            Some(text) => Some(st_sigsum::Policy::parse(text).map_err(|e| TrustDirError {
                file: trust_files::SIGSUM_POLICY,
                kind: TrustDirErrorKind::SigsumPolicy(e),
            })?),
            None if policy.sigsum_required() => {
                return Err(TrustDirError {
                    file: trust_files::TRUST_POLICY,
                    kind: TrustDirErrorKind::SigsumRequiredWithoutPolicy,
                });
            }
            None => None,
        };
        let identities_text = get(trust_files::DECRYPTION_IDENTITIES, st_age::MAX_KEY_FILE)?;
        let identities = identities_text
            .as_deref()
            .map(|text| {
                st_age::Identities::parse(text).map_err(|e| TrustDirError {
                    file: trust_files::DECRYPTION_IDENTITIES,
                    kind: TrustDirErrorKind::Identities(e),
                })
            })
            .transpose()?;
        Ok(Self {
            policy,
            policy_json,
            roots,
            roots_pem,
            tls_roots,
            tls_roots_pem,
            sigsum,
            sigsum_text,
            identities,
            identities_text,
        })
    }

    /// Everything a package is judged by under this directory: its signing roots, its
    /// threshold, its Sigsum policy and whether only logged signatures count, at time `now`
    /// with the archive caps `limits`. The one place that turns a directory into a
    /// [`Policy`], so no caller can forget a field.
    pub fn verify_policy<'a>(&'a self, now: UnixTime, limits: &'a ArchiveLimits) -> Policy<'a> {
        Policy {
            roots: &self.roots,
            threshold: Threshold::AtLeast(self.policy.threshold()),
            now,
            limits,
            sigsum: self.sigsum.as_ref(),
            sigsum_required: self.policy.sigsum_required(),
        }
    }

    /// `trust_policy.json`, parsed.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }
    /// `trust_policy.json` as written.
    pub fn policy_json(&self) -> &[u8] {
        &self.policy_json
    }
    /// `ospkg_signing_root.pem`, parsed.
    pub fn roots(&self) -> &SigningRoots {
        &self.roots
    }
    /// `ospkg_signing_root.pem` as written.
    pub fn roots_pem(&self) -> &[u8] {
        &self.roots_pem
    }
    /// Every certificate of `tls_roots.pem` (DER, file order; empty when the file is absent).
    /// Whether each is valid now is the caller's question (it has the clock).
    pub fn tls_roots(&self) -> &[Vec<u8>] {
        &self.tls_roots
    }
    /// `tls_roots.pem` as written, when present.
    pub fn tls_roots_pem(&self) -> Option<&[u8]> {
        self.tls_roots_pem.as_deref()
    }
    /// `ospkg_trust_policy` (the Sigsum policy), parsed, when present.
    pub fn sigsum_policy(&self) -> Option<&st_sigsum::Policy> {
        self.sigsum.as_ref()
    }
    /// `ospkg_trust_policy` as written, when present.
    pub fn sigsum_policy_text(&self) -> Option<&[u8]> {
        self.sigsum_text.as_deref()
    }
    /// `decryption_identities` (age X25519 identities for encrypted OS packages), when present.
    /// Secret: never log it; [`st_age::Identities::recipients`] are the public halves.
    pub fn decryption_identities(&self) -> Option<&st_age::Identities> {
        self.identities.as_ref()
    }
    /// `decryption_identities` as written, when present (for building an image). Secret.
    pub fn decryption_identities_file(&self) -> Option<&[u8]> {
        self.identities_text.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const POLICY: &[u8] = br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#;

    fn load(files: &BTreeMap<&str, Vec<u8>>) -> Result<TrustDir, TrustDirError> {
        TrustDir::load(|name, _| Ok::<_, std::io::Error>(files.get(name).cloned()))
    }

    fn root_pem() -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem().into_bytes()
    }

    #[test]
    fn each_file_is_named_in_its_error() {
        let mut files = BTreeMap::new();
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "trust_policy.json");
        assert!(matches!(e.kind, TrustDirErrorKind::Missing), "{e}");

        files.insert("trust_policy.json", b"{}".to_vec());
        let e = load(&files).unwrap_err();
        assert!(matches!(e.kind, TrustDirErrorKind::Policy(_)), "{e}");
        assert!(e.to_string().starts_with("trust_policy.json: "), "{e}");

        files.insert("trust_policy.json", POLICY.to_vec());
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "ospkg_signing_root.pem");

        files.insert("ospkg_signing_root.pem", root_pem());
        let dir = load(&files).unwrap();
        assert_eq!(dir.roots().len(), 1);
        assert!(dir.tls_roots().is_empty() && dir.tls_roots_pem().is_none());
        assert_eq!(dir.policy_json(), POLICY);

        files.insert("tls_roots.pem", b"junk".to_vec());
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "tls_roots.pem");
        files.insert("tls_roots.pem", root_pem());
        assert_eq!(load(&files).unwrap().tls_roots().len(), 1);
    }

    #[test]
    fn decryption_identities_are_loaded_and_a_bad_line_is_named_without_the_key() {
        let mut files = BTreeMap::new();
        files.insert("trust_policy.json", POLICY.to_vec());
        files.insert("ospkg_signing_root.pem", root_pem());
        assert!(load(&files).unwrap().decryption_identities().is_none());
        let mut random = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = 7);
        let id = st_age::Identity::generate(&mut random);
        let text = format!("# created for a test\n{}\n", id.to_secret_string().as_str());
        files.insert("decryption_identities", text.clone().into_bytes());
        let dir = load(&files).unwrap();
        let ids = dir.decryption_identities().unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.recipients().next(), Some(id.recipient()));
        assert!(!format!("{dir:?}").contains("AGE-SECRET-KEY"));

        let secret = id.to_secret_string();
        let broken = format!("{}\nAGE-SECRET-KEY-1NOTAKEY\n", secret.as_str());
        files.insert("decryption_identities", broken.into_bytes());
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "decryption_identities");
        assert!(matches!(e.kind, TrustDirErrorKind::Identities(_)), "{e}");
        let shown = e.to_string();
        assert!(shown.contains("line 2"), "{shown}");
        assert!(!shown.contains(secret.as_str()), "{shown}");
    }

    #[test]
    fn the_sigsum_policy_is_loaded_checked_and_required_when_the_policy_says_so() {
        let mut files = BTreeMap::new();
        files.insert("trust_policy.json", POLICY.to_vec());
        files.insert("ospkg_signing_root.pem", root_pem());
        let dir = load(&files).unwrap();
        assert!(dir.sigsum_policy().is_none() && dir.sigsum_policy_text().is_none());
        let limits = ArchiveLimits::default();
        let p = dir.verify_policy(UnixTime::from_secs(0), &limits);
        assert!(p.sigsum.is_none() && !p.sigsum_required);
        assert_eq!(p.threshold, Threshold::AtLeast(dir.policy().threshold()));

        let text = format!("log {}\nquorum none\n", "ab".repeat(32));
        files.insert("ospkg_trust_policy", text.clone().into_bytes());
        let dir = load(&files).unwrap();
        assert_eq!(dir.sigsum_policy().unwrap().logs().len(), 1);
        assert_eq!(dir.sigsum_policy_text(), Some(text.as_bytes()));
        assert!(
            dir.verify_policy(UnixTime::from_secs(0), &limits)
                .sigsum
                .is_some()
        );

        files.insert("ospkg_trust_policy", b"log 1234\n".to_vec());
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "ospkg_trust_policy");
        assert_eq!(
            e.to_string(),
            "ospkg_trust_policy: Sigsum policy: line 1: log public key: 2 bytes of hex, expected 64 \
             hex digits (32 bytes)"
        );

        let required = br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","ospkg_sigsum_required":true}"#;
        files.insert("trust_policy.json", required.to_vec());
        files.insert("ospkg_trust_policy", text.into_bytes());
        let dir = load(&files).unwrap();
        assert!(
            dir.verify_policy(UnixTime::from_secs(0), &limits)
                .sigsum_required
        );
        files.remove("ospkg_trust_policy");
        let e = load(&files).unwrap_err();
        assert_eq!(e.file, "trust_policy.json");
        assert!(
            matches!(e.kind, TrustDirErrorKind::SigsumRequiredWithoutPolicy),
            "{e}"
        );
        assert!(
            e.to_string().contains("ospkg_sigsum_required")
                && e.to_string().contains("ospkg_trust_policy"),
            "{e}"
        );
    }

    #[test]
    fn oversized_files_and_read_errors_are_reported() {
        let e = TrustDir::load(|name, max| {
            Ok::<_, std::io::Error>((name == "trust_policy.json").then(|| vec![b' '; max + 1]))
        })
        .unwrap_err();
        assert!(matches!(e.kind, TrustDirErrorKind::TooLarge { .. }), "{e}");
        let e = TrustDir::load(|_, _| Err::<Option<Vec<u8>>, _>(std::io::Error::other("EIO")))
            .unwrap_err();
        assert_eq!(e.to_string(), "trust_policy.json: EIO");
    }
}

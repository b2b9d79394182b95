//! [`verify`]: one attestation against what the verifier expects, decided and explained.

use crate::binding::{BINDING_PCR, Binding, BindingError, ReleaseList, ServiceKey};
use crate::ekcert::{VendorCas, certificate_key_matches};
use crate::message::{Attestation, hex};
use crate::tpm::{
    ALG_SHA256, HashAlg, ObjectAttributes, Public, Quote, Signature, SignatureError, TpmError,
    verify_signature,
};
use serde_json::{Value, json};
use st_format::Descriptor;
use st_format::archive::ArchiveLimits;
use st_format::image::trust_files;
use st_measure::{Bank, EV_NO_ACTION, EventKind, LogError, LogEvent, parse_log, replay};
use st_verify::{ArchiveDigest, Threshold, TrustDir, TrustDirError, UnixTime, VerifyReport};
use std::collections::BTreeSet;

/// The attributes an AK must have: a restricted signing key made by and fixed to its TPM.
pub const AK_REQUIRED: u32 = ObjectAttributes::RESTRICTED
    | ObjectAttributes::SIGN
    | ObjectAttributes::FIXED_TPM
    | ObjectAttributes::FIXED_PARENT
    | ObjectAttributes::SENSITIVE_DATA_ORIGIN;

/// The PCRs every quote must cover: stboot's and the binding.
pub const REQUIRED_PCRS: [u32; 4] = [12, 13, 14, BINDING_PCR];

/// The firmware's PCRs.
pub const FIRMWARE_PCRS: std::ops::RangeInclusive<u32> = 0..=7;

/// What the verifier expects of the trust policy stboot used.
#[derive(Debug, Clone, Copy)]
pub enum TrustExpectation<'a> {
    /// This trust policy directory: `trust_policy.json` (canonical form), the signing roots,
    /// the TLS roots and the Sigsum policy (present or absent) must be what stboot measured.
    Dir(&'a TrustDir),
    /// Only PCR 13's sha256 value as `stmgr measure predict` gives it (stboot's PCR 13 events
    /// replayed from zero): the policy, roots and Sigsum policy are read from the log's PCR 13
    /// events, which must replay to it.
    Pcr13([u8; 32]),
}

/// Everything the verifier brings: what it sent, whom it trusts, what it expects.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The nonce of the quote request.
    pub nonce: &'a [u8],
    /// The secret wrapped in the credential.
    pub secret: &'a [u8],
    /// TPM vendor CAs the EK certificate must chain to.
    pub vendor_cas: &'a VendorCas,
    /// The trust policy.
    pub trust: TrustExpectation<'a>,
    /// When given, the package must be Sigsum-logged under this policy (a proof by a signer
    /// that counts under the trust policy's roots).
    pub sigsum: Option<&'a st_sigsum::Policy>,
    /// When given, the archive's SHA-256 must be on it.
    pub releases: Option<&'a ReleaseList>,
    /// When given, the binding must bind this key.
    pub service_key: Option<ServiceKey>,
    /// The time certificates (EK chain, OS package signers) must be valid at.
    pub now: UnixTime,
}

/// Why an attestation was refused: the first check that failed, naming what did not match.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// `ek_public` does not parse.
    #[error("ek_public: {0}")]
    EkPublic(TpmError),
    /// No EK certificate: the EK cannot be tied to a TPM vendor.
    #[error("no EK certificate: the EK cannot be tied to a TPM vendor")]
    NoEkCertificate,
    /// The EK certificate does not chain to a vendor CA.
    #[error("EK certificate: {0}")]
    EkChain(String),
    /// The EK certificate certifies another key.
    #[error("EK certificate: {0}")]
    EkCertificateKey(String),
    /// `ak_public` does not parse.
    #[error("ak_public: {0}")]
    AkPublic(TpmError),
    /// The AK lacks a required attribute.
    #[error(
        "the AK is not a restricted signing key fixed to its TPM: attributes {attributes}, missing {missing}"
    )]
    AkAttributes {
        /// The attributes it has.
        attributes: String,
        /// Those it lacks (or `decrypt`, which it must not have).
        missing: String,
    },
    /// `attest` does not parse as a quote.
    #[error("attest: {0}")]
    Attest(TpmError),
    /// `signature` does not parse.
    #[error("signature: {0}")]
    SignatureFormat(TpmError),
    /// The quote's signature is not the AK's.
    #[error("quote signature: {0}")]
    QuoteSignature(SignatureError),
    /// The binding statement does not parse.
    #[error("{0}")]
    Binding(BindingError),
    /// The binding names another AK.
    #[error("the binding names AK {bound}, the quote was signed by AK {signer}")]
    BindingAkName {
        /// The binding's `ak-name`.
        bound: String,
        /// The AK's name.
        signer: String,
    },
    /// The quote does not cover this nonce and secret.
    #[error(
        "the quote's qualifying data is {quoted}, not {expected} (SHA-256 of st-attest-v1, this \
         nonce, this secret, the binding): an old quote, or an AK not on the EK's TPM (which \
         alone could recover the secret), or another binding"
    )]
    NotFresh {
        /// `extraData` in the quote.
        quoted: String,
        /// What this verifier's nonce and secret give.
        expected: String,
    },
    /// The quote selects the wrong PCRs, or the `pcrs` given are not exactly those.
    #[error("PCR selection: {0}")]
    PcrSelection(String),
    /// The PCR values given are not those the TPM quoted.
    #[error("the quote's PCR digest is {quoted}; the PCR values given hash to {given}")]
    PcrDigest {
        /// `pcrDigest`.
        quoted: String,
        /// The hash of the values in the message.
        given: String,
    },
    /// An event log does not parse or has no sha256 digests.
    #[error("{log}: {reason}")]
    EventLog {
        /// `stboot event log` or `firmware event log`.
        log: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A quoted PCR is not the replay of the logs.
    #[error("PCR {pcr}: quoted {quoted}, {source_name} gives {replay}")]
    Pcr {
        /// The PCR.
        pcr: u32,
        /// The quoted value.
        quoted: String,
        /// The replayed value.
        replay: String,
        /// What was replayed.
        source_name: &'static str,
    },
    /// stboot's log is not stboot's layout.
    #[error("stboot event log: event {index}: {reason}")]
    StbootLayout {
        /// 0-based index among the extending events.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// No descriptor in the attestation.
    #[error("no descriptor in the attestation")]
    NoDescriptor,
    /// The descriptor given is not the one measured.
    #[error("the descriptor given hashes to {given}, PCR 12's descriptor event is {measured}")]
    DescriptorDigest {
        /// SHA-256(SHA-256(descriptor)).
        given: String,
        /// The event's sha256 digest.
        measured: String,
    },
    /// The descriptor does not parse.
    #[error("descriptor: {0}")]
    Descriptor(String),
    /// The archive SHA-256 given is not the one measured.
    #[error(
        "archive_sha256 {given} is not the archive measured in PCR 12 (event digest {measured})"
    )]
    ArchiveDigest {
        /// The message's `archive_sha256`.
        given: String,
        /// The event's sha256 digest.
        measured: String,
    },
    /// Neither the message nor the release list names the measured archive.
    #[error(
        "the archive measured in PCR 12 (event digest {measured}) is not identified: no \
         archive_sha256 in the attestation and no release list given"
    )]
    ArchiveUnknown {
        /// The event's sha256 digest.
        measured: String,
    },
    /// PCR 13 shows another trust policy.
    #[error("another trust policy: {event}: measured {measured}, expected {expected}")]
    TrustPolicy {
        /// The event that differs.
        event: &'static str,
        /// What stboot measured.
        measured: String,
        /// What the verifier expects.
        expected: String,
    },
    /// The trust policy read from the log is invalid.
    #[error("the trust policy in the log: {0}")]
    TrustPolicyInLog(String),
    /// The package is not signed by the threshold.
    #[error("the OS package is not signed by the threshold of the trust policy: {0}")]
    Signatures(Box<VerifyReport>),
    /// The package is not Sigsum-logged under the verifier's policy.
    #[error("the OS package is not Sigsum-logged under the given policy: {0}")]
    NotLogged(String),
    /// The archive is not on the release list.
    #[error("the OS package {archive} is not on the release list")]
    NotReleased {
        /// The archive's SHA-256 (or what is known of it).
        archive: String,
    },
    /// The binding binds other keys.
    #[error("service key {expected} is not bound: the binding has {bound}")]
    ServiceKey {
        /// The key the client expects.
        expected: String,
        /// The keys bound.
        bound: String,
    },
}

impl Refusal {
    /// A stable short name for the kind of refusal (`not-fresh`, `pcr`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::EkPublic(_) => "ek-public",
            Self::NoEkCertificate => "no-ek-certificate",
            Self::EkChain(_) => "ek-chain",
            Self::EkCertificateKey(_) => "ek-certificate-key",
            Self::AkPublic(_) => "ak-public",
            Self::AkAttributes { .. } => "ak-attributes",
            Self::Attest(_) => "attest",
            Self::SignatureFormat(_) => "signature-format",
            Self::QuoteSignature(_) => "quote-signature",
            Self::Binding(_) => "binding",
            Self::BindingAkName { .. } => "binding-ak-name",
            Self::NotFresh { .. } => "not-fresh",
            Self::PcrSelection(_) => "pcr-selection",
            Self::PcrDigest { .. } => "pcr-digest",
            Self::EventLog { .. } => "event-log",
            Self::Pcr { .. } => "pcr",
            Self::StbootLayout { .. } => "stboot-layout",
            Self::NoDescriptor => "no-descriptor",
            Self::DescriptorDigest { .. } => "descriptor-digest",
            Self::Descriptor(_) => "descriptor",
            Self::ArchiveDigest { .. } => "archive-digest",
            Self::ArchiveUnknown { .. } => "archive-unknown",
            Self::TrustPolicy { .. } => "trust-policy",
            Self::TrustPolicyInLog(_) => "trust-policy-in-log",
            Self::Signatures(_) => "signatures",
            Self::NotLogged(_) => "not-logged",
            Self::NotReleased { .. } => "not-released",
            Self::ServiceKey { .. } => "service-key",
        }
    }

    /// `{"verdict": "refused", "code": ..., "reason": ...}`.
    pub fn to_json(&self) -> Value {
        json!({"verdict": "refused", "code": self.code(), "reason": self.to_string()})
    }
}

/// Where a Sigsum-logged signature was logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggedAt {
    /// The log's key hash (hex).
    pub log: String,
    /// The leaf's index.
    pub leaf_index: u64,
    /// The cosigned tree's size.
    pub tree_size: u64,
    /// The witnesses that cosigned.
    pub witnesses: Vec<String>,
    /// Which descriptor entry.
    pub entry: usize,
}

/// Whether the firmware's PCRs were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwarePcrs {
    /// These PCRs equal the replay of the firmware's log.
    Checked(Vec<u32>),
    /// No firmware log: PCRs 0-7 are quoted but not explained.
    NoLog,
    /// A firmware log, but PCRs 0-7 not quoted.
    NotQuoted,
}

/// An accepted attestation: what the machine runs, and why the verifier believes it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The archive event's data: the file name it was fetched as (or `OS package from
    /// initramfs`).
    pub archive_label: String,
    /// Whether [`Self::archive_label`] is what stboot writes for the measured descriptor (the
    /// name is not itself measured; a relative or empty `os_pkg_url` depends on the
    /// descriptor's URL, which the verifier does not know).
    pub archive_label_measured: bool,
    /// SHA-256 of the archive.
    pub archive_sha256: [u8; 32],
    /// SHA-256 of the descriptor.
    pub descriptor_sha256: [u8; 32],
    /// The signers that counted, by certificate subject.
    pub signers: Vec<String>,
    /// Signatures present.
    pub signatures_found: usize,
    /// The trust policy's threshold.
    pub threshold: u32,
    /// Where it was Sigsum-logged (under the verifier's policy when given, else under the
    /// trust policy's), if it was.
    pub logged: Option<LoggedAt>,
    /// `Some(true)` when on the release list, `None` without one.
    pub released: Option<bool>,
    /// The bound service keys.
    pub binding: Binding,
    /// The key the client expects, checked to be bound.
    pub service_key: Option<ServiceKey>,
    /// The AK's name (hex).
    pub ak_name: String,
    /// The EK certificate's chain, leaf first.
    pub ek_chain: Vec<String>,
    /// The identity (PCR 14's event data), lossily as text.
    pub identity: String,
    /// PCR 13 as stboot's events give it from zero (what `stmgr measure predict` prints).
    pub trust_policy_pcr13: [u8; 32],
    /// The firmware PCRs' state.
    pub firmware: FirmwarePcrs,
    /// The TPM's clock (resetCount counts reboots).
    pub clock: crate::tpm::ClockInfo,
    /// The TPM's firmware version.
    pub tpm_firmware_version: u64,
    /// Every check that passed, in order, one sentence each.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// The one verdict line.
    pub fn summary(&self) -> String {
        let package = if self.archive_label_measured {
            format!("{} {}", self.archive_label, hex(&self.archive_sha256))
        } else {
            format!(
                "{} (named {:?} by the log, unmeasured)",
                hex(&self.archive_sha256),
                self.archive_label
            )
        };
        let mut s = format!(
            "runs {package}, signed by {} of {} ({}; threshold {})",
            self.signers.len(),
            self.signatures_found,
            self.signers.join(", "),
            self.threshold
        );
        match &self.logged {
            Some(l) => s.push_str(&format!(", logged at index {}", l.leaf_index)),
            None => s.push_str(", not Sigsum-logged"),
        }
        if self.released == Some(true) {
            s.push_str(", released");
        }
        match &self.service_key {
            Some(k) => s.push_str(&format!(", service key {k} bound")),
            None => s.push_str(&format!(
                ", service keys {} and {} bound (none expected)",
                ServiceKey::WireGuard(self.binding.wireguard),
                ServiceKey::TlsSpkiSha256(self.binding.tls_spki_sha256)
            )),
        }
        if self.firmware == FirmwarePcrs::NoLog {
            s.push_str("; firmware PCRs 0-7 unchecked (no firmware log)");
        }
        s
    }

    /// The JSON form (`{"verdict": "accepted", "summary": ..., ...}`).
    pub fn to_json(&self) -> Value {
        json!({
            "verdict": "accepted",
            "summary": self.summary(),
            "archive": {
                "label": self.archive_label,
                "label_measured": self.archive_label_measured,
                "sha256": hex(&self.archive_sha256),
            },
            "descriptor_sha256": hex(&self.descriptor_sha256),
            "signers": self.signers,
            "signatures_found": self.signatures_found,
            "threshold": self.threshold,
            "logged": self.logged,
            "released": self.released,
            "service_keys": {
                "wireguard": ServiceKey::WireGuard(self.binding.wireguard).to_string(),
                "tls_spki_sha256": hex(&self.binding.tls_spki_sha256),
                "expected": self.service_key.map(|k| k.to_string()),
            },
            "ak_name": self.ak_name,
            "ek_chain": self.ek_chain,
            "identity": self.identity,
            "trust_policy_pcr13": hex(&self.trust_policy_pcr13),
            "firmware_pcrs": match &self.firmware {
                FirmwarePcrs::Checked(p) => json!({"checked": p}),
                FirmwarePcrs::NoLog => json!("unchecked: no firmware log"),
                FirmwarePcrs::NotQuoted => json!("unchecked: not quoted"),
            },
            "tpm": {"clock": self.clock, "firmware_version": self.tpm_firmware_version},
            "reasons": self.reasons,
        })
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&HashAlg::Sha256.hash(parts));
    out
}

/// The quote's qualifying data: `SHA-256("st-attest-v1\0" || nonce || secret ||
/// SHA-256(binding))`.
pub fn qualifying_data(nonce: &[u8], secret: &[u8], binding: &[u8]) -> [u8; 32] {
    sha256(&[b"st-attest-v1\0", nonce, secret, &sha256(&[binding])])
}

/// What a PCR 15 holds after the agent extended the binding once, from zero:
/// `SHA-256(0^32 || SHA-256(SHA-256(statement)))`.
pub fn binding_pcr(statement: &[u8]) -> [u8; 32] {
    let digest = sha256(&[&sha256(&[statement])]);
    sha256(&[&[0u8; 32], &digest])
}

fn event_name(e: &LogEvent) -> String {
    match EventKind::from_event_type(e.event_type) {
        Some(k) => format!("{} (PCR {})", k.name(), e.pcr),
        None => format!(
            "{} (PCR {})",
            st_measure::event_type_name(e.event_type)
                .map_or_else(|| format!("type {:#010x}", e.event_type), str::to_string),
            e.pcr
        ),
    }
}

fn short(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 200 || text.chars().any(|c| c.is_control() && c != '\n') {
        format!("{} bytes, SHA-256 {}", bytes.len(), hex(&sha256(&[bytes])))
    } else {
        format!("{text:?}")
    }
}

/// stboot's events, checked against the layout.
struct StbootEvents<'a> {
    archive: &'a LogEvent,
    descriptor: &'a LogEvent,
    policy: &'a LogEvent,
    signing_roots: &'a LogEvent,
    tls_roots: &'a LogEvent,
    sigsum: Option<&'a LogEvent>,
    identity: &'a LogEvent,
}

fn sha256_digest(e: &LogEvent) -> [u8; 32] {
    e.digest(ALG_SHA256)
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .unwrap_or_default()
}

fn stboot_layout<'a>(events: &[&'a LogEvent]) -> Result<StbootEvents<'a>, Refusal> {
    use EventKind as K;
    let with_sigsum = events.len() == 7;
    let expected: &[K] = if with_sigsum {
        &[
            K::OspkgArchive,
            K::OspkgDescriptor,
            K::TrustPolicy,
            K::SigningRoot,
            K::TlsRoots,
            K::SigsumPolicy,
            K::Identity,
        ]
    } else {
        &[
            K::OspkgArchive,
            K::OspkgDescriptor,
            K::TrustPolicy,
            K::SigningRoot,
            K::TlsRoots,
            K::Identity,
        ]
    };
    for (index, want) in expected.iter().enumerate() {
        let Some(e) = events.get(index) else {
            return Err(Refusal::StbootLayout {
                index,
                reason: format!(
                    "missing: expected {} (PCR {}); the log has {} events, stboot writes 6 or 7",
                    want.name(),
                    want.pcr(),
                    events.len()
                ),
            });
        };
        if e.event_type != want.event_type() || e.pcr != want.pcr() {
            return Err(Refusal::StbootLayout {
                index,
                reason: format!(
                    "{} where stboot writes {} (PCR {})",
                    event_name(e),
                    want.name(),
                    want.pcr()
                ),
            });
        }
        if e.digest(ALG_SHA256).is_none_or(|d| d.len() != 32) {
            return Err(Refusal::StbootLayout {
                index,
                reason: format!("{}: no sha256 digest", want.name()),
            });
        }
        // Events whose data is their content: the digest must be H(SHA-256(data)).
        if !matches!(want, K::OspkgArchive | K::OspkgDescriptor)
            && sha256_digest(e) != sha256(&[&sha256(&[&e.data])])
        {
            return Err(Refusal::StbootLayout {
                index,
                reason: format!(
                    "{}: the digest is not SHA-256(SHA-256(data)): the data is not what was \
                     measured",
                    want.name()
                ),
            });
        }
    }
    if let Some(extra) = events.get(expected.len()) {
        return Err(Refusal::StbootLayout {
            index: expected.len(),
            reason: format!("{} after stboot's identity event", event_name(extra)),
        });
    }
    let get = |i: usize| events.get(i).copied();
    let missing = || Refusal::StbootLayout {
        index: 0,
        reason: "missing events".into(),
    };
    Ok(StbootEvents {
        archive: get(0).ok_or_else(missing)?,
        descriptor: get(1).ok_or_else(missing)?,
        policy: get(2).ok_or_else(missing)?,
        signing_roots: get(3).ok_or_else(missing)?,
        tls_roots: get(4).ok_or_else(missing)?,
        sigsum: if with_sigsum { get(5) } else { None },
        identity: get(if with_sigsum { 6 } else { 5 }).ok_or_else(missing)?,
    })
}

/// Split concatenated DER certificates (each a SEQUENCE with a definite length).
fn split_ders(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, header) = match bytes {
            [0x30, l, ..] if *l < 0x80 => (usize::from(*l), 2),
            [0x30, 0x81, l, ..] => (usize::from(*l), 3),
            [0x30, 0x82, a, b, ..] => (usize::from(*a) << 8 | usize::from(*b), 4),
            [0x30, 0x83, a, b, c, ..] => (
                usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c),
                5,
            ),
            _ => return Err("not a sequence of DER certificates".into()),
        };
        let total = header + len;
        let (der, rest) = bytes
            .split_at_checked(total)
            .ok_or("a DER certificate runs past the end")?;
        out.push(der.to_vec());
        bytes = rest;
        if out.len() > 64 {
            return Err("more than 64 certificates".into());
        }
    }
    Ok(out)
}

fn pem_of(ders: &[Vec<u8>]) -> Vec<u8> {
    let blocks: Vec<pem::Pem> = ders
        .iter()
        .map(|d| pem::Pem::new("CERTIFICATE", d.clone()))
        .collect();
    pem::encode_many(&blocks).into_bytes()
}

/// The trust policy directory the log's PCR 13 events describe.
fn trust_dir_from_log(ev: &StbootEvents<'_>) -> Result<TrustDir, Refusal> {
    let roots = split_ders(&ev.signing_roots.data).map_err(Refusal::TrustPolicyInLog)?;
    let tls = split_ders(&ev.tls_roots.data).map_err(Refusal::TrustPolicyInLog)?;
    TrustDir::load(|name, _| {
        Ok::<_, std::io::Error>(match name {
            trust_files::TRUST_POLICY => Some(ev.policy.data.clone()),
            trust_files::SIGNING_ROOTS => Some(pem_of(&roots)),
            trust_files::TLS_ROOTS if !tls.is_empty() => Some(pem_of(&tls)),
            trust_files::SIGSUM_POLICY => ev.sigsum.map(|e| e.data.clone()),
            _ => None,
        })
    })
    .map_err(|e: TrustDirError| Refusal::TrustPolicyInLog(e.to_string()))
}

fn compare_trust_dir(ev: &StbootEvents<'_>, dir: &TrustDir) -> Result<(), Refusal> {
    let policy = dir.policy().to_canonical_json();
    if ev.policy.data != policy {
        return Err(Refusal::TrustPolicy {
            event: "trust-policy",
            measured: short(&ev.policy.data),
            expected: short(&policy),
        });
    }
    let roots: Vec<u8> = dir.roots().ders().flat_map(<[u8]>::to_vec).collect();
    if ev.signing_roots.data != roots {
        return Err(Refusal::TrustPolicy {
            event: "signing-root",
            measured: short(&ev.signing_roots.data),
            expected: short(&roots),
        });
    }
    let tls = dir.tls_roots().concat();
    if ev.tls_roots.data != tls {
        return Err(Refusal::TrustPolicy {
            event: "tls-roots",
            measured: short(&ev.tls_roots.data),
            expected: short(&tls),
        });
    }
    match (ev.sigsum, dir.sigsum_policy_text()) {
        (None, None) => Ok(()),
        (Some(e), Some(t)) if e.data == t => Ok(()),
        (m, t) => Err(Refusal::TrustPolicy {
            event: "sigsum-policy",
            measured: m.map_or_else(|| "none".into(), |e| short(&e.data)),
            expected: t.map_or_else(|| "none".into(), short),
        }),
    }
}

fn outcome_names(report: &VerifyReport) -> Vec<String> {
    report
        .outcomes
        .iter()
        .filter(|o| o.verdict.is_ok())
        .map(|o| {
            o.signer
                .as_ref()
                .map_or_else(|| format!("entry {}", o.index), |s| s.name.clone())
        })
        .collect()
}

fn first_logged(report: &VerifyReport) -> Option<LoggedAt> {
    report.outcomes.iter().find_map(|o| {
        let l = o.logged.as_ref().filter(|_| o.verdict.is_ok())?;
        Some(LoggedAt {
            log: l.log.to_string(),
            leaf_index: l.leaf_index,
            tree_size: l.tree_size,
            witnesses: l.witnesses.clone(),
            entry: o.index,
        })
    })
}

/// The archive event's data for a network boot: Go's `filepath.Base` of the decoded path of
/// `os_pkg_url` (query and fragment dropped; a relative URL keeps its last segment when
/// resolved).
fn archive_file_name(url: &str) -> Vec<u8> {
    let no_query = url.split(['?', '#']).next().unwrap_or_default();
    let path = match no_query.find("://") {
        Some(i) => {
            let after = no_query.get(i + 3..).unwrap_or_default();
            after
                .find('/')
                .and_then(|j| after.get(j..))
                .unwrap_or_default()
        }
        None => no_query,
    };
    st_measure::archive_name_from_url_path(path)
}

/// Decide one attestation. Every check of `docs/attestation.md`, in order; the first that
/// fails is the [`Refusal`].
pub fn verify(att: &Attestation, exp: &Expectations<'_>) -> Result<Verdict, Refusal> {
    let mut reasons = Vec::new();

    // The EK and its certificate.
    let ek = Public::parse(&att.ek_public).map_err(Refusal::EkPublic)?;
    let cert = att
        .ek_certificate
        .as_deref()
        .ok_or(Refusal::NoEkCertificate)?;
    let ek_chain = exp
        .vendor_cas
        .verify_chain(cert, exp.now)
        .map_err(Refusal::EkChain)?;
    certificate_key_matches(cert, &ek).map_err(Refusal::EkCertificateKey)?;
    reasons.push(format!(
        "EK ({}) certified by the TPM vendor: {}",
        ek.describe(),
        ek_chain.join(" <- ")
    ));

    // The AK.
    let ak = Public::parse(&att.ak_public).map_err(Refusal::AkPublic)?;
    let missing: Vec<&str> = [
        (ObjectAttributes::RESTRICTED, "restricted"),
        (ObjectAttributes::SIGN, "sign"),
        (ObjectAttributes::FIXED_TPM, "fixedtpm"),
        (ObjectAttributes::FIXED_PARENT, "fixedparent"),
        (
            ObjectAttributes::SENSITIVE_DATA_ORIGIN,
            "sensitivedataorigin",
        ),
    ]
    .iter()
    .filter(|(bit, _)| !ak.attributes.has(*bit))
    .map(|(_, n)| *n)
    .chain(
        ak.attributes
            .has(ObjectAttributes::DECRYPT)
            .then_some("not decrypt"),
    )
    .collect();
    if !missing.is_empty() {
        return Err(Refusal::AkAttributes {
            attributes: ak.attributes.names(),
            missing: missing.join("|"),
        });
    }
    let ak_name = ak.name();

    // The quote and its signature.
    let quote = Quote::parse(&att.attest).map_err(Refusal::Attest)?;
    let sig = Signature::parse(&att.signature).map_err(Refusal::SignatureFormat)?;
    verify_signature(&ak, &att.attest, &sig).map_err(Refusal::QuoteSignature)?;
    reasons.push(format!(
        "quote signed by the AK ({}, {}, {}-{}, name {})",
        ak.describe(),
        ak.attributes.names(),
        sig.scheme_name(),
        HashAlg::from_id(sig.hash()).map_or("?", HashAlg::name),
        hex(&ak_name)
    ));

    // The binding, freshness and the AK on the EK's TPM.
    let binding = Binding::parse(&att.binding).map_err(Refusal::Binding)?;
    if binding.ak_name != ak_name {
        return Err(Refusal::BindingAkName {
            bound: hex(&binding.ak_name),
            signer: hex(&ak_name),
        });
    }
    let expected = qualifying_data(exp.nonce, exp.secret, att.binding.as_bytes());
    if quote.extra_data != expected {
        return Err(Refusal::NotFresh {
            quoted: hex(&quote.extra_data),
            expected: hex(&expected),
        });
    }
    reasons.push(
        "the quote covers this nonce and the secret only the EK's TPM could recover for this AK \
         (fresh; the AK is on the EK's TPM)"
            .into(),
    );

    // PCR selection and digest.
    let selections: Vec<_> = quote
        .pcr_select
        .iter()
        .filter(|s| !s.pcrs.is_empty())
        .collect();
    let selected: BTreeSet<u32> = match selections.as_slice() {
        [s] if s.hash == ALG_SHA256 => s.pcrs.iter().copied().collect(),
        [s] => {
            return Err(Refusal::PcrSelection(format!(
                "bank {:#06x} quoted, sha256 expected",
                s.hash
            )));
        }
        other => {
            return Err(Refusal::PcrSelection(format!(
                "{} banks quoted, exactly one (sha256) expected",
                other.len()
            )));
        }
    };
    if let Some(p) = REQUIRED_PCRS.iter().find(|p| !selected.contains(p)) {
        return Err(Refusal::PcrSelection(format!("PCR {p} is not quoted")));
    }
    let given: BTreeSet<u32> = att.pcrs.keys().copied().collect();
    if given != selected {
        return Err(Refusal::PcrSelection(format!(
            "the quote selects PCRs {selected:?}, the message gives {given:?}"
        )));
    }
    let pcr_alg = HashAlg::from_id(sig.hash()).unwrap_or(HashAlg::Sha256);
    let values: Vec<&[u8]> = att.pcrs.values().map(Vec::as_slice).collect();
    if let Some((p, v)) = att.pcrs.iter().find(|(_, v)| v.len() != 32) {
        return Err(Refusal::PcrSelection(format!(
            "PCR {p}: {} bytes, not a sha256 value",
            v.len()
        )));
    }
    let given_digest = pcr_alg.hash(&values);
    if given_digest != quote.pcr_digest {
        return Err(Refusal::PcrDigest {
            quoted: hex(&quote.pcr_digest),
            given: hex(&given_digest),
        });
    }
    let quoted = |p: u32| att.pcrs.get(&p).map(|v| hex(v)).unwrap_or_default();
    let mismatch = |pcr: u32, replay: &[u8], source_name| Refusal::Pcr {
        pcr,
        quoted: quoted(pcr),
        replay: hex(replay),
        source_name,
    };

    // The firmware's log.
    let fw = match &att.firmware_event_log {
        Some(bytes) => {
            let log = parse_log(bytes).map_err(|e: LogError| Refusal::EventLog {
                log: "firmware event log",
                reason: e.to_string(),
            })?;
            let r = replay(&log);
            if r.pcrs.banks().all(|b| b != Bank::Sha256) {
                return Err(Refusal::EventLog {
                    log: "firmware event log",
                    reason: "no complete sha256 digests: it cannot be replayed for the sha256 bank"
                        .into(),
                });
            }
            Some(r)
        }
        None => None,
    };
    let fw_value = |p: u32| fw.as_ref().and_then(|r| r.pcrs.get(Bank::Sha256, p));
    let firmware = match &fw {
        None => FirmwarePcrs::NoLog,
        Some(_) => {
            let checked: Vec<u32> = selected
                .iter()
                .copied()
                .filter(|p| FIRMWARE_PCRS.contains(p))
                .collect();
            for &p in &checked {
                let want = fw_value(p).map_or_else(|| vec![0u8; 32], <[u8]>::to_vec);
                if att.pcrs.get(&p) != Some(&want) {
                    return Err(mismatch(p, &want, "the firmware event log"));
                }
            }
            if checked.is_empty() {
                FirmwarePcrs::NotQuoted
            } else {
                FirmwarePcrs::Checked(checked)
            }
        }
    };

    // stboot's log: it replays to PCRs 12-14 (after whatever the firmware log put there).
    let stboot_bytes = att.stboot_event_log.as_deref().ok_or(Refusal::EventLog {
        log: "stboot event log",
        reason: "absent".into(),
    })?;
    let log = parse_log(stboot_bytes).map_err(|e| Refusal::EventLog {
        log: "stboot event log",
        reason: e.to_string(),
    })?;
    let r = replay(&log);
    let stboot_events: Vec<&LogEvent> = log
        .events
        .iter()
        .filter(|e| e.event_type != EV_NO_ACTION)
        .collect();
    for pcr in [12u32, 13, 14] {
        let from_zero = r.pcrs.get(Bank::Sha256, pcr);
        let value = match fw_value(pcr) {
            // Something before stboot (systemd-stub) extended it: continue from there.
            Some(start) => stboot_events
                .iter()
                .filter(|e| e.pcr == pcr)
                .fold(start.to_vec(), |v, e| {
                    Bank::Sha256.extend(&v, e.digest(ALG_SHA256).unwrap_or_default())
                }),
            None => from_zero.map_or_else(|| vec![0u8; 32], <[u8]>::to_vec),
        };
        if r.incomplete_banks.contains(&Bank::Sha256) || att.pcrs.get(&pcr) != Some(&value) {
            return Err(mismatch(pcr, &value, "the replay of the event logs"));
        }
    }
    // Only stboot's own events, in its order, with data that is what was measured.
    let ev = stboot_layout(&stboot_events)?;
    reasons.push(format!(
        "PCRs 12-14 equal the replay of stboot's event log ({} events, stboot's layout in order)",
        stboot_events.len()
    ));

    // PCR 15: exactly one binding statement.
    if fw_value(BINDING_PCR).is_some() || r.pcrs.get(Bank::Sha256, BINDING_PCR).is_some() {
        return Err(Refusal::PcrSelection(
            "an event log extends PCR 15, which only the agent's binding may".into(),
        ));
    }
    let want15 = binding_pcr(att.binding.as_bytes());
    if att.pcrs.get(&BINDING_PCR).map(Vec::as_slice) != Some(&want15[..]) {
        return Err(mismatch(
            BINDING_PCR,
            &want15,
            "the binding statement extended once",
        ));
    }
    reasons.push("PCR 15 is the binding statement, extended once".into());
    match &firmware {
        FirmwarePcrs::Checked(p) => reasons.push(format!(
            "PCRs {p:?} equal the replay of the firmware's event log"
        )),
        FirmwarePcrs::NoLog => reasons.push("PCRs 0-7 unchecked: no firmware event log".into()),
        FirmwarePcrs::NotQuoted => reasons.push("PCRs 0-7 unchecked: not quoted".into()),
    }

    // The descriptor and the archive.
    let descriptor_bytes = att.descriptor.as_deref().ok_or(Refusal::NoDescriptor)?;
    let descriptor_sha256 = sha256(&[descriptor_bytes]);
    if sha256(&[&descriptor_sha256]) != sha256_digest(ev.descriptor) {
        return Err(Refusal::DescriptorDigest {
            given: hex(&sha256(&[&descriptor_sha256])),
            measured: hex(&sha256_digest(ev.descriptor)),
        });
    }
    if descriptor_bytes.len() > st_format::limits::MAX_DESCRIPTOR_BYTES {
        return Err(Refusal::Descriptor("over the size limit".into()));
    }
    let descriptor =
        Descriptor::from_json(descriptor_bytes).map_err(|e| Refusal::Descriptor(e.to_string()))?;
    // The archive event's data (the file name) is not covered by its digest. It is the
    // package's name in the verdict only when it is what stboot writes for this descriptor
    // (the file name of an absolute or non-empty relative os_pkg_url, or the initramfs marker);
    // otherwise the verdict says the name is the log's, unmeasured.
    let url = descriptor.os_pkg_url();
    let label_measured = ev.archive.data == st_measure::INITRAMFS_ARCHIVE_NAME
        || (!url.is_empty() && ev.archive.data == archive_file_name(url));
    let measured = sha256_digest(ev.archive);
    let archive_sha256 = match att.archive_sha256 {
        Some(a) if sha256(&[&a]) == measured => a,
        Some(a) => {
            return Err(Refusal::ArchiveDigest {
                given: hex(&a),
                measured: hex(&measured),
            });
        }
        None => match exp.releases {
            Some(list) => *list
                .digests()
                .iter()
                .find(|d| sha256(&[&d[..]]) == measured)
                .ok_or_else(|| Refusal::NotReleased {
                    archive: format!("(unknown; its SHA-256's SHA-256 is {})", hex(&measured)),
                })?,
            None => {
                return Err(Refusal::ArchiveUnknown {
                    measured: hex(&measured),
                });
            }
        },
    };
    reasons.push(format!(
        "PCR 12: archive {} ({}), descriptor {}",
        hex(&archive_sha256),
        String::from_utf8_lossy(&ev.archive.data),
        hex(&descriptor_sha256)
    ));

    // The trust policy.
    let trust_policy_pcr13 = {
        let mut v = [0u8; 32];
        if let Some(p) = r.pcrs.get(Bank::Sha256, 13) {
            v.copy_from_slice(p);
        }
        v
    };
    let from_log;
    let dir = match exp.trust {
        TrustExpectation::Dir(d) => {
            compare_trust_dir(&ev, d)?;
            d
        }
        TrustExpectation::Pcr13(h) => {
            if h != trust_policy_pcr13 {
                return Err(Refusal::TrustPolicy {
                    event: "PCR 13 (stboot's events from zero)",
                    measured: hex(&trust_policy_pcr13),
                    expected: hex(&h),
                });
            }
            from_log = trust_dir_from_log(&ev)?;
            &from_log
        }
    };
    reasons.push(format!(
        "PCR 13: the expected trust policy ({}, {} signing root(s), {} TLS root(s), {}; PCR 13 \
         from zero {})",
        String::from_utf8_lossy(&dir.policy().to_canonical_json()),
        dir.roots().len(),
        dir.tls_roots().len(),
        if dir.sigsum_policy().is_some() {
            "a Sigsum policy"
        } else {
            "no Sigsum policy"
        },
        hex(&trust_policy_pcr13)
    ));

    // The signatures under that policy.
    let limits = ArchiveLimits::default();
    let digest = ArchiveDigest::from_sha256(archive_sha256);
    let report = st_verify::check_policy_signatures(
        &descriptor,
        &digest,
        &dir.verify_policy(exp.now, &limits),
    );
    if !report.threshold_met() {
        return Err(Refusal::Signatures(Box::new(report)));
    }
    let signers = outcome_names(&report);
    let threshold = dir.policy().threshold().get();
    reasons.push(format!(
        "signed by {} of {} ({}), threshold {threshold}",
        signers.len(),
        report.found(),
        signers.join(", ")
    ));

    // Sigsum.
    let logged = match exp.sigsum {
        Some(policy) => {
            let mut p = dir.verify_policy(exp.now, &limits);
            p.sigsum = Some(policy);
            p.sigsum_required = true;
            if let Some(one) = st_format::SignatureThreshold::new(1) {
                p.threshold = Threshold::AtLeast(one);
            }
            let logged_report = st_verify::check_policy_signatures(&descriptor, &digest, &p);
            let l = first_logged(&logged_report).ok_or_else(|| {
                Refusal::NotLogged(logged_report.skip_reasons("entry").join("; "))
            })?;
            reasons.push(format!(
                "Sigsum-logged under the given policy: log {}, leaf {} of {}, witnesses {}",
                l.log,
                l.leaf_index,
                l.tree_size,
                l.witnesses.join(", ")
            ));
            Some(l)
        }
        None => first_logged(&report),
    };

    // The release list.
    let released = match exp.releases {
        Some(list) if list.contains(&archive_sha256) => {
            reasons.push("on the release list".into());
            Some(true)
        }
        Some(_) => {
            return Err(Refusal::NotReleased {
                archive: hex(&archive_sha256),
            });
        }
        None => None,
    };

    // The service key.
    if let Some(k) = exp.service_key {
        if !k.is_bound_by(&binding) {
            return Err(Refusal::ServiceKey {
                expected: k.to_string(),
                bound: format!(
                    "{} and {}",
                    ServiceKey::WireGuard(binding.wireguard),
                    ServiceKey::TlsSpkiSha256(binding.tls_spki_sha256)
                ),
            });
        }
        reasons.push(format!("service key {k} is bound in the quote"));
    }

    Ok(Verdict {
        archive_label: String::from_utf8_lossy(&ev.archive.data).into_owned(),
        archive_label_measured: label_measured,
        archive_sha256,
        descriptor_sha256,
        signers,
        signatures_found: report.found(),
        threshold,
        logged,
        released,
        binding,
        service_key: exp.service_key,
        ak_name: hex(&ak_name),
        ek_chain,
        identity: String::from_utf8_lossy(&ev.identity.data).into_owned(),
        trust_policy_pcr13,
        firmware,
        clock: quote.clock_info,
        tpm_firmware_version: quote.firmware_version,
        reasons,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn binding_pcr_is_one_extend_of_the_double_hash() {
        let s = b"st-attest-binding-v1\n";
        let d = Bank::Sha256.hash(&Bank::Sha256.hash(s));
        assert_eq!(binding_pcr(s).to_vec(), Bank::Sha256.extend(&[0; 32], &d));
    }

    #[test]
    fn archive_file_name_is_the_last_segment_of_the_url_path() {
        for (url, name) in [
            ("https://host/pkgs/my%20os.zip?x=1", &b"my os.zip"[..]),
            ("http://h:8080/os.zip#f", b"os.zip"),
            ("os.zip", b"os.zip"),
            ("../a/os.zip", b"os.zip"),
            ("https://host", b"."),
        ] {
            assert_eq!(archive_file_name(url), name, "{url}");
        }
    }

    #[test]
    fn ders_split_and_refuse_garbage() {
        let a = [0x30, 0x02, 1, 2];
        let mut b = vec![0x30, 0x81, 0x80];
        b.extend_from_slice(&[7; 0x80]);
        let both = [&a[..], &b].concat();
        assert_eq!(split_ders(&both).unwrap(), vec![a.to_vec(), b.clone()]);
        assert!(split_ders(&[0x31, 0]).is_err());
        assert!(split_ders(&b[..10]).is_err());
        assert!(split_ders(&[]).unwrap().is_empty());
    }
}

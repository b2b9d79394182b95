//! What stboot measures: the six events of layout v1, in order, from typed inputs, and a
//! seventh (ours) when the trust policy directory holds a Sigsum policy.
//!
//! The layout is the Go reference's (stboot, `host/tpm.go` and the measurement block of
//! `stboot.go`, commit 3934def): PCR 12 the OS package (archive, then descriptor), PCR 13 the
//! authority (trust policy, signing root, TLS roots), PCR 14 the identity. For each event the
//! reference computes `SHA-256(content)` and hands it to u-root's `tss.Measure`, which hashes it
//! once more before `TPM2_PCR_Extend` on the sha256 bank. [`Event::measured`] is that inner
//! `SHA-256(content)`; the digest extended into a bank is `H_bank(measured)`, so the sha256 bank
//! gets exactly the reference's values and every other bank its own.

use crate::bank::Bank;
use st_format::{Descriptor, TrustPolicy};

/// The version of the layout described in `docs/measurements.md`.
pub const LAYOUT_VERSION: u32 = 1;

/// PCR 12: what was booted (archive, descriptor).
pub const DETAIL_PCR: u32 = 12;
/// PCR 13: who was trusted (trust policy, signing roots, TLS roots).
pub const AUTHORITY_PCR: u32 = 13;
/// PCR 14: the platform's identity.
pub const IDENTITY_PCR: u32 = 14;

/// Event data of the archive event when the OS package came from the stboot initramfs.
pub const INITRAMFS_ARCHIVE_NAME: &[u8] = b"OS package from initramfs";

/// TPM NV index holding the platform's human-readable identity (read whole).
pub const IDENTITY_NV_INDEX: u32 = 0x0142_0001;

/// The event types of the layout (the reference's names in brackets; the seventh is ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `0xa0000000` (OspkgArchive): SHA-256 of the archive; data: its file name.
    OspkgArchive,
    /// `0xa0000001` (OspkgManifest): SHA-256 of the descriptor bytes as received; data: the
    /// descriptor re-serialised.
    OspkgDescriptor,
    /// `0xa0000002` (SecurityConfig): SHA-256 of the trust policy's compact JSON; data: that
    /// JSON.
    TrustPolicy,
    /// `0xa0000003` (SigningRoot): SHA-256 of the signing roots' DER, concatenated; data: the
    /// same bytes.
    SigningRoot,
    /// `0xa0000004` (HTTPSRoot): SHA-256 of the TLS roots' DER, concatenated; data: the same.
    TlsRoots,
    /// `0xa0000005` (UxIdentity): SHA-256 of the identity; data: the identity.
    Identity,
    /// `0xa0000006` (ours; ST 1.3 defines no event for it): SHA-256 of `ospkg_trust_policy`,
    /// the Sigsum policy, as written; data: the same bytes. Only when the file is present, so
    /// a directory without one measures exactly the reference's six events.
    SigsumPolicy,
}

impl EventKind {
    /// All seven, in measurement order.
    pub const ALL: [Self; 7] = [
        Self::OspkgArchive,
        Self::OspkgDescriptor,
        Self::TrustPolicy,
        Self::SigningRoot,
        Self::TlsRoots,
        Self::SigsumPolicy,
        Self::Identity,
    ];

    /// The event type written to the log.
    pub fn event_type(self) -> u32 {
        match self {
            Self::OspkgArchive => 0xa000_0000,
            Self::OspkgDescriptor => 0xa000_0001,
            Self::TrustPolicy => 0xa000_0002,
            Self::SigningRoot => 0xa000_0003,
            Self::TlsRoots => 0xa000_0004,
            Self::Identity => 0xa000_0005,
            Self::SigsumPolicy => 0xa000_0006,
        }
    }

    /// The kind of an event type, if it is one of ours.
    pub fn from_event_type(event_type: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.event_type() == event_type)
    }

    /// The PCR the event is extended into.
    pub fn pcr(self) -> u32 {
        match self {
            Self::OspkgArchive | Self::OspkgDescriptor => DETAIL_PCR,
            Self::TrustPolicy | Self::SigningRoot | Self::TlsRoots | Self::SigsumPolicy => {
                AUTHORITY_PCR
            }
            Self::Identity => IDENTITY_PCR,
        }
    }

    /// Short name for listings (`ospkg-archive`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OspkgArchive => "ospkg-archive",
            Self::OspkgDescriptor => "ospkg-descriptor",
            Self::TrustPolicy => "trust-policy",
            Self::SigningRoot => "signing-root",
            Self::TlsRoots => "tls-roots",
            Self::Identity => "identity",
            Self::SigsumPolicy => "sigsum-policy",
        }
    }
}

/// One measurement: what is extended into which PCR and what the log says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// PCR index.
    pub pcr: u32,
    /// Event type (`0xa0000000`..`0xa0000005` for the layout's events).
    pub event_type: u32,
    /// Event data recorded in the log.
    pub data: Vec<u8>,
    /// `SHA-256(content)`: the value the reference hands to `tss.Measure`. Not always the hash
    /// of `data` (the archive event's data is a name, the descriptor's a re-serialisation).
    pub measured: [u8; 32],
}

impl Event {
    /// The digest extended into `bank` (and logged for it): `H_bank(measured)`. For sha256 this
    /// is the reference's `SHA-256(SHA-256(content))`.
    pub fn digest(&self, bank: Bank) -> Vec<u8> {
        bank.hash(&self.measured)
    }

    /// Which of the layout's events this is, if any.
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_event_type(self.event_type)
    }

    fn new(kind: EventKind, measured: [u8; 32], data: Vec<u8>) -> Self {
        Self {
            pcr: kind.pcr(),
            event_type: kind.event_type(),
            data,
            measured,
        }
    }
}

/// Where the OS package came from; decides the archive event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveSource<'a> {
    /// Downloaded: the archive's file name ([`archive_name_from_url_path`] of its URL).
    Network {
        /// The file name, e.g. `os.zip`.
        file_name: &'a [u8],
    },
    /// From the stboot initramfs: the data is [`INITRAMFS_ARCHIVE_NAME`].
    Initramfs,
}

/// Everything the measurements depend on. The caller has verified the OS package.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// SHA-256 of the archive bytes (what the signatures cover).
    pub archive_sha256: [u8; 32],
    /// Network (with the archive's file name) or initramfs.
    pub archive_source: ArchiveSource<'a>,
    /// The descriptor exactly as received (downloaded or read): its SHA-256 is measured.
    pub descriptor_bytes: &'a [u8],
    /// The same descriptor, parsed: its re-serialisation is the event data.
    pub descriptor: &'a Descriptor,
    /// The trust policy in effect, with the *effective* fetch method (the reference measures
    /// the policy after forcing `initramfs` for the provisioning fallback).
    pub trust_policy: &'a TrustPolicy,
    /// DER of each certificate in `ospkg_signing_root.pem`, in file order.
    pub signing_roots: &'a [&'a [u8]],
    /// DER of each certificate in `tls_roots.pem`, in file order; empty when there is no file.
    /// All of them, also those not valid now (the reference measures the whole file).
    pub tls_roots: &'a [&'a [u8]],
    /// The identity (NV index [`IDENTITY_NV_INDEX`] after [`identity_from_nv`]); empty when
    /// absent.
    pub identity: &'a [u8],
    /// `ospkg_trust_policy` (the Sigsum policy) as written, when the directory has one.
    pub sigsum_policy: Option<&'a [u8]>,
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// The layout's events, in measurement order: the reference's six, with the Sigsum policy's
/// after the TLS roots when there is one.
pub fn events(inputs: &Inputs<'_>) -> Vec<Event> {
    let archive_name = match inputs.archive_source {
        ArchiveSource::Network { file_name } => file_name.to_vec(),
        ArchiveSource::Initramfs => INITRAMFS_ARCHIVE_NAME.to_vec(),
    };
    let policy = inputs.trust_policy.to_canonical_json();
    let signing_roots = inputs.signing_roots.concat();
    let tls_roots = inputs.tls_roots.concat();
    let mut events = vec![
        Event::new(EventKind::OspkgArchive, inputs.archive_sha256, archive_name),
        Event::new(
            EventKind::OspkgDescriptor,
            sha256(inputs.descriptor_bytes),
            descriptor_event_data(inputs.descriptor_bytes, inputs.descriptor),
        ),
        Event::new(EventKind::TrustPolicy, sha256(&policy), policy),
        Event::new(
            EventKind::SigningRoot,
            sha256(&signing_roots),
            signing_roots,
        ),
        Event::new(EventKind::TlsRoots, sha256(&tls_roots), tls_roots),
    ];
    if let Some(policy) = inputs.sigsum_policy {
        events.push(Event::new(
            EventKind::SigsumPolicy,
            sha256(policy),
            policy.to_vec(),
        ));
    }
    events.push(Event::new(
        EventKind::Identity,
        sha256(inputs.identity),
        inputs.identity.to_vec(),
    ));
    events
}

/// The descriptor event's data: the descriptor as the reference re-serialises it (Go
/// `json.MarshalIndent(descriptor, "", "  ")` of its four-field struct: unknown keys dropped,
/// base64 re-encoded, Go string escaping). An absent or `null` list is written `null`, an empty
/// one `[]`, as Go keeps nil and empty slices apart; that is the only thing read from `raw`.
pub fn descriptor_event_data(raw: &[u8], descriptor: &Descriptor) -> Vec<u8> {
    if !descriptor.entries().is_empty() {
        // Both lists are non-empty: st-format's writer is Go's layout byte for byte.
        return descriptor.to_json();
    }
    let list = |key: &str| -> &'static str {
        let is_array = serde_json::from_slice::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v.get(key).map(serde_json::Value::is_array))
            .unwrap_or(false);
        if is_array { "[]" } else { "null" }
    };
    let url = st_format::gojson::to_compact(descriptor.os_pkg_url());
    let mut out = Vec::with_capacity(url.len() + 96);
    out.extend_from_slice(b"{\n  \"version\": 1,\n  \"os_pkg_url\": ");
    out.extend_from_slice(&url);
    out.extend_from_slice(b",\n  \"certificates\": ");
    out.extend_from_slice(list("certificates").as_bytes());
    out.extend_from_slice(b",\n  \"signatures\": ");
    out.extend_from_slice(list("signatures").as_bytes());
    out.extend_from_slice(b"\n}");
    out
}

/// The archive's file name as the reference takes it from the archive URL: Go's
/// `filepath.Base(url.Path)`, where `url.Path` is percent-decoded. `path` is the URL's path as
/// written (percent-encoded, e.g. `url::Url::path()`). Invalid `%` escapes are kept as written.
pub fn archive_name_from_url_path(path: &str) -> Vec<u8> {
    let decoded = percent_decode(path.as_bytes());
    if decoded.is_empty() {
        return b".".to_vec();
    }
    let end = decoded
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(0, |i| i + 1);
    let trimmed = decoded.get(..end).unwrap_or_default();
    if trimmed.is_empty() {
        return b"/".to_vec();
    }
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |i| i + 1);
    trimmed.get(start..).unwrap_or_default().to_vec()
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The identity from the raw contents of NV index [`IDENTITY_NV_INDEX`]: leading and trailing
/// NUL bytes removed, as the reference does (`strings.Trim(s, "\x00")`).
pub fn identity_from_nv(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let end = raw.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    raw.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_types_and_pcrs() {
        let got: Vec<(u32, u32)> = EventKind::ALL
            .iter()
            .map(|k| (k.pcr(), k.event_type()))
            .collect();
        assert_eq!(
            got,
            [
                (12, 0xa000_0000),
                (12, 0xa000_0001),
                (13, 0xa000_0002),
                (13, 0xa000_0003),
                (13, 0xa000_0004),
                (13, 0xa000_0006),
                (14, 0xa000_0005)
            ]
        );
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_event_type(k.event_type()), Some(k));
        }
        assert_eq!(EventKind::from_event_type(0xa000_0007), None);
    }

    #[test]
    fn archive_name_is_go_filepath_base_of_the_decoded_path() {
        let cases: &[(&str, &[u8])] = &[
            ("/ospkg/os.zip", b"os.zip"),
            ("/os%20pkg.zip", b"os pkg.zip"),
            ("/a/b/os.zip/", b"os.zip"),
            ("os.zip", b"os.zip"),
            ("/", b"/"),
            ("", b"."),
            ("/a%2Fb.zip", b"b.zip"),
            ("/bad%zz.zip", b"bad%zz.zip"),
            ("/x%e2%82%ac.zip", "x\u{20ac}.zip".as_bytes()),
        ];
        for (path, want) in cases {
            assert_eq!(archive_name_from_url_path(path), *want, "{path}");
        }
    }

    #[test]
    fn identity_trims_nuls_at_both_ends_only() {
        assert_eq!(identity_from_nv(b"\0\0host-1\0x\0\0"), b"host-1\0x");
        assert_eq!(identity_from_nv(b"\0\0\0"), b"");
        assert_eq!(identity_from_nv(b""), b"");
        assert_eq!(identity_from_nv(b"abc"), b"abc");
    }

    #[test]
    fn unsigned_descriptor_keeps_null_and_empty_lists_apart() {
        let d = Descriptor::from_json(br#"{"version":1}"#).unwrap();
        assert_eq!(
            String::from_utf8(descriptor_event_data(br#"{"version":1}"#, &d)).unwrap(),
            "{\n  \"version\": 1,\n  \"os_pkg_url\": \"\",\n  \"certificates\": null,\n  \
             \"signatures\": null\n}"
        );
        let raw = br#"{"version":1,"os_pkg_url":"https://a/x.zip?a=1&b=2","certificates":[],"signatures":null}"#;
        let d = Descriptor::from_json(raw).unwrap();
        assert_eq!(
            String::from_utf8(descriptor_event_data(raw, &d)).unwrap(),
            "{\n  \"version\": 1,\n  \"os_pkg_url\": \"https://a/x.zip?a=1\\u0026b=2\",\n  \
             \"certificates\": [],\n  \"signatures\": null\n}"
        );
        // Same as st-format's writer whenever that one applies.
        let d = Descriptor::unsigned("https://a/b.zip").unwrap();
        assert_eq!(descriptor_event_data(&d.to_json(), &d), d.to_json());
    }
}

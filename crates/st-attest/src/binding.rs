//! The binding statement (docs/attestation.md) read back strictly, the service key a client
//! expects, and the release list.

use crate::message::{hex, unhex};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The PCR the agent extends with the binding statement.
pub const BINDING_PCR: u32 = 15;
/// The first line of a binding statement.
pub const BINDING_MAGIC: &str = "st-attest-binding-v1";
/// The largest binding statement accepted.
pub const MAX_BINDING_BYTES: usize = 1024;

/// A parsed binding statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The AK's TPM name.
    pub ak_name: Vec<u8>,
    /// The WireGuard (X25519) public key.
    pub wireguard: [u8; 32],
    /// SHA-256 of the DER SubjectPublicKeyInfo of the agent's TLS key.
    pub tls_spki_sha256: [u8; 32],
}

/// Why a binding statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("binding statement: line {line}: {reason}")]
pub struct BindingError {
    /// 1-based line (0: the whole statement).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Binding {
    /// The statement as the agent writes it: the four `\n`-terminated lines [`Self::parse`]
    /// reads (lowercase hex, standard base64).
    pub fn statement(&self) -> String {
        format!(
            "{BINDING_MAGIC}\nak-name {}\nwireguard {}\ntls-spki-sha256 {}\n",
            hex(&self.ak_name),
            B64.encode(self.wireguard),
            hex(&self.tls_spki_sha256)
        )
    }

    /// SHA-256 of [`Self::statement`]: what the agent extends into [`BINDING_PCR`] (as
    /// `H_bank(this)` in every bank) and what a go-ahead names.
    pub fn digest(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA256, self.statement().as_bytes()).as_ref(),
        );
        out
    }

    /// Parse exactly the four `\n`-terminated lines of docs/attestation.md.
    pub fn parse(text: &str) -> Result<Self, BindingError> {
        let err = |line, reason: &str| BindingError {
            line,
            reason: reason.to_string(),
        };
        if text.len() > MAX_BINDING_BYTES {
            return Err(err(0, "over 1024 bytes"));
        }
        let Some(body) = text.strip_suffix('\n') else {
            return Err(err(0, "does not end in a newline"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != 4 {
            return Err(BindingError {
                line: 0,
                reason: format!("{} lines, expected 4", lines.len()),
            });
        }
        let field = |i: usize, key: &str| -> Result<&str, BindingError> {
            lines
                .get(i)
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| err(i + 1, &format!("expected \"{key} <value>\"")))
        };
        if lines.first() != Some(&BINDING_MAGIC) {
            return Err(err(1, "expected \"st-attest-binding-v1\""));
        }
        let name = field(1, "ak-name")?;
        let ak_name = unhex(name)
            .filter(|n| n.len() >= 3 && name.bytes().all(|c| !c.is_ascii_uppercase()))
            .ok_or_else(|| err(2, "ak-name is not lower-case hex of a TPM name"))?;
        let wg = field(2, "wireguard")?;
        let wireguard = B64
            .decode(wg)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .filter(|k| B64.encode(k) == wg)
            .ok_or_else(|| err(3, "wireguard is not the standard base64 of 32 bytes"))?;
        let spki = field(3, "tls-spki-sha256")?;
        let tls_spki_sha256 = unhex(spki)
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .filter(|k| hex(k) == spki)
            .ok_or_else(|| err(4, "tls-spki-sha256 is not 64 lower-case hex digits"))?;
        Ok(Self {
            ak_name,
            wireguard,
            tls_spki_sha256,
        })
    }
}

/// The service key a client is about to use and expects to be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKey {
    /// A WireGuard (X25519) public key.
    WireGuard([u8; 32]),
    /// SHA-256 of the DER SubjectPublicKeyInfo of the TLS key the client saw.
    TlsSpkiSha256([u8; 32]),
}

impl ServiceKey {
    /// `wireguard:<base64>` or `tls-spki-sha256:<hex>`.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(b) = s.strip_prefix("wireguard:") {
            let k = B64.decode(b).ok()?;
            return Some(Self::WireGuard(k.try_into().ok()?));
        }
        let h = s.strip_prefix("tls-spki-sha256:")?;
        Some(Self::TlsSpkiSha256(unhex(h)?.try_into().ok()?))
    }

    /// The key of a TLS certificate's DER SubjectPublicKeyInfo.
    pub fn tls_spki(spki_der: &[u8]) -> Self {
        let mut d = [0u8; 32];
        d.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref());
        Self::TlsSpkiSha256(d)
    }

    /// Whether `binding` binds this key.
    pub fn is_bound_by(&self, binding: &Binding) -> bool {
        match self {
            Self::WireGuard(k) => *k == binding.wireguard,
            Self::TlsSpkiSha256(k) => *k == binding.tls_spki_sha256,
        }
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WireGuard(k) => write!(f, "wireguard:{}", B64.encode(k)),
            Self::TlsSpkiSha256(k) => write!(f, "tls-spki-sha256:{}", hex(k)),
        }
    }
}

/// A published list of released OS packages: archive SHA-256s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseList {
    digests: Vec<[u8; 32]>,
}

/// The most entries in a release list.
pub const MAX_RELEASES: usize = 100_000;

impl ReleaseList {
    /// A list of digests.
    pub fn new(digests: Vec<[u8; 32]>) -> Self {
        Self { digests }
    }

    /// `sha256sum` format: one digest (64 hex digits) per line, optionally followed by
    /// whitespace and a name; blank lines and lines starting with `#` are skipped. Errors name
    /// the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or_default();
            let d = unhex(first)
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| format!("release list: line {}: not a SHA-256 in hex", i + 1))?;
            if digests.len() >= MAX_RELEASES {
                return Err(format!("release list: more than {MAX_RELEASES} entries"));
            }
            digests.push(d);
        }
        Ok(Self { digests })
    }

    /// Whether `digest` was released.
    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.digests.contains(digest)
    }

    /// The digests.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn statement() -> String {
        format!(
            "st-attest-binding-v1\nak-name 000b{}\nwireguard {}\ntls-spki-sha256 {}\n",
            "ab".repeat(32),
            B64.encode([1u8; 32]),
            "02".repeat(32)
        )
    }

    #[test]
    fn the_written_statement_parses_back() {
        let b = Binding {
            ak_name: vec![0, 11, 0xab],
            wireguard: [5; 32],
            tls_spki_sha256: [6; 32],
        };
        assert_eq!(Binding::parse(&b.statement()).unwrap(), b);
        assert_eq!(
            b.digest().to_vec(),
            ring::digest::digest(&ring::digest::SHA256, b.statement().as_bytes()).as_ref()
        );
    }

    #[test]
    fn binding_parses_the_documented_form() {
        let b = Binding::parse(&statement()).unwrap();
        assert_eq!(b.ak_name.len(), 34);
        assert_eq!(b.wireguard, [1; 32]);
        assert_eq!(b.tls_spki_sha256, [2; 32]);
        assert!(ServiceKey::WireGuard([1; 32]).is_bound_by(&b));
        assert!(ServiceKey::TlsSpkiSha256([2; 32]).is_bound_by(&b));
        assert!(!ServiceKey::WireGuard([2; 32]).is_bound_by(&b));
        let k = ServiceKey::WireGuard([1; 32]);
        assert_eq!(ServiceKey::parse(&k.to_string()), Some(k));
        let k = ServiceKey::TlsSpkiSha256([2; 32]);
        assert_eq!(ServiceKey::parse(&k.to_string()), Some(k));
    }

    #[test]
    fn binding_variants_are_refused_with_the_line() {
        let s = statement();
        let cases: Vec<(String, usize)> = vec![
            (s.trim_end().to_string(), 0),
            (s.replace("st-attest-binding-v1", "st-attest-binding-v2"), 1),
            (s.replace("ak-name 000b", "ak-name 000B"), 2),
            (s.replace("ak-name ", "ak-name  "), 2),
            (s.replace("wireguard ", "wg "), 3),
            (s.replace(&B64.encode([1u8; 32]), &B64.encode([1u8; 31])), 3),
            (s.replace(&"02".repeat(32), &"02".repeat(31)), 4),
            (format!("{s}extra\n"), 0),
            (s.replace('\n', "\r\n"), 1),
        ];
        for (text, line) in cases {
            let e = Binding::parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    #[test]
    fn release_list_reads_sha256sum_lines() {
        let text = format!(
            "# releases\n\n{}  os-1.zip\n{}\n",
            "aa".repeat(32),
            "BB".repeat(32)
        );
        let l = ReleaseList::parse(&text).unwrap();
        assert!(l.contains(&[0xaa; 32]));
        assert!(l.contains(&[0xbb; 32]));
        assert!(!l.contains(&[0xcc; 32]));
        let e = ReleaseList::parse("abc\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}

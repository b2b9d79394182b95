//! The go-ahead (issue 10, docs/attestation.md): a statement naming one boot of one server
//! (its attestation key and service-key binding) and a validity window, signed by staff. The
//! signatures are (certificate, Ed25519 signature over SHA-256(statement)) pairs, judged with
//! the same rules as OS package signatures (`st_verify::check_signed_entries`).
//!
//! ```text
//! {"version":1,"statement":"st-go-ahead-v1\nak-name <hex>\nbinding-sha256 <hex>\nnot-before <unix s>\nnot-after <unix s>\n",
//!  "certificates":[base64(PEM)],"signatures":[base64(signature)]}
//! ```

use crate::descriptor::{DescriptorError, SignatureEntry};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// Largest go-ahead file.
pub const MAX_GO_AHEAD_BYTES: usize = 256 << 10;
/// Most signatures on one go-ahead.
pub const MAX_GO_AHEAD_SIGNATURES: usize = 64;
/// Longest AK name (nameAlg + a SHA-512 digest).
const MAX_NAME: usize = 2 + 64;

/// What a go-ahead authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAheadStatement {
    /// The TPM name of the boot's attestation key.
    pub ak_name: Vec<u8>,
    /// SHA-256 of the boot's binding statement.
    pub binding_sha256: [u8; 32],
    /// Valid from (Unix seconds).
    pub not_before: i64,
    /// Valid until (Unix seconds).
    pub not_after: i64,
}

/// Why a go-ahead was refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoAheadError {
    /// Over [`MAX_GO_AHEAD_BYTES`].
    #[error("go-ahead: {0} bytes, over the limit")]
    TooLarge(usize),
    /// Not the JSON layout.
    #[error("go-ahead: {0}")]
    Json(String),
    /// The statement text is not the documented form (which line, what).
    #[error("go-ahead statement: line {line}: {what}")]
    Statement {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A certificate or signature is malformed.
    #[error("go-ahead: {0}")]
    Entry(String),
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl GoAheadStatement {
    /// The statement's exact bytes (what is hashed and signed).
    pub fn to_text(&self) -> String {
        format!(
            "st-go-ahead-v1\nak-name {}\nbinding-sha256 {}\nnot-before {}\nnot-after {}\n",
            hex(&self.ak_name),
            hex(&self.binding_sha256),
            self.not_before,
            self.not_after
        )
    }

    /// Parse the statement; only the exact form [`Self::to_text`] writes is accepted, so one
    /// statement has one encoding.
    pub fn parse(text: &str) -> Result<Self, GoAheadError> {
        let bad = |line, what| GoAheadError::Statement { line, what };
        if !text.ends_with('\n') {
            return Err(bad(5, "the last line must end with a newline"));
        }
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        if lines.len() != 5 {
            return Err(bad(lines.len().min(6), "expected exactly 5 lines"));
        }
        if lines[0] != "st-go-ahead-v1" {
            return Err(bad(1, "expected st-go-ahead-v1"));
        }
        let value = |i: usize, key: &str| -> Result<&str, GoAheadError> {
            lines[i]
                .strip_prefix(key)
                .and_then(|v| v.strip_prefix(' '))
                .ok_or(bad(i + 1, "unexpected key"))
        };
        let ak_name = unhex(value(1, "ak-name")?)
            .filter(|n| (3..=MAX_NAME).contains(&n.len()))
            .ok_or(bad(2, "ak-name: lowercase hex of a TPM name"))?;
        let binding: [u8; 32] = unhex(value(2, "binding-sha256")?)
            .and_then(|b| b.try_into().ok())
            .ok_or(bad(3, "binding-sha256: 64 hex digits"))?;
        let secs = |i: usize, key: &str| -> Result<i64, GoAheadError> {
            let v = value(i, key)?;
            if v.is_empty() || v.starts_with('+') || (v.len() > 1 && v.starts_with('0')) {
                return Err(bad(i + 1, "Unix seconds, decimal, no leading zeros"));
            }
            v.parse().map_err(|_| bad(i + 1, "Unix seconds"))
        };
        let not_before = secs(3, "not-before")?;
        let not_after = secs(4, "not-after")?;
        if not_after < not_before {
            return Err(bad(5, "not-after is before not-before"));
        }
        let s = Self {
            ak_name,
            binding_sha256: binding,
            not_before,
            not_after,
        };
        // Lowercase hex only: the canonical form must round-trip.
        if s.to_text() != text {
            return Err(bad(2, "not in canonical form (lowercase hex)"));
        }
        Ok(s)
    }
}

#[derive(Serialize, Deserialize)]
struct Raw {
    version: i64,
    statement: String,
    #[serde(default)]
    certificates: Vec<String>,
    #[serde(default)]
    signatures: Vec<String>,
}

/// A statement and its signatures.
#[derive(Debug, Clone)]
pub struct GoAhead {
    statement: GoAheadStatement,
    entries: Vec<SignatureEntry>,
}

impl GoAhead {
    /// An unsigned go-ahead.
    pub fn new(statement: GoAheadStatement) -> Self {
        Self {
            statement,
            entries: Vec::new(),
        }
    }

    /// Parse a go-ahead file (bounded; every certificate a single PEM block).
    pub fn from_json(bytes: &[u8]) -> Result<Self, GoAheadError> {
        if bytes.len() > MAX_GO_AHEAD_BYTES {
            return Err(GoAheadError::TooLarge(bytes.len()));
        }
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| GoAheadError::Json(e.to_string()))?;
        if raw.version != 1 {
            return Err(GoAheadError::Json(format!(
                "version {} (expected 1)",
                raw.version
            )));
        }
        if raw.certificates.len() != raw.signatures.len() {
            return Err(GoAheadError::Json(format!(
                "{} certificates but {} signatures",
                raw.certificates.len(),
                raw.signatures.len()
            )));
        }
        if raw.signatures.len() > MAX_GO_AHEAD_SIGNATURES {
            return Err(GoAheadError::Json(format!(
                "{} signatures, over the limit of {MAX_GO_AHEAD_SIGNATURES}",
                raw.signatures.len()
            )));
        }
        let statement = GoAheadStatement::parse(&raw.statement)?;
        let mut entries = Vec::new();
        for (i, (c, s)) in raw.certificates.iter().zip(&raw.signatures).enumerate() {
            let pem = B64
                .decode(c)
                .map_err(|_| GoAheadError::Entry(format!("certificates[{i}]: not base64")))?;
            let sig = B64
                .decode(s)
                .map_err(|_| GoAheadError::Entry(format!("signatures[{i}]: not base64")))?;
            entries.push(
                SignatureEntry::new(pem, sig)
                    .map_err(|e: DescriptorError| GoAheadError::Entry(format!("[{i}]: {e}")))?,
            );
        }
        Ok(Self { statement, entries })
    }

    /// The file's bytes (pretty JSON).
    pub fn to_json(&self) -> Vec<u8> {
        let raw = Raw {
            version: 1,
            statement: self.statement.to_text(),
            certificates: self
                .entries
                .iter()
                .map(|e| B64.encode(e.certificate_pem()))
                .collect(),
            signatures: self
                .entries
                .iter()
                .map(|e| B64.encode(e.signature()))
                .collect(),
        };
        let mut out = serde_json::to_vec_pretty(&raw).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// The statement.
    pub fn statement(&self) -> &GoAheadStatement {
        &self.statement
    }

    /// The (certificate, signature) pairs.
    pub fn entries(&self) -> &[SignatureEntry] {
        &self.entries
    }

    /// Add a signature (the caller checked it and that the signer is new).
    pub fn push(&mut self, entry: SignatureEntry) {
        self.entries.push(entry);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn statement() -> GoAheadStatement {
        GoAheadStatement {
            ak_name: vec![0x00, 0x0b, 0xab, 0xcd],
            binding_sha256: [0x11; 32],
            not_before: 1_764_650_000,
            not_after: 1_764_653_600,
        }
    }

    #[test]
    fn the_statement_round_trips_and_only_its_canonical_form_parses() {
        let s = statement();
        let text = s.to_text();
        assert_eq!(GoAheadStatement::parse(&text).unwrap(), s);
        let g = GoAhead::new(s.clone());
        let back = GoAhead::from_json(&g.to_json()).unwrap();
        assert_eq!(back.statement(), &s);
        assert!(back.entries().is_empty());
        for (bad, line) in [
            (text.replace("st-go-ahead-v1", "st-go-ahead-v2"), 1),
            (text.replace("000babcd", "000BABCD"), 2),
            (text.replace("ak-name", "ak_name"), 2),
            (text.replace(&"11".repeat(32), &"11".repeat(31)), 3),
            (text.replace("1764650000", "01764650000"), 4),
            (text.replace("1764653600", "1764640000"), 5),
            (text.trim_end().to_owned(), 5),
            (format!("{text}extra\n"), 6),
        ] {
            match GoAheadStatement::parse(&bad) {
                Err(GoAheadError::Statement { line: l, .. }) => assert_eq!(l, line, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_files_are_refused_with_the_field() {
        let good = String::from_utf8(GoAhead::new(statement()).to_json()).unwrap();
        for (bad, want) in [
            (
                good.replace("\"version\": 1", "\"version\": 2"),
                "version 2",
            ),
            (
                good.replace("\"certificates\": []", "\"certificates\": [\"QQ==\"]"),
                "1 certificates but 0 signatures",
            ),
            ("\"x\"".to_owned(), "invalid type"),
        ] {
            let e = GoAhead::from_json(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(matches!(
            GoAhead::from_json(&vec![b' '; MAX_GO_AHEAD_BYTES + 1]),
            Err(GoAheadError::TooLarge(_))
        ));
    }
}

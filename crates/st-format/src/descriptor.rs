//! The OS package descriptor (`NAME.json`): a detached signature container over the archive.
//!
//! Wire form (Go `encoding/json` of the reference's struct):
//! `{"version":1,"os_pkg_url":"...","certificates":[base64(PEM)],"signatures":[base64(sig)]}`.
//! `certificates[i]` pairs with `signatures[i]`. The descriptor itself is not signed.

use crate::gojson;
use crate::limits::{MAX_CERTIFICATE_BYTES, MAX_DESCRIPTOR_BYTES, MAX_SIGNATURES};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

/// The only descriptor version ST 1.x defines.
pub const DESCRIPTOR_VERSION: i64 = 1;

/// A checked descriptor: version 1, a usable `os_pkg_url`, and as many certificates as
/// signatures, each certificate a single PEM `CERTIFICATE` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    os_pkg_url: String,
    entries: Vec<SignatureEntry>,
}

/// One (certificate, signature) pair of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    certificate_pem: Vec<u8>,
    certificate_der: Vec<u8>,
    signature: Vec<u8>,
}

impl SignatureEntry {
    /// Build an entry from a certificate's PEM text and raw signature bytes.
    pub fn new(certificate_pem: Vec<u8>, signature: Vec<u8>) -> Result<Self, DescriptorError> {
        let certificate_der = pem_certificate_der(&certificate_pem, 0)?;
        Ok(Self {
            certificate_pem,
            certificate_der,
            signature,
        })
    }
    /// The certificate exactly as carried (PEM text).
    pub fn certificate_pem(&self) -> &[u8] {
        &self.certificate_pem
    }
    /// The certificate's DER bytes.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }
    /// The raw signature bytes (64 for Ed25519; length is checked by verification).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Why a descriptor was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Larger than [`MAX_DESCRIPTOR_BYTES`].
    #[error("descriptor is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// Not JSON of the expected shape.
    #[error("descriptor: invalid JSON: {0}")]
    Json(String),
    /// `version` missing or not 1.
    #[error("descriptor: field \"version\": {found}, expected 1")]
    Version {
        /// What was found (`missing` when absent).
        found: String,
    },
    /// `os_pkg_url` is neither empty, an absolute http(s) URL, nor a relative reference.
    #[error("descriptor: field \"os_pkg_url\": {url:?}: {reason}")]
    Url {
        /// The offending value.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The two lists differ in length (the reference panics on this).
    #[error(
        "descriptor: {certificates} certificates but {signatures} signatures: each signature \
         needs the certificate at the same index"
    )]
    LengthMismatch {
        /// Length of `certificates`.
        certificates: usize,
        /// Length of `signatures`.
        signatures: usize,
    },
    /// More than [`MAX_SIGNATURES`] entries.
    #[error("descriptor: {count} signatures, over the limit of {max}")]
    TooManySignatures {
        /// Count found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// An entry is not valid standard base64 (line breaks aside, which are skipped as Go does).
    #[error("descriptor: field \"{field}\" entry {index}: not standard base64")]
    Base64 {
        /// `certificates` or `signatures`.
        field: &'static str,
        /// Index in the list.
        index: usize,
    },
    /// A certificate entry is not a single, header-less PEM `CERTIFICATE` block.
    #[error("descriptor: field \"certificates\" entry {index}: {reason}")]
    Certificate {
        /// Index in the list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    os_pkg_url: Option<String>,
    #[serde(default)]
    certificates: Option<Vec<String>>,
    #[serde(default)]
    signatures: Option<Vec<String>>,
}

#[derive(Serialize)]
struct OutDescriptor<'a> {
    version: i64,
    os_pkg_url: &'a str,
    certificates: Option<Vec<String>>,
    signatures: Option<Vec<String>>,
}

/// Go's `base64.StdEncoding` (what `encoding/json` uses for `[]byte`): the standard alphabet
/// with `=` padding required; the unused bits of the last character are ignored (Go's decoder is
/// not in strict mode).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decode base64 as the reference does: `\r` and `\n` are skipped wherever they appear (Go's
/// decoder drops them, so line-wrapped base64 is valid); every other byte counts.
fn decode_go_std(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let joined: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        GO_STD.decode(joined)
    } else {
        GO_STD.decode(text)
    }
}

/// Decode a PEM certificate as the reference does: the first block must be `CERTIFICATE` with no
/// headers; anything after that block is ignored.
fn pem_certificate_der(text: &[u8], index: usize) -> Result<Vec<u8>, DescriptorError> {
    let bad = |reason: &str| DescriptorError::Certificate {
        index,
        reason: reason.into(),
    };
    if text.len() > MAX_CERTIFICATE_BYTES {
        return Err(bad("certificate PEM is over the size limit"));
    }
    let block = pem::parse(text).map_err(|_| bad("not a PEM block"))?;
    if block.tag() != "CERTIFICATE" {
        return Err(DescriptorError::Certificate {
            index,
            reason: format!(
                "PEM block type is {:?}, expected \"CERTIFICATE\"",
                block.tag()
            ),
        });
    }
    if block.headers().iter().next().is_some() {
        return Err(bad("PEM block has headers"));
    }
    Ok(block.into_contents())
}

/// Check an `os_pkg_url` value: empty, absolute http(s), or a relative reference (st-1.1+).
pub fn check_os_pkg_url(url: &str) -> Result<(), DescriptorError> {
    if url.is_empty() {
        return Ok(());
    }
    let fail = |reason: &str| {
        Err(DescriptorError::Url {
            url: url.into(),
            reason: reason.into(),
        })
    };
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => fail(&format!("scheme {:?} is not http or https", u.scheme())),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            // A relative reference resolves against the descriptor's own URL; check it resolves.
            match url::Url::parse("https://descriptor.invalid/dir/") {
                Ok(base) if base.join(url).is_ok() => Ok(()),
                _ => fail("not a valid relative URL"),
            }
        }
        Err(e) => fail(&e.to_string()),
    }
}

impl Descriptor {
    /// A fresh, unsigned descriptor (`certificates` and `signatures` written as `null`).
    pub fn unsigned(os_pkg_url: impl Into<String>) -> Result<Self, DescriptorError> {
        let os_pkg_url = os_pkg_url.into();
        check_os_pkg_url(&os_pkg_url)?;
        Ok(Self {
            os_pkg_url,
            entries: Vec::new(),
        })
    }

    /// Parse and check descriptor bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(DescriptorError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_DESCRIPTOR_BYTES,
            });
        }
        let raw: RawDescriptor = gojson::from_object(bytes).map_err(DescriptorError::Json)?;
        match raw.version {
            Some(DESCRIPTOR_VERSION) => {}
            Some(v) => {
                return Err(DescriptorError::Version {
                    found: v.to_string(),
                });
            }
            None => {
                return Err(DescriptorError::Version {
                    found: "missing".into(),
                });
            }
        }
        let os_pkg_url = raw.os_pkg_url.unwrap_or_default();
        check_os_pkg_url(&os_pkg_url)?;
        let certs = raw.certificates.unwrap_or_default();
        let sigs = raw.signatures.unwrap_or_default();
        if certs.len() != sigs.len() {
            return Err(DescriptorError::LengthMismatch {
                certificates: certs.len(),
                signatures: sigs.len(),
            });
        }
        if sigs.len() > MAX_SIGNATURES {
            return Err(DescriptorError::TooManySignatures {
                count: sigs.len(),
                max: MAX_SIGNATURES,
            });
        }
        let mut entries = Vec::with_capacity(sigs.len());
        for (index, (cert, sig)) in certs.iter().zip(&sigs).enumerate() {
            let certificate_pem = decode_go_std(cert).map_err(|_| DescriptorError::Base64 {
                field: "certificates",
                index,
            })?;
            let signature = decode_go_std(sig).map_err(|_| DescriptorError::Base64 {
                field: "signatures",
                index,
            })?;
            let certificate_der = pem_certificate_der(&certificate_pem, index)?;
            entries.push(SignatureEntry {
                certificate_pem,
                certificate_der,
                signature,
            });
        }
        Ok(Self {
            os_pkg_url,
            entries,
        })
    }

    /// The bytes stmgr writes: Go `MarshalIndent` with two spaces; empty lists as `null`.
    pub fn to_json(&self) -> Vec<u8> {
        let (certificates, signatures) = if self.entries.is_empty() {
            (None, None)
        } else {
            (
                Some(
                    self.entries
                        .iter()
                        .map(|e| B64.encode(&e.certificate_pem))
                        .collect(),
                ),
                Some(
                    self.entries
                        .iter()
                        .map(|e| B64.encode(&e.signature))
                        .collect(),
                ),
            )
        };
        gojson::to_pretty(&OutDescriptor {
            version: DESCRIPTOR_VERSION,
            os_pkg_url: &self.os_pkg_url,
            certificates,
            signatures,
        })
    }

    /// Where to download the archive; may be empty or relative to the descriptor's URL.
    pub fn os_pkg_url(&self) -> &str {
        &self.os_pkg_url
    }

    /// The (certificate, signature) pairs in descriptor order.
    pub fn entries(&self) -> &[SignatureEntry] {
        &self.entries
    }

    /// Append a signature. The caller (signing) decides whether the signer is new.
    pub fn push(&mut self, entry: SignatureEntry) -> Result<(), DescriptorError> {
        if self.entries.len() >= MAX_SIGNATURES {
            return Err(DescriptorError::TooManySignatures {
                count: self.entries.len() + 1,
                max: MAX_SIGNATURES,
            });
        }
        self.entries.push(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_descriptor_is_written_like_go() {
        let d = Descriptor::unsigned("https://a.example/os.zip?x=1&y=2").unwrap();
        assert_eq!(
            String::from_utf8(d.to_json()).unwrap(),
            "{\n  \"version\": 1,\n  \"os_pkg_url\": \"https://a.example/os.zip?x=1\\u0026y=2\",\n  \
             \"certificates\": null,\n  \"signatures\": null\n}"
        );
        assert_eq!(Descriptor::from_json(&d.to_json()).unwrap(), d);
    }

    #[test]
    fn missing_lists_and_nulls_are_empty() {
        for json in [
            r#"{"version":1}"#,
            r#"{"version":1,"certificates":null,"signatures":null}"#,
        ] {
            assert!(
                Descriptor::from_json(json.as_bytes())
                    .unwrap()
                    .entries()
                    .is_empty()
            );
        }
    }

    #[test]
    fn rejects_with_the_field_named() {
        let cases = [
            (r#"{"version":2}"#, "version"),
            (r#"{}"#, "version"),
            (
                r#"{"version":1,"signatures":["AA=="]}"#,
                "0 certificates but 1 signatures",
            ),
            (
                r#"{"version":1,"os_pkg_url":"ftp://x/y.zip"}"#,
                "os_pkg_url",
            ),
            (
                r#"{"version":1,"certificates":["!!"],"signatures":["AA=="]}"#,
                "certificates",
            ),
            (
                r#"{"version":1,"certificates":["QUJD"],"signatures":["AA=="]}"#,
                "PEM",
            ),
            (r#"{"version":1,"version":1}"#, "duplicate"),
            (r#"{"version":"1"}"#, "JSON"),
            (r#"[1, "", null, null]"#, "expected a JSON object"),
        ];
        for (json, want) in cases {
            let err = Descriptor::from_json(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    /// The reference decodes with Go's `base64.StdEncoding`, which skips `\r` and `\n`
    /// anywhere (so wrapped base64 works) and ignores the unused bits of the last character;
    /// nothing else (spaces, tabs, missing padding, other alphabets) is accepted.
    #[test]
    fn base64_is_decoded_like_go_std_encoding() {
        let good = include_str!("../../../testdata/vectors/cases/good-1-of-1/ospkg.json");
        let d = Descriptor::from_json(good.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_str(good).unwrap();
        let wrap = |s: &str, sep: &str| -> String {
            let chars: Vec<char> = s.chars().collect();
            let lines: Vec<String> = chars.chunks(76).map(|c| c.iter().collect()).collect();
            lines.join(sep) + sep
        };
        let with = |cert: String, sig: String| -> Vec<u8> {
            serde_json::to_vec(&serde_json::json!({
                "version": 1,
                "os_pkg_url": v["os_pkg_url"],
                "certificates": [cert],
                "signatures": [sig],
            }))
            .unwrap()
        };
        let cert = v["certificates"][0].as_str().unwrap();
        let sig = v["signatures"][0].as_str().unwrap();
        for sep in ["\n", "\r\n", "\r", "\n\n"] {
            let json = with(wrap(cert, sep), wrap(sig, sep));
            let w = Descriptor::from_json(&json).unwrap_or_else(|e| panic!("{sep:?}: {e}"));
            assert_eq!(w.entries(), d.entries(), "{sep:?}");
        }
        // Inside the padding, too.
        assert_eq!(B64.decode("QQ==").unwrap(), b"A");
        assert_eq!(decode_go_std("Q\nQ=\r\n=").unwrap(), b"A");
        // Unused trailing bits are ignored ("QR==" is "A" to Go's non-strict decoder).
        assert_eq!(decode_go_std("QR==").unwrap(), b"A");
        assert_eq!(
            decode_go_std("QUI=").unwrap(),
            decode_go_std("QUJ=").unwrap()
        );
        for bad in [
            "QQ", "QQ=", "Q Q==", "QQ==\t", "QQ==QQ==", "Q-==", "Q_==", "QQ===", "=QQ=",
        ] {
            assert!(decode_go_std(bad).is_err(), "{bad:?}");
        }
        for (cert, sig, field) in [
            (wrap(cert, " "), sig.to_owned(), "\"certificates\" entry 0"),
            (cert.to_owned(), wrap(sig, "\t"), "\"signatures\" entry 0"),
        ] {
            let err = Descriptor::from_json(&with(cert, sig))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains("base64"), "{err}");
        }
    }

    #[test]
    fn relative_urls_are_accepted() {
        for u in [
            "os.zip",
            "../pkgs/os.zip",
            "/abs/os.zip",
            "https://h/os.zip",
            "http://h/os.zip",
        ] {
            check_os_pkg_url(u).unwrap();
        }
    }

    #[test]
    fn size_cap_is_enforced() {
        let big = vec![b' '; MAX_DESCRIPTOR_BYTES + 1];
        assert!(matches!(
            Descriptor::from_json(&big),
            Err(DescriptorError::TooLarge { .. })
        ));
    }
}

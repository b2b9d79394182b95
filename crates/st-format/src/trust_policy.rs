//! `trust_policy.json`: how many signatures a package needs and where stboot fetches it from.
//!
//! Unknown keys are accepted and ignored, as in the reference (its own test "Unknown field"),
//! so existing policies keep working. Duplicate keys are rejected (Go would take the last one;
//! a policy file with two thresholds is a mistake worth stopping on).

use crate::gojson;
use crate::limits::{MAX_SIGNATURES, MAX_TRUST_POLICY_BYTES};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU32;

/// At least one signature and at most [`SignatureThreshold::MAX`]: a threshold that could be
/// met by some descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignatureThreshold(NonZeroU32);

impl SignatureThreshold {
    /// The largest threshold: a descriptor holds at most [`MAX_SIGNATURES`] signatures, so a
    /// higher one could never be met.
    pub const MAX: u32 = MAX_SIGNATURES as u32;

    /// A threshold of `n` signatures; `None` for zero or more than [`Self::MAX`].
    pub fn new(n: u32) -> Option<Self> {
        if n > Self::MAX {
            return None;
        }
        NonZeroU32::new(n).map(Self)
    }
    /// The number of distinct valid signers required.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for SignatureThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where stboot gets the OS package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FetchMethod {
    /// From the provisioning servers named in the host config.
    Network,
    /// From `/ospkg/` inside the stboot initramfs.
    Initramfs,
}

impl FetchMethod {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Initramfs => "initramfs",
        }
    }
}

/// A checked trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    threshold: SignatureThreshold,
    fetch_method: FetchMethod,
    tpm_required: bool,
    sigsum_required: bool,
}

/// Why a trust policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustPolicyError {
    /// Larger than [`MAX_TRUST_POLICY_BYTES`].
    #[error("trust policy is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// Not a JSON object, or a duplicate key.
    #[error("trust policy: invalid JSON: {0}")]
    Json(String),
    /// A required field is absent or `null`.
    #[error("trust policy: field \"{field}\" is missing")]
    Missing {
        /// Field name.
        field: &'static str,
    },
    /// A field has a value outside its rule.
    #[error("trust policy: field \"{field}\": {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawTrustPolicy {
    #[serde(default)]
    ospkg_signature_threshold: Option<serde_json::Value>,
    #[serde(default)]
    ospkg_fetch_method: Option<serde_json::Value>,
    #[serde(default)]
    tpm_required: Option<serde_json::Value>,
    #[serde(default)]
    ospkg_sigsum_required: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct OutTrustPolicy {
    ospkg_signature_threshold: u32,
    ospkg_fetch_method: FetchMethod,
    /// Written only when set, so a reference policy keeps the reference's bytes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tpm_required: bool,
    /// Likewise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ospkg_sigsum_required: bool,
}

const THRESHOLD: &str = "ospkg_signature_threshold";
const FETCH: &str = "ospkg_fetch_method";
const TPM_REQUIRED: &str = "tpm_required";
const SIGSUM_REQUIRED: &str = "ospkg_sigsum_required";

/// An optional boolean field of ours: absent or `null` is false.
fn optional_bool(
    field: &'static str,
    v: Option<serde_json::Value>,
) -> Result<bool, TrustPolicyError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(b),
        Some(v) => Err(TrustPolicyError::Invalid {
            field,
            reason: format!("{v} is not true or false"),
        }),
    }
}

impl TrustPolicy {
    /// A policy from its two settings.
    pub fn new(threshold: SignatureThreshold, fetch_method: FetchMethod) -> Self {
        Self {
            threshold,
            fetch_method,
            tpm_required: false,
            sigsum_required: false,
        }
    }

    /// The same policy requiring (or not) that every counted signature is Sigsum-logged.
    pub fn with_sigsum_required(&self, sigsum_required: bool) -> Self {
        Self {
            sigsum_required,
            ..self.clone()
        }
    }

    /// Parse and check `trust_policy.json` bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustPolicyError> {
        if bytes.len() > MAX_TRUST_POLICY_BYTES {
            return Err(TrustPolicyError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_TRUST_POLICY_BYTES,
            });
        }
        let raw: RawTrustPolicy = gojson::from_object(bytes).map_err(TrustPolicyError::Json)?;
        let threshold = match raw.ospkg_signature_threshold {
            None => return Err(TrustPolicyError::Missing { field: THRESHOLD }),
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > SignatureThreshold::MAX => {
                    return Err(TrustPolicyError::Invalid {
                        field: THRESHOLD,
                        reason: format!(
                            "{n} can never be met: a descriptor holds at most {MAX_SIGNATURES} \
                             signatures"
                        ),
                    });
                }
                n => n.and_then(SignatureThreshold::new).ok_or_else(|| {
                    TrustPolicyError::Invalid {
                        field: THRESHOLD,
                        reason: format!("{v} is not an integer of at least 1"),
                    }
                })?,
            },
        };
        let fetch_method = match raw.ospkg_fetch_method {
            None => return Err(TrustPolicyError::Missing { field: FETCH }),
            Some(serde_json::Value::String(s)) if s == "network" => FetchMethod::Network,
            Some(serde_json::Value::String(s)) if s == "initramfs" => FetchMethod::Initramfs,
            Some(v) => {
                return Err(TrustPolicyError::Invalid {
                    field: FETCH,
                    reason: format!("{v} is not \"network\" or \"initramfs\""),
                });
            }
        };
        let tpm_required = optional_bool(TPM_REQUIRED, raw.tpm_required)?;
        let sigsum_required = optional_bool(SIGSUM_REQUIRED, raw.ospkg_sigsum_required)?;
        Ok(Self {
            threshold,
            fetch_method,
            tpm_required,
            sigsum_required,
        })
    }

    /// The same policy with another fetch method (stboot measures the method it used: the
    /// provisioning pointer forces `initramfs`, see `image::effective_fetch_method`).
    pub fn with_fetch_method(&self, fetch_method: FetchMethod) -> Self {
        Self {
            fetch_method,
            ..self.clone()
        }
    }

    /// Canonical compact form, the bytes stboot measures:
    /// `{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}` (the reference's), with
    /// `,"tpm_required":true` and then `,"ospkg_sigsum_required":true` appended only when set
    /// (our additions, so PCR 13 also covers them).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        gojson::to_compact(&self.out())
    }

    /// Pretty form (what `stmgr trustpolicy check` prints).
    pub fn to_pretty_json(&self) -> Vec<u8> {
        gojson::to_pretty(&self.out())
    }

    fn out(&self) -> OutTrustPolicy {
        OutTrustPolicy {
            ospkg_signature_threshold: self.threshold.get(),
            ospkg_fetch_method: self.fetch_method,
            tpm_required: self.tpm_required,
            ospkg_sigsum_required: self.sigsum_required,
        }
    }

    /// Distinct valid signers required.
    pub fn threshold(&self) -> SignatureThreshold {
        self.threshold
    }
    /// Where the OS package comes from.
    pub fn fetch_method(&self) -> FetchMethod {
        self.fetch_method
    }
    /// `tpm_required` (our addition, default false): without a working TPM, nothing boots.
    pub fn tpm_required(&self) -> bool {
        self.tpm_required
    }
    /// `ospkg_sigsum_required` (our addition, default false): only signatures whose Sigsum proof
    /// verifies against the directory's `ospkg_trust_policy` count toward the threshold; a plain
    /// signature never does.
    pub fn sigsum_required(&self) -> bool {
        self.sigsum_required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accepted spelling and its canonical form.
    #[test]
    fn accepted_policies_and_their_canonical_form() {
        let cases = [
            (
                r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}"#,
                r#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}"#,
            ),
            (
                "{\n  \"ospkg_fetch_method\": \"initramfs\",\n  \"ospkg_signature_threshold\": 1\n}\n",
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#,
            ),
            // Unknown fields are ignored, as in the reference ("Unknown field" test).
            (
                r#"{"ospkg_signature_threshold":3,"ospkg_fetch_method":"network","comment":"x"}"#,
                r#"{"ospkg_signature_threshold":3,"ospkg_fetch_method":"network"}"#,
            ),
        ];
        for (input, canonical) in cases {
            let p = TrustPolicy::from_json(input.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(p.to_canonical_json()).unwrap(), canonical);
            assert_eq!(TrustPolicy::from_json(canonical.as_bytes()).unwrap(), p);
        }
    }

    #[test]
    fn tpm_required_is_optional_and_measured_only_when_set() {
        let base = r#""ospkg_signature_threshold":1,"ospkg_fetch_method":"network""#;
        let off = TrustPolicy::from_json(format!("{{{base}}}").as_bytes()).unwrap();
        assert!(!off.tpm_required());
        let f = TrustPolicy::from_json(format!(r#"{{{base},"tpm_required":false}}"#).as_bytes())
            .unwrap();
        assert_eq!(f.to_canonical_json(), off.to_canonical_json());
        let on = TrustPolicy::from_json(format!(r#"{{{base},"tpm_required":true}}"#).as_bytes())
            .unwrap();
        assert!(on.tpm_required());
        assert_eq!(
            String::from_utf8(on.to_canonical_json()).unwrap(),
            format!("{{{base},\"tpm_required\":true}}")
        );
        let e = TrustPolicy::from_json(format!(r#"{{{base},"tpm_required":"yes"}}"#).as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("\"tpm_required\""), "{e}");
    }

    #[test]
    fn ospkg_sigsum_required_is_optional_and_measured_only_when_set() {
        let base = r#""ospkg_signature_threshold":1,"ospkg_fetch_method":"network""#;
        let off = TrustPolicy::from_json(format!("{{{base}}}").as_bytes()).unwrap();
        assert!(!off.sigsum_required());
        let null = TrustPolicy::from_json(
            format!(r#"{{{base},"ospkg_sigsum_required":null}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(null, off);
        let on = TrustPolicy::from_json(
            format!(r#"{{"ospkg_sigsum_required":true,{base},"tpm_required":true}}"#).as_bytes(),
        )
        .unwrap();
        assert!(on.sigsum_required() && on.tpm_required());
        assert_eq!(
            String::from_utf8(on.to_canonical_json()).unwrap(),
            format!("{{{base},\"tpm_required\":true,\"ospkg_sigsum_required\":true}}")
        );
        assert!(off.with_sigsum_required(true).sigsum_required());
        let e =
            TrustPolicy::from_json(format!(r#"{{{base},"ospkg_sigsum_required":1}}"#).as_bytes())
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("\"ospkg_sigsum_required\": 1 is not true or false"),
            "{e}"
        );
    }

    /// The reference's rejection checklist, each naming the field.
    #[test]
    fn rejected_policies_name_the_field() {
        let net = r#""ospkg_fetch_method":"network""#;
        let cases = [
            (
                format!("{{{net}}}"),
                "ospkg_signature_threshold\" is missing",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":null,{net}}}"#),
                "is missing",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":0,{net}}}"#),
                "at least 1",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":-1,{net}}}"#),
                "at least 1",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":1.5,{net}}}"#),
                "at least 1",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":"1",{net}}}"#),
                "at least 1",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":4294967296,{net}}}"#),
                "at least 1",
            ),
            // A descriptor holds at most MAX_SIGNATURES (64): 65 can never be met.
            (
                format!(r#"{{"ospkg_signature_threshold":65,{net}}}"#),
                "ospkg_signature_threshold\": 65 can never be met: a descriptor holds at most 64 signatures",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":4294967295,{net}}}"#),
                "can never be met",
            ),
            (
                r#"{"ospkg_signature_threshold":1}"#.into(),
                "ospkg_fetch_method\" is missing",
            ),
            (
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":null}"#.into(),
                "is missing",
            ),
            (
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":""}"#.into(),
                "ospkg_fetch_method",
            ),
            (
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"usb"}"#.into(),
                "ospkg_fetch_method",
            ),
            (
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":1}"#.into(),
                "ospkg_fetch_method",
            ),
            (
                r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"Network"}"#.into(),
                "ospkg_fetch_method",
            ),
            (
                format!(r#"{{"ospkg_signature_threshold":1,"ospkg_signature_threshold":2,{net}}}"#),
                "duplicate",
            ),
            ("[]".into(), "expected a JSON object"),
            (r#"[1, "network"]"#.into(), "expected a JSON object"),
            ("".into(), "invalid JSON"),
        ];
        for (input, want) in cases {
            let err = TrustPolicy::from_json(input.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
        let most = format!(r#"{{"ospkg_signature_threshold":64,{net}}}"#);
        assert_eq!(
            TrustPolicy::from_json(most.as_bytes())
                .unwrap()
                .threshold()
                .get(),
            64
        );
        let big = vec![b' '; MAX_TRUST_POLICY_BYTES + 1];
        assert!(matches!(
            TrustPolicy::from_json(&big),
            Err(TrustPolicyError::TooLarge { .. })
        ));
    }
}

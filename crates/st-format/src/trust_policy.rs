//! `trust_policy.json`: how many signatures a package needs and where stboot fetches it from.
//!
//! Unknown keys are accepted and ignored, as in the reference (its own test "Unknown field"),
//! so existing policies keep working. Duplicate keys are rejected (Go would take the last one;
//! a policy file with two thresholds is a mistake worth stopping on).

use crate::gojson;
use crate::limits::MAX_TRUST_POLICY_BYTES;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU32;

/// At least one signature; never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignatureThreshold(NonZeroU32);

impl SignatureThreshold {
    /// A threshold of `n` signatures, `None` for zero.
    pub fn new(n: u32) -> Option<Self> {
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
}

#[derive(Serialize)]
struct OutTrustPolicy {
    ospkg_signature_threshold: u32,
    ospkg_fetch_method: FetchMethod,
}

const THRESHOLD: &str = "ospkg_signature_threshold";
const FETCH: &str = "ospkg_fetch_method";

impl TrustPolicy {
    /// A policy from its two settings.
    pub fn new(threshold: SignatureThreshold, fetch_method: FetchMethod) -> Self {
        Self {
            threshold,
            fetch_method,
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
        let raw: RawTrustPolicy =
            serde_json::from_slice(bytes).map_err(|e| TrustPolicyError::Json(e.to_string()))?;
        let threshold = match raw.ospkg_signature_threshold {
            None => return Err(TrustPolicyError::Missing { field: THRESHOLD }),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(SignatureThreshold::new)
                .ok_or_else(|| TrustPolicyError::Invalid {
                    field: THRESHOLD,
                    reason: format!("{v} is not an integer of at least 1"),
                })?,
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
        Ok(Self {
            threshold,
            fetch_method,
        })
    }

    /// Canonical compact form, the bytes stboot measures:
    /// `{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}`.
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
}

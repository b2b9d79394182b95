//! The messages of `docs/attestation.md` as typed values: the agent's keys, the verifier's
//! quote request, the attestation. JSON with binary fields in standard base64; unknown keys are
//! ignored, duplicate keys refused (serde), the whole message capped.

use crate::credential::{Credential, CredentialRandomness, make_credential};
use crate::tpm::Public;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// The largest attestation accepted: a firmware log may be up to 16 MiB (`st_measure`'s cap),
/// which base64 makes 22 MiB.
pub const MAX_ATTESTATION_BYTES: usize = 40 * 1024 * 1024;
/// The largest keys answer accepted.
pub const MAX_KEYS_BYTES: usize = 64 * 1024;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Over the cap.
    #[error("{what}: {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Which message.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Not the JSON this message is (serde's text names the field and position).
    #[error("{what}: {reason}")]
    Json {
        /// Which message.
        what: &'static str,
        /// serde's reason.
        reason: String,
    },
    /// A version this verifier does not know.
    #[error("attestation: version {0}, only 1 is known")]
    Version(u32),
}

mod b64 {
    use super::*;
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

mod b64_opt {
    use super::*;
    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&B64.encode(v)),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| B64.decode(s.as_bytes()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    st_measure::hex(bytes)
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

mod pcr_map {
    use super::*;
    pub(super) fn serialize<S: Serializer>(
        v: &BTreeMap<u32, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        // Keys as decimal strings, written in numeric order ("2" before "12").
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, val) in v {
            map.serialize_entry(&k.to_string(), &hex(val))?;
        }
        map.end()
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u32, Vec<u8>>, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        if m.len() > 24 {
            return Err(serde::de::Error::custom("more than 24 PCRs"));
        }
        m.into_iter()
            .map(|(k, v)| {
                let pcr: u32 = k
                    .parse::<u32>()
                    .ok()
                    .filter(|p: &u32| *p < 24 && k == p.to_string())
                    .ok_or_else(|| serde::de::Error::custom(format!("PCR index {k:?}")))?;
                let value = unhex(&v).filter(|b| b.len() <= 64).ok_or_else(|| {
                    serde::de::Error::custom(format!("PCR {pcr}: not a hex digest"))
                })?;
                Ok((pcr, value))
            })
            .collect()
    }
}

mod hex32_opt {
    use super::*;
    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&hex(v)),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                unhex(&s)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| serde::de::Error::custom("not 64 hex digits"))
            })
            .transpose()
    }
}

/// `GET keys`: the EK, its certificate, the AK and the binding statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// The EK's `TPM2B_PUBLIC` (a bare `TPMT_PUBLIC` is accepted too).
    #[serde(with = "b64")]
    pub ek_public: Vec<u8>,
    /// The EK certificate (DER), when the TPM carries one.
    #[serde(with = "b64_opt", default)]
    pub ek_certificate: Option<Vec<u8>>,
    /// The AK's `TPM2B_PUBLIC`.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
    /// The binding statement.
    pub binding: String,
}

impl Keys {
    /// Parse the answer to `GET keys`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        parse_json("keys", bytes, MAX_KEYS_BYTES)
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<T, MessageError> {
    if bytes.len() > max {
        return Err(MessageError::TooLarge {
            what,
            size: bytes.len(),
            max,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| MessageError::Json {
        what,
        reason: e.to_string(),
    })
}

/// `POST quote`: the verifier's nonce and the credential for the AK under the EK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    /// The nonce.
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    /// `TPM2B_ID_OBJECT`.
    #[serde(with = "b64")]
    pub credential_blob: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET`.
    #[serde(with = "b64")]
    pub encrypted_secret: Vec<u8>,
}

impl QuoteRequest {
    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why no challenge could be made from the agent's keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The EK's public area does not parse.
    #[error("ek_public: {0}")]
    EkPublic(crate::tpm::TpmError),
    /// The AK's public area does not parse.
    #[error("ak_public: {0}")]
    AkPublic(crate::tpm::TpmError),
    /// No credential can be made for this EK.
    #[error("credential: {0}")]
    Credential(crate::credential::CredentialError),
}

/// The verifier's side of step 2: a credential for the AK of `keys` under its EK wrapping
/// `secret`, and the request that carries it with `nonce`. Keep `nonce` and `secret`: they are
/// the [`crate::Expectations`] the answer is checked against.
pub fn challenge(
    keys: &Keys,
    nonce: &[u8; 32],
    secret: &[u8; 32],
    random: &CredentialRandomness,
) -> Result<QuoteRequest, ChallengeError> {
    let ek = Public::parse(&keys.ek_public).map_err(ChallengeError::EkPublic)?;
    let ak = Public::parse(&keys.ak_public).map_err(ChallengeError::AkPublic)?;
    let Credential {
        id_object,
        encrypted_secret,
    } = make_credential(&ek, &ak.name(), secret, random).map_err(ChallengeError::Credential)?;
    Ok(QuoteRequest {
        nonce: nonce.to_vec(),
        credential_blob: id_object,
        encrypted_secret,
    })
}

/// The answer to `POST quote`: everything the verifier decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// 1.
    pub version: u32,
    /// `TPMS_ATTEST` (the contents of the `TPM2B_ATTEST`).
    #[serde(with = "b64")]
    pub attest: Vec<u8>,
    /// `TPMT_SIGNATURE`.
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    /// The AK's `TPM2B_PUBLIC`.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
    /// The EK's `TPM2B_PUBLIC`.
    #[serde(with = "b64")]
    pub ek_public: Vec<u8>,
    /// The EK certificate (DER).
    #[serde(with = "b64_opt", default)]
    pub ek_certificate: Option<Vec<u8>>,
    /// The binding statement.
    pub binding: String,
    /// The quoted PCRs' values (sha256), by index.
    #[serde(with = "pcr_map")]
    pub pcrs: BTreeMap<u32, Vec<u8>>,
    /// The firmware's event log (securityfs `binary_bios_measurements`), when the OS has one.
    #[serde(with = "b64_opt", default)]
    pub firmware_event_log: Option<Vec<u8>>,
    /// stboot's event log (`/stboot/eventlog.bin`).
    #[serde(with = "b64_opt", default)]
    pub stboot_event_log: Option<Vec<u8>>,
    /// The OS package descriptor as stboot received it (`/stboot/descriptor.json`).
    #[serde(with = "b64_opt", default)]
    pub descriptor: Option<Vec<u8>>,
    /// SHA-256 of the booted archive (hex), when the agent knows it. The log's archive event
    /// holds only `SHA-256(this)`, so without it the verifier can identify the archive only
    /// among the digests of a release list. Checked against the event, so it cannot lie.
    #[serde(with = "hex32_opt", default, skip_serializing_if = "Option::is_none")]
    pub archive_sha256: Option<[u8; 32]>,
}

impl Attestation {
    /// Parse the answer to `POST quote` (capped at [`MAX_ATTESTATION_BYTES`], version 1).
    pub fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        let a: Self = parse_json("attestation", bytes, MAX_ATTESTATION_BYTES)?;
        if a.version != 1 {
            return Err(MessageError::Version(a.version));
        }
        Ok(a)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attestation_round_trips_and_refuses_bad_fields() {
        let a = Attestation {
            version: 1,
            attest: vec![1, 2],
            signature: vec![3],
            ak_public: vec![4],
            ek_public: vec![5],
            ek_certificate: None,
            binding: "b\n".into(),
            pcrs: [(2, vec![0; 32]), (12, vec![1; 32])].into_iter().collect(),
            firmware_event_log: None,
            stboot_event_log: Some(vec![6]),
            descriptor: Some(b"{}".to_vec()),
            archive_sha256: Some([7; 32]),
        };
        let json = a.to_json();
        assert_eq!(Attestation::from_json(&json).unwrap(), a);
        let text = String::from_utf8(json).unwrap();
        assert!(text.find("\"2\"").unwrap() < text.find("\"12\"").unwrap());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut bad = v.clone();
        bad["version"] = 2.into();
        assert_eq!(
            Attestation::from_json(bad.to_string().as_bytes()),
            Err(MessageError::Version(2))
        );
        let mut bad = v.clone();
        bad["attest"] = "not base64!".into();
        assert!(Attestation::from_json(bad.to_string().as_bytes()).is_err());
        let mut bad = v.clone();
        bad["pcrs"]["24"] = "00".into();
        assert!(Attestation::from_json(bad.to_string().as_bytes()).is_err());
        let mut bad = v.clone();
        bad["pcrs"]["012"] = "00".into();
        assert!(Attestation::from_json(bad.to_string().as_bytes()).is_err());
        let mut bad = v;
        bad["pcrs"]["3"] = "0g".into();
        assert!(Attestation::from_json(bad.to_string().as_bytes()).is_err());
        // Duplicate keys are refused.
        let dup = text.replacen("\"version\": 1,", "\"version\": 1, \"version\": 1,", 1);
        assert!(Attestation::from_json(dup.as_bytes()).is_err());
        assert!(matches!(
            Attestation::from_json(&vec![b' '; MAX_ATTESTATION_BYTES + 1]),
            Err(MessageError::TooLarge { .. })
        ));
    }
}

//! The agent's requests and answers over an [`AttestTpm`], independent of sockets and devices
//! (the binary wires it to `/dev/tpmrm0` and a TLS listener; tests to a fake).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::binding::{BINDING_PCR, Binding, qualifying_data};
use crate::http::{Request, Response};

/// The PCRs every quote covers (sha256 bank): firmware 0-7, stboot's 12-14, the binding 15.
pub const QUOTED_PCRS: [u32; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, BINDING_PCR];

/// Where the endpoints live.
pub const PREFIX: &str = "/st/attest/v1/";

/// What the agent needs from the TPM (the real one: [`crate::tpm::DeviceTpm`]).
pub trait AttestTpm {
    /// The EK's TPM2B_PUBLIC contents, as the TPM returned them.
    fn ek_public(&self) -> &[u8];
    /// The EK certificate (DER) from the TPM's NV, when it carries one.
    fn ek_certificate(&self) -> Option<&[u8]>;
    /// The AK's TPM2B_PUBLIC contents.
    fn ak_public(&self) -> &[u8];
    /// TPM2_ActivateCredential of the AK under the EK: the verifier's secret.
    fn activate_credential(
        &mut self,
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, String>;
    /// TPM2_Quote by the AK over `pcrs` (sha256): (TPMS_ATTEST, TPMT_SIGNATURE).
    fn quote(&mut self, qualifying_data: &[u8], pcrs: &[u32])
    -> Result<(Vec<u8>, Vec<u8>), String>;
    /// The sha256 value of `pcr`.
    fn read_pcr(&mut self, pcr: u32) -> Result<Vec<u8>, String>;
}

/// What stboot handed over, and the firmware's log (each may be absent).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// `/stboot/eventlog.bin`.
    pub stboot_event_log: Option<Vec<u8>>,
    /// `/stboot/descriptor.json`.
    pub descriptor: Option<Vec<u8>>,
    /// securityfs `tpm0/binary_bios_measurements`.
    pub firmware_event_log: Option<Vec<u8>>,
}

/// Whether the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Started, waiting for an authorised go-ahead.
    Waiting,
}

/// One boot of the agent.
pub struct Agent<T: AttestTpm> {
    tpm: T,
    binding: Binding,
    evidence: Evidence,
    state: State,
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(B64.encode(bytes))
}

fn b64_opt(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, b64)
}

fn field(body: &Value, name: &str, min: usize, max: usize) -> Result<Vec<u8>, String> {
    let text = body
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {name:?}"))?;
    let bytes = B64
        .decode(text)
        .map_err(|e| format!("{name}: not base64 ({e})"))?;
    if !(min..=max).contains(&bytes.len()) {
        return Err(format!(
            "{name}: {} bytes, expected {min} to {max}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

impl<T: AttestTpm> Agent<T> {
    /// An agent over `tpm` whose binding (already extended into PCR 15) is `binding`.
    pub fn new(tpm: T, binding: Binding, evidence: Evidence) -> Self {
        Self {
            tpm,
            binding,
            evidence,
            state: State::Waiting,
        }
    }

    /// The binding of this boot.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn keys(&self) -> Value {
        json!({
            "ek_public": b64(self.tpm.ek_public()),
            "ek_certificate": b64_opt(self.tpm.ek_certificate()),
            "ak_public": b64(self.tpm.ak_public()),
            "binding": self.binding.statement(),
        })
    }

    fn quote(&mut self, body: &[u8]) -> Result<Value, Response> {
        let bad = |why: String| Response::error(400, why);
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| bad(format!("quote request: not JSON ({e})")))?;
        let nonce = field(&body, "nonce", 16, 64).map_err(bad)?;
        let blob = field(&body, "credential_blob", 2, 1024).map_err(bad)?;
        let secret_in = field(&body, "encrypted_secret", 2, 1024).map_err(bad)?;
        let secret = self
            .tpm
            .activate_credential(&blob, &secret_in)
            .map_err(|e| Response::error(403, format!("credential activation failed: {e}")))?;
        let qualifying = qualifying_data(&nonce, &secret, &self.binding.digest());
        let (attest, signature) = self
            .tpm
            .quote(&qualifying, &QUOTED_PCRS)
            .map_err(|e| Response::error(500, format!("quote: {e}")))?;
        let mut pcrs = serde_json::Map::new();
        for pcr in QUOTED_PCRS {
            let v = self
                .tpm
                .read_pcr(pcr)
                .map_err(|e| Response::error(500, format!("reading PCR {pcr}: {e}")))?;
            pcrs.insert(
                pcr.to_string(),
                Value::String(v.iter().map(|b| format!("{b:02x}")).collect()),
            );
        }
        Ok(json!({
            "version": 1,
            "attest": b64(&attest),
            "signature": b64(&signature),
            "ak_public": b64(self.tpm.ak_public()),
            "ek_public": b64(self.tpm.ek_public()),
            "ek_certificate": b64_opt(self.tpm.ek_certificate()),
            "binding": self.binding.statement(),
            "pcrs": pcrs,
            "firmware_event_log": b64_opt(self.evidence.firmware_event_log.as_deref()),
            "stboot_event_log": b64_opt(self.evidence.stboot_event_log.as_deref()),
            "descriptor": b64_opt(self.evidence.descriptor.as_deref()),
        }))
    }

    fn status(&self) -> Value {
        json!({
            "state": match self.state { State::Waiting => "waiting" },
            "binding": self.binding.statement(),
        })
    }

    /// Answer one request.
    pub fn handle(&mut self, req: &Request) -> Response {
        let Some(endpoint) = req.path.strip_prefix(PREFIX) else {
            return Response::error(404, format!("no such path: {}", req.path));
        };
        match (req.method.as_str(), endpoint) {
            ("GET", "keys") => Response::json(&self.keys()),
            ("GET", "status") => Response::json(&self.status()),
            ("POST", "quote") => match self.quote(&req.body) {
                Ok(v) => Response::json(&v),
                Err(r) => r,
            },
            (_, "keys" | "status" | "quote") => {
                Response::error(405, format!("{} {} is not allowed", req.method, req.path))
            }
            _ => Response::error(404, format!("no such path: {}", req.path)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Fake {
        activations: Vec<(Vec<u8>, Vec<u8>)>,
        quoted: Vec<Vec<u8>>,
        refuse: bool,
    }

    impl AttestTpm for Fake {
        fn ek_public(&self) -> &[u8] {
            b"EKPUB"
        }
        fn ek_certificate(&self) -> Option<&[u8]> {
            None
        }
        fn ak_public(&self) -> &[u8] {
            b"AKPUB"
        }
        fn activate_credential(&mut self, blob: &[u8], secret: &[u8]) -> Result<Vec<u8>, String> {
            if self.refuse {
                return Err("TPM_RC_INTEGRITY".into());
            }
            self.activations.push((blob.to_vec(), secret.to_vec()));
            Ok(b"the-secret".to_vec())
        }
        fn quote(&mut self, q: &[u8], pcrs: &[u32]) -> Result<(Vec<u8>, Vec<u8>), String> {
            assert_eq!(pcrs, QUOTED_PCRS);
            self.quoted.push(q.to_vec());
            Ok((b"ATTEST".to_vec(), b"SIG".to_vec()))
        }
        fn read_pcr(&mut self, pcr: u32) -> Result<Vec<u8>, String> {
            Ok(vec![u8::try_from(pcr).unwrap(); 32])
        }
    }

    fn agent(refuse: bool) -> Agent<Fake> {
        Agent::new(
            Fake {
                activations: Vec::new(),
                quoted: Vec::new(),
                refuse,
            },
            Binding {
                ak_name: vec![0, 11, 1],
                wireguard: [7; 32],
                tls_spki_sha256: [8; 32],
            },
            Evidence {
                stboot_event_log: Some(b"LOG".to_vec()),
                descriptor: Some(b"{}".to_vec()),
                firmware_event_log: None,
            },
        )
    }

    fn post(path: &str, body: &Value) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            body: body.to_string().into_bytes(),
        }
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_quote_covers_the_nonce_the_activated_secret_and_the_binding() {
        let mut a = agent(false);
        let req = json!({
            "nonce": B64.encode([9u8; 32]),
            "credential_blob": B64.encode(b"BLOB"),
            "encrypted_secret": B64.encode(b"ENC"),
        });
        let r = a.handle(&post("/st/attest/v1/quote", &req));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = body(&r);
        assert_eq!(v["attest"], B64.encode(b"ATTEST"));
        assert_eq!(v["signature"], B64.encode(b"SIG"));
        assert_eq!(v["stboot_event_log"], B64.encode(b"LOG"));
        assert_eq!(v["firmware_event_log"], Value::Null);
        assert_eq!(v["pcrs"]["15"], "0f".repeat(32));
        assert_eq!(v["binding"], a.binding().statement());
        assert_eq!(a.tpm.activations, [(b"BLOB".to_vec(), b"ENC".to_vec())]);
        let expected = qualifying_data(&[9; 32], b"the-secret", &a.binding().digest());
        assert_eq!(a.tpm.quoted, [expected.to_vec()]);
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason_and_nothing_is_quoted() {
        let mut a = agent(false);
        for (req, want) in [
            (json!({}), "missing string field \"nonce\""),
            (
                json!({"nonce": "!!", "credential_blob": "", "encrypted_secret": ""}),
                "nonce: not base64",
            ),
            (
                json!({"nonce": B64.encode([1u8; 8]), "credential_blob": "", "encrypted_secret": ""}),
                "nonce: 8 bytes",
            ),
        ] {
            let r = a.handle(&post("/st/attest/v1/quote", &req));
            assert_eq!(r.status, 400);
            assert!(String::from_utf8_lossy(&r.body).contains(want), "{want}");
        }
        let mut refusing = agent(true);
        let req = json!({
            "nonce": B64.encode([9u8; 32]),
            "credential_blob": B64.encode(b"BLOB"),
            "encrypted_secret": B64.encode(b"ENC"),
        });
        let r = refusing.handle(&post("/st/attest/v1/quote", &req));
        assert_eq!(r.status, 403);
        assert!(refusing.tpm.quoted.is_empty());
        assert!(a.tpm.quoted.is_empty());
    }

    #[test]
    fn keys_status_and_unknown_paths() {
        let mut a = agent(false);
        let get = |path: &str| Request {
            method: "GET".into(),
            path: path.into(),
            body: Vec::new(),
        };
        let v = body(&a.handle(&get("/st/attest/v1/keys")));
        assert_eq!(v["ek_public"], B64.encode(b"EKPUB"));
        assert_eq!(v["ek_certificate"], Value::Null);
        assert_eq!(
            body(&a.handle(&get("/st/attest/v1/status")))["state"],
            "waiting"
        );
        assert_eq!(a.handle(&get("/st/attest/v1/quote")).status, 405);
        assert_eq!(a.handle(&get("/other")).status, 404);
        assert_eq!(a.handle(&get("/st/attest/v1/nothing")).status, 404);
    }
}

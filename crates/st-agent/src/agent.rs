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
    /// `/stboot/archive.sha256` (hex): what the package's signatures sign.
    pub archive_sha256: Option<String>,
}

/// Whether the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Started, waiting for an authorised go-ahead.
    Waiting,
    /// A go-ahead signed by these signers (certificate subjects) was accepted.
    Serving {
        /// Who authorised it, in signature order.
        authorised_by: Vec<String>,
    },
}

/// Who may authorise this server to serve: staff certificates under the deploy root(s), a
/// threshold of them (from the OS package's configuration, `/etc/st-agent/`).
pub struct DeployPolicy {
    /// The deploy root certificate(s).
    pub roots: st_verify::SigningRoots,
    /// Signatures required.
    pub threshold: st_format::SignatureThreshold,
}

/// One boot of the agent.
pub struct Agent<T: AttestTpm> {
    tpm: T,
    binding: Binding,
    evidence: Evidence,
    state: State,
    deploy: Option<DeployPolicy>,
    clock: Box<dyn Fn() -> st_verify::UnixTime>,
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
    /// An agent over `tpm` whose binding (already extended into PCR 15) is `binding`. Without
    /// a deploy policy no go-ahead can be accepted (the agent attests, and keeps waiting).
    pub fn new(tpm: T, binding: Binding, evidence: Evidence) -> Self {
        Self {
            tpm,
            binding,
            evidence,
            state: State::Waiting,
            deploy: None,
            clock: Box::new(|| st_verify::UnixTime::from_secs(0)),
        }
    }

    /// Who may authorise the service, and the clock go-ahead windows are checked against.
    pub fn with_deploy_policy(
        mut self,
        deploy: DeployPolicy,
        clock: Box<dyn Fn() -> st_verify::UnixTime>,
    ) -> Self {
        self.deploy = Some(deploy);
        self.clock = clock;
        self
    }

    /// Judge a go-ahead; on success the state becomes [`State::Serving`].
    fn go_ahead(&mut self, body: &[u8]) -> Result<Value, Response> {
        let refuse = |why: String| Response::error(403, format!("go-ahead refused: {why}"));
        let Some(deploy) = &self.deploy else {
            return Err(refuse(
                "this OS package has no deploy policy (/etc/st-agent/deploy_root.pem)".into(),
            ));
        };
        if let State::Serving { authorised_by } = &self.state {
            return Err(Response::error(
                409,
                format!(
                    "already serving (authorised by {})",
                    authorised_by.join(", ")
                ),
            ));
        }
        let g =
            st_format::go_ahead::GoAhead::from_json(body).map_err(|e| Response::error(400, e))?;
        let st = g.statement();
        if st.ak_name != self.binding.ak_name {
            return Err(refuse(
                "it names another attestation key (another boot or another server)".into(),
            ));
        }
        if st.binding_sha256 != self.binding.digest() {
            return Err(refuse(
                "it names other service keys than this boot's binding".into(),
            ));
        }
        let now = (self.clock)();
        if now.as_secs() < st.not_before || now.as_secs() > st.not_after {
            return Err(refuse(format!(
                "outside its window [{}, {}] (now {})",
                st.not_before,
                st.not_after,
                now.as_secs()
            )));
        }
        let digest = st_verify::ArchiveDigest::of(st.to_text().as_bytes());
        let report = st_verify::check_signed_entries(
            g.entries(),
            &digest,
            &deploy.roots,
            st_verify::Threshold::AtLeast(deploy.threshold),
            now,
        );
        if !report.threshold_met() {
            let reasons = report.skip_reasons("signature");
            return Err(refuse(format!(
                "{} of {} signatures valid, {} required{}{}",
                report.valid(),
                report.found(),
                deploy.threshold,
                if reasons.is_empty() { "" } else { ": " },
                reasons.join("; ")
            )));
        }
        let authorised_by = report.counted_signers();
        self.state = State::Serving {
            authorised_by: authorised_by.clone(),
        };
        Ok(json!({"state": "serving", "authorised_by": authorised_by}))
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
        let qualifying = qualifying_data(&nonce, &secret, &self.binding);
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
            "archive_sha256": self.evidence.archive_sha256.as_deref().map_or(Value::Null, |h| Value::String(h.to_owned())),
        }))
    }

    fn status(&self) -> Value {
        json!({
            "state": match self.state {
                State::Waiting => "waiting",
                State::Serving { .. } => "serving",
            },
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
            ("POST", "go-ahead") => match self.go_ahead(&req.body) {
                Ok(v) => Response::json(&v),
                Err(r) => r,
            },
            (_, "keys" | "status" | "quote" | "go-ahead") => {
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
                archive_sha256: Some("ab".repeat(32)),
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
        let expected = qualifying_data(&[9; 32], b"the-secret", a.binding());
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

    mod go_ahead {
        use super::*;
        use st_format::go_ahead::{GoAhead, GoAheadStatement};
        use st_sign::{CertOptions, SigningKey, make_leaf, make_root};
        use st_verify::UnixTime;

        const NOW: i64 = 1_800_000_000;

        struct Staff {
            root_pem: String,
            members: Vec<(SigningKey, String)>,
        }

        fn opts() -> CertOptions {
            CertOptions {
                not_before: UnixTime::from_secs(NOW - 86_400),
                not_after: UnixTime::from_secs(NOW + 86_400),
                serial: [1; 16],
            }
        }

        fn staff(n: u8) -> Staff {
            let root = SigningKey::from_seed(&[100; 32]).unwrap();
            let root_pem = make_root(&root, &opts()).unwrap();
            let members = (0..n)
                .map(|i| {
                    let k = SigningKey::from_seed(&[i + 1; 32]).unwrap();
                    let cert = make_leaf(&k.public(), &root_pem, &root, &opts()).unwrap();
                    (k, cert)
                })
                .collect();
            Staff { root_pem, members }
        }

        fn deploying(staff: &Staff, threshold: u32) -> Agent<Fake> {
            let policy = DeployPolicy {
                roots: st_verify::SigningRoots::from_pem(staff.root_pem.as_bytes()).unwrap(),
                threshold: st_format::SignatureThreshold::new(threshold).unwrap(),
            };
            agent(false).with_deploy_policy(policy, Box::new(|| UnixTime::from_secs(NOW)))
        }

        fn signed(statement: &GoAheadStatement, by: &[&(SigningKey, String)]) -> Vec<u8> {
            let mut g = GoAhead::new(statement.clone());
            let digest = st_verify::ArchiveDigest::of(statement.to_text().as_bytes());
            for (key, cert) in by {
                let sig = key.sign(digest.as_bytes());
                g.push(
                    st_format::SignatureEntry::new(cert.as_bytes().to_vec(), sig.to_vec()).unwrap(),
                );
            }
            g.to_json()
        }

        fn statement_for(a: &Agent<Fake>) -> GoAheadStatement {
            GoAheadStatement {
                ak_name: a.binding().ak_name.clone(),
                binding_sha256: a.binding().digest(),
                not_before: NOW - 60,
                not_after: NOW + 3600,
            }
        }

        fn post_go_ahead(a: &mut Agent<Fake>, body: Vec<u8>) -> Response {
            a.handle(&Request {
                method: "POST".into(),
                path: "/st/attest/v1/go-ahead".into(),
                body,
            })
        }

        fn text(r: &Response) -> String {
            String::from_utf8_lossy(&r.body).into_owned()
        }

        #[test]
        fn a_threshold_of_staff_for_this_boot_starts_the_service() {
            let s = staff(3);
            let mut a = deploying(&s, 2);
            let st = statement_for(&a);
            // One signature of two: refused, still waiting.
            let r = post_go_ahead(&mut a, signed(&st, &[&s.members[0]]));
            assert_eq!(r.status, 403, "{}", text(&r));
            assert!(
                text(&r).contains("1 of 1 signatures valid, 2 required"),
                "{}",
                text(&r)
            );
            assert_eq!(a.state(), &State::Waiting);
            // The same signer twice still counts once.
            let r = post_go_ahead(&mut a, signed(&st, &[&s.members[0], &s.members[0]]));
            assert_eq!(r.status, 403, "{}", text(&r));
            assert_eq!(a.state(), &State::Waiting);
            let r = post_go_ahead(&mut a, signed(&st, &[&s.members[0], &s.members[2]]));
            assert_eq!(r.status, 200, "{}", text(&r));
            match a.state() {
                State::Serving { authorised_by } => assert_eq!(authorised_by.len(), 2),
                other => panic!("{other:?}"),
            }
            // A second go-ahead changes nothing.
            let r = post_go_ahead(&mut a, signed(&st, &[&s.members[1], &s.members[2]]));
            assert_eq!(r.status, 409);
        }

        #[test]
        fn a_go_ahead_for_another_boot_or_window_or_signer_is_refused() {
            let s = staff(2);
            let mut a = deploying(&s, 1);
            let good = statement_for(&a);
            let mut other_boot = good.clone();
            other_boot.ak_name = vec![0, 11, 9, 9];
            let mut other_keys = good.clone();
            other_keys.binding_sha256 = [0; 32];
            let mut expired = good.clone();
            expired.not_after = NOW - 1;
            expired.not_before = NOW - 100;
            for (st, want) in [
                (&other_boot, "another attestation key"),
                (&other_keys, "other service keys"),
                (&expired, "outside its window"),
            ] {
                let r = post_go_ahead(&mut a, signed(st, &[&s.members[0]]));
                assert_eq!(r.status, 403);
                assert!(text(&r).contains(want), "{want}: {}", text(&r));
            }
            // Signed by someone outside the deploy root.
            let outsider_root = SigningKey::from_seed(&[200; 32]).unwrap();
            let outsider_root_pem = make_root(&outsider_root, &opts()).unwrap();
            let k = SigningKey::from_seed(&[201; 32]).unwrap();
            let cert = make_leaf(&k.public(), &outsider_root_pem, &outsider_root, &opts()).unwrap();
            let r = post_go_ahead(&mut a, signed(&good, &[&(k, cert)]));
            assert_eq!(r.status, 403);
            assert!(
                text(&r).contains("not issued by any signing root"),
                "{}",
                text(&r)
            );
            // Malformed: 400 with the reason.
            let r = post_go_ahead(&mut a, b"{}".to_vec());
            assert_eq!(r.status, 400);
            assert_eq!(a.state(), &State::Waiting);
            // Without a deploy policy nothing is accepted.
            let mut plain = agent(false);
            let body = signed(&statement_for(&plain), &[&s.members[0]]);
            let r = post_go_ahead(&mut plain, body);
            assert_eq!(r.status, 403);
            assert!(text(&r).contains("no deploy policy"), "{}", text(&r));
        }
    }
}

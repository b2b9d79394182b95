//! Sigsum-logged OS packages (ST 1.3) through stboot's boot flow: the scenario vectors' real
//! proofs (`cases/sigsum-*`, `cases/plain-when-logging-required`) judged under their trust
//! directories (`trust/sigsum-1`, `trust/sigsum-required-1`: the test log's Sigsum policy,
//! 2-of-3 witnesses), served by a fake network. Shows that `flow::run` accepts a logged
//! package and names the reason when it refuses one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::HostConfig;
use st_verify::{SignatureKind, UnixTime};
use stboot::fetch::{FetchError, Fetched, Redactor, Sink, Transport};
use stboot::flow::{self, Env, EnvError, Stage};
use stboot::options::Options;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use url::Url;

const DESCRIPTOR_URL: &str = "https://a.example/os.json";
const ARCHIVE_URL: &str = "https://a.example/os.zip";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

/// A server with fixed bodies per URL; anything else is a 404.
struct FakeTransport(HashMap<String, Vec<u8>>);

impl Transport for FakeTransport {
    fn get(
        &mut self,
        url: &Url,
        max: u64,
        _: Instant,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, FetchError> {
        let body = self.0.get(url.as_str()).ok_or(FetchError::Status(404))?;
        let len = body.len() as u64;
        if len > max {
            return Err(FetchError::TooLarge { size: len, max });
        }
        sink.expect(len).unwrap();
        sink.write_all(body).unwrap();
        Ok(Fetched {
            len,
            url: url.clone(),
        })
    }
}

/// The trust directory `trust/<dir>/` (plus the vectors' root as `tls_roots.pem`: the fake
/// does no TLS), a DHCP host config pointing at [`DESCRIPTOR_URL`], and the case's package
/// served there.
struct FakeEnv {
    trust: &'static str,
    served: HashMap<String, Vec<u8>>,
}

impl FakeEnv {
    fn new(trust: &'static str, case: &str) -> Self {
        let dir = vectors().join("cases").join(case);
        let mut d: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("ospkg.json")).unwrap()).unwrap();
        d["os_pkg_url"] = ARCHIVE_URL.into();
        let served = HashMap::from([
            (DESCRIPTOR_URL.to_owned(), serde_json::to_vec(&d).unwrap()),
            (
                ARCHIVE_URL.to_owned(),
                std::fs::read(dir.join("ospkg.zip")).unwrap(),
            ),
        ]);
        Self { trust, served }
    }
}

impl Env for FakeEnv {
    fn trust_policy_file(&self, name: &str, _: usize) -> Result<Option<Vec<u8>>, EnvError> {
        let path = match name {
            "tls_roots.pem" => vectors().join("trust/root.pem"),
            _ => vectors().join("trust").join(self.trust).join(name),
        };
        Ok(std::fs::read(path).ok())
    }
    fn initramfs_host_config(&self) -> Result<Option<Vec<u8>>, EnvError> {
        Ok(Some(
            format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{DESCRIPTOR_URL}"}}"#).into_bytes(),
        ))
    }
    fn efi_host_config(&self) -> Result<Option<Vec<u8>>, EnvError> {
        Ok(None)
    }
    fn initramfs_file(&self, _: &str, _: u64) -> Result<Option<Vec<u8>>, EnvError> {
        Ok(None)
    }
    fn setup_network(&mut self, _: &HostConfig, _: &Options) -> Result<String, EnvError> {
        Ok("fake network".into())
    }
    fn transport(&mut self, _: &[Vec<u8>], _: &Options, _: &Redactor) -> Box<dyn Transport> {
        Box::new(FakeTransport(self.served.clone()))
    }
    fn sleep(&mut self, _: Duration) {}
    fn now(&self) -> UnixTime {
        UnixTime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
    }
    fn image_buffers(&mut self) -> Result<[&mut dyn std::io::Write; 2], EnvError> {
        Err("not booting in this test".into())
    }
    fn kexec_load(&mut self, _: &str) -> Result<(), EnvError> {
        Err("not booting in this test".into())
    }
    fn kexec_exec(&mut self) -> EnvError {
        "not booting in this test".into()
    }
}

/// No pause between rounds, and a deadline that ends after the first few.
fn opts() -> Options {
    Options {
        backoff: Duration::ZERO,
        deadline: Duration::from_millis(300),
        ..Options::default()
    }
}

/// Accepted, the one signature a Sigsum proof that counted, logged as the vectors' log wrote
/// it (6 leaves, the package's at index 3, witnesses 1 and 2 cosigned).
fn assert_logged(trust: &'static str, case: &str) {
    let env = &mut FakeEnv::new(trust, case);
    let ready = flow::run(env, &opts()).unwrap_or_else(|f| panic!("{trust}/{case}: {f}"));
    assert_eq!(ready.source, ARCHIVE_URL);
    let report = ready.verified.report();
    assert_eq!((report.valid(), report.found()), (1, 1));
    let o = &report.outcomes[0];
    assert_eq!(o.kind, SignatureKind::SigsumProof);
    assert!(o.verdict.is_ok(), "{:?}", o.verdict);
    let logged = o
        .logged
        .as_ref()
        .expect("a counted proof says what was logged");
    assert_eq!((logged.tree_size, logged.leaf_index), (6, 3));
    assert_eq!(
        logged.witnesses,
        ["witness-1.example.org", "witness-2.example.org"]
    );
    // The log is the policy's (named by the hash of the key on its `log` line).
    let policy_text = std::fs::read(
        vectors()
            .join("trust")
            .join(trust)
            .join("ospkg_trust_policy"),
    );
    let policy = st_verify::st_sigsum::Policy::parse(&policy_text.unwrap()).unwrap();
    assert_eq!(policy.logs().len(), 1);
    assert_eq!(logged.log, policy.logs()[0].key_hash);
    assert_eq!(
        logged.log_url.as_deref(),
        Some("https://log.example.org/test")
    );
}

/// Refused at the fetch stage (every URL failed), the attempt naming `reason`.
fn assert_refused(trust: &'static str, case: &str, reason: &str) {
    let env = &mut FakeEnv::new(trust, case);
    let f = flow::run(env, &opts()).map(|r| r.source).unwrap_err();
    assert_eq!(f.stage(), Stage::Fetch, "{f}");
    assert!(!f.attempts.is_empty(), "{f}");
    for a in &f.attempts {
        assert!(
            a.contains(ARCHIVE_URL) && a.contains("rejected: 0 valid of 1 signatures, 1 required"),
            "{a}"
        );
        assert!(a.contains(reason), "{a} lacks {reason:?}");
    }
}

#[test]
fn sigsum_logged_package_is_accepted() {
    assert_logged("sigsum-1", "sigsum-logged");
}

#[test]
fn sigsum_logged_package_is_accepted_when_logging_is_required() {
    assert_logged("sigsum-required-1", "sigsum-logged-when-logging-required");
}

#[test]
fn plain_signature_is_refused_as_not_logged_when_logging_is_required() {
    assert_refused(
        "sigsum-required-1",
        "plain-when-logging-required",
        "signature 0: a valid plain signature, but the trust policy requires Sigsum-logged \
         signatures (ospkg_sigsum_required) and this one is not logged",
    );
}

#[test]
fn attack_proof_with_too_few_witnesses_is_refused() {
    assert_refused(
        "sigsum-1",
        "sigsum-quorum-not-met",
        "witness quorum not met",
    );
}

#[test]
fn attack_proof_for_another_archive_is_refused() {
    assert_refused(
        "sigsum-1",
        "sigsum-proof-for-another-archive",
        "made for another message",
    );
}

#[test]
fn proof_without_a_sigsum_policy_does_not_count() {
    assert_refused("policy-1", "sigsum-no-policy", "no ospkg_trust_policy");
}

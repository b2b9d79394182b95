//! One attestation check end to end: fetch the keys, challenge (credential + nonce), fetch the
//! quote, verify with `st-attest` against what the caller trusts. Shared by `stattest check`
//! and `stmgr deploy authorize`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ring::rand::SecureRandom as _;
use st_attest::binding::{ReleaseList, ServiceKey};
use st_attest::credential::CredentialRandomness;
use st_attest::ekcert::VendorCas;
use st_attest::message::{Attestation, Keys, challenge};
use st_attest::{Expectations, TrustExpectation, Verdict, verify};
use st_verify::{TrustDir, UnixTime};

use crate::client::AgentClient;

/// What the checker trusts and expects (files named on the command line).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The trust policy directory stboot must have used.
    pub trust_policy: PathBuf,
    /// PEM files of TPM vendor CAs (self-issued: anchors; others: intermediates).
    pub vendor_cas: Vec<PathBuf>,
    /// A Sigsum policy the package must be logged under.
    pub sigsum_policy: Option<PathBuf>,
    /// A list of released archive SHA-256s (hex, one a line).
    pub release_list: Option<PathBuf>,
}

/// The command-line flags naming the agent and what the checker trusts (`stattest check`,
/// `stmgr deploy authorize`).
#[derive(clap::Args, Debug, Clone)]
pub struct TrustArgs {
    /// The agent, HOST:PORT (its attestation endpoint, e.g. server.example:8443).
    #[arg(long)]
    pub agent: String,
    /// The trust policy directory the server's stboot must have used (trust_policy.json,
    /// ospkg_signing_root.pem, tls_roots.pem, ospkg_trust_policy).
    #[arg(long, value_name = "DIR")]
    pub trust_policy: PathBuf,
    /// TPM vendor CA certificates (PEM; self-issued ones are anchors, others intermediates).
    /// Repeatable.
    #[arg(long, value_name = "FILE", required = true)]
    pub vendor_ca: Vec<PathBuf>,
    /// Require the OS package to be Sigsum-logged under this policy.
    #[arg(long, value_name = "FILE")]
    pub sigsum_policy: Option<PathBuf>,
    /// Require the OS package's archive SHA-256 to be on this list (hex, one a line).
    #[arg(long, value_name = "FILE")]
    pub release_list: Option<PathBuf>,
}

impl TrustArgs {
    /// What the flags name.
    pub fn trust(&self) -> Trust {
        Trust {
            trust_policy: self.trust_policy.clone(),
            vendor_cas: self.vendor_ca.clone(),
            sigsum_policy: self.sigsum_policy.clone(),
            release_list: self.release_list.clone(),
        }
    }
}

/// A fresh attestation with what the checker sent (only a checker that made `secret` itself
/// learns from it that the AK is on the EK's TPM).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The attestation as received.
    pub attestation: Attestation,
    /// Its JSON bytes.
    pub attestation_json: Vec<u8>,
    /// The verdict.
    pub verdict: Verdict,
    /// The agent's TLS certificate seen on the connection.
    pub tls_certificate: Vec<u8>,
    /// How long each part took.
    pub timings: Timings,
}

/// Wall-clock time of each part of [`check`] (`stattest check --timings`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Loading the trust policy, vendor CAs, Sigsum policy and release list.
    pub load: Duration,
    /// `GET keys`: TCP, TLS handshake, request, the answer parsed.
    pub keys: Duration,
    /// Making the credential for the AK under the EK (host only).
    pub challenge: Duration,
    /// `POST quote`: TCP, TLS, the agent's credential activation and quote in the TPM, the
    /// answer parsed.
    pub quote: Duration,
    /// Verifying the attestation (`st_attest::verify`, once per service key checked).
    pub verify: Duration,
}

impl Timings {
    /// One line: `load X ms, keys X ms, challenge X ms, quote X ms, verify X ms, total X ms`.
    pub fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "load {:.1} ms, keys {:.1} ms, challenge {:.1} ms, quote {:.1} ms, verify {:.1} ms, total {:.1} ms",
            ms(self.load),
            ms(self.keys),
            ms(self.challenge),
            ms(self.quote),
            ms(self.verify),
            ms(self.load + self.keys + self.challenge + self.quote + self.verify)
        )
    }
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if out.len() as u64 > max {
        return Err(format!("{}: over {max} bytes", path.display()));
    }
    Ok(out)
}

/// The trust policy directory through the one loader.
pub fn load_trust_dir(dir: &Path) -> Result<TrustDir, String> {
    TrustDir::load(|name, max| -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        let file = match std::fs::File::open(dir.join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // One byte over the cap is enough for TrustDir to name the file as too large.
        let mut bytes = Vec::new();
        file.take(max as u64 + 1).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    })
    .map_err(|e| format!("trust policy directory {}: {e}", dir.display()))
}

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    UnixTime::from_secs(secs)
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "no randomness".to_owned())?;
    Ok(b)
}

/// SHA-256 of the DER SubjectPublicKeyInfo of a certificate.
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("the agent's TLS certificate: {e}"))?;
    let mut out = [0u8; 32];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw).as_ref(),
    );
    Ok(out)
}

/// Attest the agent at `addr` and verify it; `service_key`: a key the caller will use besides
/// the TLS key of this connection (which is always checked against the binding).
pub fn check(addr: &str, trust: &Trust, wireguard: Option<[u8; 32]>) -> Result<Checked, String> {
    let mut timings = Timings::default();
    let mut t = Instant::now();
    let mut lap = |slot: &mut Duration| {
        let now = Instant::now();
        *slot = now - t;
        t = now;
    };
    let dir = load_trust_dir(&trust.trust_policy)?;
    let mut ca_pem = Vec::new();
    for f in &trust.vendor_cas {
        ca_pem.extend(read(f, 1 << 20)?);
        ca_pem.push(b'\n');
    }
    let vendor_cas = VendorCas::from_pem(&ca_pem).map_err(|e| format!("--vendor-ca: {e}"))?;
    let sigsum = match &trust.sigsum_policy {
        Some(p) => Some(
            st_sigsum::Policy::parse(&read(p, 1 << 20)?)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let releases = match &trust.release_list {
        Some(p) => {
            let text = String::from_utf8(read(p, 16 << 20)?)
                .map_err(|_| format!("{}: not UTF-8", p.display()))?;
            Some(ReleaseList::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    lap(&mut timings.load);
    let client = AgentClient::new(addr)?;
    let keys_reply = client.request("GET", "/st/attest/v1/keys", None)?;
    if keys_reply.status != 200 {
        return Err(format!(
            "{addr}: GET keys: HTTP {}: {}",
            keys_reply.status,
            String::from_utf8_lossy(&keys_reply.body).trim_end()
        ));
    }
    let keys = Keys::from_json(&keys_reply.body).map_err(|e| format!("{addr}: keys: {e}"))?;
    lap(&mut timings.keys);
    let nonce: [u8; 32] = random()?;
    let secret: [u8; 32] = random()?;
    let randomness = CredentialRandomness {
        seed: random()?,
        oaep_seed: random()?,
    };
    let req = challenge(&keys, &nonce, &secret, &randomness)
        .map_err(|e| format!("{addr}: making the credential: {e}"))?;
    let body = req.to_json();
    lap(&mut timings.challenge);
    let reply = client.request("POST", "/st/attest/v1/quote", Some(&body))?;
    if reply.status != 200 {
        return Err(format!(
            "{addr}: POST quote: HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body).trim_end()
        ));
    }
    let attestation =
        Attestation::from_json(&reply.body).map_err(|e| format!("{addr}: attestation: {e}"))?;
    lap(&mut timings.quote);
    let tls_certificate = client
        .server_certificate()
        .ok_or("the agent presented no certificate")?;
    let tls_key = ServiceKey::TlsSpkiSha256(spki_sha256(&tls_certificate)?);
    let exp = |service_key| Expectations {
        nonce: &nonce,
        secret: &secret,
        vendor_cas: &vendor_cas,
        trust: TrustExpectation::Dir(&dir),
        sigsum: sigsum.as_ref(),
        releases: releases.as_ref(),
        service_key: Some(service_key),
        now: now(),
    };
    let verdict = verify(&attestation, &exp(tls_key)).map_err(|e| format!("refused: {e}"))?;
    if let Some(wg) = wireguard {
        verify(&attestation, &exp(ServiceKey::WireGuard(wg)))
            .map_err(|e| format!("refused: {e}"))?;
    }
    lap(&mut timings.verify);
    Ok(Checked {
        attestation,
        attestation_json: reply.body,
        verdict,
        tls_certificate,
        timings,
    })
}

/// A WireGuard public key given as base64.
pub fn wireguard_key(text: &str) -> Result<[u8; 32], String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("--wireguard-key {text:?}: 32 bytes of base64"))
}

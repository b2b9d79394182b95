//! The boot flow, as one readable sequence over an [`Env`] that performs the effects.
//!
//! ```text
//! trust policy (initramfs) -> host config (initramfs file, else EFI variable, else the
//! provisioning fallback) -> network -> for each URL: descriptor, archive (hashed while it
//! arrives), verify -> first package that passes is returned, ready to boot
//! ```
//! Nothing here boots anything: the caller gets a [`Ready`] package (only obtainable from a
//! verified one) or a [`Failure`] with one line per attempt.

use crate::fetch::{self, FetchError, Redactor, Transport};
use crate::options::Options;
use st_format::archive::ArchiveLimits;
use st_format::limits::{
    MAX_DESCRIPTOR_BYTES, MAX_HOST_CONFIG_BYTES, MAX_ROOTS_FILE_BYTES, MAX_TRUST_POLICY_BYTES,
};
use st_format::{Descriptor, FetchMethod, HostConfig, TrustPolicy};
use st_verify::{
    HashedArchive, HashingBuffer, Policy, SigningRoots, Threshold, UnixTime, VerifiedOsPackage,
    VerifyError, parse_certificate_pems,
};
use std::fmt;
use std::time::{Duration, Instant};
use url::Url;

/// Where the stboot image keeps its configuration (the reference's layout).
pub mod paths {
    /// Trust policy directory.
    pub const TRUST_POLICY_DIR: &str = "/etc/trust_policy";
    /// Host config inside the initramfs.
    pub const HOST_CONFIG: &str = "/etc/host_configuration.json";
    /// Directory of OS packages for the initramfs fetch method (pointer paths are relative to /).
    pub const ROOT: &str = "/";
}

/// Largest archive stboot downloads: the zip format without ZIP64 ends at 4 GiB.
pub const MAX_ARCHIVE_BYTES: u64 = u32::MAX as u64;

/// The effects the flow needs. [`crate::platform`]'s `FileEnv` does them for real (PID 1 and
/// `--dry-run`); tests fake them.
pub trait Env {
    /// A file of the trust policy directory (`trust_policy.json`, ...); `None` when absent.
    fn trust_policy_file(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>, String>;
    /// How to name the trust policy directory in messages.
    fn trust_policy_dir(&self) -> String {
        paths::TRUST_POLICY_DIR.to_string()
    }
    /// `/etc/host_configuration.json` of the initramfs; `None` when absent.
    fn initramfs_host_config(&self) -> Result<Option<Vec<u8>>, String>;
    /// How to name that file in messages.
    fn host_config_path(&self) -> String {
        paths::HOST_CONFIG.to_string()
    }
    /// The `STHostConfig` EFI variable's data; `None` when absent or no EFI.
    fn efi_host_config(&self) -> Result<Option<Vec<u8>>, String>;
    /// A file below the initramfs root (initramfs fetch method), e.g. `ospkg/x.zip`.
    fn initramfs_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, String>;
    /// Bring up the network as the host config says; a one-line summary on success.
    fn setup_network(&mut self, hc: &HostConfig, opts: &Options) -> Result<String, String>;
    /// A transport trusting exactly these TLS roots (DER); what it logs goes through `redactor`.
    fn transport(
        &mut self,
        tls_roots: &[Vec<u8>],
        opts: &Options,
        redactor: &Redactor,
    ) -> Box<dyn Transport>;
    /// Wait between rounds over the URL list.
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    /// The time certificates are checked against.
    fn now(&self) -> UnixTime;
    /// The largest archive this machine can boot (it must fit in memory together with the
    /// extracted initramfs and the kernel's copies).
    fn archive_cap(&self) -> u64 {
        MAX_ARCHIVE_BYTES
    }
}

/// Where time went, for the summary line and the benchmark.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    /// Bringing up the network.
    pub network: Duration,
    /// Downloading descriptors (all attempts).
    pub descriptor: Duration,
    /// Downloading the archive that was booted (hashing included: it happens as bytes arrive).
    pub archive: Duration,
    /// Bytes of that archive.
    pub archive_bytes: u64,
    /// Verification after the last byte arrived.
    pub verify: Duration,
}

/// A verified package, ready to boot. Only [`run`] makes one, from a [`VerifiedOsPackage`].
pub struct Ready {
    /// The verification result (report, manifest, entries).
    pub verified: VerifiedOsPackage,
    /// The archive bytes the entries are read from.
    pub archive: HashedArchive,
    /// Where it came from (URL without credentials, or initramfs path).
    pub source: String,
    /// Where time went.
    pub timings: Timings,
}

/// Why nothing can be booted: the stage that stopped the flow and every attempt.
#[derive(Debug)]
pub struct Failure {
    /// What stopped the boot.
    pub reason: String,
    /// One line per failed attempt (URL or file and why).
    pub attempts: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        for a in &self.attempts {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

fn fail(reason: impl Into<String>) -> Failure {
    Failure {
        reason: reason.into(),
        attempts: Vec::new(),
    }
}

/// The trust policy directory, parsed.
pub struct Trust {
    /// `trust_policy.json`.
    pub policy: TrustPolicy,
    /// `ospkg_signing_root.pem`.
    pub roots: SigningRoots,
    /// `tls_roots.pem` (DER), empty when the file is absent.
    pub tls_roots: Vec<Vec<u8>>,
}

fn load_trust(env: &dyn Env) -> Result<Trust, Failure> {
    let dir = env.trust_policy_dir();
    let read = |name: &str, max: usize| -> Result<Vec<u8>, Failure> {
        env.trust_policy_file(name, max)
            .map_err(|e| fail(format!("{dir}/{name}: {e}")))?
            .ok_or_else(|| fail(format!("{dir}/{name}: missing")))
    };
    let policy = TrustPolicy::from_json(&read("trust_policy.json", MAX_TRUST_POLICY_BYTES)?)
        .map_err(|e| fail(format!("{dir}/trust_policy.json: {e}")))?;
    let roots = SigningRoots::from_pem(&read("ospkg_signing_root.pem", MAX_ROOTS_FILE_BYTES)?)
        .map_err(|e| fail(format!("{dir}/ospkg_signing_root.pem: {e}")))?;
    let tls_roots = match env
        .trust_policy_file("tls_roots.pem", MAX_ROOTS_FILE_BYTES)
        .map_err(|e| fail(format!("{dir}/tls_roots.pem: {e}")))?
    {
        Some(bytes) => usable_tls_roots(
            &dir,
            parse_certificate_pems(&bytes)
                .map_err(|e| fail(format!("{dir}/tls_roots.pem: {e}")))?,
            env.now(),
        ),
        None => Vec::new(),
    };
    Ok(Trust {
        policy,
        roots,
        tls_roots,
    })
}

/// The certificates of `tls_roots.pem` that can be trusted at `now`: as the reference's Go
/// verifier, an expired or not yet valid certificate is not used (each dropped one is logged).
fn usable_tls_roots(dir: &str, ders: Vec<Vec<u8>>, now: UnixTime) -> Vec<Vec<u8>> {
    let total = ders.len();
    let usable: Vec<Vec<u8>> = ders
        .into_iter()
        .enumerate()
        .filter_map(
            |(i, der)| match st_verify::certificate_valid_at(&der, now) {
                Ok(_) => Some(der),
                Err(e) => {
                    log::warn!("{dir}/tls_roots.pem: certificate {i}: {e}; not trusted");
                    None
                }
            },
        )
        .collect();
    if usable.is_empty() {
        log::error!("{dir}/tls_roots.pem: none of its {total} certificate(s) is valid now ({now})");
    }
    usable
}

/// The host config by the reference's precedence: initramfs file, else EFI variable, else the
/// provisioning fallback. Unlike the reference, a broken initramfs file does not hide a good
/// EFI variable: it is reported and the next source is tried.
fn load_host_config(env: &dyn Env) -> Result<(HostConfig, String), Failure> {
    let mut problems = Vec::new();
    match env.initramfs_host_config() {
        Ok(Some(bytes)) => match HostConfig::from_json(&bytes) {
            Ok(hc) => return Ok((hc, env.host_config_path())),
            Err(e) => problems.push(format!("{}: {e}", env.host_config_path())),
        },
        Ok(None) => {}
        Err(e) => problems.push(format!("{}: {e}", env.host_config_path())),
    }
    match env.efi_host_config() {
        Ok(Some(bytes)) if bytes.len() <= MAX_HOST_CONFIG_BYTES => {
            match HostConfig::from_json(&bytes) {
                Ok(hc) => {
                    for p in &problems {
                        log::error!("{p}; using the EFI variable instead");
                    }
                    return Ok((hc, "EFI variable STHostConfig".to_string()));
                }
                Err(e) => problems.push(format!("EFI variable STHostConfig: {e}")),
            }
        }
        Ok(Some(bytes)) => problems.push(format!(
            "EFI variable STHostConfig: {} bytes, over the {MAX_HOST_CONFIG_BYTES}-byte limit",
            bytes.len()
        )),
        Ok(None) => {}
        Err(e) => problems.push(format!("EFI variable STHostConfig: {e}")),
    }
    if problems.is_empty() {
        log::warn!(
            "no host config in the initramfs or EFI NVRAM: PROVISION MODE (provision.zip from the initramfs)"
        );
        return Ok((
            HostConfig::provisioning_fallback(),
            "provisioning fallback".to_string(),
        ));
    }
    Err(Failure {
        reason: "no usable host config".into(),
        attempts: problems,
    })
}

/// Resolve `os_pkg_url` against the descriptor's URL (RFC 3986; st-1.1+ allows relative).
pub fn archive_url(descriptor_url: &Url, os_pkg_url: &str) -> Result<Url, String> {
    if os_pkg_url.is_empty() {
        return Err("descriptor has an empty os_pkg_url".into());
    }
    let url = descriptor_url
        .join(os_pkg_url)
        .map_err(|e| format!("os_pkg_url {os_pkg_url:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "os_pkg_url {os_pkg_url:?}: scheme {other:?} is not http or https"
        )),
    }
}

fn describe_rejection(e: &VerifyError) -> String {
    match e {
        VerifyError::ThresholdNotMet { report } => {
            let reasons: Vec<String> = report
                .outcomes
                .iter()
                .filter_map(|o| {
                    o.verdict
                        .as_ref()
                        .err()
                        .map(|r| format!("signature {}: {r}", o.index))
                })
                .collect();
            format!(
                "rejected: {} valid of {} signatures, {} required{}{}",
                report.valid(),
                report.found(),
                report.threshold,
                if reasons.is_empty() { "" } else { "; " },
                reasons.join("; ")
            )
        }
        other => format!("rejected: {other}"),
    }
}

fn policy_of<'a>(trust: &'a Trust, now: UnixTime, limits: &'a ArchiveLimits) -> Policy<'a> {
    Policy {
        roots: &trust.roots,
        threshold: Threshold::AtLeast(trust.policy.threshold()),
        now,
        limits,
    }
}

/// Fetch and verify the package behind one descriptor URL.
#[allow(clippy::too_many_arguments)]
fn try_url(
    transport: &mut dyn Transport,
    archive_cap: u64,
    url: &Url,
    trust: &Trust,
    policy: &Policy<'_>,
    opts: &Options,
    deadline: Instant,
    timings: &mut Timings,
    red: &Redactor,
) -> Result<Ready, String> {
    let shown = red.url(url);
    if url.scheme() == "https" && trust.tls_roots.is_empty() {
        return Err(
            "https URL but the trust policy has no usable TLS root (tls_roots.pem missing, or \
             none of its certificates valid now)"
                .into(),
        );
    }
    if url.scheme() == "http" {
        log::warn!("{shown}: plain HTTP; signatures protect the package, not its privacy");
    }
    log::info!("fetching descriptor {shown}");
    let t = Instant::now();
    let mut bytes = Vec::new();
    let got = fetch::with_retries(
        &shown,
        opts.attempts_per_url,
        opts.backoff,
        deadline,
        || {
            bytes.clear();
            transport.get(url, MAX_DESCRIPTOR_BYTES as u64, deadline, &mut bytes)
        },
    );
    timings.descriptor += t.elapsed();
    let from = got.map_err(|e| format!("descriptor: {e}"))?.url;
    if from != *url {
        log::info!("descriptor from {}", red.url(&from));
    }
    let descriptor = Descriptor::from_json(&bytes).map_err(|e| e.to_string())?;
    let zip_url = archive_url(url, descriptor.os_pkg_url())?;
    let zip_shown = red.url(&zip_url);
    if zip_url.scheme() == "https" && trust.tls_roots.is_empty() {
        return Err(format!(
            "{zip_shown}: https URL but the trust policy has no usable TLS root (tls_roots.pem)"
        ));
    }
    log::info!("fetching archive {zip_shown}");
    let t = Instant::now();
    let mut sink = HashingBuffer::default();
    let got = fetch::with_retries(
        &zip_shown,
        opts.attempts_per_url,
        opts.backoff,
        deadline,
        || {
            sink = HashingBuffer::default();
            transport.get(&zip_url, archive_cap, deadline, &mut sink)
        },
    );
    let transfer = t.elapsed();
    let fetched = got.map_err(|e| format!("archive {zip_shown}: {e}"))?;
    let (size, zip_shown) = (fetched.len, red.url(&fetched.url));
    let rate = size as f64 / transfer.as_secs_f64().max(1e-6) / 1e6;
    log::info!(
        "archive: {size} bytes from {zip_shown} in {:.2} s ({rate:.1} MB/s), hashed on arrival",
        transfer.as_secs_f64()
    );
    let t = Instant::now();
    let archive = sink
        .finish()
        .map_err(|e| format!("archive {zip_shown}: storing: {e}"))?;
    let verified = st_verify::verify_hashed(&descriptor, &archive, policy)
        .map_err(|e| format!("archive {zip_shown}: {}", describe_rejection(&e)))?;
    timings.verify = t.elapsed();
    timings.archive = transfer;
    timings.archive_bytes = size;
    Ok(Ready {
        verified,
        archive,
        source: zip_shown,
        timings: timings.clone(),
    })
}

fn from_initramfs(
    env: &dyn Env,
    hc: &HostConfig,
    policy: &Policy<'_>,
    timings: &Timings,
) -> Result<Ready, Failure> {
    let (json, zip) = hc
        .initramfs_paths()
        .map_err(|e| fail(format!("ospkg_pointer: {e}")))?;
    let read = |path: &str, max: u64| -> Result<Vec<u8>, Failure> {
        env.initramfs_file(path, max)
            .map_err(|e| fail(format!("/{path}: {e}")))?
            .ok_or_else(|| fail(format!("/{path}: missing from the stboot image")))
    };
    log::info!("OS package from the initramfs: /{zip}");
    let descriptor = Descriptor::from_json(&read(&json, MAX_DESCRIPTOR_BYTES as u64)?)
        .map_err(|e| fail(format!("/{json}: {e}")))?;
    let t = Instant::now();
    let archive = HashedArchive::new(read(&zip, MAX_ARCHIVE_BYTES)?);
    let verified = st_verify::verify_hashed(&descriptor, &archive, policy)
        .map_err(|e| fail(format!("/{zip}: {}", describe_rejection(&e))))?;
    let timings = Timings {
        verify: t.elapsed(),
        archive_bytes: archive.bytes().len() as u64,
        ..timings.clone()
    };
    Ok(Ready {
        verified,
        archive,
        source: format!("/{zip}"),
        timings,
    })
}

/// Everything from configuration to a verified package. Nothing unverified leaves this
/// function: [`Ready`] holds a [`VerifiedOsPackage`].
pub fn run(env: &mut dyn Env, opts: &Options) -> Result<Ready, Failure> {
    let trust = load_trust(env)?;
    log::info!(
        "trust policy: threshold {}, fetch method {}, {} signing root(s), {} TLS root(s)",
        trust.policy.threshold(),
        trust.policy.fetch_method().as_str(),
        trust.roots.len(),
        trust.tls_roots.len()
    );
    let (hc, source) = load_host_config(env)?;
    log::info!("host config from {source}");
    if let Some(d) = hc.description() {
        log::info!("host config description: {d}");
    }
    let limits = ArchiveLimits::default();
    let now = env.now();
    let policy = policy_of(&trust, now, &limits);
    let mut timings = Timings::default();
    let method = if hc.is_provisioning_fallback() {
        FetchMethod::Initramfs
    } else {
        trust.policy.fetch_method()
    };
    if method == FetchMethod::Initramfs {
        return from_initramfs(env, &hc, &policy, &timings);
    }

    let t = Instant::now();
    let net = env
        .setup_network(&hc, opts)
        .map_err(|e| fail(format!("network setup failed: {e}")))?;
    timings.network = t.elapsed();
    log::info!("network: {net} ({:.2} s)", timings.network.as_secs_f64());

    let urls = hc
        .descriptor_urls()
        .map_err(|e| fail(format!("ospkg_pointer: {e}")))?;
    let red = Redactor::for_host_config(&hc, &urls);
    let deadline = Instant::now() + opts.deadline;
    let archive_cap = env.archive_cap();
    let mut transport = env.transport(&trust.tls_roots, opts, &red);
    // The last failure of each URL, and the round it happened in.
    let mut last: Vec<Option<(u32, String)>> = vec![None; urls.len()];
    let mut pause = Pause::new(opts.backoff, opts.round_backoff_max);
    let mut round = 1u32;
    loop {
        for (i, url) in urls.iter().enumerate() {
            if Instant::now() >= deadline {
                break;
            }
            match try_url(
                transport.as_mut(),
                archive_cap,
                url,
                &trust,
                &policy,
                opts,
                deadline,
                &mut timings,
                &red,
            ) {
                Ok(ready) => {
                    for (u, l) in urls.iter().zip(&last) {
                        if let Some((r, e)) = l {
                            log::info!("(earlier attempt, round {r}) {}: {e}", red.url(u));
                        }
                    }
                    return Ok(ready);
                }
                Err(e) => {
                    let e = red.text(&e);
                    log::warn!("{}: {e}", red.url(url));
                    if let Some(slot) = last.get_mut(i) {
                        *slot = Some((round, e));
                    }
                }
            }
        }
        let wait = pause.next(jitter_seed(round));
        let left = deadline.saturating_duration_since(Instant::now());
        if wait >= left {
            break;
        }
        log::warn!(
            "round {round}: all {} URL(s) failed; next round in {:.1} s ({} s left before the deadline, stboot.deadline)",
            urls.len(),
            wait.as_secs_f64(),
            left.as_secs()
        );
        env.sleep(wait);
        round += 1;
    }
    let attempts = urls
        .iter()
        .zip(&last)
        .map(|(u, l)| match l {
            Some((r, e)) if round > 1 => format!("{}: {e} (round {r} of {round})", red.url(u)),
            Some((_, e)) => format!("{}: {e}", red.url(u)),
            None => format!("{}: not tried: {}", red.url(u), FetchError::Deadline),
        })
        .collect();
    Err(Failure {
        reason: format!(
            "all {} URL(s) failed, {round} round(s) before the {} s deadline (stboot.deadline)",
            urls.len(),
            opts.deadline.as_secs()
        ),
        attempts,
    })
}

/// The pause between rounds over the URL list: capped exponential backoff with jitter, so a
/// fleet that rebooted together (a power cut, a switch that forwards nothing for 30 s after
/// link-up) does not come back to the mirrors in step.
#[derive(Debug, Clone)]
pub struct Pause {
    next: Duration,
    cap: Duration,
}

impl Pause {
    /// Starting at `first` (at least 1 s), doubling up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        let first = first.max(Duration::from_secs(1));
        Self {
            next: first,
            cap: cap.max(first),
        }
    }

    /// The next pause: the current step scaled into [1/2, 1] by `seed`, then the step doubles.
    pub fn next(&mut self, seed: u64) -> Duration {
        let step = self.next.min(self.cap);
        self.next = step.saturating_mul(2).min(self.cap);
        // 1/2 + (seed mod 1000)/2000 of the step.
        let permille = 500 + (seed % 1000) / 2;
        step.mul_f64(permille as f64 / 1000.0)
    }
}

/// A seed that differs between machines and boots (std's per-process random hash keys; no
/// blocking on the kernel's pool, which is all jitter needs).
fn jitter_seed(round: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(round);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_jitter_into_the_upper_half() {
        let mut p = Pause::new(Duration::from_secs(2), Duration::from_secs(10));
        let millis: Vec<u128> = (0..5).map(|_| p.next(0).as_millis()).collect();
        // seed 0: half of each step (2, 4, 8, 10, 10 s).
        assert_eq!(millis, [1000, 2000, 4000, 5000, 5000]);
        // The largest seed: just under the whole step.
        let mut p = Pause::new(Duration::from_secs(2), Duration::from_secs(10));
        let top = p.next(999);
        assert!(
            top > Duration::from_millis(1990) && top <= Duration::from_secs(2),
            "{top:?}"
        );
        // A zero backoff still pauses at least half a second; a cap below the start is raised.
        let mut p = Pause::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(p.next(0), Duration::from_millis(500));
        assert_eq!(p.next(0), Duration::from_millis(500));
    }

    #[test]
    fn jitter_seeds_differ() {
        let seeds: std::collections::BTreeSet<u64> = (0..20).map(|_| jitter_seed(1)).collect();
        assert!(seeds.len() > 1);
    }
}

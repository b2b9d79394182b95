//! The boot flow, as one readable sequence over an [`Env`] that performs the effects.
//!
//! ```text
//! trust policy (initramfs) -> host config (initramfs file, else EFI variable, else the
//! provisioning fallback) -> network -> for each URL: descriptor, archive (hashed while it
//! arrives), verify -> first package that passes is returned, ready to boot
//! ```
//! [`run`] boots nothing: the caller gets a [`Ready`] package (only obtainable from a verified
//! one) or a [`Failure`]. [`boot`] is the tail after verification, over the same [`Env`]:
//!
//! ```text
//! extract (kernel, initramfs: CRC-checked into the Env's buffers) -> archive freed ->
//! kexec load -> exec
//! ```
//! Every error is typed ([`FlowError`], with its [`Stage`]) and rendered once, in the log line
//! that carries a stable [`markers`] prefix.

use crate::decrypt::ArchiveSink;
use crate::fetch::{self, FetchError, Redactor, Transport};
use crate::options::{Options, TpmPolicy};
use st_format::archive::{ArchiveError, ArchiveLimits};
use st_format::host_config::OsPkgPointerError;
use st_format::image::{effective_fetch_method, trust_files};
use st_format::limits::{MAX_DESCRIPTOR_BYTES, MAX_HOST_CONFIG_BYTES};
use st_format::{Descriptor, DescriptorError, FetchMethod, HostConfig};
use st_verify::{
    HashedArchive, Policy, TrustDir, TrustDirError, UnixTime, VerifiedOsPackage, VerifyError,
};
use std::fmt;
use std::io;
use std::time::{Duration, Instant};
use url::Url;

/// Where stboot, as PID 1, finds the stboot image's files: the image contract
/// ([`st_format::image::paths`]) rooted at `/`.
pub mod paths {
    /// Trust policy directory.
    pub const TRUST_POLICY_DIR: &str = "/etc/trust_policy";
    /// Host config inside the initramfs.
    pub const HOST_CONFIG: &str = "/etc/host_configuration.json";
    /// Directory of OS packages for the initramfs fetch method (pointer paths are relative to /).
    pub const ROOT: &str = "/";

    #[cfg(test)]
    #[test]
    fn these_are_the_image_contract_rooted_at_slash() {
        use st_format::image::paths as image;
        assert_eq!(TRUST_POLICY_DIR, format!("/{}", image::TRUST_POLICY_DIR));
        assert_eq!(HOST_CONFIG, format!("/{}", image::HOST_CONFIG));
    }
}

/// Stable prefixes of the console lines that mark each step, for scripts and the e2e suite to
/// match (the prose after them may change; these do not).
pub mod markers {
    /// A package passed verification: `ST:VERIFIED <source> ...`.
    pub const VERIFIED: &str = "ST:VERIFIED";
    /// About to jump into the OS kernel: `ST:KEXEC <kernel> ...`.
    pub const KEXEC: &str = "ST:KEXEC";
    /// Nothing will be booted: `ST:FAILED stage=<stage> <reason>`.
    pub const FAILED: &str = "ST:FAILED";
    /// The measurements are in the TPM: `ST:MEASURED <n> events into <tpm> (<banks>), sha256
    /// pcr12=<hex> pcr13=<hex> pcr14=<hex>` (the values read back after extending).
    pub const MEASURED: &str = "ST:MEASURED";
    /// Normal boot failed and the provisioning package from the image is tried next:
    /// `ST:PROVISIONING ...`.
    pub const PROVISIONING: &str = "ST:PROVISIONING";
    /// The console offers Ctrl-C to boot the provisioning package:
    /// `ST:PROVISION-WINDOW <seconds> s ...`.
    pub const PROVISION_WINDOW: &str = "ST:PROVISION-WINDOW";
    /// Recovery (reboot or power-off) starts: `ST:RECOVERY <what> ...`.
    pub const RECOVERY: &str = "ST:RECOVERY";
}

/// An error from the environment's effects (file, EFI, network, memory, kexec), kept typed
/// (downcast to `std::io::Error`, `st_host::efi::EfiError`, ...) until the log line renders it.
pub type EnvError = Box<dyn std::error::Error + Send + Sync>;

/// Largest archive stboot downloads: the zip format without ZIP64 ends at 4 GiB.
pub const MAX_ARCHIVE_BYTES: u64 = u32::MAX as u64;

/// The effects the flow needs. [`crate::platform`]'s `FileEnv` does them for real (PID 1 and
/// `--dry-run`); tests fake them.
pub trait Env {
    /// A file of the trust policy directory (`trust_policy.json`, ...); `None` when absent.
    fn trust_policy_file(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>, EnvError>;
    /// How to name the trust policy directory in messages.
    fn trust_policy_dir(&self) -> String {
        paths::TRUST_POLICY_DIR.to_string()
    }
    /// `/etc/host_configuration.json` of the initramfs; `None` when absent.
    fn initramfs_host_config(&self) -> Result<Option<Vec<u8>>, EnvError>;
    /// How to name that file in messages.
    fn host_config_path(&self) -> String {
        paths::HOST_CONFIG.to_string()
    }
    /// The `STHostConfig` EFI variable's data; `None` when absent or no EFI.
    fn efi_host_config(&self) -> Result<Option<Vec<u8>>, EnvError>;
    /// A file below the initramfs root (initramfs fetch method), e.g. `ospkg/x.zip`.
    fn initramfs_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, EnvError>;
    /// Bring up the network as the host config says; a one-line summary on success.
    fn setup_network(&mut self, hc: &HostConfig, opts: &Options) -> Result<String, EnvError>;
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

    // The boot tail ([`boot`]).

    /// Fresh, empty buffers (memfds) for the kernel and the initramfs, in that order.
    fn image_buffers(&mut self) -> Result<[&mut dyn io::Write; 2], EnvError>;
    /// Load the buffers' kernel and initramfs with `cmdline` for the next kexec.
    fn kexec_load(&mut self, cmdline: &str) -> Result<(), EnvError>;
    /// Jump into the loaded kernel. Returns only on failure, with the reason.
    fn kexec_exec(&mut self) -> EnvError;
    /// The TPM: `Ok(None)` when the machine has none; an error when one exists but cannot be
    /// used.
    fn tpm(&mut self) -> Result<Option<&mut dyn Tpm>, EnvError> {
        Ok(None)
    }
    /// Where the kernel exposes it (`/sys/kernel/fake_pmem`, a patched kernel), hand the
    /// identity and event log over as the reference does; returns what to append to the OS
    /// command line. `Ok(None)` where there is no such interface.
    fn pmem_hand_off(&mut self, _identity: &[u8], _log: &[u8]) -> Result<Option<String>, EnvError> {
        Ok(None)
    }
}

/// The TPM as the boot needs it (TPM 2.0 commands of `st-tpm` through `st-host`'s device in
/// PID 1; fakes in tests). Algorithms are TPM_ALG_IDs.
pub trait Tpm {
    /// Where it is, for messages (e.g. `/dev/tpmrm0`).
    fn name(&self) -> String;
    /// The active PCR banks.
    fn active_banks(&mut self) -> Result<Vec<u16>, EnvError>;
    /// Extend `pcr` with one digest per bank.
    fn extend(&mut self, pcr: u32, digests: &[(u16, &[u8])]) -> Result<(), EnvError>;
    /// Read `pcr` in bank `alg`.
    fn read_pcr(&mut self, pcr: u32, alg: u16) -> Result<Vec<u8>, EnvError>;
    /// A whole NV index; `Ok(None)` when it is not defined.
    fn read_nv(&mut self, index: u32) -> Result<Option<Vec<u8>>, EnvError>;
}

/// Where the event log and identity appear in the booted OS's root file system: appended to
/// its initramfs as a second cpio archive, which every Linux kernel unpacks (no patch needed).
pub mod hand_off {
    /// Directory.
    pub const DIR: &str = "stboot";
    /// The TCG crypto-agile event log of stboot's measurements (layout: docs/measurements.md).
    pub const EVENT_LOG: &str = "stboot/eventlog.bin";
    /// The identity measured into PCR 14 (may be empty).
    pub const IDENTITY: &str = "stboot/identity";
    /// The OS package descriptor exactly as stboot received it (after decryption): its SHA-256
    /// is the descriptor event's digest, and it carries the signatures and Sigsum proofs, so an
    /// attestation agent in the OS can hand a verifier everything PCR 12 commits to.
    pub const DESCRIPTOR: &str = "stboot/descriptor.json";
    /// SHA-256 of the booted archive, lowercase hex and a newline: what the signatures sign.
    /// The archive event's log digest is `H(SHA-256(archive))`, so a verifier of the signatures
    /// needs this (and checks it against the event).
    pub const ARCHIVE_SHA256: &str = "stboot/archive.sha256";
}

/// Where time went, for the summary line and the benchmark.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    /// Loading kernel modules (before the flow; set by the caller).
    pub modules: Duration,
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
    /// Measuring into the TPM (identity read, extends, read-back).
    pub measure: Duration,
}

/// A verified package, ready to boot. Only [`run`] makes one, from a [`VerifiedOsPackage`],
/// which holds the archive bytes that were verified.
pub struct Ready {
    /// The verified package (report, layout, the archive itself).
    pub verified: VerifiedOsPackage,
    /// The descriptor, parsed (its re-serialisation is the descriptor event's data).
    pub descriptor: Descriptor,
    /// The descriptor's bytes as received (what the reference measures).
    pub descriptor_bytes: Vec<u8>,
    /// Where it came from (URL without credentials, or initramfs path).
    pub source: String,
    /// The trust policy directory it was verified under.
    pub trust: Trust,
    /// How the package was obtained (the trust policy's method, or `initramfs` for the
    /// provisioning pointer): the trust policy is measured with this method.
    pub fetch_method: FetchMethod,
    /// The archive's file name from its URL (network), `None` from the image.
    pub archive_name: Option<Vec<u8>>,
    /// Where time went.
    pub timings: Timings,
}

/// The step of the boot that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the trust policy directory.
    TrustPolicy,
    /// Finding a usable host config.
    HostConfig,
    /// Bringing up the network.
    Network,
    /// Fetching and verifying from the provisioning servers.
    Fetch,
    /// Reading and verifying the OS package carried in the image.
    Initramfs,
    /// Measuring into the TPM.
    Measure,
    /// Extracting the verified kernel and initramfs.
    Extract,
    /// Loading the kernel with kexec.
    KexecLoad,
    /// Jumping into the kernel.
    Kexec,
}

impl Stage {
    /// The stage's name in `ST:FAILED stage=<name>` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrustPolicy => "trust-policy",
            Self::HostConfig => "host-config",
            Self::Network => "network",
            Self::Fetch => "fetch",
            Self::Initramfs => "initramfs",
            Self::Measure => "measure",
            Self::Extract => "extract",
            Self::KexecLoad => "kexec-load",
            Self::Kexec => "kexec",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What reading the OS package carried in the image can run into.
#[derive(Debug, thiserror::Error)]
pub enum PackageFileError {
    /// The file is not in the image.
    #[error("missing from the stboot image")]
    Missing,
    /// It could not be read.
    #[error("{0}")]
    Read(#[source] EnvError),
    /// The descriptor is invalid.
    #[error("{0}")]
    Descriptor(#[source] DescriptorError),
    /// Verification refused the package.
    #[error("{}", describe_rejection(.0))]
    Rejected(#[source] VerifyError),
    /// An age-encrypted descriptor in the image: only downloaded packages are decrypted (the
    /// image holds the identities, so encrypting a package inside it protects nothing).
    #[error(
        "age-encrypted; only downloaded OS packages are decrypted, put the plaintext package in \
         the image"
    )]
    Encrypted,
}

/// Why nothing was (or will be) booted. [`FlowError::stage`] says where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The trust policy directory is unusable.
    #[error("{dir}/{source}")]
    TrustPolicy {
        /// The directory, as named in messages.
        dir: String,
        /// Which file and why.
        source: TrustDirError,
    },
    /// No host config source gave a usable config (each problem is an attempt).
    #[error("no usable host config")]
    HostConfig,
    /// The host config's `ospkg_pointer` is unusable for the fetch method.
    #[error("ospkg_pointer: {0}")]
    Pointer(#[source] OsPkgPointerError),
    /// The network could not be brought up.
    #[error("network setup failed: {0}")]
    Network(#[source] EnvError),
    /// Every URL failed in every round (each URL's last error is an attempt).
    #[error(
        "all {urls} URL(s) failed, {rounds} round(s) before the {deadline_secs} s deadline \
         (stboot.deadline)"
    )]
    AllUrlsFailed {
        /// URLs in the list.
        urls: usize,
        /// Rounds tried.
        rounds: u32,
        /// The deadline.
        deadline_secs: u64,
    },
    /// The OS package in the image is unusable.
    #[error("/{path}: {source}")]
    PackageFile {
        /// The path below the image root.
        path: String,
        /// Why.
        source: PackageFileError,
    },
    /// Measuring failed (a required TPM is absent, or the TPM failed a command).
    #[error("{0}")]
    Measure(#[source] MeasureError),
    /// No buffers for the kernel and initramfs.
    #[error("buffers for kernel and initramfs: {0}")]
    Buffers(#[source] EnvError),
    /// An entry failed its CRC-32 or size check while being extracted (nothing is loaded).
    #[error("{source_name}: extracting {entry}: {error}")]
    Extract {
        /// Where the package came from.
        source_name: String,
        /// The archive entry.
        entry: String,
        /// What was wrong.
        error: ArchiveError,
    },
    /// `kexec_file_load` refused the images.
    #[error("kexec load: {0}")]
    KexecLoad(#[source] EnvError),
    /// The jump into the new kernel returned.
    #[error("kexec: {0}")]
    Kexec(#[source] EnvError),
}

impl FlowError {
    /// The step that failed.
    pub fn stage(&self) -> Stage {
        match self {
            Self::TrustPolicy { .. } => Stage::TrustPolicy,
            Self::HostConfig | Self::Pointer(_) => Stage::HostConfig,
            Self::Network(_) => Stage::Network,
            Self::AllUrlsFailed { .. } => Stage::Fetch,
            Self::PackageFile { .. } => Stage::Initramfs,
            Self::Measure(_) => Stage::Measure,
            Self::Buffers(_) | Self::Extract { .. } => Stage::Extract,
            Self::KexecLoad(_) => Stage::KexecLoad,
            Self::Kexec(_) => Stage::Kexec,
        }
    }
}

/// Why measuring stopped the boot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// A TPM is required (by `stboot.tpm=required` or the trust policy's `tpm_required`) and
    /// there is none.
    #[error("no TPM, but {by} requires one: nothing boots unmeasured")]
    Required {
        /// What requires it.
        by: &'static str,
    },
    /// A TPM device exists but could not be opened.
    #[error("TPM: {0}")]
    Open(#[source] EnvError),
    /// The TPM failed a command.
    #[error("TPM {tpm}: {what}: {source}")]
    Command {
        /// The device.
        tpm: String,
        /// What was asked (e.g. "extending PCR 12 (0xa0000000)").
        what: String,
        /// The TPM's or the device's error.
        source: EnvError,
    },
    /// A TPM is required and an active bank cannot be computed by stboot.
    #[error("TPM {tpm}: active PCR bank 0x{alg:04x} is not supported, and {by} requires measuring")]
    UnsupportedBank {
        /// The device.
        tpm: String,
        /// The TPM_ALG_ID.
        alg: u16,
        /// What requires the TPM.
        by: &'static str,
    },
}

/// Why nothing can be booted: the error that stopped the flow and every attempt before it.
#[derive(Debug)]
pub struct Failure {
    /// What stopped the boot.
    pub error: Box<FlowError>,
    /// One line per failed attempt (URL or file and why), already redacted.
    pub attempts: Vec<String>,
}

impl Failure {
    /// The stage that failed.
    pub fn stage(&self) -> Stage {
        self.error.stage()
    }
}

impl From<FlowError> for Failure {
    fn from(error: FlowError) -> Self {
        Self {
            error: Box::new(error),
            attempts: Vec::new(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        for a in &self.attempts {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

/// The trust policy directory, parsed, with the TLS roots usable now.
pub struct Trust {
    /// The directory as loaded (policy, signing roots, every TLS root in the file).
    pub dir: TrustDir,
    /// The certificates of `tls_roots.pem` valid now (DER): what HTTPS trusts.
    pub tls_roots: Vec<Vec<u8>>,
}

fn load_trust(env: &dyn Env) -> Result<Trust, Failure> {
    let dir = TrustDir::load(|name, max| env.trust_policy_file(name, max)).map_err(|source| {
        FlowError::TrustPolicy {
            dir: env.trust_policy_dir(),
            source,
        }
    })?;
    let tls_roots = if dir.tls_roots_pem().is_some() {
        let file = format!("{}/{}", env.trust_policy_dir(), trust_files::TLS_ROOTS);
        let now = env.now();
        let usable = crate::tls::usable_roots(&file, dir.tls_roots().to_vec(), now);
        if usable.is_empty() {
            log::error!(
                "{file}: none of its {} certificate(s) is valid now ({now})",
                dir.tls_roots().len()
            );
        }
        usable
    } else {
        Vec::new()
    };
    Ok(Trust { dir, tls_roots })
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
        error: Box::new(FlowError::HostConfig),
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
            let reasons = report.skip_reasons("signature");
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
    trust.dir.verify_policy(now, limits)
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
) -> Result<Found, String> {
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
    let identities = trust.dir.decryption_identities();
    let (bytes, encrypted) =
        crate::decrypt::descriptor_plaintext(bytes, identities, MAX_DESCRIPTOR_BYTES)?;
    if encrypted {
        log::info!("descriptor was age-encrypted: decrypted");
    } else if identities.is_some() {
        log::info!("descriptor is not encrypted (accepted: signatures protect it)");
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
    let mut sink = ArchiveSink::new(identities);
    let got = fetch::with_retries(
        &zip_shown,
        opts.attempts_per_url,
        opts.backoff,
        deadline,
        || {
            sink = ArchiveSink::new(identities);
            transport.get(&zip_url, archive_cap, deadline, &mut sink)
        },
    );
    let transfer = t.elapsed();
    let fetched = got.map_err(|e| format!("archive {zip_shown}: {e}"))?;
    let (size, zip_shown) = (fetched.len, red.url(&fetched.url));
    let rate = size as f64 / transfer.as_secs_f64().max(1e-6) / 1e6;
    let t = Instant::now();
    let (archive, encrypted) = sink
        .finish()
        .map_err(|e| format!("archive {zip_shown}: {e}"))?;
    log::info!(
        "archive: {size} bytes from {zip_shown} in {:.2} s ({rate:.1} MB/s), {} on arrival",
        transfer.as_secs_f64(),
        if encrypted {
            "decrypted (age) and hashed"
        } else {
            "hashed"
        }
    );
    let verified = st_verify::verify_hashed(&descriptor, archive, policy)
        .map_err(|e| format!("archive {zip_shown}: {}", describe_rejection(&e)))?;
    timings.verify = t.elapsed();
    timings.archive = transfer;
    timings.archive_bytes = size;
    Ok(Found {
        verified,
        descriptor,
        descriptor_bytes: bytes,
        source: zip_shown,
        archive_name: Some(st_measure::archive_name_from_url_path(zip_url.path())),
    })
}

/// A verified package before it is paired with the trust policy it passed.
struct Found {
    verified: VerifiedOsPackage,
    descriptor: Descriptor,
    descriptor_bytes: Vec<u8>,
    source: String,
    archive_name: Option<Vec<u8>>,
}

fn from_initramfs(
    env: &dyn Env,
    hc: &HostConfig,
    policy: &Policy<'_>,
    timings: &mut Timings,
) -> Result<Found, Failure> {
    let (json, zip) = hc.initramfs_paths().map_err(FlowError::Pointer)?;
    let read = |path: &str, max: u64| -> Result<Vec<u8>, FlowError> {
        let error = |source| FlowError::PackageFile {
            path: path.to_string(),
            source,
        };
        env.initramfs_file(path, max)
            .map_err(|e| error(PackageFileError::Read(e)))?
            .ok_or_else(|| error(PackageFileError::Missing))
    };
    log::info!("OS package from the initramfs: /{zip}");
    let descriptor_bytes = read(&json, MAX_DESCRIPTOR_BYTES as u64)?;
    if st_age::is_encrypted(&descriptor_bytes) || st_age::is_armored(&descriptor_bytes) {
        return Err(FlowError::PackageFile {
            path: json,
            source: PackageFileError::Encrypted,
        }
        .into());
    }
    let descriptor =
        Descriptor::from_json(&descriptor_bytes).map_err(|e| FlowError::PackageFile {
            path: json.clone(),
            source: PackageFileError::Descriptor(e),
        })?;
    let t = Instant::now();
    let archive = HashedArchive::new(read(&zip, MAX_ARCHIVE_BYTES)?);
    timings.archive_bytes = archive.bytes().len() as u64;
    let verified = st_verify::verify_hashed(&descriptor, archive, policy).map_err(|e| {
        FlowError::PackageFile {
            path: zip.clone(),
            source: PackageFileError::Rejected(e),
        }
    })?;
    timings.verify = t.elapsed();
    Ok(Found {
        verified,
        descriptor,
        descriptor_bytes,
        source: format!("/{zip}"),
        archive_name: None,
    })
}

/// Provisioning mode (ST 1.1) after a failed normal boot: the provisioning package carried in
/// the image (`ospkg/provision.{json,zip}`, the provisioning fallback's paths), verified under
/// the same trust policy like any other package. `Ok(None)` when the image carries none.
pub fn provisioning(env: &mut dyn Env) -> Result<Option<Ready>, Failure> {
    if !has_provisioning_package(env) {
        return Ok(None);
    }
    let hc = HostConfig::provisioning_fallback();
    let trust = load_trust(env)?;
    let limits = ArchiveLimits::default();
    let policy = policy_of(&trust, env.now(), &limits);
    let mut timings = Timings::default();
    let found = from_initramfs(env, &hc, &policy, &mut timings)?;
    Ok(Some(Ready {
        verified: found.verified,
        descriptor: found.descriptor,
        descriptor_bytes: found.descriptor_bytes,
        source: found.source,
        fetch_method: effective_fetch_method(trust.dir.policy(), &hc),
        trust,
        archive_name: found.archive_name,
        timings,
    }))
}

/// Whether the image carries the provisioning package's descriptor.
pub fn has_provisioning_package(env: &dyn Env) -> bool {
    HostConfig::provisioning_fallback()
        .initramfs_paths()
        .ok()
        .and_then(|(json, _)| {
            env.initramfs_file(&json, MAX_DESCRIPTOR_BYTES as u64)
                .ok()
                .flatten()
        })
        .is_some()
}

impl Failure {
    /// Whether provisioning mode may follow: the normal path failed finding a package (host
    /// config, network, servers), not the trust policy (nothing can be verified without it) nor
    /// the provisioning package itself.
    pub fn allows_provisioning(&self) -> bool {
        matches!(
            self.stage(),
            Stage::HostConfig | Stage::Network | Stage::Fetch
        )
    }
}

/// Everything from configuration to a verified package. Nothing unverified leaves this
/// function: [`Ready`] holds a [`VerifiedOsPackage`].
pub fn run(env: &mut dyn Env, opts: &Options) -> Result<Ready, Failure> {
    let trust = load_trust(env)?;
    log::info!(
        "trust policy: threshold {}, fetch method {}, {} signing root(s), {} TLS root(s)",
        trust.dir.policy().threshold(),
        trust.dir.policy().fetch_method().as_str(),
        trust.dir.roots().len(),
        trust.tls_roots.len()
    );
    let (hc, source) = load_host_config(env)?;
    log::info!("host config from {source}");
    if let Some(d) = hc.description() {
        log::info!("host config description: {d}");
    }
    let mut timings = Timings::default();
    let found = find(env, opts, &trust, &hc, &mut timings)?;
    Ok(Ready {
        verified: found.verified,
        descriptor: found.descriptor,
        descriptor_bytes: found.descriptor_bytes,
        source: found.source,
        fetch_method: effective_fetch_method(trust.dir.policy(), &hc),
        trust,
        archive_name: found.archive_name,
        timings,
    })
}

/// The package to boot: from the image, or the first URL that gives a verified one.
fn find(
    env: &mut dyn Env,
    opts: &Options,
    trust: &Trust,
    hc: &HostConfig,
    timings: &mut Timings,
) -> Result<Found, Failure> {
    let limits = ArchiveLimits::default();
    let now = env.now();
    let policy = policy_of(trust, now, &limits);
    if effective_fetch_method(trust.dir.policy(), hc) == FetchMethod::Initramfs {
        return from_initramfs(env, hc, &policy, timings);
    }

    let t = Instant::now();
    let net = env.setup_network(hc, opts).map_err(FlowError::Network)?;
    timings.network = t.elapsed();
    log::info!("network: {net} ({:.2} s)", timings.network.as_secs_f64());

    let urls = hc.descriptor_urls().map_err(FlowError::Pointer)?;
    let red = Redactor::for_host_config(hc, &urls);
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
                trust,
                &policy,
                opts,
                deadline,
                timings,
                &red,
            ) {
                Ok(found) => {
                    for (u, l) in urls.iter().zip(&last) {
                        if let Some((r, e)) = l {
                            log::info!("(earlier attempt, round {r}) {}: {e}", red.url(u));
                        }
                    }
                    return Ok(found);
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
        error: Box::new(FlowError::AllUrlsFailed {
            urls: urls.len(),
            rounds: round,
            deadline_secs: opts.deadline.as_secs(),
        }),
        attempts,
    })
}

/// The tail of a boot: the verified kernel and initramfs are extracted (each entry's CRC-32 and
/// size checked as it streams) into the environment's buffers, the archive is freed, and the
/// images are loaded and executed. Returns only on failure; nothing that failed a check is ever
/// loaded.
///
/// `started` is when stboot started, for the timing line.
pub fn boot(env: &mut dyn Env, ready: Ready, opts: &Options, started: Instant) -> Failure {
    match boot_tail(env, ready, opts, started) {
        Ok(never) => match never {},
        Err(e) => e.into(),
    }
}

/// Never constructed: [`boot_tail`] only returns through its error.
enum Never {}

fn boot_tail(
    env: &mut dyn Env,
    ready: Ready,
    opts: &Options,
    started: Instant,
) -> Result<Never, FlowError> {
    let t = Instant::now();
    let required = if opts.tpm == TpmPolicy::Required {
        Some("stboot.tpm=required")
    } else if ready.trust.dir.policy().tpm_required() {
        Some("the trust policy (tpm_required)")
    } else {
        None
    };
    let measured = measure(env, &ready, required).map_err(FlowError::Measure)?;
    let measure_time = t.elapsed();
    let Ready {
        verified,
        source,
        mut timings,
        ..
    } = ready;
    timings.measure = measure_time;
    let manifest = verified.layout().manifest().clone();
    let mut cmdline = manifest.cmdline().to_owned();
    if let Some(m) = &measured {
        match env.pmem_hand_off(&m.identity, &m.log) {
            Ok(Some(extra)) => {
                log::info!("event log handed over in pmem as well ({extra})");
                cmdline.push_str(&extra);
            }
            Ok(None) => {}
            // The reference treats this hand-off as best effort; the initramfs copy remains.
            Err(e) => log::warn!("pmem hand-off of the event log: {e}"),
        }
    }
    let t = Instant::now();
    {
        let [mut kernel, mut initramfs] = env.image_buffers().map_err(FlowError::Buffers)?;
        let extract_error = |entry: &str, error| FlowError::Extract {
            source_name: source.clone(),
            entry: entry.to_string(),
            error,
        };
        verified
            .extract_kernel(&mut kernel)
            .map_err(|e| extract_error(manifest.kernel(), e))?;
        let written = verified
            .extract_initramfs(&mut initramfs)
            .map_err(|e| extract_error(manifest.initramfs(), e))?;
        if let Some(m) = &measured {
            append_hand_off(&mut initramfs, written, m).map_err(FlowError::Buffers)?;
        }
    }
    // The archive is no longer needed: free it before the kernel copies the images.
    drop(verified.into_verdict());
    let extract = t.elapsed();
    let t = Instant::now();
    env.kexec_load(&cmdline).map_err(FlowError::KexecLoad)?;
    let load = t.elapsed();
    let total = started.elapsed();
    let transfer = timings.archive;
    log::info!(
        "timing: modules {:.2} s, network {:.2} s, descriptor {:.2} s, archive transfer {:.2} s ({} bytes, {:.1} MB/s), verify {:.3} s, measure {:.3} s, extract {:.2} s, kexec_file_load {:.2} s; total {:.2} s, of which not transfer {:.2} s",
        timings.modules.as_secs_f64(),
        timings.network.as_secs_f64(),
        timings.descriptor.as_secs_f64(),
        transfer.as_secs_f64(),
        timings.archive_bytes,
        timings.archive_bytes as f64 / transfer.as_secs_f64().max(1e-6) / 1e6,
        timings.verify.as_secs_f64(),
        timings.measure.as_secs_f64(),
        extract.as_secs_f64(),
        load.as_secs_f64(),
        total.as_secs_f64(),
        total.saturating_sub(transfer).as_secs_f64(),
    );
    log::info!(
        "{} {} with cmdline {cmdline:?}",
        markers::KEXEC,
        manifest.kernel(),
    );
    Err(FlowError::Kexec(env.kexec_exec()))
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

/// What was measured, to hand to the OS.
struct Measured {
    /// The event log (TCG crypto-agile, the digests extended in every bank).
    log: Vec<u8>,
    /// The identity measured into PCR 14.
    identity: Vec<u8>,
    /// The descriptor as received (its SHA-256 is in PCR 12).
    descriptor: Vec<u8>,
    /// SHA-256 of the archive.
    archive_sha256: st_verify::ArchiveDigest,
}

/// Extend the layout's events (`st_measure::events`) into every active bank of the TPM.
/// `Ok(None)`: no TPM and none required. Any TPM error is a failure, never a skip.
/// `required`: what requires a TPM, if anything does.
fn measure(
    env: &mut dyn Env,
    ready: &Ready,
    required: Option<&'static str>,
) -> Result<Option<Measured>, MeasureError> {
    let tpm = match env.tpm() {
        Ok(Some(tpm)) => tpm,
        Ok(None) => {
            if let Some(by) = required {
                return Err(MeasureError::Required { by });
            }
            log::warn!(
                "no TPM: booting without measurements (stboot.tpm=required or the trust policy's tpm_required refuse this)"
            );
            return Ok(None);
        }
        Err(e) => return Err(MeasureError::Open(e)),
    };
    let name = tpm.name();
    let command = |what: &str| {
        let (tpm, what) = (name.clone(), what.to_owned());
        move |source| MeasureError::Command { tpm, what, source }
    };
    let mut banks = Vec::new();
    for alg in tpm
        .active_banks()
        .map_err(command("reading the active PCR banks"))?
    {
        match (st_measure::Bank::from_alg_id(alg), required) {
            (Some(bank), _) => banks.push(bank),
            (None, Some(by)) => {
                return Err(MeasureError::UnsupportedBank { tpm: name, alg, by });
            }
            (None, None) => log::error!(
                "TPM {name}: active PCR bank 0x{alg:04x} is not supported: PCRs 12-14 of that bank stay unmeasured"
            ),
        }
    }
    // The reference reads the whole index; an index that cannot be read counts as no identity.
    let identity = match tpm.read_nv(st_measure::IDENTITY_NV_INDEX) {
        Ok(Some(raw)) => st_measure::identity_from_nv(&raw).to_vec(),
        Ok(None) => Vec::new(),
        Err(e) => {
            log::warn!(
                "TPM {name}: identity NV index 0x{:08x}: {e}; measuring an empty identity",
                st_measure::IDENTITY_NV_INDEX
            );
            Vec::new()
        }
    };
    let policy_measured = ready
        .trust
        .dir
        .policy()
        .with_fetch_method(ready.fetch_method);
    let roots: Vec<&[u8]> = ready.trust.dir.roots().ders().collect();
    let tls: Vec<&[u8]> = ready
        .trust
        .dir
        .tls_roots()
        .iter()
        .map(Vec::as_slice)
        .collect();
    let archive_source = match &ready.archive_name {
        Some(file_name) => st_measure::ArchiveSource::Network { file_name },
        None => st_measure::ArchiveSource::Initramfs,
    };
    let events = st_measure::events(&st_measure::Inputs {
        archive_sha256: *ready.verified.digest().as_bytes(),
        archive_source,
        descriptor_bytes: &ready.descriptor_bytes,
        descriptor: &ready.descriptor,
        trust_policy: &policy_measured,
        signing_roots: &roots,
        tls_roots: &tls,
        identity: &identity,
        sigsum_policy: ready.trust.dir.sigsum_policy_text(),
    });
    let mut log = st_measure::EventLog::new(&banks);
    for event in &events {
        let digests: Vec<(st_measure::Bank, Vec<u8>)> =
            banks.iter().map(|b| (*b, event.digest(*b))).collect();
        let refs: Vec<(u16, &[u8])> = digests
            .iter()
            .map(|(b, d)| (b.alg_id(), d.as_slice()))
            .collect();
        let what = format!("extending PCR {} (0x{:08x})", event.pcr, event.event_type);
        tpm.extend(event.pcr, &refs).map_err(command(&what))?;
        log.push(event);
    }
    let mut values = Vec::new();
    for pcr in [
        st_measure::DETAIL_PCR,
        st_measure::AUTHORITY_PCR,
        st_measure::IDENTITY_PCR,
    ] {
        let what = format!("reading PCR {pcr}");
        let value = tpm
            .read_pcr(pcr, st_measure::Bank::Sha256.alg_id())
            .map_err(command(&what))?;
        values.push(format!("pcr{pcr}={}", st_measure::hex(&value)));
    }
    log::info!(
        "{} {} events into {} ({}), sha256 {}",
        markers::MEASURED,
        events.len(),
        name,
        banks.iter().map(|b| b.name()).collect::<Vec<_>>().join(","),
        values.join(" ")
    );
    Ok(Some(Measured {
        log: log.to_bytes(),
        identity,
        descriptor: ready.descriptor_bytes.clone(),
        archive_sha256: ready.verified.digest(),
    }))
}

/// Append the event log, identity and descriptor to the OS initramfs, as a second cpio archive starting on
/// a 4-byte boundary (the kernel's unpacker requires it after the first, compressed or not).
fn append_hand_off(out: &mut dyn io::Write, written: u64, m: &Measured) -> Result<(), EnvError> {
    let pad = (4 - written % 4) % 4;
    out.write_all(&[0u8; 3][..pad as usize])?;
    let mut cpio = st_image::cpio::CpioWriter::new(out);
    cpio.dir(hand_off::DIR, 0o755)?;
    cpio.file(hand_off::EVENT_LOG, 0o444, &m.log)?;
    cpio.file(hand_off::IDENTITY, 0o444, &m.identity)?;
    cpio.file(hand_off::DESCRIPTOR, 0o444, &m.descriptor)?;
    cpio.file(
        hand_off::ARCHIVE_SHA256,
        0o444,
        format!("{}\n", m.archive_sha256).as_bytes(),
    )?;
    cpio.finish()?;
    Ok(())
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

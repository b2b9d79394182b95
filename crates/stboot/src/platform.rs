//! The real effects: files of the stboot image, EFI variables, the network, HTTPS, kexec,
//! recovery. Every call into `st-host` is in this file.

use crate::fetch::{HttpTransport, MinRate, Redactor, Transport};
use crate::flow::{self, Env, EnvError, Failure, FlowError, Ready, Stage, markers};
use crate::options::{Options, Recovery};
use st_format::HostConfig;
use st_verify::UnixTime;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Kernel modules shipped in the stboot image and their load order (written by
/// `stmgr image initramfs`).
const MODULES_DIR: &str = "/lib/modules";
const MODULES_ORDER: &str = "/etc/stboot/modules.order";

fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>, EnvError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than the {max}-byte limit").into());
    }
    Ok(Some(bytes))
}

fn system_now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    UnixTime::from_secs(secs)
}

/// Files are read from directories (the initramfs root as PID 1, operator-given dirs in a dry
/// run).
struct FileEnv {
    trust_policy_dir: PathBuf,
    host_config: Option<PathBuf>,
    initramfs_root: PathBuf,
    efi: bool,
    /// PID 1: network setup and kexec for real. A dry run uses the machine's network and
    /// extracts into counting sinks instead of memfds.
    network: bool,
    images: Option<Images>,
    /// The TPM, opened on first use (PID 1 only: a dry run never extends this machine's PCRs).
    tpm: Option<DeviceTpm>,
    /// Dry run: what would be loaded (kernel bytes, initramfs bytes, command line).
    would_load: Option<(u64, u64, String)>,
}

/// Where the kernel and initramfs are extracted to.
enum Images {
    Memfds {
        kernel: st_host::kexec::Memfd,
        initramfs: st_host::kexec::Memfd,
    },
    Counted {
        kernel: Counter,
        initramfs: Counter,
    },
}

/// A sink that counts bytes (dry run).
#[derive(Default)]
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `kexec_exec` returns in a dry run: the boot got as far as it can without kexec.
#[derive(Debug, thiserror::Error)]
#[error("dry run: not executing the kernel")]
struct DryRunEnd;

impl FileEnv {
    fn new(
        trust_policy_dir: PathBuf,
        host_config: Option<PathBuf>,
        root: PathBuf,
        pid1: bool,
    ) -> Self {
        Self {
            trust_policy_dir,
            host_config,
            initramfs_root: root,
            efi: pid1,
            network: pid1,
            images: None,
            tpm: None,
            would_load: None,
        }
    }
}

/// The TPM 2.0 device through `st-tpm`'s commands.
struct DeviceTpm(st_tpm::Tpm<st_host::tpm::Device>);

impl flow::Tpm for DeviceTpm {
    fn name(&self) -> String {
        self.0.transport().path().to_owned()
    }
    fn active_banks(&mut self) -> Result<Vec<u16>, EnvError> {
        Ok(self
            .0
            .active_pcr_banks()?
            .into_iter()
            .map(|a| a.0)
            .collect())
    }
    fn extend(&mut self, pcr: u32, digests: &[(u16, &[u8])]) -> Result<(), EnvError> {
        let digests: Vec<(st_tpm::AlgId, &[u8])> = digests
            .iter()
            .map(|(alg, d)| (st_tpm::AlgId(*alg), *d))
            .collect();
        Ok(self.0.pcr_extend(pcr, &digests)?)
    }
    fn read_pcr(&mut self, pcr: u32, alg: u16) -> Result<Vec<u8>, EnvError> {
        Ok(self.0.pcr_read(pcr, st_tpm::AlgId(alg))?)
    }
    fn read_nv(&mut self, index: u32) -> Result<Option<Vec<u8>>, EnvError> {
        Ok(self.0.nv_read_all(index)?)
    }
}

/// The reference's metadata hand-off (needs a kernel with `/sys/kernel/fake_pmem`): a 32-byte
/// header, then type-length-value records (identity, event log), written to `contents`; the OS
/// kernel is told to reserve that memory with `memmap=`.
fn pmem_hand_off(identity: &[u8], log: &[u8]) -> Result<Option<String>, EnvError> {
    const DIR: &str = "/sys/kernel/fake_pmem";
    let address_text = match std::fs::read_to_string(format!("{DIR}/address")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{DIR}/address: {e}").into()),
    };
    let address = pmem_address(&address_text).map_err(|e| format!("{DIR}/address: {e}"))?;
    let contents = pmem_contents(identity, log)?;
    std::fs::write(format!("{DIR}/contents"), &contents)
        .map_err(|e| format!("{DIR}/contents: {e}"))?;
    Ok(Some(memmap_option(contents.len(), address)))
}

/// `fake_pmem/address`: an integer, `0x`-prefixed hex or decimal, not zero.
fn pmem_address(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let address = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    }
    .map_err(|e| format!("{t:?}: {e}"))?;
    if address == 0 {
        return Err("address 0".into());
    }
    Ok(address)
}

/// The reference's layout: `"stboot metadata v1"` padded with NULs to 32 bytes, then records of
/// u32 LE type, u32 LE length, data: `UXID` (identity), then `ELOG` (event log).
fn pmem_contents(identity: &[u8], log: &[u8]) -> Result<Vec<u8>, EnvError> {
    const MAGIC: &[u8] = b"stboot metadata v1";
    const UXID: u32 = 0x4449_5855;
    const ELOG: u32 = 0x474F_4C45;
    let mut contents = MAGIC.to_vec();
    contents.resize(32, 0);
    for (kind, data) in [(UXID, identity), (ELOG, log)] {
        let len = u32::try_from(data.len()).map_err(|_| "hand-off record over 4 GiB")?;
        contents.extend_from_slice(&kind.to_le_bytes());
        contents.extend_from_slice(&len.to_le_bytes());
        contents.extend_from_slice(data);
    }
    Ok(contents)
}

/// What the OS command line gets: ` memmap=0x<size>!0x<address, at least 8 hex digits>`.
fn memmap_option(size: usize, address: u64) -> String {
    format!(" memmap=0x{size:x}!0x{address:08x}")
}

impl Env for FileEnv {
    fn trust_policy_file(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>, EnvError> {
        read_capped(&self.trust_policy_dir.join(name), max as u64)
    }
    fn trust_policy_dir(&self) -> String {
        self.trust_policy_dir.display().to_string()
    }
    fn initramfs_host_config(&self) -> Result<Option<Vec<u8>>, EnvError> {
        match &self.host_config {
            Some(p) => read_capped(p, st_format::limits::MAX_HOST_CONFIG_BYTES as u64),
            None => Ok(None),
        }
    }
    fn host_config_path(&self) -> String {
        self.host_config
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string())
    }
    fn efi_host_config(&self) -> Result<Option<Vec<u8>>, EnvError> {
        if !self.efi {
            return Ok(None);
        }
        Ok(st_host::efi::Efivarfs::system()
            .read("STHostConfig", st_host::efi::ST_VENDOR_GUID)
            .map(|v| v.map(|v| v.data))?)
    }
    fn initramfs_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, EnvError> {
        read_capped(&self.initramfs_root.join(path), max)
    }
    fn setup_network(&mut self, hc: &HostConfig, opts: &Options) -> Result<String, EnvError> {
        if !self.network {
            // What PID 1 would do on this machine's links, without doing it. (Interface names
            // come from the kernel: escaped like log lines.)
            let plan = st_host::net::links().and_then(|links| st_host::net::plan(hc, &links));
            let text = match plan {
                Ok(plan) => plan.to_string(),
                Err(e) => format!("none ({e})"),
            };
            println!("network plan: {}", st_host::log::escape(&text));
            return Ok("not configured (dry run: using this machine's network)".into());
        }
        if hc
            .ospkg_pointer()
            .urls()
            .is_ok_and(|urls| urls.iter().any(|u| u.as_str().starts_with("https:")))
        {
            warm_up_random_pool();
        }
        let net_opts = st_host::net::NetOptions {
            carrier_timeout: opts.carrier_timeout,
            ..st_host::net::NetOptions::default()
        };
        let s = st_host::net::configure(hc, &net_opts)?;
        Ok(format!(
            "{} {}/{} via {} ({}), dns [{}]",
            s.interface,
            s.address,
            s.prefix,
            s.gateway.map_or_else(|| "-".to_string(), |g| g.to_string()),
            s.mode,
            s.dns
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
    fn transport(
        &mut self,
        tls_roots: &[Vec<u8>],
        opts: &Options,
        redactor: &Redactor,
    ) -> Box<dyn Transport> {
        Box::new(
            HttpTransport::new(tls_roots, opts.http_timeout)
                .with_min_rate(MinRate {
                    min_rate: opts.min_rate,
                    window: opts.rate_window,
                })
                .with_redactor(redactor.clone()),
        )
    }
    fn now(&self) -> UnixTime {
        system_now()
    }
    fn archive_cap(&self) -> u64 {
        // Booting needs the archive, then the initramfs in a memfd plus the kernel's own copies
        // of it: an archive over ~45% of the available memory cannot be booted, so it is not
        // downloaded at all. (A dry run on an ordinary machine keeps the format's cap.)
        let cap = flow::MAX_ARCHIVE_BYTES;
        if !self.network {
            return cap;
        }
        mem_available().map_or(cap, |m| cap.min(m / 100 * 45))
    }
    fn image_buffers(&mut self) -> Result<[&mut dyn std::io::Write; 2], EnvError> {
        let images = if self.network {
            // Huge pages for the memfds (filled 2-3x faster); set only now, so that nothing
            // before the download is affected.
            if let Err(e) = st_host::sys::memfd_huge_pages() {
                log::debug!("memfd huge pages: {e}");
            }
            Images::Memfds {
                kernel: st_host::kexec::Memfd::named(c"stboot-kernel")?,
                initramfs: st_host::kexec::Memfd::named(c"stboot-initramfs")?,
            }
        } else {
            Images::Counted {
                kernel: Counter::default(),
                initramfs: Counter::default(),
            }
        };
        Ok(match self.images.insert(images) {
            Images::Memfds { kernel, initramfs } => [kernel, initramfs],
            Images::Counted { kernel, initramfs } => [kernel, initramfs],
        })
    }
    fn kexec_load(&mut self, cmdline: &str) -> Result<(), EnvError> {
        match self.images.take() {
            Some(Images::Memfds { kernel, initramfs }) => {
                log::info!("memory before kexec_file_load: {}", memory_summary());
                let t = Instant::now();
                st_host::kexec::load(&kernel, Some(&initramfs), cmdline)?;
                log::debug!("kexec_file_load: {:.2} s", t.elapsed().as_secs_f64());
                // The kernel holds its own copy now; the memfds are freed here.
                Ok(())
            }
            Some(Images::Counted { kernel, initramfs }) => {
                self.would_load = Some((kernel.0, initramfs.0, cmdline.to_owned()));
                Ok(())
            }
            None => Err("kexec load: no images were extracted".into()),
        }
    }
    fn kexec_exec(&mut self) -> EnvError {
        if self.network {
            Box::new(st_host::kexec::execute())
        } else {
            Box::new(DryRunEnd)
        }
    }
    fn tpm(&mut self) -> Result<Option<&mut dyn flow::Tpm>, EnvError> {
        if !self.network {
            return Ok(None);
        }
        if self.tpm.is_none() {
            match st_host::tpm::Device::open()? {
                Some(device) => self.tpm = Some(DeviceTpm(st_tpm::Tpm::new(device))),
                None => return Ok(None),
            }
        }
        Ok(self.tpm.as_mut().map(|t| t as &mut dyn flow::Tpm))
    }
    fn pmem_hand_off(&mut self, identity: &[u8], log: &[u8]) -> Result<Option<String>, EnvError> {
        if !self.network {
            return Ok(None);
        }
        pmem_hand_off(identity, log)
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    meminfo_kib(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        "MemAvailable",
    )?
    .checked_mul(1024)
}

/// One `/proc/meminfo` field, in KiB.
fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where memory is, for the line before `kexec_file_load` (it needs two more copies of the
/// images: a page shortage there shows up as a slow load).
fn memory_summary() -> String {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    ["MemFree", "MemAvailable", "Shmem", "AnonPages"]
        .iter()
        .map(|k| match meminfo_kib(&text, k) {
            Some(kib) => format!("{k} {} MiB", kib / 1024),
            None => format!("{k} ?"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verified line (`ST:VERIFIED`, counting the Sigsum-logged signatures among the valid
/// ones when there are any), then one line per counted Sigsum-logged signature: which log,
/// tree size, leaf and witnesses.
fn log_ready(ready: &Ready) {
    let r = ready.verified.report();
    let m = ready.verified.layout().manifest();
    let logged: Vec<_> = r
        .outcomes
        .iter()
        .filter(|o| o.verdict.is_ok())
        .filter_map(|o| o.logged.as_ref().map(|l| (o, l)))
        .collect();
    let logged_count = if logged.is_empty() {
        String::new()
    } else {
        format!(", {} Sigsum-logged", logged.len())
    };
    log::info!(
        "{} OS package {} (label {:?}): {} of {} signatures valid{logged_count}, threshold {}, \
         sha256 {}",
        markers::VERIFIED,
        ready.source,
        m.label(),
        r.valid(),
        r.found(),
        r.threshold,
        r.archive_sha256
    );
    for (o, l) in logged {
        let who = o
            .signer
            .as_ref()
            .map_or("unknown signer", |s| s.name.as_str());
        log::info!(
            "  signature {} ({who}): Sigsum-logged in log {}{}, tree size {}, leaf {}, \
             cosigned by {}",
            o.index,
            l.log,
            l.log_url
                .as_ref()
                .map_or_else(String::new, |u| format!(" ({u})")),
            l.tree_size,
            l.leaf_index,
            l.witnesses.join(", ")
        );
    }
}

fn log_failure(f: &Failure) {
    log::error!(
        "{} stage={} no OS package could be booted: {}",
        markers::FAILED,
        f.stage(),
        f.error
    );
    for a in &f.attempts {
        log::error!("  {a}");
    }
}

// ---------------------------------------------------------------------------------------------
// --dry-run

/// `stboot --dry-run` arguments.
pub struct DryRunArgs {
    trust_policy: PathBuf,
    host_config: Option<PathBuf>,
    initramfs_root: PathBuf,
    options: BTreeMap<String, String>,
}

impl DryRunArgs {
    /// `Ok(None)` for `--help` (or no arguments).
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
            return Ok(None);
        }
        let mut it = args.iter();
        let (mut dry, mut tp, mut hc, mut root, mut options) =
            (false, None, None, None, BTreeMap::new());
        while let Some(a) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match a.as_str() {
                "--dry-run" => dry = true,
                "--trust-policy" => tp = Some(PathBuf::from(value(a)?)),
                "--host-config" => hc = Some(PathBuf::from(value(a)?)),
                "--initramfs-root" => root = Some(PathBuf::from(value(a)?)),
                "--option" => {
                    let kv = value(a)?;
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| format!("--option {kv:?}: expected KEY=VALUE"))?;
                    options.insert(k.trim_start_matches("stboot.").to_string(), v.to_string());
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if !dry {
            return Err("outside PID 1 only --dry-run is supported".into());
        }
        let trust_policy = tp.ok_or("--dry-run needs --trust-policy DIR")?;
        Ok(Some(Self {
            trust_policy,
            host_config: hc,
            initramfs_root: root.unwrap_or_else(|| ".".into()),
            options,
        }))
    }
}

/// Run the boot flow without network setup and kexec; print what would be booted.
pub fn dry_run(a: &DryRunArgs) -> ExitCode {
    let opts = match Options::from_map(&a.options) {
        Ok((o, unknown)) => {
            for k in unknown {
                eprintln!("stboot: ignoring unknown option stboot.{k}");
            }
            o
        }
        Err(e) => {
            eprintln!("stboot: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = st_host::log::init(opts.log_level, false);
    let mut env = FileEnv::new(
        a.trust_policy.clone(),
        a.host_config.clone(),
        a.initramfs_root.clone(),
        false,
    );
    let ready = match flow::run(&mut env, &opts) {
        Ok(ready) => ready,
        Err(f) => {
            log_failure(&f);
            return ExitCode::from(1);
        }
    };
    log_ready(&ready);
    let source = ready.source.clone();
    let manifest = ready.verified.layout().manifest().clone();
    // The boot tail as PID 1 runs it (extraction with every check), up to the jump.
    let f = flow::boot(&mut env, ready, &opts, Instant::now());
    match (&*f.error, env.would_load.take()) {
        (FlowError::Kexec(e), Some((kernel, initramfs, cmdline)))
            if f.stage() == Stage::Kexec && e.is::<DryRunEnd>() =>
        {
            println!(
                "would boot: kernel {} ({kernel} bytes), initramfs {} ({initramfs} bytes), cmdline {cmdline:?}, label {:?}, from {source}",
                manifest.kernel(),
                manifest.initramfs(),
                manifest.label()
            );
            ExitCode::SUCCESS
        }
        _ => {
            log_failure(&f);
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PID 1

fn recover(opts: &Options) -> ! {
    let what = match opts.recovery {
        Recovery::Reboot => "rebooting",
        Recovery::Poweroff => "powering off",
    };
    log::error!(
        "{} {what} in {} s",
        markers::RECOVERY,
        opts.recovery_delay.as_secs()
    );
    std::thread::sleep(opts.recovery_delay);
    loop {
        let e = match opts.recovery {
            Recovery::Reboot => st_host::sys::reboot(),
            Recovery::Poweroff => st_host::sys::poweroff(),
        };
        log::error!("recovery: {what} failed: {e}; trying again");
        std::thread::sleep(Duration::from_secs(5));
    }
}

static RECOVERY: std::sync::OnceLock<Options> = std::sync::OnceLock::new();

fn panic_recovery() -> ! {
    recover(RECOVERY.get().unwrap_or(&Options::default()))
}

/// TLS needs the kernel's random pool. Where no CPU or hardware RNG seeds it at boot (VMs
/// without virtio-rng), the kernel only seeds it once something blocks on it, from timing
/// jitter, which takes about a second under emulation. When HTTPS is ahead, ask for one byte
/// as the network comes up, on a thread of its own, so that this overlaps with waiting for the
/// link and DHCP instead of delaying the first handshake. The byte is thrown away.
fn warm_up_random_pool() {
    let spawned = std::thread::Builder::new()
        .name("random-pool".into())
        .spawn(|| {
            use ring::rand::SecureRandom as _;
            let t = Instant::now();
            let mut byte = [0u8; 1];
            match ring::rand::SystemRandom::new().fill(&mut byte) {
                Ok(()) => log::debug!(
                    "kernel random pool ready after {:.2} s",
                    t.elapsed().as_secs_f64()
                ),
                Err(_) => log::warn!("kernel random pool: getrandom failed"),
            }
        });
    if let Err(e) = spawned {
        log::debug!("random pool warm-up thread: {e}");
    }
}

/// The provisioning-mode window: when the image carries a provisioning package and the window
/// is not 0, announce it on the console and wait that long for Ctrl-C. Whether it came.
fn provision_window(env: &FileEnv, opts: &Options) -> bool {
    let window = opts.provision_window;
    if window.is_zero() || !flow::has_provisioning_package(env) {
        return false;
    }
    log::info!(
        "{} {} s: press Ctrl-C now to boot the provisioning package instead of the normal one",
        markers::PROVISION_WINDOW,
        window.as_secs()
    );
    match st_host::console::wait_for_ctrl_c(window) {
        Ok(st_host::console::Window::Interrupted(after)) => {
            log::debug!("Ctrl-C after {:.1} s", after.as_secs_f64());
            true
        }
        Ok(st_host::console::Window::Passed) => false,
        Ok(st_host::console::Window::NoTerminal) => {
            log::warn!("the console is not a terminal: no Ctrl-C window");
            false
        }
        Ok(st_host::console::Window::Closed) => {
            log::warn!("the console closed during the Ctrl-C window");
            false
        }
        Err(e) => {
            log::warn!("console: {e}; no Ctrl-C window");
            false
        }
    }
}

/// Verify and boot the image's provisioning package; returns only when that failed (logged).
/// `normal` is the failure of the normal boot that led here, if one did.
fn boot_provisioning(
    env: &mut FileEnv,
    opts: &Options,
    started: Instant,
    normal: Option<&Failure>,
) {
    match flow::provisioning(env) {
        Ok(Some(ready)) => {
            log_ready(&ready);
            let f = flow::boot(env, ready, opts, started);
            log_failure(&f);
        }
        Ok(None) => match normal {
            Some(f) => log_failure(f),
            None => log::error!(
                "{} stage=provisioning the provisioning package is gone from the image",
                markers::FAILED
            ),
        },
        Err(f) => log_failure(&f),
    }
}

/// PID 1: never returns.
pub fn pid1() -> ! {
    let started = Instant::now();
    let mount_notes = st_host::sys::mount_pseudo_filesystems();
    let console = st_host::sys::setup_console();
    let cmdline = st_host::sys::kernel_cmdline().unwrap_or_default();
    let map = st_host::sys::CmdlineOptions::parse(&cmdline, "stboot");
    let (opts, unknown, option_error) = match Options::from_map(&map) {
        Ok((o, u)) => (o, u, None),
        Err(e) => (Options::default(), Vec::new(), Some(e)),
    };
    let _ = st_host::log::init(opts.log_level, true);
    let _ = RECOVERY.set(opts.clone());
    st_host::log::install_panic_hook(panic_recovery);
    log::info!("stboot-rs {} starting", env!("CARGO_PKG_VERSION"));
    if let Err(e) = console {
        log::warn!("console: {e}");
    }
    match mount_notes {
        Ok(report) => report
            .skipped()
            .iter()
            .for_each(|n| log::debug!("mount: {n}")),
        Err(e) => log::error!("mounting pseudo filesystems: {e}"),
    }
    if let Some(e) = option_error {
        log::error!("{e}; using defaults");
    }
    for k in unknown {
        log::warn!("ignoring unknown option stboot.{k}");
    }
    let t = Instant::now();
    if Path::new(MODULES_ORDER).exists() {
        match st_host::sys::load_modules(Path::new(MODULES_DIR), Path::new(MODULES_ORDER)) {
            Ok(loads) => {
                for m in loads {
                    match m.result {
                        Ok(()) => log::debug!("module {} loaded", m.name),
                        Err(e) if e.is_module_not_for_this_machine() => {
                            log::info!("module {} not loaded: {e}", m.name)
                        }
                        Err(e) => log::warn!("module {}: {e}", m.name),
                    }
                }
            }
            Err(e) => log::error!("{MODULES_ORDER}: {e}"),
        }
        // efivarfs is a module on common kernels: mount it now that modules are in.
        if let Err(e) = st_host::sys::mount_efivarfs() {
            log::debug!("efivarfs: {e}");
        }
    }
    let modules = t.elapsed();
    let mut env = FileEnv::new(
        PathBuf::from(flow::paths::TRUST_POLICY_DIR),
        Some(PathBuf::from(flow::paths::HOST_CONFIG)),
        PathBuf::from(flow::paths::ROOT),
        true,
    );
    if provision_window(&env, &opts) {
        log::info!(
            "{} Ctrl-C on the console: booting the provisioning package in the image",
            markers::PROVISIONING
        );
        boot_provisioning(&mut env, &opts, started, None);
        recover(&opts)
    }
    match flow::run(&mut env, &opts) {
        Ok(mut ready) => {
            log_ready(&ready);
            ready.timings.modules = modules;
            let f = flow::boot(&mut env, ready, &opts, started);
            log_failure(&f);
        }
        Err(f) if f.allows_provisioning() && flow::has_provisioning_package(&env) => {
            // Not ST:FAILED yet: something may still boot.
            log::error!(
                "{} normal boot failed (stage={}): {}; trying the provisioning package in the image",
                markers::PROVISIONING,
                f.stage(),
                f.error
            );
            for a in &f.attempts {
                log::error!("  {a}");
            }
            boot_provisioning(&mut env, &opts, started, Some(&f));
        }
        Err(f) => log_failure(&f),
    }
    recover(&opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmem_hand_off_in_the_references_layout() {
        let c = pmem_contents(b"id-7", b"LOG").unwrap();
        assert_eq!(&c[..18], b"stboot metadata v1");
        assert!(c[18..32].iter().all(|b| *b == 0));
        // "UXID" and "ELOG" read as little-endian u32 type fields.
        assert_eq!(&c[32..36], b"UXID");
        assert_eq!(&c[36..40], &4u32.to_le_bytes());
        assert_eq!(&c[40..44], b"id-7");
        assert_eq!(&c[44..48], b"ELOG");
        assert_eq!(&c[48..52], &3u32.to_le_bytes());
        assert_eq!(&c[52..], b"LOG");
        assert_eq!(memmap_option(c.len(), 0x1_0000), " memmap=0x37!0x00010000");
        assert_eq!(pmem_address("0x7f000000\n"), Ok(0x7f00_0000));
        assert_eq!(pmem_address("4096"), Ok(4096));
        assert!(pmem_address("0").is_err());
        assert!(pmem_address("zz").is_err());
    }

    #[test]
    fn meminfo_fields_by_exact_name() {
        let text = "MemTotal:        1000 kB\nMemFree:          512 kB\nShmemHugePages:  2048 kB\nShmem:  4096 kB\n";
        assert_eq!(meminfo_kib(text, "MemFree"), Some(512));
        assert_eq!(meminfo_kib(text, "Shmem"), Some(4096));
        assert_eq!(meminfo_kib(text, "Mem"), None);
        assert_eq!(meminfo_kib(text, "AnonPages"), None);
    }
}

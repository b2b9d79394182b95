//! The building blocks of the stboot scenarios: serving the signed test OS package
//! ([`Serve`]), a trust policy ([`TrustPolicy`]), a stboot image ([`StbootImage`]) and one boot
//! of it in QEMU with the outcome it must reach ([`StbootRun`]). Scenarios (`boot.rs`), the demo
//! and the boot benchmark build on these; nothing here knows about any scenario.
//!
//! ```text
//! let s = Serve::new(ctx).start()?;
//! let img = StbootImage::new(ctx, s.trust())
//!     .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
//!     .build()?;
//! let vm = StbootRun::new(ctx, &img).expect(Outcome::Boots).run()?;
//! vm.ensure_line("network: eth0 10.0.2.15/24 via 10.0.2.2 (static)")?;
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::hostconfig::HostConfigJson;
use super::{
    Ctx, Nginx, NginxConfig, OS_BOOTED, OsPkg, SigningKeys, StbootInitramfs, TestPki, Vm, VmConfig,
    marker_timeout, ovmf, qemu, sigsum, test_mac,
};
use crate::util::{cmd, run};

/// Modules for networking with virtio-net NICs: the PCI transport (virtio_pci) is not a
/// `depends=` of virtio_net, so both are named.
pub(crate) const NET_MODULES: &[&str] = &["virtio_pci", "virtio_net"];

/// In every stboot image: SHA-256 with SHA-NI/AVX2/SSSE3 for the kernel's digest of the
/// segments in kexec_file_load (otherwise generic C). Loads only where the CPU has SSSE3; on
/// qemu64 stboot logs it as not for this machine.
pub(crate) const KEXEC_DIGEST_MODULES: &[&str] = &["sha256_ssse3"];

/// stboot options for tests: power off instead of rebooting, no recovery pause, short
/// timeouts so a stalled server costs seconds.
pub(crate) const STBOOT_APPEND: &str = "stboot.recovery=poweroff stboot.recovery_delay=0 \
     stboot.http_timeout=5 stboot.backoff=1 stboot.retries=2 stboot.carrier_timeout=10";

/// For runs where nothing may boot: stboot goes round the URL list until the deadline
/// (20 minutes by default), so these give it 20 s: several rounds, then the summary.
pub(crate) const FAIL_DEADLINE: &str = "stboot.deadline=20";

/// The stable markers stboot prints (`stboot::flow::markers`; the prose after them may change).
pub(crate) const VERIFIED: &str = "ST:VERIFIED";
pub(crate) const KEXEC: &str = "ST:KEXEC";
pub(crate) const NOTHING_BOOTED: &str = "ST:FAILED stage=";
pub(crate) const RECOVERY: &str = "ST:RECOVERY powering off";

/// What every network scenario needs: keys, the signed test OS package served by nginx over
/// HTTPS from `www/` (as `os.json` + `os.zip`), and the TLS PKI.
pub(crate) struct Served {
    pub(crate) keys: SigningKeys,
    pub(crate) pkg: OsPkg,
    pub(crate) pki: TestPki,
    pub(crate) www: PathBuf,
    pub(crate) nginx: Nginx,
    /// With [`Serve::sigsum_logged`]: the proof and the Sigsum policy trusting its log.
    pub(crate) sigsum: Option<sigsum::Logged>,
}

/// Starts a [`Served`]: signing keys in `keys/`, the test OS package `os.*`, nginx.
pub(crate) struct Serve<'c> {
    ctx: &'c Ctx<'c>,
    archive_url: String,
    plain_http: bool,
    sigsum_logged: bool,
    os_cmdline: String,
    os_files: Option<super::ospkg::Cpio>,
}

impl<'c> Serve<'c> {
    /// HTTPS only; the descriptor's archive URL is `os.zip` (relative).
    pub(crate) fn new(ctx: &'c Ctx<'c>) -> Self {
        Self {
            ctx,
            archive_url: "os.zip".to_owned(),
            plain_http: false,
            sigsum_logged: false,
            os_cmdline: String::new(),
            os_files: None,
        }
    }

    /// The test OS of the package gets `cmdline` (e.g. `e2e.agent=1`), `files` and the
    /// network modules ([`NET_MODULES`]).
    pub(crate) fn os(mut self, cmdline: &str, files: super::ospkg::Cpio) -> Self {
        cmdline.clone_into(&mut self.os_cmdline);
        self.os_files = Some(files);
        self
    }

    /// The package's only signature is a Sigsum proof (ST 1.3): logged in the in-memory test
    /// log ([`sigsum::log_and_attach`]) and attached with `stmgr ospkg sigsum`, instead of a
    /// plain `stmgr ospkg sign`. [`Served::trust`] then carries the log's Sigsum policy.
    pub(crate) fn sigsum_logged(mut self) -> Self {
        self.sigsum_logged = true;
        self
    }

    /// The descriptor's `os_pkg_url` (signed with the package; relative or absolute).
    pub(crate) fn archive_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.archive_url);
        self
    }

    /// nginx also listens for plain HTTP.
    pub(crate) fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// Sign the package, copy it to `www/`, start nginx.
    pub(crate) fn start(mut self) -> Result<Served> {
        let ctx = self.ctx;
        let keys = ctx.signing_keys("keys")?;
        let plain: &[&SigningKeys] = if self.sigsum_logged { &[] } else { &[&keys] };
        let pkg = ctx.test_ospkg_with(
            "os",
            &self.archive_url,
            &self.os_cmdline,
            self.os_files.take(),
            if self.os_cmdline.is_empty() {
                &[]
            } else {
                NET_MODULES
            },
            plain,
        )?;
        let sigsum = match self.sigsum_logged {
            true => Some(sigsum::log_and_attach(&ctx.stmgr()?, &keys, &pkg)?),
            false => None,
        };
        let www = ctx.path("www");
        fs::create_dir_all(&www)?;
        fs::copy(&pkg.json, www.join("os.json"))?;
        fs::copy(&pkg.zip, www.join("os.zip"))?;
        let pki = ctx.tls()?;
        let mut cfg = NginxConfig::https(&www, pki.server_files());
        cfg.plain_http = self.plain_http;
        let nginx = ctx.nginx(&cfg)?;
        Ok(Served {
            keys,
            pkg,
            pki,
            www,
            nginx,
            sigsum,
        })
    }
}

impl Served {
    /// The usual policy for it: network fetch, its signing root, threshold 1, TLS pinned to
    /// the test CA; when it is Sigsum-logged, the log's Sigsum policy as well.
    pub(crate) fn trust(&self) -> TrustPolicy {
        let t = TrustPolicy::network(&self.keys.root_cert).tls_roots(&self.pki.ca_cert);
        match &self.sigsum {
            Some(logged) => t.sigsum_policy(&logged.policy),
            None => t,
        }
    }

    /// A copy of the descriptor at `www/<sub>/os.json` (served as `/<sub>/os.json`), its
    /// archive URL replaced by `archive_url` if given (the descriptor is not signed).
    pub(crate) fn descriptor_copy(&self, sub: &str, archive_url: Option<&str>) -> Result<PathBuf> {
        let dir = self.www.join(sub);
        fs::create_dir_all(&dir)?;
        let json = dir.join("os.json");
        fs::copy(self.www.join("os.json"), &json)?;
        if let Some(url) = archive_url {
            rewrite_url(&json, url)?;
        }
        Ok(json)
    }
}

/// Replaces `os_pkg_url` in a descriptor. The descriptor is unsigned: pointing it elsewhere
/// keeps the signatures valid.
pub(crate) fn rewrite_url(descriptor: &Path, url: &str) -> Result<()> {
    let text = fs::read_to_string(descriptor)?;
    let start = text.find("\"os_pkg_url\": \"").context("os_pkg_url")? + 15;
    let end = start + text[start..].find('"').context("os_pkg_url end")?;
    fs::write(
        descriptor,
        format!("{}{url}{}", &text[..start], &text[end..]),
    )?;
    Ok(())
}

/// A trust policy directory (`trust_policy.json`, signing roots, optional `tls_roots.pem` and
/// `ospkg_trust_policy`).
#[derive(Clone, Debug)]
pub(crate) struct TrustPolicy {
    signing_roots: Vec<PathBuf>,
    threshold: u32,
    fetch_method: &'static str,
    tls_roots: Option<PathBuf>,
    sigsum_policy: Option<String>,
    sigsum_required: bool,
    decryption_identities: Option<PathBuf>,
}

impl TrustPolicy {
    fn new(root: &Path, fetch_method: &'static str) -> Self {
        Self {
            signing_roots: vec![root.to_owned()],
            threshold: 1,
            fetch_method,
            tls_roots: None,
            sigsum_policy: None,
            sigsum_required: false,
            decryption_identities: None,
        }
    }

    /// The age identity file (`stmgr keygen age`) copied in as `decryption_identities` (ST 1.2:
    /// stboot decrypts packages encrypted to its recipient).
    pub(crate) fn decryption_identities(mut self, file: &Path) -> Self {
        self.decryption_identities = Some(file.to_owned());
        self
    }

    /// Fetch method `network`, one signing root, threshold 1, the system has no TLS roots.
    pub(crate) fn network(signing_root: &Path) -> Self {
        Self::new(signing_root, "network")
    }

    /// Fetch method `initramfs` (the OS package is in the image), one signing root, threshold 1.
    pub(crate) fn initramfs(signing_root: &Path) -> Self {
        Self::new(signing_root, "initramfs")
    }

    /// Signatures required.
    pub(crate) fn threshold(mut self, n: u32) -> Self {
        self.threshold = n;
        self
    }

    /// One more signing root (ST 1.3 allows several; they are measured together).
    pub(crate) fn also_signing_root(mut self, root: &Path) -> Self {
        self.signing_roots.push(root.to_owned());
        self
    }

    /// The TLS roots (PEM) stboot trusts.
    pub(crate) fn tls_roots(mut self, pem: &Path) -> Self {
        self.tls_roots = Some(pem.to_owned());
        self
    }

    /// The Sigsum policy (`ospkg_trust_policy`, ST 1.3: which logs and witnesses a proof must
    /// show), e.g. [`sigsum::Logged::policy`].
    pub(crate) fn sigsum_policy(mut self, text: &str) -> Self {
        self.sigsum_policy = Some(text.to_owned());
        self
    }

    /// `"ospkg_sigsum_required": true` in `trust_policy.json`: only Sigsum-logged signatures
    /// count (stboot refuses the directory without a [`Self::sigsum_policy`]).
    pub(crate) fn sigsum_required(mut self) -> Self {
        self.sigsum_required = true;
        self
    }

    /// Writes it to `ctx.dir/<sub>/`.
    pub(crate) fn write(&self, ctx: &Ctx<'_>, sub: &str) -> Result<PathBuf> {
        let roots: Vec<&Path> = self.signing_roots.iter().map(PathBuf::as_path).collect();
        let dir = ctx.trust_policy(
            sub,
            &roots,
            self.threshold,
            self.fetch_method,
            self.tls_roots.as_deref(),
        )?;
        if let Some(text) = &self.sigsum_policy {
            fs::write(dir.join("ospkg_trust_policy"), text)?;
        }
        if let Some(file) = &self.decryption_identities {
            fs::copy(file, dir.join("decryption_identities"))
                .with_context(|| format!("copying {}", file.display()))?;
        }
        if self.sigsum_required {
            let file = dir.join("trust_policy.json");
            let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&file)?)
                .with_context(|| format!("{}", file.display()))?;
            json["ospkg_sigsum_required"] = true.into();
            fs::write(&file, format!("{json}\n"))?;
        }
        Ok(dir)
    }
}

/// A stboot image (`stmgr image initramfs`): this run's stboot, a trust policy (written to
/// `trust/`), optionally a host config (`host_configuration.json`) and an OS package, and the
/// modules [`NET_MODULES`] + [`KEXEC_DIGEST_MODULES`] + extra ones, with their dependencies.
pub(crate) struct StbootImage<'c> {
    ctx: &'c Ctx<'c>,
    trust: TrustPolicy,
    host_config: Option<String>,
    modules: Vec<String>,
    ospkg: Option<PathBuf>,
}

impl<'c> StbootImage<'c> {
    /// No host config, no extra module, no OS package in the image.
    pub(crate) fn new(ctx: &'c Ctx<'c>, trust: TrustPolicy) -> Self {
        Self {
            ctx,
            trust,
            host_config: None,
            modules: Vec::new(),
            ospkg: None,
        }
    }

    /// The host config in the image.
    pub(crate) fn host_config(mut self, hc: &HostConfigJson) -> Self {
        self.host_config = Some(hc.to_json());
        self
    }

    /// Extra kernel modules (by name; their dependencies come along).
    pub(crate) fn modules(mut self, names: &[&str]) -> Self {
        self.modules.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    /// Embed the OS package whose descriptor is `descriptor` (initramfs fetch method).
    pub(crate) fn ospkg(mut self, descriptor: &Path) -> Self {
        self.ospkg = Some(descriptor.to_owned());
        self
    }

    /// Writes `trust/`, `host_configuration.json` and `stboot.cpio.gz` in the scenario's
    /// directory; returns the image.
    pub(crate) fn build(self) -> Result<PathBuf> {
        let ctx = self.ctx;
        let trust_policy = self.trust.write(ctx, "trust")?;
        let host_config = match &self.host_config {
            Some(json) => {
                let p = ctx.path("host_configuration.json");
                fs::write(&p, json)?;
                Some(p)
            }
            None => None,
        };
        let extra: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        let modules = ctx.modules(&[NET_MODULES, KEXEC_DIGEST_MODULES, &extra].concat())?;
        ctx.stboot_initramfs(
            "stboot.cpio.gz",
            &StbootInitramfs {
                stboot: PathBuf::new(),
                trust_policy,
                host_config,
                modules,
                ospkg: self.ospkg,
            },
        )
    }
}

/// How a [`StbootRun`] must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// stboot verifies a package and kexecs it, the test OS reports in and powers off;
    /// `ST:FAILED` or a Rust panic fails the run at once.
    Boots,
    /// stboot prints its failure summary and powers off (recovery); the test OS or a kexec
    /// fails the run at once. Adds [`FAIL_DEADLINE`] before the run's own options.
    NothingBooted,
}

/// What starts the kernel.
#[derive(Clone, Debug, Default)]
pub(crate) enum Firmware {
    /// QEMU's `-kernel`/`-initrd` under SeaBIOS.
    #[default]
    Direct,
    /// UEFI: q35 with OVMF, `vars` the (writable) variable store (see [`ovmf::vars_with`]);
    /// the kernel and image still come from `-kernel`/`-initrd`.
    Ovmf {
        /// The variable store file.
        vars: PathBuf,
    },
    /// UEFI the real way: q35 with OVMF finds stboot as a UKI on boot media. The UKI is made
    /// by `stmgr uki create` from the run's kernel, the image and the run's command line (in
    /// `.cmdline`; QEMU passes no `-kernel`, `-initrd` or `-append`).
    Uefi {
        /// The variable store file.
        vars: PathBuf,
        /// Where the firmware finds it.
        media: BootMedia,
    },
}

/// Boot media for [`Firmware::Uefi`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BootMedia {
    /// A FAT disk (QEMU's vvfat of `esp/`) with the UKI as `/EFI/BOOT/BOOTX64.EFI`.
    Esp,
    /// The ISO of `stmgr uki create --format iso` as a CD-ROM.
    Cdrom,
}

/// One boot of a stboot image in QEMU, asserting its [`Outcome`] on the serial console.
pub(crate) struct StbootRun<'c> {
    ctx: &'c Ctx<'c>,
    image: PathBuf,
    nics: u8,
    append: Vec<String>,
    outcome: Outcome,
    firmware: Firmware,
    extra_qemu: Vec<String>,
    console_input: Vec<(String, Vec<u8>)>,
    timeout: Option<Duration>,
    hostfwd: Vec<String>,
}

impl<'c> StbootRun<'c> {
    /// One virtio NIC (MAC [`test_mac`]`(1)`), [`STBOOT_APPEND`], direct kernel boot, expecting
    /// [`Outcome::Boots`].
    pub(crate) fn new(ctx: &'c Ctx<'c>, image: &Path) -> Self {
        Self {
            ctx,
            image: image.to_owned(),
            nics: 1,
            append: Vec::new(),
            outcome: Outcome::Boots,
            firmware: Firmware::Direct,
            extra_qemu: Vec::new(),
            console_input: Vec::new(),
            timeout: None,
            hostfwd: Vec::new(),
        }
    }

    /// A slirp host forward into the guest, as QEMU's `hostfwd=` value
    /// (`tcp:127.0.0.1:HOSTPORT-:GUESTPORT`).
    pub(crate) fn hostfwd(mut self, forward: &str) -> Self {
        self.hostfwd.push(forward.to_owned());
        self
    }

    /// The hard timeout from QEMU start, and the longest wait for each marker (default: the
    /// accelerator's), for runs that move a lot of data under emulation.
    pub(crate) fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Type `keys` on the serial console once a console line contains `trigger`.
    pub(crate) fn type_on(mut self, trigger: &str, keys: &[u8]) -> Self {
        self.console_input.push((trigger.to_owned(), keys.to_vec()));
        self
    }

    /// `n` virtio NICs, MACs `test_mac(1..=n)` (eth0, eth1, ...); 0: no NIC at all.
    pub(crate) fn nics(mut self, n: u8) -> Self {
        self.nics = n;
        self
    }

    /// More kernel command line (after [`STBOOT_APPEND`]; a later `stboot.` key wins).
    pub(crate) fn append(mut self, options: &str) -> Self {
        self.append.push(options.to_owned());
        self
    }

    /// The outcome the run must reach.
    pub(crate) fn expect(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The firmware.
    pub(crate) fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// Further QEMU arguments (e.g. a swtpm chardev and TPM device), after the firmware's.
    pub(crate) fn extra_qemu<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra_qemu.extend(args.into_iter().map(Into::into));
        self
    }

    /// Boots, waits for the outcome's console lines in order (Boots: verified, kexec, the test
    /// OS marker; NothingBooted: the summary, recovery), then for a clean power-off. Returns
    /// the stopped VM for further assertions on its console.
    pub(crate) fn run(self) -> Result<Vm> {
        let t = self
            .timeout
            .unwrap_or_else(|| marker_timeout(self.ctx.accel()));
        let mut vm = self.start()?;
        vm.wait_poweroff(t)?;
        Ok(vm)
    }

    /// Like [`Self::run`], but returns as soon as the outcome's console lines were seen, with
    /// the guest still running (a scenario then talks to it, e.g. through [`Self::hostfwd`]).
    pub(crate) fn start(self) -> Result<Vm> {
        self.start_vm(None)
    }

    /// [`Self::start`], the console logged to `dir/<sub>/` (a second guest in one scenario).
    pub(crate) fn start_in(self, sub: &str) -> Result<Vm> {
        self.start_vm(Some(sub))
    }

    fn start_vm(self, sub: Option<&str>) -> Result<Vm> {
        let ctx = self.ctx;
        let mut append = vec![STBOOT_APPEND.to_owned()];
        if self.outcome == Outcome::NothingBooted {
            append.push(FAIL_DEADLINE.to_owned());
        }
        append.extend(self.append);
        let mut cfg = ctx.vm_config(&self.image, &append.join(" "));
        cfg.nics = (1..=self.nics).map(test_mac).collect();
        match &self.firmware {
            Firmware::Direct => {}
            Firmware::Ovmf { vars } => cfg.extra_args = ovmf::qemu_args(vars),
            Firmware::Uefi { vars, media } => {
                cfg.extra_args = ovmf::qemu_args(vars);
                cfg.extra_args.extend(uefi_media(ctx, &cfg, *media)?);
                cfg.direct_kernel = false;
            }
        }
        cfg.extra_args.extend(self.extra_qemu);
        cfg.console_input = self.console_input;
        cfg.timeout = self.timeout;
        cfg.hostfwd = self.hostfwd;
        let (must_see, fail): (&[&str], &[&str]) = match self.outcome {
            Outcome::Boots => (&[VERIFIED, KEXEC, OS_BOOTED], &[NOTHING_BOOTED, "panic at"]),
            Outcome::NothingBooted => (&[NOTHING_BOOTED, RECOVERY], &[OS_BOOTED, KEXEC]),
        };
        cfg.fail_markers
            .extend(fail.iter().map(|f| (*f).to_owned()));
        let t = self.timeout.unwrap_or_else(|| marker_timeout(ctx.accel()));
        let mut vm = match sub {
            Some(sub) => ctx.start_vm_in(&cfg, sub)?,
            None => ctx.start_vm(&cfg)?,
        };
        for marker in must_see {
            vm.wait_for(marker, t)?;
        }
        Ok(vm)
    }
}

/// Builds `stboot.uki` and `stboot.iso` (`stmgr uki create`: the run's kernel, `cfg.initrd`
/// and the kernel command line QEMU would pass) and returns the QEMU arguments of `media`.
pub(crate) fn uefi_media(ctx: &Ctx<'_>, cfg: &VmConfig, media: BootMedia) -> Result<Vec<String>> {
    let out = ctx.path("stboot");
    run(cmd(ctx.stmgr()?)
        // --force: a scenario or benchmark may boot several times from the same directory.
        .args([
            "uki", "create", "--force", "--format", "uki,iso", "--kernel",
        ])
        .arg(&cfg.kernel)
        .arg("--initramfs")
        .arg(&cfg.initrd)
        .arg("--cmdline")
        .arg(qemu::kernel_cmdline(&cfg.append))
        .arg("--out")
        .arg(&out))?;
    Ok(match media {
        BootMedia::Esp => {
            let dir = ctx.path("esp");
            let boot = dir.join("EFI").join("BOOT");
            fs::create_dir_all(&boot)?;
            fs::copy(ctx.path("stboot.uki"), boot.join("BOOTX64.EFI"))?;
            vec![
                "-drive".into(),
                format!("format=raw,file=fat:rw:{}", dir.display()),
            ]
        }
        BootMedia::Cdrom => vec![
            "-cdrom".into(),
            ctx.path("stboot.iso").display().to_string(),
        ],
    })
}

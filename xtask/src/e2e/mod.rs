//! `cargo xtask e2e`: end-to-end scenarios with real parts. A Debian kernel in QEMU (TCG by
//! default), nginx with real TLS on the host (reached by the guest as 10.0.2.2 through slirp),
//! OS packages made and signed by the real `stmgr`.
//!
//! A scenario is a function `fn(&Ctx) -> Result<()>` listed in [`scenarios::ALL`]. It gets its
//! own directory `target/e2e/<scenario>/` (emptied first) holding everything it makes: serial
//! log, nginx config and logs, keys, images. Scenarios run one after another; VMs never overlap.
//!
//! Environment: `E2E_ACCEL=tcg|kvm` (default tcg; KVM hangs on nested hosts), `E2E_KERNEL_DIR`
//! (an unpacked kernel .deb to use instead of downloading one).

mod attest;
pub(crate) mod attestbench;
mod boot;
pub(crate) mod bootbench;
pub(crate) mod demo;
mod dns;
mod encrypted;
mod faulty;
mod hostconfig;
mod kernel;
pub(crate) mod measurebench;
mod measured;
mod nginx;
mod ospkg;
mod ovmf;
mod provision;
mod qemu;
mod run;
mod scenarios;
mod sigsum;
mod stboot;
mod swtpm;
mod tls;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

pub(crate) use faulty::{Fault, FaultyServer};
pub(crate) use kernel::Kernel;
pub(crate) use nginx::{Nginx, NginxConfig};
pub(crate) use ospkg::{OS_BOOTED, OsPkg, OsPkgSpec, SigningKeys};
pub(crate) use qemu::{Accel, NetTopology, Vm, VmConfig, test_mac};
pub(crate) use stboot::StbootInitramfs;
pub(crate) use tls::TestPki;

use crate::util::{say, target_dir};

/// Flags of `cargo xtask e2e`.
#[derive(Args, Debug, Default)]
pub(crate) struct E2eArgs {
    /// Accelerator [default: $E2E_ACCEL, else tcg].
    #[arg(long, value_enum)]
    accel: Option<Accel>,
    /// Run every selected scenario even after a failure.
    #[arg(long)]
    keep_going: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Scenarios to run (default: all).
    scenarios: Vec<String>,
}

/// One scenario.
pub(crate) struct Scenario {
    /// Name on the command line and directory name.
    pub(crate) name: &'static str,
    /// One line: what it proves.
    pub(crate) about: &'static str,
    /// The test.
    pub(crate) run: fn(&Ctx<'_>) -> Result<()>,
}

/// Shared by all scenarios of a run; expensive parts are built on first use.
pub(crate) struct Env {
    accel: Accel,
    kernel: Kernel,
    stmgr: RefCell<Option<PathBuf>>,
    stboot: RefCell<Option<PathBuf>>,
}

/// What a scenario gets.
pub(crate) struct Ctx<'a> {
    env: &'a Env,
    /// `target/e2e/<name>/`, empty at the start.
    pub(crate) dir: PathBuf,
}

impl Ctx<'_> {
    /// The accelerator.
    pub(crate) fn accel(&self) -> Accel {
        self.env.accel
    }

    /// `dir/<rel>`.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The `stmgr` binary (built on first use).
    pub(crate) fn stmgr(&self) -> Result<PathBuf> {
        lazy(&self.env.stmgr, stboot::build_stmgr)
    }

    /// The static stboot binary (built on first use).
    pub(crate) fn stboot(&self) -> Result<PathBuf> {
        lazy(&self.env.stboot, stboot::build_stboot)
    }

    /// A VM config booting this run's kernel with `initrd` and `append` (no NICs, 1 GiB).
    pub(crate) fn vm_config(&self, initrd: &Path, append: &str) -> VmConfig {
        VmConfig::new(&self.env.kernel.vmlinuz, initrd, append)
    }

    /// Starts a VM logging to `dir/serial.log`.
    pub(crate) fn start_vm(&self, cfg: &VmConfig) -> Result<Vm> {
        Vm::start(cfg, self.env.accel, &self.dir)
    }

    /// Starts a VM logging to `dir/<sub>/serial.log` (for a second VM in one scenario).
    pub(crate) fn start_vm_in(&self, cfg: &VmConfig, sub: &str) -> Result<Vm> {
        Vm::start(cfg, self.env.accel, &self.dir.join(sub))
    }

    /// Starts nginx with its files in `dir/nginx/`.
    pub(crate) fn nginx(&self, cfg: &NginxConfig) -> Result<Nginx> {
        Nginx::start(&self.path("nginx"), cfg)
    }

    /// Makes the test TLS PKI in `dir/tls/`.
    pub(crate) fn tls(&self) -> Result<TestPki> {
        tls::make(&self.path("tls"))
    }

    /// The module files for `names` plus dependencies, in load order.
    pub(crate) fn modules(&self, names: &[&str]) -> Result<Vec<PathBuf>> {
        self.env.kernel.module_closure(names)
    }

    /// Writes `dir/<file>`: the test OS initramfs with the closure of `modules` loaded by its
    /// `/init` (see `testdata/e2e/os-init`).
    pub(crate) fn test_os_initramfs(&self, file: &str, modules: &[&str]) -> Result<PathBuf> {
        let out = self.path(file);
        ospkg::test_os_initramfs(&out, &self.modules(modules)?, None)?;
        Ok(out)
    }

    /// A signing root + leaf in `dir/<sub>/`.
    pub(crate) fn signing_keys(&self, sub: &str) -> Result<SigningKeys> {
        ospkg::signing_keys(&self.stmgr()?, &self.path(sub))
    }

    /// Builds and signs `dir/<name>.{zip,json}` from `spec`.
    pub(crate) fn ospkg(
        &self,
        name: &str,
        spec: &OsPkgSpec,
        signers: &[&SigningKeys],
    ) -> Result<OsPkg> {
        ospkg::build_ospkg(&self.stmgr()?, spec, &self.path(name), signers)
    }

    /// The standard test OS package: this kernel, the test OS initramfs (no modules), cmdline
    /// `console=ttyS0 panic=-1 <extra_cmdline>`, archive URL `url`; written to `dir/<name>.*`.
    pub(crate) fn test_ospkg(
        &self,
        name: &str,
        url: &str,
        extra_cmdline: &str,
        signers: &[&SigningKeys],
    ) -> Result<OsPkg> {
        self.test_ospkg_with(name, url, extra_cmdline, None, &[], signers)
    }

    /// [`Self::test_ospkg`] with more files in the test OS (an uncompressed cpio appended to
    /// its initramfs), e.g. `/bin/st-agent`, and kernel modules (with their dependencies).
    pub(crate) fn test_ospkg_with(
        &self,
        name: &str,
        url: &str,
        extra_cmdline: &str,
        extra: Option<ospkg::Cpio>,
        modules: &[&str],
        signers: &[&SigningKeys],
    ) -> Result<OsPkg> {
        let initramfs = self.test_os_initramfs(&format!("{name}-initramfs.cpio.gz"), modules)?;
        if let Some(cpio) = extra {
            ospkg::append_cpio(&initramfs, cpio)?;
        }
        let spec = OsPkgSpec {
            kernel: self.env.kernel.vmlinuz.clone(),
            initramfs,
            cmdline: format!("console=ttyS0 panic=-1 {extra_cmdline}")
                .trim_end()
                .to_owned(),
            url: url.to_owned(),
            label: format!("stboot e2e test OS ({name})"),
        };
        self.ospkg(name, &spec, signers)
    }

    /// Writes a trust policy directory `dir/<sub>/` (see [`ospkg::trust_policy_dir`]).
    pub(crate) fn trust_policy(
        &self,
        sub: &str,
        signing_roots: &[&Path],
        threshold: u32,
        fetch_method: &str,
        tls_roots: Option<&Path>,
    ) -> Result<PathBuf> {
        let dir = self.path(sub);
        ospkg::trust_policy_dir(&dir, signing_roots, threshold, fetch_method, tls_roots)?;
        Ok(dir)
    }

    /// Builds the stboot initramfs `dir/<file>` with `stmgr image initramfs`. An empty
    /// `spec.stboot` means "this run's stboot" (built on first use).
    pub(crate) fn stboot_initramfs(&self, file: &str, spec: &StbootInitramfs) -> Result<PathBuf> {
        let mut spec = spec.clone();
        if spec.stboot.as_os_str().is_empty() {
            spec.stboot = self.stboot()?;
        }
        let out = self.path(file);
        stboot::stboot_initramfs(&self.stmgr()?, &spec, &out)?;
        Ok(out)
    }
}

fn lazy(cell: &RefCell<Option<PathBuf>>, build: fn() -> Result<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = cell.borrow().as_ref() {
        return Ok(p.clone());
    }
    let p = build()?;
    *cell.borrow_mut() = Some(p.clone());
    Ok(p)
}

impl Env {
    /// A run's environment: no binaries built yet.
    pub(crate) fn new(accel: Accel, kernel: Kernel) -> Self {
        Self {
            accel,
            kernel,
            stmgr: RefCell::new(None),
            stboot: RefCell::new(None),
        }
    }
}

/// Empty `dir` (create it if needed): every run starts from nothing.
pub(crate) fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;
    Ok(())
}

/// Default timeout for a single console marker (the VM's hard timeout still applies).
pub(crate) fn marker_timeout(accel: Accel) -> Duration {
    accel.default_timeout()
}

fn accel_from_env() -> Result<Accel> {
    match std::env::var("E2E_ACCEL").as_deref() {
        Err(_) | Ok("" | "tcg") => Ok(Accel::Tcg),
        Ok("kvm") => Ok(Accel::Kvm),
        Ok(other) => bail!("E2E_ACCEL={other}: expected tcg or kvm"),
    }
}

/// `cargo xtask e2e`.
pub(crate) fn run(args: &E2eArgs) -> Result<()> {
    if args.list {
        for s in scenarios::ALL {
            println!("{:<16} {}", s.name, s.about);
        }
        return Ok(());
    }
    let selected: Vec<&Scenario> = if args.scenarios.is_empty() {
        scenarios::ALL.iter().collect()
    } else {
        args.scenarios
            .iter()
            .map(|n| {
                scenarios::ALL
                    .iter()
                    .find(|s| s.name == n)
                    .with_context(|| format!("no scenario {n:?} (see --list)"))
            })
            .collect::<Result<_>>()?
    };
    let accel = match args.accel {
        Some(a) => a,
        None => accel_from_env()?,
    };
    let kernel = kernel::get()?;
    say!(
        "e2e: kernel {} ({}), accel {accel:?}",
        kernel.version,
        kernel.vmlinuz.display()
    );
    let env = Env::new(accel, kernel);
    let out = target_dir().join("e2e");
    let mut results = Vec::new();
    for s in selected {
        let dir = out.join(s.name);
        fresh_dir(&dir)?;
        let ctx = Ctx {
            env: &env,
            dir: dir.clone(),
        };
        say!("e2e: ==> {} ({})", s.name, s.about);
        let start = Instant::now();
        let result = (s.run)(&ctx);
        let took = start.elapsed();
        let log = dir.join("serial.log");
        let log_note = if log.exists() {
            format!(", serial log {}", log.display())
        } else {
            format!(", files in {}", dir.display())
        };
        match &result {
            Ok(()) => say!(
                "e2e: PASS {} ({:.1}s{log_note})",
                s.name,
                took.as_secs_f64()
            ),
            Err(e) => say!(
                "e2e: FAIL {} ({:.1}s{log_note}): {e:#}",
                s.name,
                took.as_secs_f64()
            ),
        }
        let failed = result.is_err();
        results.push((s.name, took, result.is_ok()));
        if failed && !args.keep_going {
            break;
        }
    }
    say!("e2e: summary:");
    for (name, took, ok) in &results {
        say!(
            "  {} {:>6.1}s  {name}",
            if *ok { "PASS" } else { "FAIL" },
            took.as_secs_f64()
        );
    }
    let failed: Vec<_> = results.iter().filter(|r| !r.2).map(|r| r.0).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("e2e: failed: {}", failed.join(", "))
    }
}

/// Every scenario with default settings: the `cargo xtask test` hook.
pub(crate) fn run_all() -> Result<()> {
    run(&E2eArgs {
        keep_going: true,
        ..E2eArgs::default()
    })
}

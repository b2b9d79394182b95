//! `cargo xtask demo`: the whole story on one machine. Installs what is missing, makes keys,
//! builds and signs an OS package, serves it over HTTPS from nginx on loopback, builds the
//! stboot image, boots it in QEMU and shows the serial console until the booted OS reports in.
//! `--uefi`: the same story through UEFI firmware with a TPM ([`uefi`]). `--attest`: remote
//! attestation of the booted OS and the authorised go-ahead ([`attest`]).

mod attest;
mod uefi;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

use super::hostconfig::HostConfigJson;
use super::run::{KEXEC, NOTHING_BOOTED, STBOOT_APPEND, Serve, Served, StbootImage, VERIFIED};
use super::{Ctx, Env, OS_BOOTED, accel_from_env, fresh_dir, kernel, marker_timeout, test_mac};
use crate::util::{say, target_dir};

const STEPS: u32 = 6;

fn step(n: u32, what: &str) {
    step_of(n, STEPS, what);
}

/// One progress line: `demo: [n/of] what`.
fn step_of(n: u32, of: u32, what: &str) {
    say!("demo: [{n}/{of}] {what}");
}

/// `cargo xtask demo` options.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Boot through UEFI firmware (OVMF) with a TPM (swtpm): stboot as a UKI from an EFI system
    /// partition, measured boot, and the PCRs the booted OS read next to `stmgr measure
    /// predict` and the event log's replay. Exit 0 only when they all agree.
    #[arg(long)]
    pub(crate) uefi: bool,
    /// Remote attestation: the OS package's test OS runs the attestation agent on a swtpm with
    /// an EK certificate; `stattest check` accepts it (and refuses another trust policy), go-aheads
    /// with too few signatures or for another boot are refused, two staff members authorise and
    /// the agent serves; after a power cycle it waits again. Exit 0 only when all happened so.
    #[arg(long, conflicts_with = "uefi")]
    pub(crate) attest: bool,
}

/// Run the demo; Ok only when the booted OS reported in on the serial console (and, with
/// `--uefi`, its PCRs are the predicted ones; with `--attest`, the attestation story went as
/// expected).
pub(crate) fn run(args: &DemoArgs) -> Result<()> {
    if args.attest {
        attest::run()
    } else if args.uefi {
        uefi::run()
    } else {
        run_direct()
    }
}

/// Steps 1 and 2 of both demos: the Debian packages (`packages` names the main ones) and the
/// kernel; returns the environment and a fresh `target/<dir>`.
fn packages_and_kernel(of: u32, packages: &str, dir: &str) -> Result<(Env, PathBuf)> {
    step_of(
        1,
        of,
        &format!("installing missing Debian packages ({packages})"),
    );
    crate::deps::ensure(crate::deps::For::Demo)?;
    step_of(
        2,
        of,
        "getting the Debian kernel (downloaded once, then cached in target/e2e-cache)",
    );
    let env = Env::new(accel_from_env()?, kernel::get()?);
    let dir = target_dir().join(dir);
    fresh_dir(&dir)?;
    Ok((env, dir))
}

/// Step 3 of both demos: keys, the signed OS package, nginx; returns it and the descriptor URL.
fn serve(ctx: &Ctx<'_>, of: u32) -> Result<(Served, String)> {
    step_of(
        3,
        of,
        "making a signing root and a signer, building and signing the OS package, starting nginx (HTTPS)",
    );
    let served = Serve::new(ctx).start()?;
    let url = served.nginx.https_url("/os.json")?;
    say!(
        "demo:       OS package {} + .json, served as {url}",
        served.pkg.zip.display()
    );
    Ok((served, url))
}

/// The package label from stboot's `ST:VERIFIED` line and stboot's total from its timing line,
/// for both demos' final line ("?" when absent).
fn label_and_total<'a>(verified: &'a str, timing: &'a str) -> (&'a str, &'a str) {
    let total = timing
        .split("total ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("?");
    let label = verified
        .split("(label ")
        .nth(1)
        .and_then(|s| s.split("): ").next())
        .unwrap_or("?");
    (label, total)
}

/// The demo under SeaBIOS with QEMU's `-kernel` (the README's main job).
fn run_direct() -> Result<()> {
    let started = Instant::now();
    let (env, dir) = packages_and_kernel(STEPS, "qemu, nginx, busybox", "demo")?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let (served, url) = serve(&ctx, STEPS)?;

    step(
        4,
        "building stboot (static musl binary) and the stboot image (trust policy, host config, NIC modules)",
    );
    let image = StbootImage::new(&ctx, served.trust())
        .host_config(&HostConfigJson::dhcp().pointer(&url).with_nulls())
        .build()?;
    say!("demo:       stboot image {}", image.display());

    step(
        5,
        "booting the stboot image in QEMU (TCG: allow a minute); serial console:",
    );
    let mut cfg = ctx.vm_config(&image, STBOOT_APPEND);
    cfg.nics = vec![test_mac(1)];
    cfg.echo = true;
    cfg.fail_markers.push(NOTHING_BOOTED.to_owned());
    let t = marker_timeout(ctx.accel());
    let mut vm = ctx.start_vm(&cfg)?;
    let (verified, _) = vm.wait_for(VERIFIED, t)?;
    let (timing, _) = vm.wait_for("timing:", t)?;
    vm.wait_for(KEXEC, t)?;
    let (_, at) = vm.wait_for(OS_BOOTED, t)?;
    vm.wait_poweroff(t)?;

    step(6, "checking what nginx served");
    let log = served.nginx.access_log();
    if !log.iter().any(|e| e.status == 200 && e.uri == "/os.zip") {
        bail!("nginx did not serve /os.zip: {log:?}");
    }
    let signatures = verified
        .split("): ")
        .nth(1)
        .and_then(|s| s.split(", sha256").next())
        .unwrap_or("?");
    let (label, total) = label_and_total(&verified, &timing);
    say!("demo: serial log {}", vm.serial_log().display());
    println!(
        "demo: OK: booted {label} from {} ({signatures}); stboot start to kexec {total}; OS reported in {:.1} s after QEMU start, demo took {:.0} s",
        served.nginx.https_url("/os.zip")?,
        at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

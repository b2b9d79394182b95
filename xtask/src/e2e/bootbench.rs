//! `cargo xtask bench-boot`: stboot's boot figures in QEMU, measured the way the Go reference
//! was (e2e-recipe: TCG, the Debian kernel, plain HTTP): from exec of stboot to the booted OS's
//! marker for packages of 64 and 256 MiB, the phases stboot reports, the smallest guest that
//! boots the 256 MiB package, and a bare GET of the same bytes in the same VM for comparison.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::hostconfig::HostConfigJson;
use super::ospkg::{Cpio, append_cpio, test_os_initramfs};
use super::run::{
    KEXEC, NET_MODULES, NOTHING_BOOTED, STBOOT_APPEND, StbootImage, TrustPolicy, VERIFIED,
};
use super::stboot::build_guest_probe;
use super::{
    Ctx, Env, NginxConfig, OS_BOOTED, OsPkgSpec, accel_from_env, fresh_dir, kernel, test_mac,
};
use crate::util::{say, target_dir};

/// `cargo xtask bench-boot`.
#[derive(Args, Debug)]
pub(crate) struct BenchBootArgs {
    /// Package sizes in MiB (kernel + initramfs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    sizes: Vec<u64>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: u32,
    /// Runs per size (one table row each): single runs vary a lot on a shared machine.
    #[arg(long, default_value_t = 1)]
    runs: u32,
}

/// Random bytes (xorshift64*): incompressible, like a real compressed initramfs.
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The test OS initramfs plus a random `payload` file so the package has `total` bytes: a
/// gzip cpio with /init and busybox, then (4-byte aligned) an uncompressed cpio with the payload
/// (the kernel unpacks concatenated archives).
pub(crate) fn big_initramfs(out: &Path, kernel_len: u64, total: u64) -> Result<()> {
    test_os_initramfs(out, &[], None)?;
    let base = fs::metadata(out)?.len();
    let want = total.saturating_sub(kernel_len + base + 512);
    let mut cpio = Cpio::new();
    cpio.file("payload", 0o644, &random(usize::try_from(want)?, total));
    append_cpio(out, cpio)
}

/// Seconds since QEMU start at which the first console line containing `marker` appeared.
fn seen_at(lines: &[(Duration, String)], marker: &str) -> Option<f64> {
    lines
        .iter()
        .find(|(_, l)| l.contains(marker))
        .map(|(t, _)| t.as_secs_f64())
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(key).nth(1).map(|s| {
        s.trim_start()
            .split(' ')
            .next()
            .unwrap_or("")
            .trim_end_matches(',')
    })
}

struct Row {
    mib: u64,
    memory: u32,
    booted: bool,
    stboot_to_os: f64,
    timing: String,
    transfer: f64,
    not_transfer: f64,
    rate: String,
    probe: String,
}

impl Row {
    /// A value from the probe line, in seconds or bytes.
    fn probe(&self, key: &str) -> f64 {
        field(&self.probe, &format!(" {key}="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
    /// MB/s of the archive for a probe timing.
    fn probe_rate(&self, key: &str) -> String {
        let b = self.probe("bytes");
        let s = self.probe(key);
        format!("{:.1} MB/s ({s:.2} s)", b / s / 1e6)
    }
}

fn one(ctx: &Ctx<'_>, mib: u64, memory: u32) -> Result<Row> {
    let kernel_path = ctx.env.kernel.vmlinuz.clone();
    let kernel_len = fs::metadata(&kernel_path)?.len();
    let total = mib << 20;
    let sub = format!("{mib}mib-{memory}");
    let initramfs = ctx.path(&format!("{sub}/initramfs.cpio"));
    fs::create_dir_all(ctx.path(&sub))?;
    big_initramfs(&initramfs, kernel_len, total)?;
    let keys = ctx.signing_keys("keys")?;
    let spec = OsPkgSpec {
        kernel: kernel_path,
        initramfs: initramfs.clone(),
        cmdline: "console=ttyS0 panic=-1".into(),
        url: "os.zip".into(),
        label: format!("bench {mib} MiB"),
    };
    let pkg = ctx.ospkg(&format!("{sub}/os"), &spec, &[&keys])?;
    let www = ctx.path(&format!("{sub}/www"));
    fs::create_dir_all(&www)?;
    fs::rename(&pkg.json, www.join("os.json"))?;
    fs::rename(&pkg.zip, www.join("os.zip"))?;
    let nginx = ctx.nginx(&NginxConfig::http(&www))?;
    let img = StbootImage::new(ctx, TrustPolicy::network(&keys.root_cert))
        .host_config(&HostConfigJson::slirp().pointer(&nginx.http_url("/os.json")?))
        .build()?;

    let mut cfg = ctx.vm_config(&img, STBOOT_APPEND);
    cfg.nics = vec![test_mac(1)];
    cfg.memory_mib = memory;
    cfg.timeout = Some(Duration::from_secs(300));
    cfg.fail_markers.push(NOTHING_BOOTED.to_owned());
    let t = Duration::from_secs(300);
    let mut vm = ctx.start_vm_in(&cfg, &sub)?;
    let booted = vm
        .wait_for(VERIFIED, t)
        .and_then(|_| vm.wait_for(KEXEC, t))
        .and_then(|_| vm.wait_for(OS_BOOTED, t))
        .is_ok();
    let _ = vm.wait_exit(Duration::from_secs(30));
    let lines = vm.timed_lines();
    drop(vm);
    let start = seen_at(&lines, "stboot-rs").context("no stboot start line")?;
    let os = seen_at(&lines, OS_BOOTED);
    let timing = lines
        .iter()
        .find(|(_, l)| l.contains("timing:"))
        .map(|(_, l)| l.clone())
        .unwrap_or_default();
    let secs = |key: &str| {
        field(&timing, key)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let transfer = secs("archive transfer");
    let not_transfer = secs("of which not transfer");
    let rate = timing
        .split("bytes, ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or("?")
        .to_owned();

    // The floors, measured by the probe in the same kind of VM (see guest_probe.rs).
    fs::copy(&ctx.env.kernel.vmlinuz, www.join("vmlinuz"))?;
    fs::copy(&initramfs, www.join("initramfs"))?;
    let probe_img = ctx.path(&format!("{sub}/probe.cpio"));
    test_os_initramfs(&probe_img, &ctx.modules(NET_MODULES)?, None)?;
    let mut cpio = Cpio::new();
    cpio.dir("bin")
        .file("bin/guest_probe", 0o755, &fs::read(build_guest_probe()?)?);
    append_cpio(&probe_img, cpio)?;
    // E2E_PROBE_WARM=1: the probe touches and frees most free memory before its first
    // kexec_file_load of stboot's path (does the state of never-used memory explain its cost?).
    let warm = if std::env::var_os("E2E_PROBE_WARM").is_some() {
        " e2e.probe_warm"
    } else {
        ""
    };
    let mut cfg = ctx.vm_config(
        &probe_img,
        &format!("e2e.probe={}{warm}", nginx.http_url("/")?),
    );
    cfg.nics = vec![test_mac(1)];
    cfg.memory_mib = memory;
    cfg.timeout = Some(Duration::from_secs(600));
    let mut vm = ctx.start_vm_in(&cfg, &format!("{sub}/probe"))?;
    let (probe, _) = vm.wait_for("E2E-PROBE", Duration::from_secs(600))?;
    let _ = vm.wait_exit(Duration::from_secs(30));
    if probe.contains("error=") {
        say!("bench-boot: the guest probe failed (its figures are missing): {probe}");
    }
    Ok(Row {
        mib,
        memory,
        booted: booted && os.is_some(),
        stboot_to_os: os.map_or(f64::NAN, |o| o - start),
        timing,
        transfer,
        not_transfer,
        rate,
        probe: probe.trim().to_owned(),
    })
}

/// Run the boot benchmark and print a table for docs/benchmarks.md.
pub(crate) fn run(args: &BenchBootArgs) -> Result<()> {
    crate::deps::ensure(crate::deps::For::Demo)?;
    let env = Env::new(accel_from_env()?, kernel::get()?);
    let dir = target_dir().join("bench-boot");
    fresh_dir(&dir)?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let stboot: PathBuf = ctx.stboot()?;
    let size = fs::metadata(&stboot)?.len();
    let mut rows = Vec::new();
    for &mib in &args.sizes {
        say!(
            "bench-boot: {mib} MiB package, {} MiB guest",
            args.memory_mib
        );
        for _ in 0..args.runs.max(1) {
            let row = one(&ctx, mib, args.memory_mib)?;
            say!("bench-boot: {}", row.timing);
            rows.push(row);
        }
    }
    println!(
        "\nstboot boot benchmark (QEMU {:?}, -cpu {} -smp {}, plain HTTP over slirp/virtio-net, Debian kernel {})",
        env.accel,
        super::qemu::tcg_cpu(),
        super::qemu::guest_cpus(),
        env.kernel.version
    );
    println!(
        "stboot binary: {size} bytes ({:.2} MiB), static musl, profile `stboot`\n",
        size as f64 / 1048576.0
    );
    println!(
        "| package | guest | booted | stboot exec -> OS marker | archive transfer | everything but transfer (budget 0.5 s + 10%) | stboot rate | bare GET (TcpStream) | transport, no hash | hashed on a 2nd thread | hashed on the same thread |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let budget = 0.5 + 0.1 * r.transfer;
        println!(
            "| {} MiB | {} MiB | {} | {:.1} s | {:.2} s | {:.2} s (budget {:.2} s: {}) | {} | {} | {} | {} | {} |",
            r.mib,
            r.memory,
            if r.booted { "yes" } else { "NO" },
            r.stboot_to_os,
            r.transfer,
            r.not_transfer,
            budget,
            if r.not_transfer <= budget {
                "within"
            } else {
                "OVER"
            },
            r.rate,
            r.probe_rate("bare_get"),
            r.probe_rate("transport_get"),
            r.probe_rate("hashed_get"),
            r.probe_rate("hashed_get_1thread"),
        );
    }
    println!("\nin-guest probe (seconds; guest_probe.rs):");
    for r in &rows {
        println!("  {} MiB: {}", r.mib, r.probe);
    }
    println!("\nphases (stboot's own timing line):");
    for r in &rows {
        println!(
            "  {} MiB: {}",
            r.mib,
            r.timing.split("timing: ").nth(1).unwrap_or("?")
        );
    }
    Ok(())
}

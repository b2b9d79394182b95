//! `cargo xtask bench-measure`: what measured boot costs. The standard test package over HTTPS,
//! booted under SeaBIOS (direct kernel) and under UEFI (OVMF starting stboot as a UKI from an
//! ESP), each without a TPM, with a sha256-only swtpm, and with four banks. Prints stboot's own
//! `measure` phase (TPM banks, identity read, six extends, three reads back), its total, and the
//! wall time from VM start to the booted OS's marker.

use std::fs;

use anyhow::{Context, Result};
use clap::Args;

use super::hostconfig::HostConfigJson;
use super::run::{BootMedia, Firmware, Serve, StbootImage, StbootRun};
use super::swtpm::{Swtpm, SwtpmSpec};
use super::{Ctx, Env, OS_BOOTED, accel_from_env, fresh_dir, kernel, ovmf};
use crate::util::{say, target_dir};

/// `cargo xtask bench-measure`.
#[derive(Args, Debug)]
pub(crate) struct BenchMeasureArgs {
    /// Boots per configuration.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Leave out the UEFI rows (they take about twice as long).
    #[arg(long)]
    no_uefi: bool,
}

struct Sample {
    measure: f64,
    total: f64,
    vm_to_os: f64,
}

fn field(line: &str, key: &str) -> f64 {
    line.split(key)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Run the benchmark and print a table for docs/benchmarks.md.
pub(crate) fn run(args: &BenchMeasureArgs) -> Result<()> {
    crate::deps::ensure(crate::deps::For::Demo)?;
    let env = Env::new(accel_from_env()?, kernel::get()?);
    let dir = target_dir().join("bench-measure");
    fresh_dir(&dir)?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let s = Serve::new(&ctx).start()?;
    let img = StbootImage::new(&ctx, s.trust())
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .build()?;
    let tpms: [(&str, &[&str]); 3] = [
        ("none", &[]),
        ("sha256", &["sha256"]),
        ("4 banks", &["sha1", "sha256", "sha384", "sha512"]),
    ];
    let firmwares: &[&str] = if args.no_uefi {
        &["SeaBIOS"]
    } else {
        &["SeaBIOS", "UEFI (UKI)"]
    };
    let mut rows = Vec::new();
    for fw in firmwares {
        for (name, banks) in tpms {
            let mut samples = Vec::new();
            for i in 0..args.runs.max(1) {
                let uefi = *fw != "SeaBIOS";
                let tpm = if banks.is_empty() {
                    None
                } else {
                    Some(Swtpm::start(
                        &ctx,
                        &format!("swtpm-{i}"),
                        &SwtpmSpec {
                            banks,
                            identity: None,
                            firmware_starts: uefi,
                        },
                    )?)
                };
                let mut run = StbootRun::new(&ctx, &img);
                if uefi {
                    let vars = ctx.path("OVMF_VARS.fd");
                    fs::copy(ovmf::VARS, &vars)
                        .with_context(|| format!("{} (apt-get install ovmf)", ovmf::VARS))?;
                    run = run.firmware(Firmware::Uefi {
                        vars,
                        media: BootMedia::Esp,
                    });
                }
                if let Some(t) = &tpm {
                    run = run.extra_qemu(t.qemu_args());
                }
                let vm = run.run()?;
                let lines = vm.timed_lines();
                let timing = lines
                    .iter()
                    .find(|(_, l)| l.contains("timing:"))
                    .map(|(_, l)| l.clone())
                    .context("no timing line")?;
                let os = lines
                    .iter()
                    .find(|(_, l)| l.contains(OS_BOOTED))
                    .map(|(t, _)| t.as_secs_f64())
                    .unwrap_or(f64::NAN);
                let sample = Sample {
                    measure: if banks.is_empty() {
                        0.0
                    } else {
                        field(&timing, "measure ")
                    },
                    total: field(&timing, "; total "),
                    vm_to_os: os,
                };
                say!(
                    "bench-measure: {fw}, TPM {name}: measure {:.3} s, stboot total {:.2} s, VM start -> OS {:.1} s",
                    sample.measure,
                    sample.total,
                    sample.vm_to_os
                );
                samples.push(sample);
                drop(vm);
                drop(tpm);
            }
            rows.push((fw.to_string(), name, samples));
        }
    }
    println!(
        "\nmeasured boot cost (QEMU {:?}, Debian kernel {}, test OS package over HTTPS; median of {} runs)\n",
        env.accel,
        env.kernel.version,
        args.runs.max(1)
    );
    println!(
        "| firmware | TPM (swtpm) | stboot `measure` | stboot total | VM start -> OS marker |"
    );
    println!("|---|---|---|---|---|");
    for (fw, name, samples) in rows {
        let m = median(samples.iter().map(|s| s.measure).collect());
        let t = median(samples.iter().map(|s| s.total).collect());
        let o = median(samples.iter().map(|s| s.vm_to_os).collect());
        println!(
            "| {fw} | {name} | {:.0} ms | {t:.2} s | {o:.1} s |",
            m * 1000.0
        );
    }
    Ok(())
}

//! `cargo xtask demo --uefi`: the demo's story through UEFI firmware with a TPM. OVMF finds
//! stboot as a UKI on an EFI system partition and starts it (systemd-stub, then the kernel with
//! the stboot image); stboot reads its host config from the firmware's NVRAM, fetches the OS
//! package over HTTPS, verifies it, measures it into swtpm and kexecs it; the booted test OS
//! prints the PCRs it reads and the event log it got. The demo then puts PCRs 12-14 next to
//! `stmgr measure predict` for the same package and trust policy, replays the event log with
//! `stmgr eventlog replay`, and accounts for what ran before stboot: the firmware's own event
//! log (PCRs 0-7, and PCR 11 from systemd-stub) must have nothing in PCRs 12-14, because the
//! prediction starts them from zero. Exit 0 only when every comparison agrees.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use super::step_of;
use crate::e2e::hostconfig::HostConfigJson;
use crate::e2e::measured::{self, BANKS, Pcrs};
use crate::e2e::qemu::Vm;
use crate::e2e::run::{
    BootMedia, KEXEC, NOTHING_BOOTED, STBOOT_APPEND, StbootImage, VERIFIED, uefi_media,
};
use crate::e2e::swtpm::{Swtpm, SwtpmSpec};
use crate::e2e::{Ctx, OS_BOOTED, marker_timeout, ovmf, test_mac};
use crate::util::{cmd, output, say};

const STEPS: u32 = 8;

fn step(n: u32, what: &str) {
    step_of(n, STEPS, what);
}

/// What stboot measures into each PCR (docs/measurements.md).
const WHAT: [(u32, &str); 3] = [
    (12, "OS package: archive, descriptor"),
    (13, "trust policy, signing root, TLS roots"),
    (14, "identity: none, NV index 0x01420001 not defined"),
];

/// Run the UEFI demo; Ok only when the booted OS reported in and its PCRs are the predicted
/// ones.
pub(super) fn run() -> Result<()> {
    let started = Instant::now();
    let (env, dir) = super::packages_and_kernel(
        STEPS,
        "qemu, nginx, busybox, ovmf, swtpm, systemd-boot-efi",
        "demo-uefi",
    )?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let (served, url) = super::serve(&ctx, STEPS)?;

    step(
        4,
        "building stboot (static musl binary) and the stboot image (trust policy, NIC modules, efivarfs; no host config in it)",
    );
    let image = StbootImage::new(&ctx, served.trust())
        .modules(&["efivarfs"])
        .build()?;
    say!("demo:       stboot image {}", image.display());

    step(
        5,
        "preparing the machine: NVRAM with the host config, the UKI on an EFI system partition, a fresh TPM",
    );
    let hc = HostConfigJson::dhcp().pointer(&url).with_nulls();
    let vars = ovmf::vars_with(
        &ctx.path("OVMF_VARS.fd"),
        "STHostConfig",
        hc.to_json().as_bytes(),
    )?;
    say!(
        "demo:       {}: a copy of OVMF's variable store with STHostConfig (DHCP, {url})",
        vars.display()
    );
    let mut cfg = ctx.vm_config(&image, STBOOT_APPEND);
    cfg.nics = vec![test_mac(1)];
    cfg.echo = true;
    cfg.fail_markers.push(NOTHING_BOOTED.to_owned());
    cfg.fail_markers.push("panic at".to_owned());
    cfg.direct_kernel = false;
    cfg.extra_args = ovmf::qemu_args(&vars);
    cfg.extra_args
        .extend(uefi_media(&ctx, &cfg, BootMedia::Esp)?);
    let uki = ctx.path("stboot.uki");
    say!(
        "demo:       {}: `stmgr uki create` (systemd-stub, kernel, stboot image, command line), as /EFI/BOOT/BOOTX64.EFI in {}",
        uki.display(),
        ctx.path("esp").display()
    );
    let tpm = Swtpm::start(
        &ctx,
        "swtpm",
        &SwtpmSpec {
            banks: BANKS,
            identity: None,
            firmware_starts: true,
        },
    )?;
    cfg.extra_args.extend(tpm.qemu_args());
    say!(
        "demo:       swtpm (TPM 2.0) with a fresh state, PCR banks {}",
        BANKS.join(", ")
    );

    step(
        6,
        "booting in QEMU: OVMF -> systemd-stub -> kernel -> stboot -> kexec -> OS (TCG: allow two minutes); serial console:",
    );
    let t = marker_timeout(ctx.accel());
    let mut vm = ctx.start_vm(&cfg)?;
    vm.wait_for("BdsDxe: starting Boot", t)?;
    let (verified, _) = vm.wait_for(VERIFIED, t)?;
    let (measured_line, _) = vm.wait_for("ST:MEASURED", t)?;
    let (timing, _) = vm.wait_for("timing:", t)?;
    vm.wait_for(KEXEC, t)?;
    let (_, at) = vm.wait_for(OS_BOOTED, t)?;
    vm.wait_poweroff(t)?;
    say!("demo: serial log {}", vm.serial_log().display());
    ensure!(
        vm.lines()
            .iter()
            .any(|l| l.contains("BdsDxe: starting Boot") && l.contains("HARDDISK")),
        "OVMF did not start the ESP disk (see {})",
        vm.serial_log().display()
    );
    // The kernel got the UKI's .cmdline, not load options from the firmware (which the stub
    // would have used instead and measured into PCR 12).
    let cmdline = vm
        .lines()
        .into_iter()
        .find(|l| l.contains("Kernel command line:"))
        .context("no kernel command line on the console")?;
    ensure!(
        cmdline.contains(STBOOT_APPEND.split(' ').next().unwrap_or("stboot.")),
        "not the UKI's command line: {cmdline}"
    );
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    if !served.nginx.served("/os.zip") {
        bail!(
            "nginx did not serve /os.zip: {:?}",
            served.nginx.access_log()
        );
    }
    say!(
        "demo:       stboot: {}",
        after_marker(&measured_line, "ST:MEASURED")
    );

    step(
        7,
        "PCRs 12-14 the booted OS read from the TPM, next to `stmgr measure predict` for the same package and trust policy:",
    );
    let seen = measured::seen(&vm)?;
    let predicted = measured::predict(&ctx, &served.www.join("os.json"), &ctx.path("trust"), b"")?;
    compare_pcrs(&seen.pcrs, &predicted)?;

    step(
        8,
        "the event log the booted OS got, replayed with `stmgr eventlog replay`, and what ran before stboot:",
    );
    let replayed = measured::replay(&ctx, &seen.log, "eventlog.bin")?;
    ensure!(
        replayed == seen.pcrs,
        "the event log the OS got replays to\n  {replayed:?}\nbut the TPM holds\n  {:?}",
        seen.pcrs
    );
    say!(
        "demo:       stboot's event log ({} bytes, {}): replays to the same PCRs 12-14 in all {} banks",
        seen.log.len(),
        ctx.path("eventlog.bin").display(),
        BANKS.len()
    );
    let pcr11 = crate::e2e::boot::check_pcr11(&ctx, &vm)?;
    check_firmware_log(&ctx, &vm, &pcr11)?;

    let (label, total) = super::label_and_total(&verified, &timing);
    println!(
        "demo: OK: UEFI (OVMF) started stboot as a UKI from the ESP; it booted {label} from {}, \
         measured into swtpm; PCRs 12-14 read by the OS == stmgr measure predict == stmgr \
         eventlog replay ({} banks); stboot start to kexec {total}; OS reported in {:.1} s after \
         QEMU start, demo took {:.0} s",
        served.nginx.https_url("/os.zip")?,
        BANKS.len(),
        at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(tpm);
    Ok(())
}

/// The text after `marker` in a console line (the line itself if it is not there).
fn after_marker<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split_once(marker).map_or(line, |(_, r)| r.trim())
}

/// Prints PCRs 12-14 (sha256) read and predicted, and fails unless every bank matches.
fn compare_pcrs(read: &Pcrs, predicted: &Pcrs) -> Result<()> {
    let mut mismatches = Vec::new();
    for bank in BANKS {
        for (pcr, _) in WHAT {
            let r = read.get(*bank).and_then(|p| p.get(&pcr));
            let p = predicted.get(*bank).and_then(|p| p.get(&pcr));
            if r.is_none() || r != p {
                mismatches.push(format!(
                    "{bank} PCR {pcr}: read {}, predicted {}",
                    r.map_or("nothing", String::as_str),
                    p.map_or("nothing", String::as_str)
                ));
            }
        }
    }
    let none = String::from("?");
    for (pcr, what) in WHAT {
        let r = read
            .get("sha256")
            .and_then(|p| p.get(&pcr))
            .unwrap_or(&none);
        let p = predicted
            .get("sha256")
            .and_then(|p| p.get(&pcr))
            .unwrap_or(&none);
        let verdict = if r == p { "match" } else { "DIFFER" };
        say!("demo:       PCR {pcr}: {what}");
        say!("demo:         sha256 read by the OS   {r}");
        say!("demo:         stmgr measure predict   {p}  {verdict}");
    }
    if !mismatches.is_empty() {
        bail!(
            "the PCRs the booted OS read are not the predicted ones:\n  {}",
            mismatches.join("\n  ")
        );
    }
    say!(
        "demo:       match in every bank: {} ({} values)",
        BANKS.join(", "),
        BANKS.len() * WHAT.len()
    );
    Ok(())
}

/// The firmware's event log as the booted OS saw it: nothing in PCRs 12-14 (the prediction
/// starts them from zero, and the match above shows they did), and its replay gives the PCR 11
/// the OS read. Without a firmware log the PCR 12-14 match alone shows the zero start.
fn check_firmware_log(ctx: &Ctx<'_>, vm: &Vm, pcr11: &str) -> Result<()> {
    let Some((file, log_len)) = measured::firmware_log(ctx, vm, "firmware-eventlog.bin")? else {
        say!(
            "demo:       PCRs 12-14 started at zero before stboot: they equal the prediction from zero \
             (the OS saw no firmware event log to show it event by event)"
        );
        return Ok(());
    };
    let shown: serde_json::Value = serde_json::from_str(&output(
        cmd(ctx.stmgr()?)
            .args(["eventlog", "show", "--json"])
            .arg(&file),
    )?)?;
    let events = shown["events"]
        .as_array()
        .context("stmgr eventlog show: no \"events\"")?;
    let mut per_pcr = std::collections::BTreeMap::<u64, usize>::new();
    // What the kernel's EFI stub tagged into PCR 9 (EV_EVENT_TAG: id, size, text).
    let mut pcr9 = Vec::new();
    for e in events {
        if let Some(p) = e["pcr"].as_u64() {
            *per_pcr.entry(p).or_default() += 1;
        }
        if e["pcr"].as_u64() == Some(9) && e["type_name"].as_str() == Some("EV_EVENT_TAG") {
            let text = e["data_hex"]
                .as_str()
                .and_then(tag_text)
                .unwrap_or_else(|| "?".to_owned());
            pcr9.push(text);
        }
    }
    let counts: Vec<String> = per_pcr
        .iter()
        .map(|(p, n)| format!("PCR {p}: {n}"))
        .collect();
    say!(
        "demo:       the firmware's event log ({} bytes, {}): {} events ({})",
        log_len,
        file.display(),
        events.len(),
        counts.join(", ")
    );
    let early: usize = (12..=14).filter_map(|p| per_pcr.get(&p)).sum();
    ensure!(
        early == 0,
        "the firmware or systemd-stub extended PCRs 12-14 ({early} events in {}): PCR 12-14 did \
         not start at zero, so `stmgr measure predict` (from zero) does not describe them alone",
        file.display()
    );
    let replayed = output(
        cmd(ctx.stmgr()?)
            .args(["eventlog", "replay", "--json"])
            .arg(&file),
    )?;
    let v: serde_json::Value = serde_json::from_str(&replayed)?;
    let fw11 = v["pcrs"]["sha256"]["11"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .context("the firmware's log replays to no sha256 PCR 11")?;
    ensure!(
        fw11 == pcr11,
        "the firmware's log replays to PCR 11 {fw11}, the OS read {pcr11}"
    );
    say!(
        "demo:       none in PCRs 12-14, so they started at zero: OVMF passed the UKI no load \
         options, systemd-stub used its .cmdline (the kernel's command line is it) and measured \
         no command line into PCR 12; the log replays to the PCR 11 the OS read"
    );
    if !pcr9.is_empty() {
        say!(
            "demo:       (the kernel's EFI stub measured into PCR 9: {})",
            pcr9.join(", ")
        );
    }
    Ok(())
}

/// The text of an `EV_EVENT_TAG` event's data (hex): after the 4-byte id and 4-byte size.
fn tag_text(hex: &str) -> Option<String> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<_>>()?;
    let text = String::from_utf8_lossy(bytes.get(8..)?);
    Some(text.trim_end_matches('\0').to_owned())
}

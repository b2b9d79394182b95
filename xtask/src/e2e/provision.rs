//! stprov scenarios. `stprov-offline`: a VM provisioned without a first boot (`stprov offline
//! write` into a copy of Debian's OVMF variable store). `stprov-first-boot`: a provisioning
//! guest under OVMF runs `stprov remote static` (real efivarfs, real network, HEAD against
//! nginx over HTTPS), and the next boot of the same variable store is stboot's, which reads
//! STHostConfig from NVRAM and boots the OS package.
//!
//! The measured UEFI scenarios put it together with swtpm: `uefi-measured-iso` (the ISO as a
//! CD-ROM, NVRAM written offline) and `uefi-measured-uki` (the UKI from an ESP, NVRAM written
//! by a provisioning guest that runs `stprov remote static`, then `stprov remote run` against
//! `stprov local run` on the host through a slirp port forward). In both, OVMF starts stboot,
//! which reads STHostConfig, fetches, verifies, measures into a fresh swtpm and kexecs; PCRs
//! 12-14 the OS reads equal `stmgr measure predict` and the replay of its event log, and the
//! firmware's own log shows that nothing before stboot extended them.

use std::fs;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use super::boot;
use super::hostconfig::HostConfigJson;
use super::measured::{self, BANKS, IDENTITY};
use super::nginx::free_port;
use super::ospkg::{BUSYBOX, Cpio};
use super::run::{BootMedia, Firmware, NET_MODULES, Serve, Served, StbootImage, StbootRun};
use super::swtpm::{Swtpm, SwtpmSpec};
use super::{Ctx, VmConfig, ovmf, test_mac};
use crate::util::{cmd, output, run, say};

/// Printed by the provisioning guest's `/init` with stprov's exit code.
const PROVISIONED: &str = "STPROV-E2E-EXIT=";

/// The start of every provisioning guest's `/init`: busybox, the mounts, the modules.
macro_rules! init_start {
    () => {
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do insmod "$m" || echo "STPROV-E2E-INSMOD-FAILED $m"; done
"#
    };
}

/// `stprov remote static` with slirp's addresses for the host name `$name`, the URL in `/url`
/// (checked by HEAD against nginx over HTTPS, TLS roots from the initramfs); it mounts efivarfs
/// itself. Then its exit code and `$name` on the console.
macro_rules! remote_static {
    () => {
        r#"/stprov remote static -i 10.0.2.15/24 -g 10.0.2.2 -d 10.0.2.3 -I eth0 -r "$(cat /url)" \
    -u e2e -p secret -H "$name" --check-deadline 60s
echo "STPROV-E2E-EXIT=$? $name"
"#
    };
}

/// `/init` of `stprov-first-boot`'s guest: `stprov remote static` twice (the second run
/// overwrites the variables the first created, which efivarfs marks immutable), power off.
const STATIC_TWICE_INIT: &str = concat!(
    init_start!(),
    "for name in first.example e2e-first-boot.example; do\n",
    remote_static!(),
    "done\npoweroff -f\n"
);

/// The host name `uefi-measured-uki`'s guest provisions.
const REMOTE_RUN_HOSTNAME: &str = "e2e-remote-run.example";
/// The port `stprov remote run` listens on in the guest (its default).
const REMOTE_RUN_PORT: u16 = 2009;

/// `/init` of `uefi-measured-uki`'s guest: `stprov remote static` (STHostName, STHostConfig),
/// then `stprov remote run` with the one-time password in `/otp`, accepting the connection
/// slirp forwards from the host (source 10.0.2.2), committing without a question; power off.
const REMOTE_RUN_INIT: &str = concat!(
    init_start!(),
    "name=e2e-remote-run.example\n",
    remote_static!(),
    r#"/stprov remote run -o "$(cat /otp)" -i 0.0.0.0 -p 2009 -a 10.0.2.2 --yes
echo "STPROV-E2E-EXIT=$? remote-run"
poweroff -f
"#
);

/// `ctx.dir/provision.cpio.gz`, a provisioning guest's initramfs: busybox, the static
/// `stprov`, `init`, `/url` (the served descriptor's URL with the `user:password` stprov fills
/// in), the test CA as `/etc/trust_policy/tls_roots.pem`, the `extra` files, and the NIC and
/// efivarfs modules.
fn provisioning_initramfs(
    ctx: &Ctx<'_>,
    s: &Served,
    stprov: &Path,
    init: &str,
    extra: &[(&str, &[u8])],
) -> Result<PathBuf> {
    let url = s
        .nginx
        .https_url("/os.json")?
        .replace("https://", "https://user:password@");
    let mut cpio = Cpio::new();
    cpio.dir("bin")
        .file("bin/busybox", 0o755, &fs::read(BUSYBOX)?)
        .file("init", 0o755, init.as_bytes())
        .file("stprov", 0o755, &fs::read(stprov)?)
        .file("url", 0o644, url.as_bytes());
    for (name, data) in extra {
        cpio.file(name, 0o644, data);
    }
    for d in ["proc", "sys", "dev", "etc", "etc/trust_policy", "modules"] {
        cpio.dir(d);
    }
    cpio.file(
        "etc/trust_policy/tls_roots.pem",
        0o644,
        &fs::read(&s.pki.ca_cert)?,
    );
    let modules = ctx.modules(&[NET_MODULES, &["efivarfs"]].concat())?;
    for (i, ko) in modules.iter().enumerate() {
        let name = ko
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("module.ko");
        cpio.file(&format!("modules/{i:02}-{name}"), 0o644, &fs::read(ko)?);
    }
    let initrd = ctx.path("provision.cpio.gz");
    cpio.write_gz(&initrd)?;
    Ok(initrd)
}

/// A fresh copy of OVMF's pristine variable store at `ctx.dir/OVMF_VARS.fd`.
fn fresh_vars(ctx: &Ctx<'_>) -> Result<PathBuf> {
    let vars = ctx.path("OVMF_VARS.fd");
    fs::copy(ovmf::VARS, &vars)
        .with_context(|| format!("{} (apt-get install ovmf)", ovmf::VARS))?;
    Ok(vars)
}

/// The provisioning guest's VM: OVMF with `vars` (QEMU's `-kernel`, the guest sees efivarfs),
/// one NIC.
fn provisioning_vm(ctx: &Ctx<'_>, initrd: &Path, vars: &Path) -> VmConfig {
    let mut cfg = ctx.vm_config(initrd, "");
    cfg.nics = vec![test_mac(1)];
    cfg.extra_args = ovmf::qemu_args(vars);
    cfg
}

/// nginx answered the guest's `HEAD /os.json` (stprov's URL check).
fn ensure_head_checked(s: &Served) -> Result<()> {
    ensure!(
        s.nginx
            .access_log()
            .iter()
            .any(|e| e.method == "HEAD" && e.uri == "/os.json" && e.status == 200),
        "nginx saw no HEAD /os.json: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// A stboot image for NVRAM provisioning: [`Served::trust`], no host config, efivarfs.
fn nvram_image(ctx: &Ctx<'_>, s: &Served) -> Result<PathBuf> {
    StbootImage::new(ctx, s.trust())
        .modules(&["efivarfs"])
        .build()
}

/// First boot: a provisioning guest writes STHostName and STHostConfig with `stprov remote
/// static` into the VM's NVRAM; second boot: stboot finds no host config in its image, reads
/// STHostConfig from NVRAM, fetches, verifies and kexecs the OS package.
pub(crate) fn stprov_first_boot(ctx: &Ctx<'_>) -> Result<()> {
    let stprov = super::stboot::build_stprov()?;
    let s = Serve::new(ctx).start()?;
    let initrd = provisioning_initramfs(ctx, &s, &stprov, STATIC_TWICE_INIT, &[])?;
    let vars = fresh_vars(ctx)?;
    let cfg = provisioning_vm(ctx, &initrd, &vars);
    let timeout = ctx.accel().default_timeout();
    {
        let mut vm = ctx.start_vm_in(&cfg, "provision")?;
        for name in ["first.example", "e2e-first-boot.example"] {
            let (line, _) = vm.wait_for(PROVISIONED, timeout)?;
            ensure!(
                line.contains(&format!("{PROVISIONED}0 {name}")),
                "stprov failed in the provisioning guest: {line}"
            );
        }
        vm.ensure_line("STHostConfig: written")?;
        vm.wait_poweroff(timeout)?;
    }
    ensure_head_checked(&s)?;
    // What the firmware stored, read back on the host.
    let shown = output(cmd(&stprov).args(["offline", "show", "--vars"]).arg(&vars))?;
    ensure!(
        shown.contains("STHostName: e2e-first-boot.example")
            && shown.contains("\"interface_name\":\"eth0\"")
            && shown.contains("e2e:secret@"),
        "variable store after provisioning:\n{shown}"
    );

    let img = nvram_image(ctx, &s)?;
    let vm = StbootRun::new(ctx, &img)
        .firmware(Firmware::Ovmf { vars })
        .run()?;
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    vm.ensure_line("host config description: stprov version v")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// `stprov offline write` of a fresh copy of OVMF's variable store at `ctx.dir/OVMF_VARS.fd`:
/// the slirp static host config pointing at the served descriptor, and `hostname`.
fn offline_vars(ctx: &Ctx<'_>, stprov: &Path, s: &Served, hostname: &str) -> Result<PathBuf> {
    let hc = HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?);
    let hc_file = ctx.path("host_config.json");
    fs::write(&hc_file, hc.to_json())?;
    let vars = ctx.path("OVMF_VARS.fd");
    run(cmd(stprov)
        .args(["offline", "write", "--from", ovmf::VARS, "--vars"])
        .arg(&vars)
        .arg("--host-config")
        .arg(&hc_file)
        .args(["--hostname", hostname]))?;
    Ok(vars)
}

/// The firmware kept what `stprov offline write` stored for `hostname` (the store read back
/// after the VM stopped).
fn ensure_offline_kept(stprov: &Path, vars: &Path, hostname: &str) -> Result<()> {
    let shown = output(cmd(stprov).args(["offline", "show", "--vars"]).arg(vars))?;
    ensure!(
        shown.contains(&format!("STHostName: {hostname}")) && shown.contains("STHostConfig: {"),
        "variable store after the boot:\n{shown}"
    );
    Ok(())
}

/// UEFI (OVMF): no host config in the image; `stprov offline write` provisioned the variable
/// store before the first boot; stboot reads STHostConfig from NVRAM, fetches and boots.
pub(crate) fn stprov_offline(ctx: &Ctx<'_>) -> Result<()> {
    let stprov = super::stboot::build_stprov()?;
    let s = Serve::new(ctx).start()?;
    let vars = offline_vars(ctx, &stprov, &s, "e2e.example")?;
    let img = nvram_image(ctx, &s)?;
    let vm = StbootRun::new(ctx, &img)
        .firmware(Firmware::Ovmf { vars: vars.clone() })
        .run()?;
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    ensure_offline_kept(&stprov, &vars, "e2e.example")
}

/// UEFI + swtpm, ISO: `stprov offline write` provisions a copy of OVMF_VARS; OVMF boots the
/// stboot ISO as a CD-ROM; stboot reads STHostConfig, fetches, verifies, measures, kexecs; the
/// measurements are checked by [`measured_uefi_boot`].
pub(crate) fn uefi_measured_iso(ctx: &Ctx<'_>) -> Result<()> {
    let stprov = super::stboot::build_stprov()?;
    let s = Serve::new(ctx).start()?;
    let vars = offline_vars(ctx, &stprov, &s, "e2e-iso.example")?;
    let img = nvram_image(ctx, &s)?;
    measured_uefi_boot(ctx, &s, &img, &vars, BootMedia::Cdrom)?;
    ensure_offline_kept(&stprov, &vars, "e2e-iso.example")
}

/// UEFI + swtpm, UKI, provisioned by a first boot of the same NVRAM: the provisioning guest
/// runs `stprov remote static`, then `stprov remote run`; the host runs `stprov local run`
/// against it through a slirp port forward and gets the platform's SSH public key, its
/// fingerprint, host name and address; STHostKey, STHostName and STHostConfig are in the
/// variable store afterwards, and the key in it is the one reported. Then OVMF boots the UKI
/// from an ESP with that NVRAM and [`measured_uefi_boot`] checks the measured boot.
pub(crate) fn uefi_measured_uki(ctx: &Ctx<'_>) -> Result<()> {
    const OTP: &str = "e2e-one-time-password";
    let stprov = super::stboot::build_stprov()?;
    let s = Serve::new(ctx).start()?;
    let initrd = provisioning_initramfs(
        ctx,
        &s,
        &stprov,
        REMOTE_RUN_INIT,
        &[("otp", OTP.as_bytes())],
    )?;
    let vars = fresh_vars(ctx)?;
    let port = free_port()?;
    let mut cfg = provisioning_vm(ctx, &initrd, &vars);
    cfg.hostfwd = vec![format!("tcp:127.0.0.1:{port}-:{REMOTE_RUN_PORT}")];
    let timeout = ctx.accel().default_timeout();
    let local = {
        let mut vm = ctx.start_vm_in(&cfg, "provision")?;
        let (line, _) = vm.wait_for(PROVISIONED, timeout)?;
        ensure!(
            line.contains(&format!("{PROVISIONED}0 {REMOTE_RUN_HOSTNAME}")),
            "stprov remote static failed in the provisioning guest: {line}"
        );
        vm.wait_for(
            &format!("listening on 0.0.0.0:{REMOTE_RUN_PORT} for stprov local run"),
            timeout,
        )?;
        let local = output(cmd(&stprov).args([
            "local",
            "run",
            "-o",
            OTP,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--timeout",
            "60s",
        ]))?;
        let (line, _) = vm.wait_for(PROVISIONED, timeout)?;
        ensure!(
            line.contains(&format!("{PROVISIONED}0 remote-run")),
            "stprov remote run failed in the provisioning guest: {line}"
        );
        vm.ensure_line("STHostKey: SSH host key written")?;
        vm.wait_poweroff(timeout)?;
        local
    };
    ensure_head_checked(&s)?;
    check_local_run(ctx, &local, &vars)?;
    let shown = output(cmd(&stprov).args(["offline", "show", "--vars"]).arg(&vars))?;
    ensure!(
        shown.contains(&format!("STHostName: {REMOTE_RUN_HOSTNAME}"))
            && shown.contains("\"interface_name\":\"eth0\"")
            && shown.contains("STHostKey: present"),
        "variable store after provisioning:\n{shown}"
    );

    let img = nvram_image(ctx, &s)?;
    measured_uefi_boot(ctx, &s, &img, &vars, BootMedia::Esp)
}

/// `stprov local run`'s `key=value` lines: `hostname` is the provisioned name, `ip` the
/// address it was given, and `publickey` and `fingerprint` are those of the STHostKey the
/// guest wrote into `vars` (read with `st_format::efi_varstore`, checked with `ssh-keygen`).
fn check_local_run(ctx: &Ctx<'_>, local: &str, vars: &Path) -> Result<()> {
    say!("e2e: stprov local run printed:\n{local}");
    let value = |key: &str| {
        local
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("stprov local run printed no {key}=: {local:?}"))
    };
    ensure!(
        value("hostname")? == REMOTE_RUN_HOSTNAME,
        "hostname: {local}"
    );
    ensure!(value("ip")? == "127.0.0.1", "ip: {local}");
    let publickey = value("publickey")?;
    let fingerprint = value("fingerprint")?;
    ensure!(
        publickey.starts_with("ssh-ed25519 ") && fingerprint.starts_with("SHA256:"),
        "publickey/fingerprint: {local}"
    );

    let store = st_format::efi_varstore::VarStore::parse(fs::read(vars)?)
        .with_context(|| format!("{}", vars.display()))?;
    let guid: st_format::efi_varstore::EfiGuid = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7"
        .parse()
        .context("ST vendor GUID")?;
    let key = store
        .get("STHostKey", &guid)
        .with_context(|| format!("no STHostKey in {}", vars.display()))?;
    let key_file = ctx.path("STHostKey");
    // ssh-keygen reads a private key only from a file nobody else may read.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &key.data))
        .with_context(|| format!("writing {}", key_file.display()))?;
    let derived = output(cmd("ssh-keygen").arg("-y").arg("-f").arg(&key_file))?;
    let first_two = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    ensure!(
        first_two(&derived) == first_two(publickey),
        "STHostKey's public key is {derived:?}, stprov local run printed {publickey:?}"
    );
    let pub_file = ctx.path("STHostKey.pub");
    fs::write(&pub_file, format!("{publickey}\n"))?;
    let listed = output(
        cmd("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&pub_file),
    )?;
    ensure!(
        listed.split_whitespace().nth(1) == Some(fingerprint),
        "ssh-keygen -l: {listed:?}, stprov local run printed {fingerprint:?}"
    );
    Ok(())
}

/// One measured boot under UEFI: a fresh swtpm (the banks [`BANKS`], identity [`IDENTITY`],
/// started by the firmware), OVMF with the provisioned `vars` boots stboot from `media`;
/// stboot reads its host config from STHostConfig, fetches, verifies, measures and kexecs.
/// Checks: the firmware started the media with the UKI's command line; PCR 11 is systemd-stub's
/// predicted value; the firmware's event log (which the OS still sees after the kexec) replays
/// to that PCR 11 and extends none of PCRs 12-14, so they were zero when stboot started (the
/// stub measured no load options); and PCRs 12-14 in every bank equal
/// `stmgr measure predict` from zero and the replay of stboot's log
/// ([`measured::check_measured`]).
fn measured_uefi_boot(
    ctx: &Ctx<'_>,
    s: &Served,
    img: &Path,
    vars: &Path,
    media: BootMedia,
) -> Result<()> {
    let tpm = Swtpm::start(
        ctx,
        "swtpm",
        &SwtpmSpec {
            banks: BANKS,
            identity: Some(IDENTITY),
            firmware_starts: true,
        },
    )?;
    let vm = StbootRun::new(ctx, img)
        .firmware(Firmware::Uefi {
            vars: vars.to_owned(),
            media,
        })
        .extra_qemu(tpm.qemu_args())
        .run()?;
    drop(tpm);
    boot::check_uefi_started(&vm, media)?;
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    let pcr11 = boot::check_pcr11(ctx, &vm)?;
    let fw_file = ctx.path("firmware-eventlog.bin");
    let before =
        measured::firmware_log_pcrs(ctx, &vm, "firmware-eventlog.bin")?.with_context(|| {
            format!(
                "the OS printed no firmware event log (E2E-FWLOG; see {})",
                vm.serial_log().display()
            )
        })?;
    // The log is complete up to stboot: it replays to the PCR 11 systemd-stub left, which the
    // OS read. And it has no event in PCRs 12-14 (no load options, credentials or system
    // extensions measured by the stub), so they were zero when stboot started.
    let fw11 = before.get("sha256").and_then(|p| p.get(&11));
    ensure!(
        fw11 == Some(&pcr11),
        "the firmware's event log ({}) replays to sha256 PCR 11 {fw11:?}, the OS read {pcr11}",
        fw_file.display()
    );
    let early: Vec<String> = before
        .iter()
        .flat_map(|(bank, values)| {
            values
                .iter()
                .filter(|(pcr, _)| (12..=14).contains(*pcr))
                .map(move |(pcr, v)| format!("{bank} PCR {pcr} = {v}"))
        })
        .collect();
    ensure!(
        early.is_empty(),
        "the firmware's event log ({}) extends PCRs 12-14 before stboot: {early:?}",
        fw_file.display()
    );
    let pcrs = measured::check_measured(
        ctx,
        &vm,
        &s.www.join("os.json"),
        &ctx.path("trust"),
        IDENTITY,
        &format!("{media:?}").to_ascii_lowercase(),
    )?;
    say!(
        "e2e: UEFI {media:?} + swtpm: no firmware events in PCRs 12-14; read == stmgr measure \
         predict == replay in {} banks (sha256 PCR 12 {})",
        BANKS.len(),
        pcrs["sha256"][&12]
    );
    boot::boot_timings(&vm, media)
}

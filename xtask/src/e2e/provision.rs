//! stprov scenarios. `stprov-offline`: a VM provisioned without a first boot (`stprov offline
//! write` into a copy of Debian's OVMF variable store). `stprov-first-boot`: a provisioning
//! guest under OVMF runs `stprov remote static` (real efivarfs, real network, HEAD against
//! nginx over HTTPS), and the next boot of the same variable store is stboot's, which reads
//! STHostConfig from NVRAM and boots the OS package.

use std::fs;
use std::path::PathBuf;

use anyhow::{Result, bail, ensure};

use super::hostconfig::HostConfigJson;
use super::ospkg::{BUSYBOX, Cpio};
use super::run::{Firmware, NET_MODULES, Serve, StbootImage, StbootRun};
use super::{Ctx, ovmf, test_mac};
use crate::util::{cargo, cmd, output, run, target_dir};

/// Printed by the provisioning guest's `/init` with stprov's exit code.
const PROVISIONED: &str = "STPROV-E2E-EXIT=";

/// `/init` of the provisioning guest: modules, then `stprov remote static` twice (it mounts
/// efivarfs itself; the second run overwrites the variables the first created, which efivarfs
/// marks immutable), each exit code on the console, power off.
const PROVISION_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do insmod "$m" || echo "STPROV-E2E-INSMOD-FAILED $m"; done
for name in first.example e2e-first-boot.example; do
  /stprov remote static -i 10.0.2.15/24 -g 10.0.2.2 -d 10.0.2.3 -I eth0 -r "$(cat /url)" \
    -u e2e -p secret -H "$name" --check-deadline 60s
  echo "STPROV-E2E-EXIT=$? $name"
done
poweroff -f
"#;

/// `cargo build --profile stboot --target x86_64-unknown-linux-musl -p stprov`: the static
/// binary a provisioning OS carries (it also runs on the host).
fn build_static_stprov() -> Result<PathBuf> {
    const MUSL: &str = "x86_64-unknown-linux-musl";
    run(cargo().args([
        "build",
        "--profile",
        "stboot",
        "--locked",
        "--target",
        MUSL,
        "-p",
        "stprov",
    ]))?;
    let bin = target_dir().join(MUSL).join("stboot").join("stprov");
    if !bin.is_file() {
        bail!("no {} after the build", bin.display());
    }
    Ok(bin)
}

/// First boot: a provisioning guest writes STHostName and STHostConfig with `stprov remote
/// static` into the VM's NVRAM; second boot: stboot finds no host config in its image, reads
/// STHostConfig from NVRAM, fetches, verifies and kexecs the OS package.
pub(crate) fn stprov_first_boot(ctx: &Ctx<'_>) -> Result<()> {
    let stprov = build_static_stprov()?;
    let s = Serve::new(ctx).start()?;
    let url = s
        .nginx
        .https_url("/os.json")?
        .replace("https://", "https://user:password@");
    let mut cpio = Cpio::new();
    cpio.dir("bin")
        .file("bin/busybox", 0o755, &fs::read(BUSYBOX)?)
        .file("init", 0o755, PROVISION_INIT.as_bytes())
        .file("stprov", 0o755, &fs::read(&stprov)?)
        .file("url", 0o644, url.as_bytes());
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

    let vars = ctx.path("OVMF_VARS.fd");
    fs::copy(ovmf::VARS, &vars)?;
    let mut cfg = ctx.vm_config(&initrd, "");
    cfg.nics = vec![test_mac(1)];
    cfg.extra_args = ovmf::qemu_args(&vars);
    cfg.fail_markers.push("Kernel panic".into());
    let timeout = ctx.accel().default_timeout();
    {
        let mut vm = ctx.start_vm_in(&cfg, "provision")?;
        for name in ["first.example", "e2e-first-boot.example"] {
            let (line, _) = vm.wait_for(PROVISIONED, timeout)?;
            ensure!(
                line.contains(&format!("STPROV-E2E-EXIT=0 {name}")),
                "stprov failed in the provisioning guest: {line}"
            );
        }
        vm.ensure_line("STHostConfig: written")?;
        vm.wait_poweroff(timeout)?;
    }
    ensure!(
        s.nginx
            .access_log()
            .iter()
            .any(|e| e.method == "HEAD" && e.uri == "/os.json" && e.status == 200),
        "nginx saw no HEAD /os.json: {:?}",
        s.nginx.access_log()
    );
    // What the firmware stored, read back on the host.
    let shown = output(cmd(&stprov).args(["offline", "show", "--vars"]).arg(&vars))?;
    ensure!(
        shown.contains("STHostName: e2e-first-boot.example")
            && shown.contains("\"interface_name\":\"eth0\"")
            && shown.contains("e2e:secret@"),
        "variable store after provisioning:\n{shown}"
    );

    let img = StbootImage::new(ctx, s.trust())
        .modules(&["efivarfs"])
        .build()?;
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

/// `cargo build --locked -p stprov` (host binary); returns it.
fn build_stprov() -> Result<PathBuf> {
    run(cargo().args(["build", "--locked", "-p", "stprov"]))?;
    let bin = target_dir().join("debug").join("stprov");
    if !bin.is_file() {
        bail!("no {} after the build", bin.display());
    }
    Ok(bin)
}

/// UEFI (OVMF): no host config in the image; `stprov offline write` provisioned the variable
/// store before the first boot; stboot reads STHostConfig from NVRAM, fetches and boots.
pub(crate) fn stprov_offline(ctx: &Ctx<'_>) -> Result<()> {
    let stprov = build_stprov()?;
    let s = Serve::new(ctx).start()?;
    let hc = HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?);
    let hc_file = ctx.path("host_config.json");
    fs::write(&hc_file, hc.to_json())?;
    let vars = ctx.path("OVMF_VARS.fd");
    run(cmd(&stprov)
        .args(["offline", "write", "--from", ovmf::VARS, "--vars"])
        .arg(&vars)
        .arg("--host-config")
        .arg(&hc_file)
        .args(["--hostname", "e2e.example"]))?;
    let img = StbootImage::new(ctx, s.trust())
        .modules(&["efivarfs"])
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .firmware(Firmware::Ovmf { vars: vars.clone() })
        .run()?;
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    // The firmware kept what stprov wrote (the store is read back after the VM stopped).
    let shown = output(cmd(&stprov).args(["offline", "show", "--vars"]).arg(&vars))?;
    ensure!(
        shown.contains("STHostName: e2e.example") && shown.contains("STHostConfig: {"),
        "variable store after the boot:\n{shown}"
    );
    Ok(())
}

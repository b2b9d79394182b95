//! stprov scenarios: a VM provisioned without a first boot. `stprov offline write` puts
//! STHostConfig and STHostName into a copy of Debian's OVMF variable store, and stboot under
//! OVMF reads the host config through efivarfs and boots.

use std::fs;
use std::path::PathBuf;

use anyhow::{Result, bail, ensure};

use super::hostconfig::HostConfigJson;
use super::run::{Firmware, Serve, StbootImage, StbootRun};
use super::{Ctx, ovmf};
use crate::util::{cargo, cmd, output, run, target_dir};

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

//! OVMF firmware for UEFI scenarios, and a writer that puts an EFI variable into a copy of the
//! pristine variable store before the first boot (how stprov's `STHostConfig` looks to stboot),
//! through `st_format::efi_varstore`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use st_format::efi_varstore::{EfiGuid, VarStore};

/// OVMF code and pristine variable store (Debian package `ovmf`).
pub(crate) const CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// The pristine variable store (copied per VM).
pub(crate) const VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The ST vendor GUID (st-reference §4.4).
const ST_GUID: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, as stprov writes.
const ST_ATTRIBUTES: u32 = 0x7;

/// Write `out`: the pristine OVMF variable store plus the ST variable `name` holding `data`,
/// set as the firmware would (`st_format::efi_varstore`, the writer `stprov offline` uses).
pub(crate) fn vars_with(out: &Path, name: &str, data: &[u8]) -> Result<PathBuf> {
    let pristine = fs::read(VARS).with_context(|| format!("{VARS} (apt-get install ovmf)"))?;
    let mut store = VarStore::parse(pristine).context(VARS)?;
    let guid: EfiGuid = ST_GUID.parse().map_err(|e| anyhow!("{ST_GUID}: {e:?}"))?;
    store
        .set(name, &guid, ST_ATTRIBUTES, data)
        .with_context(|| format!("{VARS}: setting {name}"))?;
    fs::write(out, store.into_bytes())?;
    Ok(out.to_owned())
}

/// QEMU arguments for a UEFI guest (q35, OVMF code read-only, `vars` writable).
pub(crate) fn qemu_args(vars: &Path) -> Vec<String> {
    vec![
        "-machine".into(),
        "q35".into(),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,readonly=on,file={CODE}"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
    ]
}

//! OVMF firmware for UEFI scenarios, and a writer that puts an EFI variable into a copy of the
//! pristine variable store before the first boot (how stprov's `STHostConfig` looks to stboot).
//! Layout from uefi-tpm-recipe.md §4.2: firmware volume header, authenticated variable store at
//! 0x48, records of a 60-byte header + UTF-16LE name + data, 4-byte aligned, free space 0xFF.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// OVMF code and pristine variable store (Debian package `ovmf`).
pub(crate) const CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// The pristine variable store (copied per VM).
pub(crate) const VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// `f401f2c1-b005-4be0-8cee-f2e5945bcbe7` as EFI_GUID bytes (first three fields little-endian).
const ST_GUID: [u8; 16] = [
    0xc1, 0xf2, 0x01, 0xf4, 0x05, 0xb0, 0xe0, 0x4b, 0x8c, 0xee, 0xf2, 0xe5, 0x94, 0x5b, 0xcb, 0xe7,
];
/// gEfiAuthenticatedVariableGuid as stored at the start of the variable store.
const STORE_GUID: [u8; 16] = [
    0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92,
];
const STORE: usize = 0x48;
const FIRST: usize = 0x64;
const HEADER: usize = 60;

fn u32_at(b: &[u8], at: usize) -> Result<usize> {
    let s = b.get(at..at + 4).context("variable store truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Write `out`: the pristine OVMF variable store plus the ST variable `name` (attributes
/// NV|BS|RT, as stprov writes) holding `data`.
pub(crate) fn vars_with(out: &Path, name: &str, data: &[u8]) -> Result<PathBuf> {
    let mut store = fs::read(VARS).with_context(|| format!("{VARS} (apt-get install ovmf)"))?;
    ensure!(
        store.get(0x28..0x2c) == Some(&b"_FVH"[..]),
        "{VARS}: no firmware volume header"
    );
    ensure!(
        store.get(STORE..STORE + 16) == Some(&STORE_GUID[..]),
        "{VARS}: not an authenticated variable store"
    );
    let end = STORE + u32_at(&store, STORE + 16)?;
    let mut at = FIRST;
    while store.get(at..at + 2) == Some(&[0xaa, 0x55][..]) {
        let len = HEADER + u32_at(&store, at + 36)? + u32_at(&store, at + 40)?;
        at = (at + len).next_multiple_of(4);
    }
    let name16: Vec<u8> = name
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut rec = vec![0xaa, 0x55, 0x3f, 0x00];
    rec.extend_from_slice(&7u32.to_le_bytes());
    rec.extend_from_slice(&[0; 8 + 16 + 4]);
    rec.extend_from_slice(&u32::try_from(name16.len())?.to_le_bytes());
    rec.extend_from_slice(&u32::try_from(data.len())?.to_le_bytes());
    rec.extend_from_slice(&ST_GUID);
    rec.extend_from_slice(&name16);
    rec.extend_from_slice(data);
    if at + rec.len() > end {
        bail!("{VARS}: no room for a {}-byte variable", rec.len());
    }
    store[at..at + rec.len()].copy_from_slice(&rec);
    fs::write(out, &store)?;
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

//! A UEFI-bootable ISO 9660 image: an El Torito boot catalog whose one entry (platform EFI,
//! no emulation) points at a FAT image holding `/EFI/BOOT/BOOTX64.EFI` ([`crate::fat`]).
//!
//! # Layout (2048-byte logical sectors)
//!
//! | sector | contents |
//! |---|---|
//! | 0-15 | system area, zero |
//! | 16 | primary volume descriptor (volume `STBOOT`) |
//! | 17 | El Torito boot record, pointing at the catalog |
//! | 18 | volume descriptor set terminator |
//! | 19, 20 | path tables, little- and big-endian (one entry: the root) |
//! | 21 | root directory: `.`, `..`, `BOOT.CAT;1`, `EFIBOOT.IMG;1` |
//! | 22 | boot catalog: validation entry (platform 0xEF), default entry (bootable, no emulation) |
//! | 23.. | the FAT image, last, so that a firmware that takes the boot image to run to the end of the volume gets exactly it |
//!
//! The default entry's sector count is the FAT image's size in 512-byte units; it is a 16-bit
//! field, so an image above 32 MiB gets 1 and firmware (OVMF does) uses the rest of the volume.
//! Dates are "not specified" (all zero); nothing depends on time: the same input gives the
//! same bytes.

use crate::fat::{self, FatError};

/// Logical sector size.
pub const SECTOR: usize = 2048;
/// The volume identifier.
pub const VOLUME_ID: &str = "STBOOT";
/// Name of the boot catalog in the root directory.
pub const CATALOG_NAME: &str = "BOOT.CAT;1";
/// Name of the FAT image in the root directory.
pub const ESP_NAME: &str = "EFIBOOT.IMG;1";

const PVD: usize = 16;
const BOOT_RECORD: usize = 17;
const TERMINATOR: usize = 18;
const PATH_L: usize = 19;
const PATH_M: usize = 20;
const ROOT: usize = 21;
const CATALOG: usize = 22;
const ESP: usize = 23;

/// Why an ISO could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IsoError {
    /// The ESP image could not be made.
    #[error(transparent)]
    Fat(#[from] FatError),
    /// An ISO 9660 file is below 4 GiB.
    #[error("EFI system partition image: {0} bytes, more than an ISO 9660 file can hold")]
    TooLarge(u64),
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

/// Both-endian 32-bit (ECMA-119 7.3.3).
fn both32(v: u32) -> [u8; 8] {
    let mut o = [0u8; 8];
    o[..4].copy_from_slice(&v.to_le_bytes());
    o[4..].copy_from_slice(&v.to_be_bytes());
    o
}

/// Both-endian 16-bit (ECMA-119 7.2.3).
fn both16(v: u16) -> [u8; 4] {
    let mut o = [0u8; 4];
    o[..2].copy_from_slice(&v.to_le_bytes());
    o[2..].copy_from_slice(&v.to_be_bytes());
    o
}

/// A directory record (ECMA-119 9.1); dates zero (not specified).
fn dir_record(ident: &[u8], extent: u32, len: u32, dir: bool) -> Vec<u8> {
    let n = 33 + ident.len();
    let total = n + (n % 2);
    let mut r = vec![0u8; total];
    r[0] = total as u8;
    put(&mut r, 2, &both32(extent));
    put(&mut r, 10, &both32(len));
    r[25] = if dir { 0x02 } else { 0x00 };
    put(&mut r, 28, &both16(1)); // volume sequence number
    r[32] = ident.len() as u8;
    put(&mut r, 33, ident);
    r
}

/// A text field padded with spaces to `len`.
fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.resize(len, b' ');
    v.truncate(len);
    v
}

/// An ISO image whose El Torito EFI entry boots `esp` (a FAT file system image).
pub fn iso_with_esp(esp: &[u8]) -> Result<Vec<u8>, IsoError> {
    let esp_len = u32::try_from(esp.len()).map_err(|_| IsoError::TooLarge(esp.len() as u64))?;
    let esp_sectors = esp.len().div_ceil(SECTOR);
    let total = ESP + esp_sectors;
    let total32 = u32::try_from(total).map_err(|_| IsoError::TooLarge(esp.len() as u64))?;
    let mut iso = vec![0u8; total * SECTOR];

    let root_record = |ident: &[u8]| dir_record(ident, ROOT as u32, SECTOR as u32, true);

    // Primary volume descriptor.
    let mut pvd = vec![0u8; SECTOR];
    pvd[0] = 1;
    put(&mut pvd, 1, b"CD001");
    pvd[6] = 1;
    put(&mut pvd, 8, &padded("", 32)); // system identifier
    put(&mut pvd, 40, &padded(VOLUME_ID, 32));
    put(&mut pvd, 80, &both32(total32));
    put(&mut pvd, 120, &both16(1)); // volume set size
    put(&mut pvd, 124, &both16(1)); // volume sequence number
    put(&mut pvd, 128, &both16(SECTOR as u16));
    put(&mut pvd, 132, &both32(10)); // path table size: one 10-byte record
    put(&mut pvd, 140, &(PATH_L as u32).to_le_bytes());
    put(&mut pvd, 148, &(PATH_M as u32).to_be_bytes());
    put(&mut pvd, 156, &root_record(&[0]));
    put(&mut pvd, 190, &padded("", 128)); // volume set
    put(&mut pvd, 318, &padded("", 128)); // publisher
    put(&mut pvd, 446, &padded("", 128)); // data preparer
    put(&mut pvd, 574, &padded("STBOOT-RS STMGR", 128)); // application
    put(&mut pvd, 702, &padded("", 37 * 3)); // copyright, abstract, bibliographic files
    for at in [813, 830, 847, 864] {
        // Dates "not specified": sixteen '0' digits and a zero time zone.
        put(&mut pvd, at, b"0000000000000000");
    }
    pvd[881] = 1; // file structure version
    put(&mut iso, PVD * SECTOR, &pvd);

    // El Torito boot record.
    let mut br = vec![0u8; SECTOR];
    br[0] = 0;
    put(&mut br, 1, b"CD001");
    br[6] = 1;
    put(&mut br, 7, b"EL TORITO SPECIFICATION");
    put(&mut br, 0x47, &(CATALOG as u32).to_le_bytes());
    put(&mut iso, BOOT_RECORD * SECTOR, &br);

    // Terminator.
    let mut term = vec![0u8; SECTOR];
    term[0] = 255;
    put(&mut term, 1, b"CD001");
    term[6] = 1;
    put(&mut iso, TERMINATOR * SECTOR, &term);

    // Path tables: the root only.
    let mut path_l = [0u8; 10];
    path_l[0] = 1;
    put(&mut path_l, 2, &(ROOT as u32).to_le_bytes());
    put(&mut path_l, 6, &1u16.to_le_bytes());
    let mut path_m = [0u8; 10];
    path_m[0] = 1;
    put(&mut path_m, 2, &(ROOT as u32).to_be_bytes());
    put(&mut path_m, 6, &1u16.to_be_bytes());
    put(&mut iso, PATH_L * SECTOR, &path_l);
    put(&mut iso, PATH_M * SECTOR, &path_m);

    // Root directory.
    let mut at = ROOT * SECTOR;
    for r in [
        root_record(&[0]),
        root_record(&[1]),
        dir_record(
            CATALOG_NAME.as_bytes(),
            CATALOG as u32,
            SECTOR as u32,
            false,
        ),
        dir_record(ESP_NAME.as_bytes(), ESP as u32, esp_len, false),
    ] {
        put(&mut iso, at, &r);
        at += r.len();
    }

    // Boot catalog: validation entry, then the default entry.
    let mut cat = [0u8; 64];
    cat[0] = 1; // header ID
    cat[1] = 0xef; // platform: EFI
    put(&mut cat, 4, &padded("STBOOT", 24));
    cat[30] = 0x55;
    cat[31] = 0xaa;
    let sum = cat[..32]
        .chunks(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .fold(0u16, u16::wrapping_add);
    put(&mut cat, 28, &0u16.wrapping_sub(sum).to_le_bytes());
    cat[32] = 0x88; // bootable
    cat[33] = 0; // no emulation
    let count = esp.len().div_ceil(512);
    let count16 = u16::try_from(count).unwrap_or(1);
    put(&mut cat, 38, &count16.to_le_bytes());
    put(&mut cat, 40, &(ESP as u32).to_le_bytes());
    put(&mut iso, CATALOG * SECTOR, &cat);

    put(&mut iso, ESP * SECTOR, esp);
    Ok(iso)
}

/// An ISO that boots `efi_app` (a UKI) under UEFI: [`fat::esp_image`] in [`iso_with_esp`].
pub fn uefi_iso(efi_app: &[u8]) -> Result<Vec<u8>, IsoError> {
    iso_with_esp(&fat::esp_image(efi_app)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn u32_le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn descriptors_catalog_and_image() {
        let esp = vec![0x11u8; 5000];
        let iso = iso_with_esp(&esp).unwrap();
        assert_eq!(iso.len(), (ESP + 3) * SECTOR);
        let pvd = &iso[PVD * SECTOR..];
        assert_eq!(&pvd[1..6], b"CD001");
        assert_eq!(&pvd[40..46], b"STBOOT");
        assert_eq!(u32_le(pvd, 80) as usize, ESP + 3);
        assert_eq!(&pvd[84..88], &((ESP + 3) as u32).to_be_bytes());
        let br = &iso[BOOT_RECORD * SECTOR..];
        assert_eq!(&br[7..30], b"EL TORITO SPECIFICATION");
        assert_eq!(u32_le(br, 0x47) as usize, CATALOG);
        let cat = &iso[CATALOG * SECTOR..CATALOG * SECTOR + 64];
        let sum = cat[..32]
            .chunks(2)
            .map(|w| u16::from_le_bytes([w[0], w[1]]))
            .fold(0u16, u16::wrapping_add);
        assert_eq!(sum, 0, "validation entry checksum");
        assert_eq!(cat[1], 0xef);
        assert_eq!(cat[32], 0x88);
        assert_eq!(u16::from_le_bytes([cat[38], cat[39]]), 10);
        assert_eq!(u32_le(cat, 40) as usize, ESP);
        assert_eq!(&iso[ESP * SECTOR..ESP * SECTOR + 5000], &esp[..]);
        assert_eq!(iso[TERMINATOR * SECTOR], 255);
    }

    #[test]
    fn large_esp_gets_sector_count_one_and_same_bytes_twice() {
        let esp = vec![0u8; 40 << 20];
        let iso = iso_with_esp(&esp).unwrap();
        let cat = &iso[CATALOG * SECTOR..];
        assert_eq!(u16::from_le_bytes([cat[38], cat[39]]), 1);
        assert_eq!(uefi_iso(b"x").unwrap(), uefi_iso(b"x").unwrap());
    }
}

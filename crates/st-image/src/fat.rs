//! An EFI system partition image: a FAT32 file system (no partition table) holding one file,
//! `/EFI/BOOT/BOOTX64.EFI`, the path UEFI firmware boots from removable media.
//!
//! # Layout
//!
//! 512-byte sectors. Sector 0 the boot sector (BIOS parameter block), 1 the FSInfo sector,
//! 6 and 7 their backups, 32 reserved sectors, two identical FATs, then the data clusters:
//! cluster 2 the root directory (volume label `STBOOT-ESP`, `EFI`), 3 `EFI` (`.`, `..`,
//! `BOOT`), 4 `BOOT` (`.`, `..`, `BOOTX64.EFI`), 5 onwards the file, contiguous. The volume has
//! at least 65541 clusters (FAT32 needs 65525, and the specification advises 16 more), so it
//! is at least about 34 MB; clusters are 512 bytes up to 256 MiB of file, 4 KiB beyond.
//! Time stamps are 1980-01-01 00:00, the volume serial number is fixed: the same file gives
//! the same bytes.

/// Bytes per sector.
pub const SECTOR: usize = 512;
const RESERVED_SECTORS: u32 = 32;
const FATS: u32 = 2;
/// FAT32 starts at 65525 clusters; 16 more keep away from the boundary, as Microsoft's
/// specification advises.
const MIN_CLUSTERS: u32 = 65_525 + 16;
/// The FAT32 end-of-chain mark.
const EOC: u32 = 0x0fff_ffff;
/// The volume label (11 bytes, space-padded).
pub const VOLUME_LABEL: &[u8; 11] = b"STBOOT-ESP ";
/// The volume serial number (fixed, so that images are reproducible).
pub const VOLUME_ID: u32 = 0x5354_4254;
/// 1980-01-01 as a FAT date (the earliest it can say).
const DATE: u16 = (1 << 5) | 1;

/// Why an ESP image could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FatError {
    /// FAT32 files are below 4 GiB.
    #[error("BOOTX64.EFI: {0} bytes, more than a FAT32 file can hold (4 GiB - 1)")]
    FileTooLarge(u64),
}

fn le16(b: &mut [u8], at: usize, v: u16) {
    if let Some(d) = b.get_mut(at..at + 2) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn le32(b: &mut [u8], at: usize, v: u32) {
    if let Some(d) = b.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn bytes(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(at..at + v.len()) {
        d.copy_from_slice(v);
    }
}

/// A 32-byte directory entry.
fn dir_entry(name: &[u8; 11], attr: u8, cluster: u32, size: u32) -> [u8; 32] {
    let mut e = [0u8; 32];
    bytes(&mut e, 0, name);
    e[11] = attr;
    le16(&mut e, 16, DATE); // created
    le16(&mut e, 18, DATE); // accessed
    le16(&mut e, 20, (cluster >> 16) as u16);
    le16(&mut e, 24, DATE); // written
    le16(&mut e, 26, cluster as u16);
    le32(&mut e, 28, size);
    e
}

const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME_ID: u8 = 0x08;

/// The geometry of an image for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors per cluster.
    pub sectors_per_cluster: u32,
    /// Data clusters.
    pub clusters: u32,
    /// Sectors per FAT.
    pub fat_sectors: u32,
    /// Total sectors.
    pub total_sectors: u32,
}

impl Geometry {
    /// For a file of `len` bytes.
    pub fn for_file(len: u64) -> Result<Self, FatError> {
        if len > u64::from(u32::MAX) {
            return Err(FatError::FileTooLarge(len));
        }
        let sectors_per_cluster: u32 = if len <= 256 << 20 { 1 } else { 8 };
        let cluster = u64::from(sectors_per_cluster) * SECTOR as u64;
        // Root, EFI, BOOT, then the file.
        let needed = 3 + len.div_ceil(cluster);
        let clusters = (needed as u32).max(MIN_CLUSTERS);
        let fat_sectors = (u64::from(clusters) + 2)
            .saturating_mul(4)
            .div_ceil(SECTOR as u64) as u32;
        let total = u64::from(RESERVED_SECTORS)
            + u64::from(FATS) * u64::from(fat_sectors)
            + u64::from(clusters) * u64::from(sectors_per_cluster);
        let total_sectors = u32::try_from(total).map_err(|_| FatError::FileTooLarge(len))?;
        Ok(Self {
            sectors_per_cluster,
            clusters,
            fat_sectors,
            total_sectors,
        })
    }

    fn cluster_offset(&self, cluster: u32) -> usize {
        let data = RESERVED_SECTORS + FATS * self.fat_sectors;
        (data as usize + (cluster as usize - 2) * self.sectors_per_cluster as usize) * SECTOR
    }
}

/// A FAT32 image holding `/EFI/BOOT/BOOTX64.EFI` = `efi_app` (see the module docs).
pub fn esp_image(efi_app: &[u8]) -> Result<Vec<u8>, FatError> {
    let g = Geometry::for_file(efi_app.len() as u64)?;
    let mut img = vec![0u8; g.total_sectors as usize * SECTOR];
    let cluster_bytes = g.sectors_per_cluster as usize * SECTOR;
    let file_clusters = efi_app.len().div_ceil(cluster_bytes) as u32;
    let file_first = if file_clusters == 0 { 0 } else { 5 };
    let used = 3 + file_clusters;

    // Boot sector.
    let mut bs = [0u8; SECTOR];
    bytes(&mut bs, 0, &[0xeb, 0x58, 0x90]);
    bytes(&mut bs, 3, b"STBOOT  ");
    le16(&mut bs, 11, SECTOR as u16);
    bs[13] = g.sectors_per_cluster as u8;
    le16(&mut bs, 14, RESERVED_SECTORS as u16);
    bs[16] = FATS as u8;
    bs[21] = 0xf8; // fixed media
    le16(&mut bs, 24, 32); // sectors per track (geometry is nominal)
    le16(&mut bs, 26, 64); // heads
    le32(&mut bs, 32, g.total_sectors);
    le32(&mut bs, 36, g.fat_sectors);
    le32(&mut bs, 44, 2); // root directory cluster
    le16(&mut bs, 48, 1); // FSInfo sector
    le16(&mut bs, 50, 6); // backup boot sector
    bs[64] = 0x80;
    bs[66] = 0x29;
    le32(&mut bs, 67, VOLUME_ID);
    bytes(&mut bs, 71, VOLUME_LABEL);
    bytes(&mut bs, 82, b"FAT32   ");
    bytes(&mut bs, 510, &[0x55, 0xaa]);

    // FSInfo.
    let mut fsinfo = [0u8; SECTOR];
    le32(&mut fsinfo, 0, 0x4161_5252);
    le32(&mut fsinfo, 484, 0x6141_7272);
    le32(&mut fsinfo, 488, g.clusters - used);
    le32(&mut fsinfo, 492, 2 + used);
    le32(&mut fsinfo, 508, 0xaa55_0000);

    for (sector, data) in [(0, &bs), (1, &fsinfo), (6, &bs), (7, &fsinfo)] {
        bytes(&mut img, sector * SECTOR, data);
    }

    // FATs: media and reserved entries, the three directories, the file's chain.
    let mut fat = vec![0u8; g.fat_sectors as usize * SECTOR];
    le32(&mut fat, 0, 0x0fff_fff8);
    le32(&mut fat, 4, EOC);
    for c in 2..5u32 {
        le32(&mut fat, 4 * c as usize, EOC);
    }
    for i in 0..file_clusters {
        let c = 5 + i;
        let next = if i + 1 == file_clusters { EOC } else { c + 1 };
        le32(&mut fat, 4 * c as usize, next);
    }
    for n in 0..FATS {
        let at = (RESERVED_SECTORS + n * g.fat_sectors) as usize * SECTOR;
        bytes(&mut img, at, &fat);
    }

    // Directories.
    let root = [
        dir_entry(VOLUME_LABEL, ATTR_VOLUME_ID, 0, 0),
        dir_entry(b"EFI        ", ATTR_DIR, 3, 0),
    ];
    let efi = [
        dir_entry(b".          ", ATTR_DIR, 3, 0),
        dir_entry(b"..         ", ATTR_DIR, 0, 0),
        dir_entry(b"BOOT       ", ATTR_DIR, 4, 0),
    ];
    let boot = [
        dir_entry(b".          ", ATTR_DIR, 4, 0),
        dir_entry(b"..         ", ATTR_DIR, 3, 0),
        dir_entry(
            b"BOOTX64 EFI",
            ATTR_ARCHIVE,
            file_first,
            efi_app.len() as u32,
        ),
    ];
    for (cluster, entries) in [(2, &root[..]), (3, &efi[..]), (4, &boot[..])] {
        let at = g.cluster_offset(cluster);
        for (i, e) in entries.iter().enumerate() {
            bytes(&mut img, at + 32 * i, e);
        }
    }
    if file_clusters > 0 {
        bytes(&mut img, g.cluster_offset(5), efi_app);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn small_file_gives_a_minimal_fat32_volume() {
        let file = vec![0x5a; 1000];
        let img = esp_image(&file).unwrap();
        let g = Geometry::for_file(1000).unwrap();
        assert_eq!(g.clusters, MIN_CLUSTERS);
        assert_eq!(img.len(), g.total_sectors as usize * SECTOR);
        assert_eq!(&img[82..90], b"FAT32   ");
        assert_eq!(&img[510..512], &[0x55, 0xaa]);
        assert_eq!(img[..SECTOR], img[6 * SECTOR..7 * SECTOR]);
        // The cluster count a reader derives is exactly ours (FAT32: at least 65525).
        let data = 32 + 2 * u32_at(&img, 36);
        assert_eq!((u32_at(&img, 32) - data) / u32::from(img[13]), g.clusters);
        // The file: BOOT's third entry points at cluster 5, chain 5 -> 6 -> EOC.
        let boot = g.cluster_offset(4);
        assert_eq!(&img[boot + 64..boot + 75], b"BOOTX64 EFI");
        assert_eq!(u32_at(&img, boot + 64 + 28), 1000);
        let fat = 32 * SECTOR;
        assert_eq!(u32_at(&img, fat + 4 * 5), 6);
        assert_eq!(u32_at(&img, fat + 4 * 6), EOC);
        assert_eq!(u32_at(&img, fat + 4 * 7), 0);
        let at = g.cluster_offset(5);
        assert_eq!(&img[at..at + 1000], &file[..]);
        // Free clusters in FSInfo.
        assert_eq!(u32_at(&img, SECTOR + 488), g.clusters - 5);
    }

    #[test]
    fn large_files_get_4k_clusters_and_same_bytes_twice() {
        let g = Geometry::for_file(300 << 20).unwrap();
        assert_eq!(g.sectors_per_cluster, 8);
        assert!(g.clusters >= (300 << 20) / 4096);
        assert_eq!(esp_image(b"abc").unwrap(), esp_image(b"abc").unwrap());
        assert_eq!(
            Geometry::for_file(1 << 32),
            Err(FatError::FileTooLarge(1 << 32))
        );
    }

    #[test]
    fn fsck_fat_finds_nothing_to_fix() {
        let dir = std::env::temp_dir().join(format!("st-image-fat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("esp.img");
        std::fs::write(&path, esp_image(&vec![7u8; 100_000]).unwrap()).unwrap();
        let out = std::process::Command::new("/sbin/fsck.fat")
            .arg("-n")
            .arg(&path)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        match out {
            Err(e) => eprintln!("skipped: fsck.fat (Debian dosfstools) not runnable: {e}"),
            Ok(o) => assert!(
                o.status.success(),
                "fsck.fat: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
}

//! The OS package structure check (st-reference §1.1).

use super::{ArchiveError, ArchiveIndex, ArchiveLimits, Entry, ReadAt, read_entry};
use crate::limits::MAX_MANIFEST_BYTES;
use crate::manifest::{MANIFEST_NAME, Manifest, ManifestError};
use std::io;

/// A checked OS package archive: a valid index, a valid `manifest.json`, and non-empty kernel
/// and initramfs files at the manifest's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsPackageLayout {
    index: ArchiveIndex,
    manifest: Manifest,
    kernel: Entry,
    initramfs: Entry,
}

impl OsPackageLayout {
    /// Parse the index, read `manifest.json` (at most [`MAX_MANIFEST_BYTES`]), parse it, and find
    /// the kernel and initramfs entries by exact name; both must be files with data.
    ///
    /// Only `manifest.json` is decompressed; use [`Self::check_contents`] to check every entry's
    /// data, or [`Self::check_other_contents`] and then [`read_entry`] to extract the kernel and
    /// initramfs (which checks theirs).
    pub fn check<R: ReadAt + ?Sized>(
        src: &R,
        limits: &ArchiveLimits,
    ) -> Result<Self, ArchiveError> {
        let index = ArchiveIndex::parse(src, limits)?;
        let m = index
            .get(MANIFEST_NAME)
            .ok_or(ArchiveError::MissingManifest)?;
        if m.is_dir() {
            return Err(ArchiveError::NotAFile {
                role: "manifest",
                name: m.name().to_owned(),
            });
        }
        if m.uncompressed_size() > MAX_MANIFEST_BYTES as u64 {
            return Err(ManifestError::TooLarge {
                size: m.uncompressed_size(),
                max: MAX_MANIFEST_BYTES,
            }
            .into());
        }
        let mut json = Vec::new();
        read_entry(src, m, &mut json)?;
        let manifest = Manifest::from_json(&json)?;
        let find = |role: &'static str, name: &str| -> Result<Entry, ArchiveError> {
            let Some(e) = index.get(name) else {
                return Err(if role == "kernel" {
                    ArchiveError::MissingKernel { name: name.into() }
                } else {
                    ArchiveError::MissingInitramfs { name: name.into() }
                });
            };
            if e.is_dir() {
                return Err(ArchiveError::NotAFile {
                    role,
                    name: name.into(),
                });
            }
            if e.uncompressed_size() == 0 {
                return Err(ArchiveError::EmptyFile {
                    role,
                    name: name.into(),
                });
            }
            Ok(e.clone())
        };
        let kernel = find("kernel", manifest.kernel())?;
        let initramfs = find("initramfs", manifest.initramfs())?;
        Ok(Self {
            index,
            manifest,
            kernel,
            initramfs,
        })
    }

    /// Decompress every entry of the package (discarding the output) to prove that all
    /// CRC-32s and sizes are right and that no deflate stream has bytes after its end.
    /// `src` must be the source `check` was given.
    pub fn check_contents<R: ReadAt + ?Sized>(&self, src: &R) -> Result<(), ArchiveError> {
        for e in self.index.entries() {
            read_entry(src, e, &mut io::sink())?;
        }
        Ok(())
    }

    /// [`Self::check_contents`] for every entry except the kernel and the initramfs (and the
    /// manifest, which [`Self::check`] already read in full): directories and any other file.
    /// Together with extracting the kernel and initramfs through [`read_entry`], which checks
    /// theirs, this checks exactly what `check_contents` checks, with one inflate of each.
    pub fn check_other_contents<R: ReadAt + ?Sized>(&self, src: &R) -> Result<(), ArchiveError> {
        let read_elsewhere = [self.kernel.name(), self.initramfs.name(), MANIFEST_NAME];
        for e in self.index.entries() {
            if !read_elsewhere.contains(&e.name()) {
                read_entry(src, e, &mut io::sink())?;
            }
        }
        Ok(())
    }

    /// The archive index.
    pub fn index(&self) -> &ArchiveIndex {
        &self.index
    }
    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The kernel entry.
    pub fn kernel(&self) -> &Entry {
        &self.kernel
    }
    /// The initramfs entry.
    pub fn initramfs(&self) -> &Entry {
        &self.initramfs
    }
}

/// Fuzz entry point: parse, layout check and decode every entry into a sink, ignoring errors.
#[doc(hidden)]
pub fn fuzz_archive(data: &[u8]) {
    let limits = ArchiveLimits::default();
    if let Ok(index) = ArchiveIndex::parse(data, &limits) {
        for e in index.entries() {
            let _ = read_entry(data, e, &mut io::sink());
        }
    }
    if let Ok(layout) = OsPackageLayout::check(data, &limits) {
        let _ = layout.check_other_contents(data);
        let _ = layout.check_contents(data);
    }
}

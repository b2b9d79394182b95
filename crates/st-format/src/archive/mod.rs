//! The OS package archive: a strict, bounded ZIP reader and a Go-compatible ZIP writer.
//!
//! # Reader
//!
//! [`ArchiveIndex::parse`] reads only the end of central directory record, the central directory
//! and each entry's local header (never the whole archive) from a [`ReadAt`] source, and
//! cross-checks them. Everything that is ambiguous in ZIP, or that the Go reference never
//! produces, is rejected with its own [`ArchiveError`] variant: multi-disk archives, ZIP64,
//! encryption, methods other than stored and deflate, duplicate or unsafe names, local headers
//! that disagree with the central directory, overlapping entries, and sizes over the caps in
//! [`ArchiveLimits`]. [`read_entry`] then streams one entry's bytes, checking the declared size
//! and CRC-32 as it goes.
//!
//! ZIP64 is not supported: OS packages are limited to 4 GiB − 1 bytes; entries to
//! [`crate::limits::MAX_ENTRY_BYTES`] (2 GiB) each and
//! [`crate::limits::MAX_TOTAL_UNCOMPRESSED_BYTES`] (4 GiB) together, for reader and writer alike.
//!
//! [`OsPackageLayout::check`] is the structure check stboot and `stmgr ospkg verify` run after the
//! signatures are verified: manifest present and valid, kernel and initramfs present, non-empty
//! files.
//!
//! # Writer
//!
//! [`ArchiveWriter`] writes the byte layout of Go's `archive/zip` as `stmgr ospkg create` uses it
//! (see [`write_os_package`]): streamed deflate entries with a data descriptor, zero timestamps,
//! version 2.0. Input that does not compress is emitted as deflate *stored* blocks, so writing a
//! package of already-compressed kernel and initramfs runs at close to copy speed. Output is
//! deterministic.

use std::io;

mod layout;
mod reader;
mod writer;

pub use layout::{OsPackageLayout, fuzz_archive};
pub use reader::{ArchiveIndex, read_entry};
pub use writer::{ArchiveWriter, write_os_package};

use crate::manifest::ManifestError;

/// Random-access source of archive bytes: a slice in stboot, a file in stmgr.
#[allow(clippy::len_without_is_empty)]
pub trait ReadAt {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; an error if the source ends first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// All bytes at once, when the source is already in memory: lets readers pass slices on
    /// without copying them through a buffer first.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| {
                let end = start.checked_add(buf.len())?;
                self.get(start..end)
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the archive",
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.as_slice())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        (**self).as_slice()
    }
}

/// Caps applied by [`ArchiveIndex::parse`]. The Go reference has none (st-reference §1.4, §11.8).
///
/// The defaults fit every real OS package; stboot and `stmgr` both use them. stboot bounds its
/// memory before this point: it refuses an archive over about 45% of `MemAvailable` before
/// downloading it (`archive_cap` of its `flow::Env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most entries. Default 1024: the reference layout has 4 entries; custom layouts add a few.
    pub max_entries: usize,
    /// Longest entry name in bytes. Default 4096, Linux `PATH_MAX`.
    pub max_name_len: usize,
    /// Largest central directory in bytes, read into memory whole. Default 4 MiB: 1024 entries
    /// with a 4 KiB name each.
    pub max_central_directory_size: u64,
    /// Largest uncompressed entry. Default [`crate::limits::MAX_ENTRY_BYTES`] (2 GiB), which
    /// the writer uses too.
    pub max_entry_uncompressed: u64,
    /// Largest sum of uncompressed entry sizes. Default
    /// [`crate::limits::MAX_TOTAL_UNCOMPRESSED_BYTES`] (4 GiB), which the writer uses too.
    pub max_total_uncompressed: u64,
    /// Largest uncompressed/compressed ratio of a deflate entry (zip bomb guard). Default 256:
    /// deflate's own maximum is about 1032:1 and bombs sit near it; kernels and initramfs
    /// images compress far less than 20:1.
    pub max_compression_ratio: u64,
    /// Entries whose uncompressed size is at most this are exempt from the ratio check (a small
    /// run of zeros compresses beyond any ratio and costs nothing). Default 1 MiB.
    pub ratio_exempt_size: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: 1024,
            max_name_len: 4096,
            max_central_directory_size: 4 << 20,
            max_entry_uncompressed: crate::limits::MAX_ENTRY_BYTES,
            max_total_uncompressed: crate::limits::MAX_TOTAL_UNCOMPRESSED_BYTES,
            max_compression_ratio: 256,
            ratio_exempt_size: 1 << 20,
        }
    }
}

/// The compression method of an entry. Only these two are accepted (ZIP methods 0 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Method 0: the bytes as they are.
    Stored,
    /// Method 8: raw deflate (RFC 1951).
    Deflate,
}

impl Method {
    /// The ZIP method number.
    pub fn code(self) -> u16 {
        match self {
            Self::Stored => 0,
            Self::Deflate => 8,
        }
    }
}

/// One checked archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) name: String,
    pub(crate) is_dir: bool,
    pub(crate) method: Method,
    pub(crate) flags: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) local_header_offset: u64,
    pub(crate) data_offset: u64,
}

impl Entry {
    /// The exact entry name (UTF-8; directories end with `/`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// True for directory entries (name ends with `/`, no data).
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }
    /// Compression method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// The general purpose flag bits of the central directory record.
    pub fn flags(&self) -> u16 {
        self.flags
    }
    /// CRC-32 of the uncompressed bytes, as declared in the central directory.
    pub fn crc32(&self) -> u32 {
        self.crc32
    }
    /// Size of the stored (compressed) bytes.
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }
    /// Size of the uncompressed bytes.
    pub fn uncompressed_size(&self) -> u64 {
        self.uncompressed_size
    }
    /// Offset of the entry's local header in the archive.
    pub fn local_header_offset(&self) -> u64 {
        self.local_header_offset
    }
    /// Offset of the first compressed byte in the archive.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
}

/// Why an archive was rejected or could not be read or written. Every entry-level variant names
/// the entry; the message says which rule was broken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading the source or writing the sink failed.
    #[error("archive I/O error: {0}")]
    Io(#[from] io::Error),
    /// `manifest.json` is not a valid manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),

    // --- End of central directory ---
    /// No end of central directory record ending exactly at the end of the data.
    #[error(
        "not a ZIP archive: no end of central directory record (with its comment) ends at the end of the {len}-byte file"
    )]
    NoEndOfCentralDirectory {
        /// Archive length.
        len: u64,
    },
    /// A disk number other than 0 (split/spanned archive).
    #[error("multi-disk ZIP archives are not supported ({what})")]
    MultiDisk {
        /// Where the disk number was found.
        what: String,
    },
    /// A ZIP64 structure or a 0xFFFF/0xFFFFFFFF marker; archives and entries over 4 GiB are not
    /// supported.
    #[error("ZIP64 is not supported (OS packages over 4 GiB are unsupported): {what}")]
    Zip64Unsupported {
        /// What marked the ZIP64 use.
        what: String,
    },
    /// The two entry counts in the end of central directory record differ.
    #[error("end of central directory: {on_disk} entries on this disk but {total} in total")]
    EntryCountMismatch {
        /// Entries on this disk.
        on_disk: u16,
        /// Total entries.
        total: u16,
    },
    /// The central directory does not hold the number of records the EOCD declares.
    #[error(
        "central directory holds {found} records, end of central directory declares {declared}"
    )]
    CentralDirectoryCountMismatch {
        /// Declared count.
        declared: u64,
        /// Records found (stops counting one past the declared count).
        found: u64,
    },
    /// The central directory lies (partly) outside the file or after its EOCD record.
    #[error(
        "central directory at offset {offset} with {size} bytes extends past the end of central directory record at {eocd_offset}"
    )]
    CentralDirectoryOutOfBounds {
        /// Declared offset.
        offset: u64,
        /// Declared size.
        size: u64,
        /// Where the EOCD record starts.
        eocd_offset: u64,
    },
    /// The central directory ends before the EOCD record (a gap).
    #[error(
        "central directory at offset {offset} with {size} bytes does not end at the end of central directory record at {eocd_offset}"
    )]
    CentralDirectoryNotAtEnd {
        /// Declared offset.
        offset: u64,
        /// Declared size.
        size: u64,
        /// Where the EOCD record starts.
        eocd_offset: u64,
    },
    /// The central directory is over [`ArchiveLimits::max_central_directory_size`].
    #[error("central directory is {size} bytes, over the {max}-byte limit")]
    CentralDirectoryTooLarge {
        /// Declared size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// A central directory record is truncated or has a bad signature.
    #[error("central directory record {index} (at offset {offset} in the directory): {what}")]
    BadCentralRecord {
        /// Record number, from 0.
        index: u64,
        /// Offset inside the central directory.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// More entries than [`ArchiveLimits::max_entries`].
    #[error("archive has {count} entries, over the limit of {max}")]
    TooManyEntries {
        /// Declared count.
        count: u64,
        /// The cap.
        max: usize,
    },

    // --- Names ---
    /// An entry name over [`ArchiveLimits::max_name_len`].
    #[error("entry {index}: name is {len} bytes, over the {max}-byte limit")]
    NameTooLong {
        /// Record number.
        index: u64,
        /// Name length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// An entry name that is not UTF-8.
    #[error("entry {index}: name {lossy:?} is not valid UTF-8")]
    NameNotUtf8 {
        /// Record number.
        index: u64,
        /// The name, lossily decoded.
        lossy: String,
    },
    /// An empty entry name.
    #[error("entry {index}: empty name")]
    EmptyName {
        /// Record number.
        index: u64,
    },
    /// A name starting with `/`.
    #[error("entry {name:?}: absolute path")]
    AbsolutePath {
        /// The name.
        name: String,
    },
    /// A name with a `.` or `..` component.
    #[error("entry {name:?}: path has a \".\" or \"..\" component")]
    DotComponent {
        /// The name.
        name: String,
    },
    /// A name with an empty component (`a//b`, or a directory ending in `//`).
    #[error("entry {name:?}: path has an empty component")]
    EmptyComponent {
        /// The name.
        name: String,
    },
    /// A name with a backslash.
    #[error("entry {name:?}: path contains a backslash")]
    Backslash {
        /// The name.
        name: String,
    },
    /// A name with a NUL byte.
    #[error("entry {name:?}: path contains a NUL byte")]
    NulInName {
        /// The name.
        name: String,
    },
    /// Two entries with the same name.
    #[error("entry {name:?} appears more than once")]
    DuplicateName {
        /// The name.
        name: String,
    },

    // --- Entry flags, method, sizes ---
    /// Encryption flag (bit 0), strong encryption (bit 6) or central directory encryption
    /// (bit 13).
    #[error("entry {name:?}: encrypted entries are not supported (flags {flags:#06x})")]
    Encrypted {
        /// The name.
        name: String,
        /// The flag bits.
        flags: u16,
    },
    /// Compressed patched data (flag bit 5).
    #[error("entry {name:?}: compressed patched data (flag bit 5) is not supported")]
    PatchedData {
        /// The name.
        name: String,
    },
    /// A method other than 0 (stored) or 8 (deflate).
    #[error("entry {name:?}: compression method {method} is not supported (only 0 and 8)")]
    UnsupportedMethod {
        /// The name.
        name: String,
        /// The method number.
        method: u16,
    },
    /// A directory entry (name ending in `/`) with data.
    #[error("directory entry {name:?} has {size} bytes of uncompressed data")]
    DirectoryWithData {
        /// The name.
        name: String,
        /// Its uncompressed size.
        size: u64,
    },
    /// A stored entry whose compressed and uncompressed sizes differ.
    #[error(
        "stored entry {name:?}: compressed size {compressed} != uncompressed size {uncompressed}"
    )]
    StoredSizeMismatch {
        /// The name.
        name: String,
        /// Compressed size.
        compressed: u64,
        /// Uncompressed size.
        uncompressed: u64,
    },
    /// An entry over [`ArchiveLimits::max_entry_uncompressed`].
    #[error("entry {name:?}: {size} bytes uncompressed, over the {max}-byte limit")]
    EntryTooLarge {
        /// The name.
        name: String,
        /// Uncompressed size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Sum of entry sizes over [`ArchiveLimits::max_total_uncompressed`].
    #[error("entries total more than {max} bytes uncompressed (reached at entry {name:?})")]
    TotalTooLarge {
        /// The entry at which the cap was passed.
        name: String,
        /// The cap.
        max: u64,
    },
    /// A deflate entry over [`ArchiveLimits::max_compression_ratio`].
    #[error(
        "entry {name:?}: {uncompressed} bytes from {compressed} compressed bytes exceeds the {max_ratio}:1 compression ratio limit"
    )]
    CompressionRatio {
        /// The name.
        name: String,
        /// Compressed size.
        compressed: u64,
        /// Uncompressed size.
        uncompressed: u64,
        /// The cap.
        max_ratio: u64,
    },

    // --- Local headers and layout ---
    /// The local header (or the descriptor) does not fit before the central directory.
    #[error("entry {name:?}: local header at offset {offset} lies outside the entry area")]
    LocalHeaderOutOfBounds {
        /// The name.
        name: String,
        /// Local header offset.
        offset: u64,
    },
    /// No local header signature at the central directory's offset.
    #[error("entry {name:?}: no local file header signature at offset {offset}")]
    BadLocalHeader {
        /// The name.
        name: String,
        /// Local header offset.
        offset: u64,
    },
    /// A local header field disagrees with the central directory.
    #[error("entry {name:?}: local header {field} differs from the central directory")]
    LocalHeaderMismatch {
        /// The name.
        name: String,
        /// The field.
        field: &'static str,
    },
    /// A malformed extra field block.
    #[error("entry {name:?}: malformed extra field in the {which}")]
    MalformedExtraField {
        /// The name.
        name: String,
        /// `local header` or `central directory`.
        which: &'static str,
    },
    /// The compressed data runs past the start of the central directory.
    #[error(
        "entry {name:?}: compressed data [{start}, {end}) runs past the central directory at {limit}"
    )]
    DataOutOfBounds {
        /// The name.
        name: String,
        /// Data start.
        start: u64,
        /// Data end.
        end: u64,
        /// Where the central directory starts (or the source ends).
        limit: u64,
    },
    /// Flag bit 3 set but no data descriptor follows the data.
    #[error("entry {name:?}: flag bit 3 is set but no data descriptor follows the data")]
    MissingDataDescriptor {
        /// The name.
        name: String,
    },
    /// The data descriptor disagrees with the central directory.
    #[error("entry {name:?}: data descriptor {field} differs from the central directory")]
    DataDescriptorMismatch {
        /// The name.
        name: String,
        /// The field.
        field: &'static str,
    },
    /// Two entries' byte ranges overlap.
    #[error("entries {first:?} and {second:?} overlap in the archive")]
    OverlappingEntries {
        /// The entry that starts first.
        first: String,
        /// The entry that starts inside it.
        second: String,
    },

    // --- Decompression ---
    /// The decoded size differs from the declared one.
    #[error("entry {name:?}: decompressed size {actual} differs from the declared {expected}")]
    SizeMismatch {
        /// The name.
        name: String,
        /// Declared uncompressed size.
        expected: u64,
        /// What was produced (stops one chunk past the declared size).
        actual: u64,
    },
    /// The CRC-32 of the decoded bytes differs from the declared one.
    #[error("entry {name:?}: CRC-32 {actual:#010x} differs from the declared {expected:#010x}")]
    CrcMismatch {
        /// The name.
        name: String,
        /// Declared CRC-32.
        expected: u32,
        /// CRC-32 of the decoded bytes.
        actual: u32,
    },
    /// Invalid deflate data.
    #[error("entry {name:?}: invalid deflate data: {msg}")]
    Deflate {
        /// The name.
        name: String,
        /// Decoder message.
        msg: String,
    },
    /// The deflate stream does not end within its compressed size.
    #[error("entry {name:?}: deflate stream runs past its {compressed}-byte compressed size")]
    DeflateOverrun {
        /// The name.
        name: String,
        /// Compressed size.
        compressed: u64,
    },
    /// The deflate stream ends before its compressed size.
    #[error("entry {name:?}: {unused} bytes after the end of the deflate stream")]
    DeflateTrailingData {
        /// The name.
        name: String,
        /// Bytes left over.
        unused: u64,
    },

    // --- OS package layout ---
    /// No `manifest.json` entry.
    #[error("OS package: no manifest.json entry in the archive")]
    MissingManifest,
    /// The manifest names a kernel that is not in the archive.
    #[error("OS package: failed to find kernel {name:?} (named in manifest.json) in the archive")]
    MissingKernel {
        /// The manifest's kernel path.
        name: String,
    },
    /// The manifest names an initramfs that is not in the archive.
    #[error(
        "OS package: failed to find initramfs {name:?} (named in manifest.json) in the archive"
    )]
    MissingInitramfs {
        /// The manifest's initramfs path.
        name: String,
    },
    /// Manifest, kernel or initramfs is a directory entry.
    #[error("OS package: {role} {name:?} is a directory, not a file")]
    NotAFile {
        /// `manifest`, `kernel` or `initramfs`.
        role: &'static str,
        /// The entry name.
        name: String,
    },
    /// Kernel or initramfs has no bytes.
    #[error("OS package: {role} {name:?} has length zero")]
    EmptyFile {
        /// `kernel` or `initramfs`.
        role: &'static str,
        /// The entry name.
        name: String,
    },

    // --- Writer ---
    /// An entry or the archive would need ZIP64.
    #[error("cannot write {what}: over the 4 GiB - 1 ZIP limit (ZIP64 is not supported)")]
    TooLargeToWrite {
        /// What overflowed.
        what: String,
    },
    /// A name the writer refuses (the reader would reject it), or a directory name without a
    /// trailing `/`, or a file name with one.
    #[error("cannot write entry {name:?}: {why}")]
    InvalidWriteName {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// The manifest paths are not of the reference form `boot/<basename>`.
    #[error(
        "OS package layout: manifest {field} path {path:?} is not of the form \"boot/<file name>\""
    )]
    NotReferenceLayout {
        /// `kernel` or `initramfs`.
        field: &'static str,
        /// The path.
        path: String,
    },
    /// An earlier call on this writer failed; its output is incomplete.
    #[error("archive writer used after an earlier error")]
    WriterFailed,
}

//! A bounded reader of PE/COFF images (the UEFI executable format): the headers, the data
//! directories and the section table, enough to inspect a UKI and to add sections to the
//! systemd EFI stub ([`crate::uki`]).
//!
//! Every offset and size is checked against the input before it is used; a malformed file is
//! a [`PeError`] naming the field, never a panic. Only what a loader needs to place sections is
//! read: no import, export or relocation tables.

use std::fmt;

/// At most this many sections (the PE/COFF specification's loader limit).
pub const MAX_SECTIONS: usize = 96;
/// `IMAGE_NT_OPTIONAL_HDR32_MAGIC`: PE32.
pub const MAGIC_PE32: u16 = 0x10b;
/// `IMAGE_NT_OPTIONAL_HDR64_MAGIC`: PE32+.
pub const MAGIC_PE32_PLUS: u16 = 0x20b;
/// Index of the certificate table (Authenticode signatures) among the data directories.
pub const DIR_CERTIFICATE: usize = 4;
/// Index of the debug directory among the data directories.
pub const DIR_DEBUG: usize = 6;
/// Size of one section header.
pub const SECTION_HEADER_LEN: usize = 40;
/// Size of the COFF file header.
const COFF_LEN: usize = 20;
/// `IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ`: read-only data.
pub const SCN_READONLY_DATA: u32 = 0x4000_0040;

/// Why bytes are not a PE image this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    /// The input ends inside a header or table.
    #[error("truncated: the file ends inside the {0}")]
    Truncated(&'static str),
    /// No `MZ` at offset 0.
    #[error("not a PE image: no MZ signature")]
    NoMzSignature,
    /// No `PE\0\0` where `e_lfanew` points.
    #[error("not a PE image: no PE signature at e_lfanew {0:#x}")]
    NoPeSignature(u32),
    /// The optional header is neither PE32 nor PE32+.
    #[error("optional header: unknown magic {0:#x}")]
    UnknownMagic(u16),
    /// The optional header is shorter than its fixed part and data directories.
    #[error("optional header: SizeOfOptionalHeader {0} is too small")]
    OptionalHeaderTooSmall(u16),
    /// More than 16 data directories.
    #[error("optional header: NumberOfRvaAndSizes {0} is more than 16")]
    TooManyDirectories(u32),
    /// More than [`MAX_SECTIONS`] sections.
    #[error("COFF header: {0} sections, more than {MAX_SECTIONS}")]
    TooManySections(u16),
    /// A section's raw data lies (partly) outside the file.
    #[error("section {name}: raw data {offset:#x}+{size:#x} is outside the {file_len}-byte file")]
    SectionOutsideFile {
        /// The section.
        name: String,
        /// PointerToRawData.
        offset: u32,
        /// SizeOfRawData.
        size: u32,
        /// File length.
        file_len: usize,
    },
    /// A section's memory range overflows 32 bits.
    #[error("section {0}: VirtualAddress + VirtualSize overflows")]
    SectionAddressOverflow(String),
    /// SectionAlignment or FileAlignment is zero or not a power of two.
    #[error("optional header: {field} {value:#x} is not a power of two")]
    BadAlignment {
        /// SectionAlignment or FileAlignment.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The 8 name bytes as stored (NUL-padded).
    pub raw_name: [u8; 8],
    /// VirtualSize: bytes in memory.
    pub virtual_size: u32,
    /// VirtualAddress: RVA of the first byte in memory.
    pub virtual_address: u32,
    /// SizeOfRawData: bytes in the file (a multiple of FileAlignment).
    pub raw_size: u32,
    /// PointerToRawData: file offset of the raw data.
    pub raw_offset: u32,
    /// Characteristics flags.
    pub characteristics: u32,
}

impl Section {
    /// The name up to the first NUL, lossily as UTF-8 (`.linux`).
    pub fn name(&self) -> String {
        let end = self.raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        String::from_utf8_lossy(self.raw_name.get(..end).unwrap_or_default()).into_owned()
    }

    /// The section's raw bytes in `file` (SizeOfRawData long; checked when parsed).
    pub fn raw<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        let start = self.raw_offset as usize;
        file.get(start..start.saturating_add(self.raw_size as usize))
            .unwrap_or_default()
    }

    /// The part of the raw data that is loaded: at most VirtualSize bytes. In memory it is
    /// followed by `virtual_size - loaded.len()` zero bytes.
    pub fn loaded<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        let raw = self.raw(file);
        raw.get(..(self.virtual_size as usize).min(raw.len()))
            .unwrap_or_default()
    }

    /// The section as it is in memory: VirtualSize bytes, the raw data cut to that length
    /// and zero-filled past it (what the firmware loads and the systemd stub measures).
    /// Allocates VirtualSize bytes (up to 4 GiB for a hostile header): for untrusted files
    /// use [`Self::loaded`] and count the zeros.
    pub fn memory(&self, file: &[u8]) -> Vec<u8> {
        let raw = self.raw(file);
        let len = self.virtual_size as usize;
        let mut v = raw.get(..len.min(raw.len())).unwrap_or_default().to_vec();
        v.resize(len, 0);
        v
    }

    /// The 40-byte header as stored in the section table.
    pub fn to_bytes(&self) -> [u8; SECTION_HEADER_LEN] {
        let mut h = [0u8; SECTION_HEADER_LEN];
        h[..8].copy_from_slice(&self.raw_name);
        h[8..12].copy_from_slice(&self.virtual_size.to_le_bytes());
        h[12..16].copy_from_slice(&self.virtual_address.to_le_bytes());
        h[16..20].copy_from_slice(&self.raw_size.to_le_bytes());
        h[20..24].copy_from_slice(&self.raw_offset.to_le_bytes());
        // Relocations, line numbers and their counts stay zero (images have none).
        h[36..40].copy_from_slice(&self.characteristics.to_le_bytes());
        h
    }
}

/// A data directory entry (RVA and size; for the certificate table, a file offset and size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataDirectory {
    /// VirtualAddress (file offset for the certificate table).
    pub address: u32,
    /// Size in bytes.
    pub size: u32,
}

/// The parsed headers of a PE image. Offsets are into the parsed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeHeaders {
    /// File offset of the `PE\0\0` signature (`e_lfanew`).
    pub pe_offset: usize,
    /// COFF Machine (0x8664: x86-64, 0xaa64: arm64).
    pub machine: u16,
    /// COFF TimeDateStamp.
    pub timestamp: u32,
    /// COFF PointerToSymbolTable (0: none).
    pub symbol_table: u32,
    /// COFF NumberOfSymbols.
    pub symbol_count: u32,
    /// COFF Characteristics.
    pub coff_characteristics: u16,
    /// File offset of the optional header.
    pub optional_offset: usize,
    /// Optional header magic: [`MAGIC_PE32`] or [`MAGIC_PE32_PLUS`].
    pub magic: u16,
    /// AddressOfEntryPoint (RVA).
    pub entry_point: u32,
    /// ImageBase.
    pub image_base: u64,
    /// SectionAlignment.
    pub section_alignment: u32,
    /// FileAlignment.
    pub file_alignment: u32,
    /// SizeOfImage.
    pub size_of_image: u32,
    /// SizeOfHeaders.
    pub size_of_headers: u32,
    /// CheckSum as stored.
    pub checksum: u32,
    /// Subsystem (10: EFI application).
    pub subsystem: u16,
    /// File offset of the first data directory entry.
    pub directories_offset: usize,
    /// The data directories (NumberOfRvaAndSizes of them).
    pub directories: Vec<DataDirectory>,
    /// File offset of the section table.
    pub section_table_offset: usize,
    /// The sections in table order.
    pub sections: Vec<Section>,
}

/// File offset of CheckSum within the optional header (the same for PE32 and PE32+).
pub const OPT_CHECKSUM: usize = 64;
/// File offset of SizeOfImage within the optional header.
pub const OPT_SIZE_OF_IMAGE: usize = 56;
/// File offset of SizeOfHeaders within the optional header.
pub const OPT_SIZE_OF_HEADERS: usize = 60;
/// File offset of SizeOfInitializedData within the optional header.
pub const OPT_SIZE_OF_INITIALIZED_DATA: usize = 8;

fn u16_at(b: &[u8], at: usize, what: &'static str) -> Result<u16, PeError> {
    b.get(at..at.saturating_add(2))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(PeError::Truncated(what))
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, PeError> {
    b.get(at..at.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(PeError::Truncated(what))
}

fn u64_at(b: &[u8], at: usize, what: &'static str) -> Result<u64, PeError> {
    b.get(at..at.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(PeError::Truncated(what))
}

fn power_of_two(field: &'static str, value: u32) -> Result<u32, PeError> {
    if value.is_power_of_two() {
        Ok(value)
    } else {
        Err(PeError::BadAlignment { field, value })
    }
}

impl PeHeaders {
    /// Parses the headers and section table of `file`, checking that every section's raw data
    /// lies inside it.
    pub fn parse(file: &[u8]) -> Result<Self, PeError> {
        if file.get(..2) != Some(b"MZ") {
            return Err(PeError::NoMzSignature);
        }
        let lfanew = u32_at(file, 0x3c, "DOS header")?;
        let pe_offset = lfanew as usize;
        if file.get(pe_offset..pe_offset.saturating_add(4)) != Some(b"PE\0\0") {
            return Err(PeError::NoPeSignature(lfanew));
        }
        let coff = pe_offset + 4;
        let machine = u16_at(file, coff, "COFF header")?;
        let count = u16_at(file, coff + 2, "COFF header")?;
        let timestamp = u32_at(file, coff + 4, "COFF header")?;
        let symbol_table = u32_at(file, coff + 8, "COFF header")?;
        let symbol_count = u32_at(file, coff + 12, "COFF header")?;
        let optional_size = u16_at(file, coff + 16, "COFF header")?;
        let coff_characteristics = u16_at(file, coff + 18, "COFF header")?;
        if usize::from(count) > MAX_SECTIONS {
            return Err(PeError::TooManySections(count));
        }
        let opt = coff + COFF_LEN;
        let magic = u16_at(file, opt, "optional header")?;
        let (image_base, fixed_len) = match magic {
            MAGIC_PE32 => (u64::from(u32_at(file, opt + 28, "optional header")?), 96),
            MAGIC_PE32_PLUS => (u64_at(file, opt + 24, "optional header")?, 112),
            other => return Err(PeError::UnknownMagic(other)),
        };
        if usize::from(optional_size) < fixed_len {
            return Err(PeError::OptionalHeaderTooSmall(optional_size));
        }
        let dir_count = u32_at(file, opt + fixed_len - 4, "optional header")?;
        if dir_count > 16 {
            return Err(PeError::TooManyDirectories(dir_count));
        }
        if fixed_len + 8 * dir_count as usize > usize::from(optional_size) {
            return Err(PeError::OptionalHeaderTooSmall(optional_size));
        }
        let directories_offset = opt + fixed_len;
        let directories = (0..dir_count as usize)
            .map(|i| {
                let at = directories_offset + 8 * i;
                Ok(DataDirectory {
                    address: u32_at(file, at, "data directories")?,
                    size: u32_at(file, at + 4, "data directories")?,
                })
            })
            .collect::<Result<Vec<_>, PeError>>()?;
        let section_table_offset = opt + usize::from(optional_size);
        let mut sections = Vec::with_capacity(usize::from(count));
        for i in 0..usize::from(count) {
            let at = section_table_offset + SECTION_HEADER_LEN * i;
            let h = file
                .get(at..at + SECTION_HEADER_LEN)
                .ok_or(PeError::Truncated("section table"))?;
            let mut raw_name = [0u8; 8];
            raw_name.copy_from_slice(&h[..8]);
            let s = Section {
                raw_name,
                virtual_size: u32_at(h, 8, "section table")?,
                virtual_address: u32_at(h, 12, "section table")?,
                raw_size: u32_at(h, 16, "section table")?,
                raw_offset: u32_at(h, 20, "section table")?,
                characteristics: u32_at(h, 36, "section table")?,
            };
            let end = u64::from(s.raw_offset) + u64::from(s.raw_size);
            if s.raw_size > 0 && end > file.len() as u64 {
                return Err(PeError::SectionOutsideFile {
                    name: s.name(),
                    offset: s.raw_offset,
                    size: s.raw_size,
                    file_len: file.len(),
                });
            }
            if s.virtual_address.checked_add(s.virtual_size).is_none() {
                return Err(PeError::SectionAddressOverflow(s.name()));
            }
            sections.push(s);
        }
        Ok(Self {
            pe_offset,
            machine,
            timestamp,
            symbol_table,
            symbol_count,
            coff_characteristics,
            optional_offset: opt,
            magic,
            entry_point: u32_at(file, opt + 16, "optional header")?,
            image_base,
            section_alignment: power_of_two(
                "SectionAlignment",
                u32_at(file, opt + 32, "optional header")?,
            )?,
            file_alignment: power_of_two(
                "FileAlignment",
                u32_at(file, opt + 36, "optional header")?,
            )?,
            size_of_image: u32_at(file, opt + OPT_SIZE_OF_IMAGE, "optional header")?,
            size_of_headers: u32_at(file, opt + OPT_SIZE_OF_HEADERS, "optional header")?,
            checksum: u32_at(file, opt + OPT_CHECKSUM, "optional header")?,
            subsystem: u16_at(file, opt + 68, "optional header")?,
            directories_offset,
            directories,
            section_table_offset,
            sections,
        })
    }

    /// The section called `name`, if any (the first one).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name() == name)
    }

    /// Data directory `index`; absent ones are empty.
    pub fn directory(&self, index: usize) -> DataDirectory {
        self.directories.get(index).copied().unwrap_or_default()
    }

    /// File offset of the CheckSum field.
    pub fn checksum_offset(&self) -> usize {
        self.optional_offset + OPT_CHECKSUM
    }

    /// File offset of the certificate table's data directory entry, if the image has one.
    pub fn certificate_directory_offset(&self) -> Option<usize> {
        (self.directories.len() > DIR_CERTIFICATE)
            .then_some(self.directories_offset + 8 * DIR_CERTIFICATE)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rva {:#x} size {:#x} file {:#x}+{:#x}",
            self.name(),
            self.virtual_address,
            self.virtual_size,
            self.raw_offset,
            self.raw_size
        )
    }
}

/// The PE header checksum (the ImageHlp algorithm): 16-bit words summed with end-around carry,
/// the 4 bytes at `checksum_offset` read as zero, plus the file length.
pub fn checksum(file: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, pair) in file.chunks(2).enumerate() {
        let at = 2 * i;
        if at == checksum_offset || at == checksum_offset + 2 {
            continue;
        }
        let word = match pair {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            [lo] => u16::from(*lo),
            _ => 0,
        };
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(file.len() as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The systemd EFI stub (Debian `systemd-boot-efi`), when installed.
    pub(crate) fn stub() -> Option<Vec<u8>> {
        std::fs::read("/usr/lib/systemd/boot/efi/linuxx64.efi.stub").ok()
    }

    #[test]
    fn parses_the_systemd_stub_and_reproduces_its_checksum() {
        let Some(stub) = stub() else {
            eprintln!("skipped: systemd-boot-efi is not installed");
            return;
        };
        let h = PeHeaders::parse(&stub).unwrap();
        assert_eq!(h.magic, MAGIC_PE32_PLUS);
        assert_eq!(h.machine, 0x8664);
        assert_eq!(h.subsystem, 10);
        assert!(h.section(".text").is_some());
        assert!(h.section(".sbat").is_some());
        assert_eq!(h.directory(DIR_CERTIFICATE), DataDirectory::default());
        assert_eq!(checksum(&stub, h.checksum_offset()), h.checksum);
    }

    #[test]
    fn refuses_malformed_headers() {
        assert_eq!(PeHeaders::parse(b""), Err(PeError::NoMzSignature));
        assert_eq!(
            PeHeaders::parse(b"MZ"),
            Err(PeError::Truncated("DOS header"))
        );
        let mut f = vec![0u8; 0x100];
        f[..2].copy_from_slice(b"MZ");
        f[0x3c] = 0x80;
        assert_eq!(PeHeaders::parse(&f), Err(PeError::NoPeSignature(0x80)));
        f[0x80..0x84].copy_from_slice(b"PE\0\0");
        f[0x82 + 4] = 200; // 200 sections
        assert_eq!(PeHeaders::parse(&f), Err(PeError::TooManySections(200)));
        f[0x82 + 4] = 1;
        assert_eq!(PeHeaders::parse(&f), Err(PeError::UnknownMagic(0)));
        f[0x98..0x9a].copy_from_slice(&MAGIC_PE32_PLUS.to_le_bytes());
        assert_eq!(
            PeHeaders::parse(&f),
            Err(PeError::OptionalHeaderTooSmall(0))
        );
    }

    #[test]
    fn a_section_past_the_end_of_the_file_is_refused() {
        let Some(mut stub) = stub() else { return };
        let h = PeHeaders::parse(&stub).unwrap();
        // PointerToRawData of the first section -> far past the end.
        let at = h.section_table_offset + 20;
        stub[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert!(matches!(
            PeHeaders::parse(&stub),
            Err(PeError::SectionOutsideFile { name, .. }) if name == ".text"
        ));
    }

    #[test]
    fn checksum_of_known_bytes() {
        // Words 0x0201 + 0x0403 (+ the checksum field skipped) + length.
        let f = [1u8, 2, 3, 4, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(checksum(&f, 4), 0x0201 + 0x0403 + 8);
        // Carry folds back in.
        let f = [0xffu8, 0xff, 0x02, 0x00];
        assert_eq!(checksum(&f, 100), 0x0002 + 4);
    }
}

//! A unified kernel image (UKI): the systemd EFI stub with the kernel, the initramfs, the
//! command line and an os-release added as PE sections. UEFI firmware starts the stub, which
//! boots the kernel from `.linux` with `.initrd` and `.cmdline`.
//!
//! # Layout
//!
//! The stub's own sections are kept as they are (same RVAs; their raw data is laid out again
//! from the end of the headers, which for a packed stub is where it already was). The COFF
//! symbol table and anything after the last section's data are dropped. The new sections
//! follow, in this order, each at the next RVA that is a multiple of [`SECTION_RVA_ALIGN`]
//! (and of the stub's SectionAlignment) past the stub's image, and at the next file offset
//! that is a multiple of its FileAlignment:
//!
//! | section | contents |
//! |---|---|
//! | `.osrel` | os-release (default [`DEFAULT_OS_RELEASE`]) |
//! | `.cmdline` | the command line and a `\n` (as the reference writes it) |
//! | `.sbat` | only with [`Sbat::Replace`] or [`Sbat::Append`]; the stub's own `.sbat` is then removed |
//! | `.initrd` | the initramfs |
//! | `.linux` | the kernel, last, as `ukify` does |
//!
//! Each new section is read-only initialised data (`0x40000040`), VirtualSize = data length,
//! SizeOfRawData = that rounded up to FileAlignment. NumberOfSections, SizeOfImage,
//! SizeOfInitializedData and CheckSum are updated; SizeOfHeaders grows (by FileAlignment
//! steps) when the larger section table needs it, which is possible as long as it stays below
//! the first section's RVA. Nothing depends on time or chance: the same inputs give the same
//! bytes.

use crate::pe::{
    self, OPT_CHECKSUM, OPT_SIZE_OF_HEADERS, OPT_SIZE_OF_IMAGE, OPT_SIZE_OF_INITIALIZED_DATA,
    PeError, PeHeaders, SCN_READONLY_DATA, SECTION_HEADER_LEN, Section,
};

/// The os-release put in `.osrel` when none is given (the reference's default).
pub const DEFAULT_OS_RELEASE: &str = "NAME=\"stboot\"\nPRETTY_NAME=\"System Transparency Boot \
Loader\"\nID=stboot\nBUILD_ID=rolling\n";

/// New sections start at RVAs that are multiples of this (page-aligned, as the reference's
/// objcopy recipe places them).
pub const SECTION_RVA_ALIGN: u32 = 0x1000;

/// The largest FileAlignment the PE specification allows.
const MAX_FILE_ALIGNMENT: u32 = 0x1_0000;

/// Where Debian's `systemd-boot-efi` installs the x86-64 stub.
pub const DEBIAN_STUB_PATH: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// Section names a UKI adds; a stub that already has one of them is refused.
pub const UKI_SECTIONS: &[&str] = &[".osrel", ".cmdline", ".initrd", ".linux"];

/// The sections systemd-stub 252 (Debian bookworm's) measures into PCR 11, in the order it
/// measures them; absent ones are skipped. For each, it extends SHA-256 of the name with its
/// NUL (`".linux\0"`), then SHA-256 of the section's VirtualSize bytes in memory. Later stubs
/// follow the UKI specification's longer list (which adds `.ucode`, `.uname`, `.sbat` and more).
pub const STUB_252_PCR11_SECTIONS: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey",
];

/// The `(name, section)` pairs systemd-stub 252 measures into PCR 11 for this image, in order
/// (see [`STUB_252_PCR11_SECTIONS`]).
pub fn stub_252_pcr11_sections(h: &PeHeaders) -> Vec<(&'static str, &Section)> {
    STUB_252_PCR11_SECTIONS
        .iter()
        .filter_map(|name| h.section(name).map(|s| (*name, s)))
        .collect()
}

/// What to do with SBAT (Secure Boot Advanced Targeting) metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sbat<'a> {
    /// Keep the stub's `.sbat` section as it is.
    #[default]
    Keep,
    /// Replace it with these bytes (CSV lines, starting with the `sbat,1,...` line).
    Replace(&'a [u8]),
    /// The stub's `.sbat` (its text up to the first NUL), then these bytes.
    Append(&'a [u8]),
}

/// The inputs of a UKI.
#[derive(Debug, Clone, Copy)]
pub struct UkiInputs<'a> {
    /// The kernel (bzImage with an EFI stub).
    pub kernel: &'a [u8],
    /// The initramfs.
    pub initramfs: &'a [u8],
    /// The kernel command line; `.cmdline` holds it followed by `\n`.
    pub cmdline: &'a str,
    /// `.osrel` contents; `None`: [`DEFAULT_OS_RELEASE`].
    pub os_release: Option<&'a [u8]>,
    /// SBAT handling.
    pub sbat: Sbat<'a>,
}

/// Why a UKI could not be built. Stub errors name the stub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UkiError {
    /// The stub is not a PE image this writer understands.
    #[error("stub: {0}")]
    Stub(#[from] PeError),
    /// The stub is already signed: adding sections would invalidate the signature.
    #[error("stub: it is signed (certificate table present); use an unsigned stub")]
    StubSigned,
    /// The stub already has a section the UKI adds.
    #[error("stub: it already has a {0} section (is it a UKI already?)")]
    StubHasSection(String),
    /// The stub's debug directory points at file offsets that would move.
    #[error("stub: it has a debug directory whose data would move; strip it first")]
    StubDebugDirectory,
    /// The new section table does not fit below the first section.
    #[error("stub: no room for {needed} section headers below the first section at {first:#x}")]
    NoRoomForSections {
        /// Section headers needed.
        needed: usize,
        /// RVA of the stub's first section.
        first: u32,
    },
    /// A header field of the stub is outside what the writer accepts.
    #[error("stub: {field} {value:#x} is out of range ({why})")]
    StubHeader {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The rule.
        why: &'static str,
    },
    /// The image would be larger than a PE allows (4 GiB).
    #[error("the UKI would be larger than 4 GiB (section {0})")]
    TooLarge(&'static str),
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// A section to add: name and bytes.
struct NewSection<'a> {
    name: &'static str,
    data: std::borrow::Cow<'a, [u8]>,
}

/// The `.cmdline` contents for `cmdline`: the text and a `\n`.
pub fn cmdline_section(cmdline: &str) -> Vec<u8> {
    let mut v = cmdline.as_bytes().to_vec();
    v.push(b'\n');
    v
}

/// Copies `src` to `out[at..]`; the callers' ranges lie inside `out`.
fn put(out: &mut [u8], at: usize, src: &[u8]) {
    if let Some(d) = out.get_mut(at..at.saturating_add(src.len())) {
        d.copy_from_slice(src);
    }
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    put(out, at, &v.to_le_bytes());
}

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    put(out, at, &v.to_le_bytes());
}

/// Builds a UKI from `stub` (the systemd EFI stub, unsigned) and `inputs`.
pub fn build(stub: &[u8], inputs: &UkiInputs<'_>) -> Result<Vec<u8>, UkiError> {
    let h = PeHeaders::parse(stub)?;
    let cert = h.directory(pe::DIR_CERTIFICATE);
    if cert.size != 0 {
        return Err(UkiError::StubSigned);
    }
    for name in UKI_SECTIONS {
        if h.section(name).is_some() {
            return Err(UkiError::StubHasSection((*name).to_owned()));
        }
    }

    // The stub's sections to keep, and the new ones.
    let old_sbat = h.section(".sbat");
    let sbat = match (inputs.sbat, old_sbat) {
        (Sbat::Keep, _) => None,
        (Sbat::Replace(b), _) => Some(std::borrow::Cow::Borrowed(b)),
        (Sbat::Append(b), old) => {
            // The stub's SBAT text: its raw bytes, at most VirtualSize, up to the first NUL.
            let raw = old.map(|s| s.raw(stub)).unwrap_or_default();
            let raw = raw
                .get(..old.map_or(0, |s| s.virtual_size as usize).min(raw.len()))
                .unwrap_or_default();
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            let mut v = raw.get(..end).unwrap_or_default().to_vec();
            v.extend_from_slice(b);
            Some(std::borrow::Cow::Owned(v))
        }
    };
    let kept: Vec<&Section> = h
        .sections
        .iter()
        .filter(|s| !(sbat.is_some() && s.name() == ".sbat"))
        .collect();
    let mut new = vec![
        NewSection {
            name: ".osrel",
            data: inputs
                .os_release
                .unwrap_or(DEFAULT_OS_RELEASE.as_bytes())
                .into(),
        },
        NewSection {
            name: ".cmdline",
            data: cmdline_section(inputs.cmdline).into(),
        },
    ];
    if let Some(data) = sbat {
        new.push(NewSection {
            name: ".sbat",
            data,
        });
    }
    new.push(NewSection {
        name: ".initrd",
        data: inputs.initramfs.into(),
    });
    new.push(NewSection {
        name: ".linux",
        data: inputs.kernel.into(),
    });

    // Header fields that size the output: FileAlignment as the PE specification allows it,
    // SizeOfHeaders within the stub.
    if h.file_alignment > MAX_FILE_ALIGNMENT {
        return Err(UkiError::StubHeader {
            field: "FileAlignment",
            value: h.file_alignment,
            why: "at most 64 KiB",
        });
    }
    if h.size_of_headers as usize > stub.len() {
        return Err(UkiError::StubHeader {
            field: "SizeOfHeaders",
            value: h.size_of_headers,
            why: "beyond the end of the file",
        });
    }

    // Headers: room for the whole section table.
    let count = kept.len() + new.len();
    let fa = u64::from(h.file_alignment);
    let first_rva = kept
        .iter()
        .map(|s| s.virtual_address)
        .filter(|&a| a > 0)
        .min()
        .unwrap_or(u32::MAX);
    let table_end = (h.section_table_offset + SECTION_HEADER_LEN * count) as u64;
    let headers_len = align_up(table_end, fa).max(u64::from(h.size_of_headers));
    if count > pe::MAX_SECTIONS || headers_len > u64::from(first_rva) {
        return Err(UkiError::NoRoomForSections {
            needed: count,
            first: first_rva,
        });
    }
    let headers_len = headers_len as usize;

    // Raw data of the kept sections, laid out again from the end of the headers.
    let mut sections: Vec<Section> = Vec::with_capacity(count);
    let mut cursor = headers_len as u64;
    let mut moved = false;
    for s in &kept {
        let mut s = (*s).clone();
        if s.raw_size > 0 {
            let at = align_up(cursor, fa);
            moved |= at != u64::from(s.raw_offset);
            cursor = at + u64::from(s.raw_size);
            s.raw_offset = u32::try_from(at).map_err(|_| UkiError::TooLarge("stub"))?;
        }
        sections.push(s);
    }
    if moved && h.directory(pe::DIR_DEBUG).size != 0 {
        return Err(UkiError::StubDebugDirectory);
    }

    // New sections after the stub's image.
    let va_align = u64::from(SECTION_RVA_ALIGN.max(h.section_alignment));
    let stub_end = h
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size))
        .max()
        .unwrap_or(0)
        .max(u64::from(h.size_of_image));
    let mut va = align_up(stub_end, va_align);
    let mut added_init_data: u64 = 0;
    for n in &new {
        let len = n.data.len() as u64;
        let raw_size = align_up(len, fa);
        let at = align_up(cursor, fa);
        let too_large = || UkiError::TooLarge(n.name);
        let mut raw_name = [0u8; 8];
        raw_name[..n.name.len()].copy_from_slice(n.name.as_bytes());
        sections.push(Section {
            raw_name,
            virtual_size: u32::try_from(len).map_err(|_| too_large())?,
            virtual_address: u32::try_from(va).map_err(|_| too_large())?,
            raw_size: u32::try_from(raw_size).map_err(|_| too_large())?,
            raw_offset: if len == 0 {
                0
            } else {
                u32::try_from(at).map_err(|_| too_large())?
            },
            characteristics: SCN_READONLY_DATA,
        });
        if len > 0 {
            cursor = at + raw_size;
        }
        added_init_data += raw_size;
        va = align_up(va + len.max(1), va_align);
        if va > u64::from(u32::MAX) || cursor > u64::from(u32::MAX) {
            return Err(too_large());
        }
    }
    let last_end = sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size))
        .max()
        .unwrap_or(0);
    let size_of_image = u32::try_from(align_up(last_end, u64::from(h.section_alignment)))
        .map_err(|_| UkiError::TooLarge(".linux"))?;

    // Write: the stub's headers up to the section table, the new table, then the raw data.
    // Every range below lies inside `out` by construction (headers_len and cursor bound them).
    let mut out = vec![0u8; cursor as usize];
    put(
        &mut out,
        0,
        stub.get(..h.section_table_offset.min(stub.len()))
            .unwrap_or_default(),
    );
    for (i, s) in sections.iter().enumerate() {
        put(
            &mut out,
            h.section_table_offset + SECTION_HEADER_LEN * i,
            &s.to_bytes(),
        );
    }
    for (s, old) in sections.iter().zip(&kept) {
        if s.raw_size > 0 {
            put(&mut out, s.raw_offset as usize, old.raw(stub));
        }
    }
    for (s, n) in sections.iter().skip(kept.len()).zip(&new) {
        put(&mut out, s.raw_offset as usize, &n.data);
    }

    let coff = h.pe_offset + 4;
    put_u16(&mut out, coff + 2, count as u16);
    put_u32(&mut out, coff + 8, 0); // PointerToSymbolTable: the symbols are dropped
    put_u32(&mut out, coff + 12, 0); // NumberOfSymbols
    let opt = h.optional_offset;
    let removed_init_data = h
        .sections
        .iter()
        .filter(|s| !kept.iter().any(|k| k == s))
        .map(|s| u64::from(s.raw_size))
        .sum::<u64>();
    let old_init = u64::from(pe_u32(stub, opt + OPT_SIZE_OF_INITIALIZED_DATA));
    let init = (old_init + added_init_data).saturating_sub(removed_init_data);
    put_u32(
        &mut out,
        opt + OPT_SIZE_OF_INITIALIZED_DATA,
        u32::try_from(init).unwrap_or(u32::MAX),
    );
    put_u32(&mut out, opt + OPT_SIZE_OF_IMAGE, size_of_image);
    put_u32(&mut out, opt + OPT_SIZE_OF_HEADERS, headers_len as u32);
    put_u32(&mut out, opt + OPT_CHECKSUM, 0);
    let sum = pe::checksum(&out, opt + OPT_CHECKSUM);
    put_u32(&mut out, opt + OPT_CHECKSUM, sum);
    Ok(out)
}

fn pe_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::pe::PeHeaders;

    fn stub() -> Option<Vec<u8>> {
        let s = std::fs::read(DEBIAN_STUB_PATH).ok();
        if s.is_none() {
            eprintln!("skipped: systemd-boot-efi is not installed");
        }
        s
    }

    fn inputs<'a>(kernel: &'a [u8], initramfs: &'a [u8]) -> UkiInputs<'a> {
        UkiInputs {
            kernel,
            initramfs,
            cmdline: "console=ttyS0 stboot.x=1",
            os_release: None,
            sbat: Sbat::Keep,
        }
    }

    #[test]
    fn sections_are_added_aligned_after_the_stub() {
        let Some(stub) = stub() else { return };
        let kernel = vec![0xaa; 5000];
        let initrd = vec![0xbb; 70_001];
        let uki = build(&stub, &inputs(&kernel, &initrd)).unwrap();
        let s = PeHeaders::parse(&stub).unwrap();
        let h = PeHeaders::parse(&uki).unwrap();
        assert_eq!(h.sections.len(), s.sections.len() + 4);
        // The stub's sections are unchanged (a packed stub keeps its raw offsets too).
        assert_eq!(h.sections[..s.sections.len()], s.sections[..]);
        let names: Vec<String> = h.sections[s.sections.len()..]
            .iter()
            .map(Section::name)
            .collect();
        assert_eq!(names, [".osrel", ".cmdline", ".initrd", ".linux"]);
        let mut prev_end = s.size_of_image;
        for sec in &h.sections[s.sections.len()..] {
            assert_eq!(sec.virtual_address % SECTION_RVA_ALIGN, 0, "{sec}");
            assert!(sec.virtual_address >= prev_end, "{sec} overlaps");
            assert_eq!(sec.raw_offset % h.file_alignment, 0, "{sec}");
            assert_eq!(sec.raw_size % h.file_alignment, 0, "{sec}");
            assert_eq!(sec.characteristics, SCN_READONLY_DATA);
            prev_end = sec.virtual_address + sec.virtual_size;
        }
        assert_eq!(h.section(".linux").unwrap().memory(&uki), kernel);
        assert_eq!(h.section(".initrd").unwrap().memory(&uki), initrd);
        assert_eq!(
            h.section(".cmdline").unwrap().memory(&uki),
            b"console=ttyS0 stboot.x=1\n"
        );
        assert_eq!(
            h.section(".osrel").unwrap().memory(&uki),
            DEFAULT_OS_RELEASE.as_bytes()
        );
        assert_eq!(
            h.size_of_image,
            (prev_end).next_multiple_of(h.section_alignment)
        );
        assert_eq!(h.symbol_table, 0);
        assert_eq!(h.symbol_count, 0);
        assert_eq!(pe::checksum(&uki, h.checksum_offset()), h.checksum);
        assert_ne!(h.checksum, 0);
        // The file ends with the last section's raw data.
        let last = h.sections.last().unwrap();
        assert_eq!(uki.len(), (last.raw_offset + last.raw_size) as usize);
    }

    #[test]
    fn same_inputs_same_bytes_and_inputs_matter() {
        let Some(stub) = stub() else { return };
        let a = build(&stub, &inputs(b"kernel", b"initrd")).unwrap();
        let b = build(&stub, &inputs(b"kernel", b"initrd")).unwrap();
        assert_eq!(a, b);
        let c = build(&stub, &inputs(b"kernel", b"initre")).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn sbat_replace_and_append() {
        let Some(stub) = stub() else { return };
        let s = PeHeaders::parse(&stub).unwrap();
        let old = s.section(".sbat").unwrap().memory(&stub);
        let old_text = &old[..old.iter().position(|&b| b == 0).unwrap_or(old.len())];
        let mine = b"stboot,1,System Transparency,stboot,1,https://example.invalid\n";

        let mut i = inputs(b"k", b"i");
        i.sbat = Sbat::Replace(mine);
        let uki = build(&stub, &i).unwrap();
        let h = PeHeaders::parse(&uki).unwrap();
        let sbats: Vec<&Section> = h.sections.iter().filter(|s| s.name() == ".sbat").collect();
        assert_eq!(sbats.len(), 1);
        assert_eq!(sbats[0].memory(&uki), mine);
        assert!(sbats[0].virtual_address >= s.size_of_image);
        // .sdmagic kept its address; its bytes moved up in the file.
        let sdmagic = h.section(".sdmagic").unwrap();
        assert_eq!(
            sdmagic.memory(&uki),
            s.section(".sdmagic").unwrap().memory(&stub)
        );
        assert_eq!(pe::checksum(&uki, h.checksum_offset()), h.checksum);

        i.sbat = Sbat::Append(mine);
        let uki = build(&stub, &i).unwrap();
        let h = PeHeaders::parse(&uki).unwrap();
        let got = h.section(".sbat").unwrap().memory(&uki);
        assert_eq!(got, [old_text, &mine[..]].concat());
    }

    #[test]
    fn a_uki_is_not_a_stub() {
        let Some(stub) = stub() else { return };
        let uki = build(&stub, &inputs(b"k", b"i")).unwrap();
        assert_eq!(
            build(&uki, &inputs(b"k", b"i")),
            Err(UkiError::StubHasSection(".osrel".to_owned()))
        );
    }

    #[test]
    fn a_signed_stub_is_refused() {
        let Some(mut stub) = stub() else { return };
        let h = PeHeaders::parse(&stub).unwrap();
        let at = h.certificate_directory_offset().unwrap();
        stub[at + 4..at + 8].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(build(&stub, &inputs(b"k", b"i")), Err(UkiError::StubSigned));
    }

    #[test]
    fn header_fields_that_size_the_output_are_bounded() {
        let Some(stub) = stub() else { return };
        let h = PeHeaders::parse(&stub).unwrap();
        let mut bad = stub.clone();
        let at = h.optional_offset + OPT_SIZE_OF_HEADERS;
        bad[at..at + 4].copy_from_slice(&0xf900_0200u32.to_le_bytes());
        assert!(matches!(
            build(&bad, &inputs(b"k", b"i")),
            Err(UkiError::StubHeader {
                field: "SizeOfHeaders",
                ..
            })
        ));
        let mut bad = stub.clone();
        let at = h.optional_offset + 36;
        bad[at..at + 4].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        assert!(matches!(
            build(&bad, &inputs(b"k", b"i")),
            Err(UkiError::StubHeader {
                field: "FileAlignment",
                ..
            })
        ));
    }

    #[test]
    fn not_a_pe_is_a_stub_error() {
        assert_eq!(
            build(b"\x7fELF", &inputs(b"k", b"i")),
            Err(UkiError::Stub(PeError::NoMzSignature))
        );
    }
}

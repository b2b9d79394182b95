//! Strict ZIP reader: central directory index and streaming entry decoder.

use super::{ArchiveError, ArchiveLimits, Entry, Method, ReadAt};
use flate2::{Decompress, FlushDecompress, Status};
use std::io;

pub(crate) const SIG_LOCAL: u32 = 0x0403_4b50;
pub(crate) const SIG_CENTRAL: u32 = 0x0201_4b50;
pub(crate) const SIG_EOCD: u32 = 0x0605_4b50;
pub(crate) const SIG_DESCRIPTOR: u32 = 0x0807_4b50;
const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;

/// Fixed part of the end of central directory record (APPNOTE 4.3.16).
pub(crate) const EOCD_LEN: usize = 22;
/// Longest EOCD comment: its length is a 16-bit field.
const MAX_COMMENT: usize = 0xFFFF;
/// Fixed part of a central directory record (APPNOTE 4.3.12).
pub(crate) const CENTRAL_LEN: usize = 46;
/// Fixed part of a local file header (APPNOTE 4.3.7).
pub(crate) const LOCAL_LEN: usize = 30;
/// ZIP64 end of central directory locator length (APPNOTE 4.3.15).
const ZIP64_LOCATOR_LEN: u64 = 20;
/// Data descriptor with its optional signature: sig + crc + csize + usize (APPNOTE 4.3.9).
const DESCRIPTOR_LEN: usize = 16;
/// Largest compressed size of a deflate directory entry: Python's zipfile writes the 2-byte empty
/// stream `03 00`; a few bytes of slack, nothing more.
const MAX_DIR_COMPRESSED: u64 = 16;
/// Buffer size for `read_entry` input and output. 256 KiB: large enough that stored blocks and
/// stored entries decode at memory speed, small enough for stboot.
const IO_BUF: usize = 256 << 10;

/// Flag bit 0: traditional encryption.
const FLAG_ENCRYPTED: u16 = 1 << 0;
/// Flag bit 3: sizes and CRC in a data descriptor after the data.
pub(crate) const FLAG_DESCRIPTOR: u16 = 1 << 3;
/// Flag bit 5: compressed patched data.
const FLAG_PATCHED: u16 = 1 << 5;
/// Flag bit 6: strong encryption.
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
/// Flag bit 13: central directory encryption (masked local header values).
const FLAG_CD_ENCRYPTED: u16 = 1 << 13;

/// Little-endian field reader over a byte slice that never panics.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Fields::new(b.get(at..)?).u32()
}

/// Read `buf.len()` bytes at `offset`, as an archive IO error if the source ends first.
fn read_at<R: ReadAt + ?Sized>(src: &R, offset: u64, buf: &mut [u8]) -> Result<(), ArchiveError> {
    let end = offset.checked_add(buf.len() as u64);
    if end.is_none_or(|e| e > src.len()) {
        return Err(ArchiveError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "read of {} bytes at offset {offset} past the end of the {}-byte archive",
                buf.len(),
                src.len()
            ),
        )));
    }
    src.read_exact_at(offset, buf)?;
    Ok(())
}

fn alloc(n: u64) -> Result<Vec<u8>, ArchiveError> {
    let n = usize::try_from(n).map_err(|_| ArchiveError::TooLargeToWrite {
        what: "buffer".into(),
    })?;
    Ok(vec![0u8; n])
}

/// A parsed central directory record before its local header is checked.
struct Central {
    name: String,
    flags: u16,
    method: u16,
    crc32: u32,
    csize: u32,
    usize: u32,
    offset: u32,
}

/// The parsed, cross-checked table of contents of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveIndex {
    entries: Vec<Entry>,
    central_directory_offset: u64,
}

/// Check an entry name; `Ok(is_dir)`. Same rule as [`crate::manifest::is_plain_relative_path`],
/// plus one trailing `/` for directories, with a distinct error per broken rule.
pub(crate) fn check_name(index: u64, name: &str) -> Result<bool, ArchiveError> {
    let owned = || name.to_owned();
    if name.is_empty() {
        return Err(ArchiveError::EmptyName { index });
    }
    if name.starts_with('/') {
        return Err(ArchiveError::AbsolutePath { name: owned() });
    }
    if name.contains('\0') {
        return Err(ArchiveError::NulInName { name: owned() });
    }
    if name.contains('\\') {
        return Err(ArchiveError::Backslash { name: owned() });
    }
    let (path, is_dir) = match name.strip_suffix('/') {
        Some(p) => (p, true),
        None => (name, false),
    };
    for c in path.split('/') {
        if c.is_empty() {
            return Err(ArchiveError::EmptyComponent { name: owned() });
        }
        if c == "." || c == ".." {
            return Err(ArchiveError::DotComponent { name: owned() });
        }
    }
    debug_assert!(crate::manifest::is_plain_relative_path(path));
    Ok(is_dir)
}

/// Walk extra field blocks; reject malformed ones and the ZIP64 block (id 1).
fn check_extra(name: &str, extra: &[u8], which: &'static str) -> Result<(), ArchiveError> {
    let mut f = Fields::new(extra);
    while f.pos < extra.len() {
        let (Some(id), Some(len)) = (f.u16(), f.u16()) else {
            return Err(ArchiveError::MalformedExtraField {
                name: name.to_owned(),
                which,
            });
        };
        if id == 0x0001 {
            return Err(ArchiveError::Zip64Unsupported {
                what: format!("ZIP64 extra field on entry {name:?} in the {which}"),
            });
        }
        if f.bytes(usize::from(len)).is_none() {
            return Err(ArchiveError::MalformedExtraField {
                name: name.to_owned(),
                which,
            });
        }
    }
    Ok(())
}

impl ArchiveIndex {
    /// Parse and cross-check the archive structure in `src` (see the module docs for the rules).
    /// Reads the tail, the central directory and each local header; not the entry data.
    pub fn parse<R: ReadAt + ?Sized>(
        src: &R,
        limits: &ArchiveLimits,
    ) -> Result<Self, ArchiveError> {
        let len = src.len();
        let (eocd_offset, eocd) = find_eocd(src)?;
        let mut f = Fields::new(&eocd);
        let bad = || ArchiveError::NoEndOfCentralDirectory { len };
        let _sig = f.u32().ok_or_else(bad)?;
        let disk = f.u16().ok_or_else(bad)?;
        let cd_disk = f.u16().ok_or_else(bad)?;
        let on_disk = f.u16().ok_or_else(bad)?;
        let total = f.u16().ok_or_else(bad)?;
        let cd_size = f.u32().ok_or_else(bad)?;
        let cd_offset = f.u32().ok_or_else(bad)?;
        if on_disk == 0xFFFF || total == 0xFFFF || cd_size == u32::MAX || cd_offset == u32::MAX {
            return Err(ArchiveError::Zip64Unsupported {
                what: "end of central directory field set to the ZIP64 marker".into(),
            });
        }
        if eocd_offset >= ZIP64_LOCATOR_LEN {
            let mut sig = [0u8; 4];
            read_at(src, eocd_offset - ZIP64_LOCATOR_LEN, &mut sig)?;
            if u32::from_le_bytes(sig) == SIG_ZIP64_LOCATOR {
                return Err(ArchiveError::Zip64Unsupported {
                    what: "ZIP64 end of central directory locator present".into(),
                });
            }
        }
        if disk != 0 || cd_disk != 0 {
            return Err(ArchiveError::MultiDisk {
                what: format!(
                    "end of central directory: disk {disk}, central directory starts on disk {cd_disk}"
                ),
            });
        }
        if on_disk != total {
            return Err(ArchiveError::EntryCountMismatch { on_disk, total });
        }
        if usize::from(total) > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                count: u64::from(total),
                max: limits.max_entries,
            });
        }
        let (cd_offset, cd_size) = (u64::from(cd_offset), u64::from(cd_size));
        let cd_end = cd_offset.checked_add(cd_size);
        match cd_end {
            Some(end) if end == eocd_offset => {}
            Some(end) if end < eocd_offset => {
                return Err(ArchiveError::CentralDirectoryNotAtEnd {
                    offset: cd_offset,
                    size: cd_size,
                    eocd_offset,
                });
            }
            _ => {
                return Err(ArchiveError::CentralDirectoryOutOfBounds {
                    offset: cd_offset,
                    size: cd_size,
                    eocd_offset,
                });
            }
        }
        if cd_size > limits.max_central_directory_size {
            return Err(ArchiveError::CentralDirectoryTooLarge {
                size: cd_size,
                max: limits.max_central_directory_size,
            });
        }
        let mut cd = alloc(cd_size)?;
        read_at(src, cd_offset, &mut cd)?;
        let centrals = parse_central_directory(&cd, u64::from(total), limits)?;

        // Per-entry rules that need only the central record.
        let mut entries = Vec::with_capacity(centrals.len());
        let mut sum: u64 = 0;
        for c in &centrals {
            let (entry, declared) = check_central(c, limits)?;
            sum = sum.saturating_add(declared);
            if sum > limits.max_total_uncompressed {
                return Err(ArchiveError::TotalTooLarge {
                    name: c.name.clone(),
                    max: limits.max_total_uncompressed,
                });
            }
            entries.push(entry);
        }
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w.first() == w.get(1)) {
            return Err(ArchiveError::DuplicateName {
                name: w.first().copied().unwrap_or_default().to_owned(),
            });
        }

        // Local headers, data ranges and descriptors.
        let mut ranges: Vec<(u64, u64, usize)> = Vec::with_capacity(entries.len());
        for (i, (entry, c)) in entries.iter_mut().zip(&centrals).enumerate() {
            let end = check_local(src, entry, c, cd_offset)?;
            ranges.push((entry.local_header_offset, end, i));
        }
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            if let [(_, end_a, a), (start_b, _, b)] = *w
                && start_b < end_a
            {
                let name = |i: usize| entries.get(i).map(|e| e.name.clone()).unwrap_or_default();
                return Err(ArchiveError::OverlappingEntries {
                    first: name(a),
                    second: name(b),
                });
            }
        }
        debug_assert!(len >= cd_offset);
        Ok(Self {
            entries,
            central_directory_offset: cd_offset,
        })
    }

    /// All entries in central directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry whose name is exactly `name` (names are unique).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Where the central directory starts; all entry data lies before it.
    pub fn central_directory_offset(&self) -> u64 {
        self.central_directory_offset
    }
}

/// Find the EOCD record: the last signature whose comment ends exactly at the end of the data.
fn find_eocd<R: ReadAt + ?Sized>(src: &R) -> Result<(u64, Vec<u8>), ArchiveError> {
    let len = src.len();
    let bad = || ArchiveError::NoEndOfCentralDirectory { len };
    if len < EOCD_LEN as u64 {
        return Err(bad());
    }
    let tail_len = len.min((EOCD_LEN + MAX_COMMENT) as u64);
    let tail_start = len - tail_len;
    let mut tail = alloc(tail_len)?;
    read_at(src, tail_start, &mut tail)?;
    let mut i = tail.len().checked_sub(EOCD_LEN).ok_or_else(bad)?;
    loop {
        if le32(&tail, i) == Some(SIG_EOCD) {
            let comment = tail
                .get(i + 20..)
                .and_then(|b| Fields::new(b).u16())
                .map(usize::from);
            if comment == Some(tail.len() - EOCD_LEN - i) {
                let rec = tail.get(i..i + EOCD_LEN).ok_or_else(bad)?.to_vec();
                return Ok((tail_start + i as u64, rec));
            }
        }
        if i == 0 {
            return Err(bad());
        }
        i -= 1;
    }
}

fn parse_central_directory(
    cd: &[u8],
    declared: u64,
    limits: &ArchiveLimits,
) -> Result<Vec<Central>, ArchiveError> {
    let mut out = Vec::new();
    let mut f = Fields::new(cd);
    let mut index: u64 = 0;
    while f.pos < cd.len() {
        let offset = f.pos as u64;
        if index >= declared {
            return Err(ArchiveError::CentralDirectoryCountMismatch {
                declared,
                found: index + 1,
            });
        }
        let bad = |what| ArchiveError::BadCentralRecord {
            index,
            offset,
            what,
        };
        let fixed = f
            .bytes(CENTRAL_LEN)
            .ok_or_else(|| bad("truncated record"))?;
        let mut h = Fields::new(fixed);
        let t = "truncated record";
        if h.u32().ok_or_else(|| bad(t))? != SIG_CENTRAL {
            return Err(bad("bad signature"));
        }
        let _made_by = h.u16().ok_or_else(|| bad(t))?;
        let _needed = h.u16().ok_or_else(|| bad(t))?;
        let flags = h.u16().ok_or_else(|| bad(t))?;
        let method = h.u16().ok_or_else(|| bad(t))?;
        let _time = h.u16().ok_or_else(|| bad(t))?;
        let _date = h.u16().ok_or_else(|| bad(t))?;
        let crc32 = h.u32().ok_or_else(|| bad(t))?;
        let csize = h.u32().ok_or_else(|| bad(t))?;
        let usize_ = h.u32().ok_or_else(|| bad(t))?;
        let name_len = usize::from(h.u16().ok_or_else(|| bad(t))?);
        let extra_len = usize::from(h.u16().ok_or_else(|| bad(t))?);
        let comment_len = usize::from(h.u16().ok_or_else(|| bad(t))?);
        let disk = h.u16().ok_or_else(|| bad(t))?;
        let _internal = h.u16().ok_or_else(|| bad(t))?;
        let _external = h.u32().ok_or_else(|| bad(t))?;
        let offset_field = h.u32().ok_or_else(|| bad(t))?;
        if name_len > limits.max_name_len {
            return Err(ArchiveError::NameTooLong {
                index,
                len: name_len,
                max: limits.max_name_len,
            });
        }
        let name_bytes = f.bytes(name_len).ok_or_else(|| bad("truncated name"))?;
        let extra = f
            .bytes(extra_len)
            .ok_or_else(|| bad("truncated extra field"))?;
        f.bytes(comment_len)
            .ok_or_else(|| bad("truncated comment"))?;
        let name = std::str::from_utf8(name_bytes)
            .map_err(|_| ArchiveError::NameNotUtf8 {
                index,
                lossy: String::from_utf8_lossy(name_bytes).into_owned(),
            })?
            .to_owned();
        check_name(index, &name)?;
        if disk != 0 {
            return Err(ArchiveError::MultiDisk {
                what: format!("entry {name:?} starts on disk {disk}"),
            });
        }
        check_extra(&name, extra, "central directory")?;
        out.push(Central {
            name,
            flags,
            method,
            crc32,
            csize,
            usize: usize_,
            offset: offset_field,
        });
        index += 1;
    }
    if index != declared {
        return Err(ArchiveError::CentralDirectoryCountMismatch {
            declared,
            found: index,
        });
    }
    Ok(out)
}

/// Central-record-only rules. Returns the entry (offsets filled in later) and its size.
fn check_central(c: &Central, limits: &ArchiveLimits) -> Result<(Entry, u64), ArchiveError> {
    let name = || c.name.clone();
    if c.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_CD_ENCRYPTED) != 0 {
        return Err(ArchiveError::Encrypted {
            name: name(),
            flags: c.flags,
        });
    }
    if c.flags & FLAG_PATCHED != 0 {
        return Err(ArchiveError::PatchedData { name: name() });
    }
    let method = match c.method {
        0 => Method::Stored,
        8 => Method::Deflate,
        m => {
            return Err(ArchiveError::UnsupportedMethod {
                name: name(),
                method: m,
            });
        }
    };
    if c.csize == u32::MAX || c.usize == u32::MAX || c.offset == u32::MAX {
        return Err(ArchiveError::Zip64Unsupported {
            what: format!(
                "entry {:?} has a size or offset set to the ZIP64 marker",
                c.name
            ),
        });
    }
    let (csize, usize_) = (u64::from(c.csize), u64::from(c.usize));
    let is_dir = c.name.ends_with('/');
    if is_dir && usize_ != 0 {
        return Err(ArchiveError::DirectoryWithData {
            name: name(),
            size: usize_,
        });
    }
    if is_dir && csize > MAX_DIR_COMPRESSED {
        return Err(ArchiveError::CompressionRatio {
            name: name(),
            compressed: csize,
            uncompressed: 0,
            max_ratio: limits.max_compression_ratio,
        });
    }
    if method == Method::Stored && csize != usize_ {
        return Err(ArchiveError::StoredSizeMismatch {
            name: name(),
            compressed: csize,
            uncompressed: usize_,
        });
    }
    if usize_ > limits.max_entry_uncompressed {
        return Err(ArchiveError::EntryTooLarge {
            name: name(),
            size: usize_,
            max: limits.max_entry_uncompressed,
        });
    }
    if method == Method::Deflate
        && usize_ > limits.ratio_exempt_size
        && usize_ > csize.saturating_mul(limits.max_compression_ratio)
    {
        return Err(ArchiveError::CompressionRatio {
            name: name(),
            compressed: csize,
            uncompressed: usize_,
            max_ratio: limits.max_compression_ratio,
        });
    }
    Ok((
        Entry {
            name: c.name.clone(),
            is_dir,
            method,
            flags: c.flags,
            crc32: c.crc32,
            compressed_size: csize,
            uncompressed_size: usize_,
            local_header_offset: u64::from(c.offset),
            data_offset: 0,
        },
        usize_,
    ))
}

/// Check the local header (and data descriptor) of `entry`; set its data offset. Returns the end
/// of the entry's byte range.
fn check_local<R: ReadAt + ?Sized>(
    src: &R,
    entry: &mut Entry,
    c: &Central,
    cd_offset: u64,
) -> Result<u64, ArchiveError> {
    let name = || c.name.clone();
    let off = entry.local_header_offset;
    let oob = || ArchiveError::LocalHeaderOutOfBounds {
        name: name(),
        offset: off,
    };
    let fixed_end = off.checked_add(LOCAL_LEN as u64).ok_or_else(oob)?;
    if fixed_end > cd_offset {
        return Err(oob());
    }
    let mut fixed = [0u8; LOCAL_LEN];
    read_at(src, off, &mut fixed)?;
    let mut h = Fields::new(&fixed);
    let t = || ArchiveError::BadLocalHeader {
        name: name(),
        offset: off,
    };
    if h.u32().ok_or_else(t)? != SIG_LOCAL {
        return Err(t());
    }
    let _needed = h.u16().ok_or_else(t)?;
    let flags = h.u16().ok_or_else(t)?;
    let method = h.u16().ok_or_else(t)?;
    let _time = h.u16().ok_or_else(t)?;
    let _date = h.u16().ok_or_else(t)?;
    let crc32 = h.u32().ok_or_else(t)?;
    let csize = h.u32().ok_or_else(t)?;
    let usize_ = h.u32().ok_or_else(t)?;
    let name_len = u64::from(h.u16().ok_or_else(t)?);
    let extra_len = u64::from(h.u16().ok_or_else(t)?);
    let var_len = name_len + extra_len;
    let data_offset = fixed_end.checked_add(var_len).ok_or_else(oob)?;
    if data_offset > cd_offset {
        return Err(oob());
    }
    let mut var = alloc(var_len)?;
    read_at(src, fixed_end, &mut var)?;
    let mismatch = |field| ArchiveError::LocalHeaderMismatch {
        name: name(),
        field,
    };
    let (local_name, local_extra) = var.split_at(usize::try_from(name_len).map_err(|_| oob())?);
    if local_name != c.name.as_bytes() {
        return Err(mismatch("name"));
    }
    check_extra(&c.name, local_extra, "local header")?;
    if method != c.method {
        return Err(mismatch("compression method"));
    }
    if flags != c.flags {
        return Err(mismatch("flags"));
    }
    let descriptor = c.flags & FLAG_DESCRIPTOR != 0;
    // With bit 3 the local values may be zero (streamed writers such as Go's); if set they must
    // still agree.
    let agrees = |local: u32, central: u32| local == central || (descriptor && local == 0);
    if !agrees(crc32, c.crc32) {
        return Err(mismatch("CRC-32"));
    }
    if !agrees(csize, c.csize) {
        return Err(mismatch("compressed size"));
    }
    if !agrees(usize_, c.usize) {
        return Err(mismatch("uncompressed size"));
    }
    let data_end = data_offset.checked_add(entry.compressed_size);
    let Some(data_end) = data_end.filter(|&e| e <= cd_offset) else {
        return Err(ArchiveError::DataOutOfBounds {
            name: name(),
            start: data_offset,
            end: data_end.unwrap_or(u64::MAX),
            limit: cd_offset,
        });
    };
    entry.data_offset = data_offset;
    if !descriptor {
        return Ok(data_end);
    }
    // Data descriptor: optional signature, CRC-32, 32-bit sizes (no ZIP64 here).
    let room = cd_offset - data_end;
    let mut d = [0u8; DESCRIPTOR_LEN];
    let n = usize::try_from(room.min(DESCRIPTOR_LEN as u64)).unwrap_or(DESCRIPTOR_LEN);
    let dbuf = d.get_mut(..n).ok_or_else(t)?;
    read_at(src, data_end, dbuf)?;
    let missing = || ArchiveError::MissingDataDescriptor { name: name() };
    let (body, len) = if le32(dbuf, 0) == Some(SIG_DESCRIPTOR) {
        (dbuf.get(4..16).ok_or_else(missing)?, 16u64)
    } else {
        (dbuf.get(0..12).ok_or_else(missing)?, 12u64)
    };
    let dm = |field| ArchiveError::DataDescriptorMismatch {
        name: name(),
        field,
    };
    if le32(body, 0) != Some(c.crc32) {
        return Err(dm("CRC-32"));
    }
    if le32(body, 4) != Some(c.csize) {
        return Err(dm("compressed size"));
    }
    if le32(body, 8) != Some(c.usize) {
        return Err(dm("uncompressed size"));
    }
    Ok(data_end + len)
}

/// A sink that tracks size and CRC-32 of what passes through, refusing more than `limit` bytes.
struct Checked<'a, W: io::Write> {
    out: &'a mut W,
    name: &'a str,
    crc: crc32fast::Hasher,
    written: u64,
    limit: u64,
}

impl<W: io::Write> Checked<'_, W> {
    /// Counts `len` more bytes; an error past the declared uncompressed size.
    fn account(&mut self, len: u64) -> Result<(), ArchiveError> {
        let written = self.written.saturating_add(len);
        if written > self.limit {
            return Err(ArchiveError::SizeMismatch {
                name: self.name.to_owned(),
                expected: self.limit,
                actual: written,
            });
        }
        self.written = written;
        Ok(())
    }

    fn put(&mut self, data: &[u8]) -> Result<(), ArchiveError> {
        self.account(data.len() as u64)?;
        self.crc.update(data);
        self.out.write_all(data)?;
        Ok(())
    }

    /// [`Self::put`] for many pieces, written with few `write_vectored` calls (one `writev`
    /// for up to 1024 pieces into a file or memfd, instead of one `write` per piece).
    fn put_all(&mut self, parts: &[&[u8]]) -> Result<(), ArchiveError> {
        const BATCH: usize = 1024;
        for group in parts.chunks(BATCH) {
            self.account(group.iter().map(|p| <[u8]>::len(p) as u64).sum())?;
            for p in group {
                self.crc.update(p);
            }
            // (Empty pieces, such as a final empty stored block, would make a writer return 0.)
            let mut slices: Vec<io::IoSlice<'_>> = group
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| io::IoSlice::new(p))
                .collect();
            let mut bufs = &mut slices[..];
            while !bufs.is_empty() {
                match self.out.write_vectored(bufs) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                    Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// Stream the decompressed bytes of `entry` into `out`, checking CRC-32 and exact uncompressed
/// size; bounded by the entry's declared sizes. Returns the number of bytes written.
///
/// `out` may have received some bytes when an error is returned; discard them.
pub fn read_entry<R: ReadAt + ?Sized, W: io::Write>(
    src: &R,
    entry: &Entry,
    out: &mut W,
) -> Result<u64, ArchiveError> {
    let name = entry.name.as_str();
    let csize = entry.compressed_size;
    let start = entry.data_offset;
    match start.checked_add(csize) {
        Some(end) if end <= src.len() => {}
        end => {
            return Err(ArchiveError::DataOutOfBounds {
                name: name.to_owned(),
                start,
                end: end.unwrap_or(u64::MAX),
                limit: src.len(),
            });
        }
    }
    let mut sink = Checked {
        out,
        name,
        crc: crc32fast::Hasher::new(),
        written: 0,
        limit: entry.uncompressed_size,
    };
    // In-memory sources (stboot's downloaded archive): stored data, and deflate data made only
    // of stored blocks (what `ArchiveWriter` emits for incompressible input such as kernels and
    // compressed initramfs images), go straight from the archive to `out`.
    let data = src.as_slice().and_then(|all| {
        all.get(usize::try_from(start).ok()?..usize::try_from(start + csize).ok()?)
    });
    match (entry.method, data) {
        (Method::Stored, Some(data)) => {
            sink.put(data)?;
            return finish_entry(entry, sink);
        }
        (Method::Deflate, Some(data)) => {
            if let Some(blocks) = stored_blocks(data) {
                let parts: Vec<&[u8]> = blocks
                    .into_iter()
                    .map(|b| data.get(b).unwrap_or_default())
                    .collect();
                sink.put_all(&parts)?;
                return finish_entry(entry, sink);
            }
        }
        _ => {}
    }
    let in_cap = usize::try_from(csize.min(IO_BUF as u64)).unwrap_or(IO_BUF);
    let mut inbuf = vec![0u8; in_cap];
    match entry.method {
        Method::Stored => {
            let mut pos = 0u64;
            while pos < csize {
                let n = usize::try_from((csize - pos).min(in_cap as u64)).unwrap_or(in_cap);
                let chunk = inbuf.get_mut(..n).unwrap_or_default();
                read_at(src, start + pos, chunk)?;
                sink.put(chunk)?;
                pos += n as u64;
            }
        }
        Method::Deflate => inflate(src, entry, &mut inbuf, &mut sink)?,
    }
    finish_entry(entry, sink)
}

/// The payload ranges of deflate data that consists only of byte-aligned stored blocks, ending
/// with a final block exactly at the end of `data`. `None` for anything else: the general
/// inflater then runs and reports any error.
fn stored_blocks(data: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut blocks = Vec::new();
    let mut pos = 0usize;
    loop {
        let header = data.get(pos..pos.checked_add(5)?)?;
        // BFINAL in bit 0, BTYPE 00 (stored) in bits 1-2, padding bits zero.
        if header[0] & !1 != 0 {
            return None;
        }
        let len = u16::from_le_bytes([header[1], header[2]]);
        let nlen = u16::from_le_bytes([header[3], header[4]]);
        if len != !nlen {
            return None;
        }
        let begin = pos + 5;
        let end = begin.checked_add(usize::from(len))?;
        if end > data.len() {
            return None;
        }
        blocks.push(begin..end);
        pos = end;
        if header[0] & 1 == 1 {
            return (pos == data.len()).then_some(blocks);
        }
    }
}

/// The end of every entry read: exact size and CRC-32.
fn finish_entry<W: io::Write>(entry: &Entry, sink: Checked<'_, W>) -> Result<u64, ArchiveError> {
    let name = entry.name.as_str();
    if sink.written != entry.uncompressed_size {
        return Err(ArchiveError::SizeMismatch {
            name: name.to_owned(),
            expected: entry.uncompressed_size,
            actual: sink.written,
        });
    }
    let crc = sink.crc.finalize();
    if crc != entry.crc32 {
        return Err(ArchiveError::CrcMismatch {
            name: name.to_owned(),
            expected: entry.crc32,
            actual: crc,
        });
    }
    Ok(sink.written)
}

fn inflate<R: ReadAt + ?Sized, W: io::Write>(
    src: &R,
    entry: &Entry,
    inbuf: &mut [u8],
    sink: &mut Checked<'_, W>,
) -> Result<(), ArchiveError> {
    let name = || entry.name.clone();
    let csize = entry.compressed_size;
    let mut d = Decompress::new(false);
    let mut outbuf = vec![0u8; IO_BUF];
    let mut next = entry.data_offset;
    let mut remaining = csize;
    let (mut in_pos, mut in_len) = (0usize, 0usize);
    loop {
        if in_pos == in_len && remaining > 0 {
            let n = usize::try_from(remaining.min(inbuf.len() as u64)).unwrap_or(inbuf.len());
            let chunk = inbuf.get_mut(..n).unwrap_or_default();
            read_at(src, next, chunk)?;
            next += n as u64;
            remaining -= n as u64;
            in_pos = 0;
            in_len = n;
        }
        let input = inbuf.get(in_pos..in_len).unwrap_or_default();
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let status = d
            .decompress(input, &mut outbuf, FlushDecompress::None)
            .map_err(|e| ArchiveError::Deflate {
                name: name(),
                msg: e.to_string(),
            })?;
        let consumed = usize::try_from(d.total_in() - before_in).unwrap_or(usize::MAX);
        let produced = usize::try_from(d.total_out() - before_out).unwrap_or(usize::MAX);
        in_pos = in_pos.saturating_add(consumed).min(in_len);
        sink.put(outbuf.get(..produced).unwrap_or_default())?;
        if status == Status::StreamEnd {
            let unused = (in_len - in_pos) as u64 + remaining;
            if unused != 0 {
                return Err(ArchiveError::DeflateTrailingData {
                    name: name(),
                    unused,
                });
            }
            return Ok(());
        }
        if consumed == 0 && produced == 0 {
            if in_pos == in_len && remaining == 0 {
                return Err(ArchiveError::DeflateOverrun {
                    name: name(),
                    compressed: csize,
                });
            }
            if in_pos < in_len {
                // Input and output room available but no progress: the decoder is stuck.
                return Err(ArchiveError::Deflate {
                    name: name(),
                    msg: "decoder made no progress".into(),
                });
            }
        }
    }
}

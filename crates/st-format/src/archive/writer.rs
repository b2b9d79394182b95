//! Go-compatible streaming ZIP writer.
//!
//! Byte layout of Go's `archive/zip` `Writer.Create` as stmgr uses it: each file is a local
//! header (version 2.0, flags 0x0008, method 8, zero time/date, zero CRC and sizes), the deflate
//! stream, then a signed data descriptor with 32-bit fields. Directories are stored with flags 0
//! and no descriptor. Central records: version made by and needed 0x0014, zero times, no extra
//! fields, no comments, external attributes 0. The EOCD has no comment.
//!
//! The deflate stream is built chunk by chunk ([`CHUNK`]): a chunk whose sample does not
//! compress is emitted as stored blocks; otherwise it is compressed on its own (fresh dictionary)
//! and ended with a sync flush, so chunks concatenate; the stream ends with an empty final stored
//! block. The output depends only on the input bytes (reproducible).

use super::reader::{
    CENTRAL_LEN, EOCD_LEN, FLAG_DESCRIPTOR, LOCAL_LEN, SIG_CENTRAL, SIG_DESCRIPTOR, SIG_EOCD,
    SIG_LOCAL, check_name,
};
use super::{ArchiveError, ArchiveLimits, Method};
use crate::manifest::{MANIFEST_NAME, Manifest};
use flate2::{Compress, Compression, FlushCompress};
use std::io;

/// Input chunk: the unit of the store-or-compress decision. 1 MiB keeps memory small and makes
/// each decision cover enough data to matter.
const CHUNK: usize = 1 << 20;
/// Bytes at the start of each chunk test-compressed to decide whether the chunk compresses.
/// 16 KiB: enough for deflate to find redundancy in real data, cheap enough (~1.5% of the chunk)
/// that incompressible input is written at close to copy speed.
const SAMPLE: usize = 16 << 10;
/// A chunk is stored when its sample compresses to more than `SAMPLE_KEEP_NUM / SAMPLE_KEEP_DEN`
/// of its size (less than ~6% saved is not worth the CPU time).
const SAMPLE_KEEP_NUM: usize = 15;
const SAMPLE_KEEP_DEN: usize = 16;
/// Largest deflate stored block (RFC 1951 §3.2.4: LEN is 16 bits).
const MAX_STORED_BLOCK: usize = 0xFFFF;
/// Stored block header once byte-aligned: BFINAL/BTYPE byte, LEN, NLEN.
const STORED_HEADER: usize = 5;
/// Deflate level for chunks that compress. Level 1 ("fast"): about 3x the speed of Go's default
/// level 6, at a slightly larger output.
const LEVEL: u32 = 1;
/// Version needed / made by that Go writes: 2.0 (0x14), FAT host (high byte 0).
const GO_VERSION: u16 = 0x0014;
/// Flag bit 11: name is UTF-8 (set by Go only when the name needs it).
const FLAG_UTF8: u16 = 1 << 11;
/// Largest value a 32-bit ZIP field may take; `u32::MAX` itself is the ZIP64 marker.
const MAX_FIELD: u64 = u32::MAX as u64 - 1;
/// Most entries without ZIP64 (`0xFFFF` is the ZIP64 marker).
const MAX_WRITE_ENTRIES: usize = 0xFFFE;

struct Written {
    name: String,
    flags: u16,
    method: Method,
    crc32: u32,
    csize: u32,
    usize: u32,
    offset: u32,
}

/// Streaming ZIP writer producing Go `archive/zip` layout. Needs no `Seek`.
///
/// After any error the archive is incomplete: further calls return
/// [`ArchiveError::WriterFailed`].
pub struct ArchiveWriter<W: io::Write> {
    out: W,
    offset: u64,
    max_entry: u64,
    max_total: u64,
    total: u64,
    entries: Vec<Written>,
    failed: bool,
    chunk: Vec<u8>,
    buf: Vec<u8>,
    sample_buf: Vec<u8>,
    compressor: Option<Compress>,
    sampler: Option<Compress>,
}

/// Go's `detectUTF8`: the name needs the UTF-8 flag if it has a byte outside 0x20..=0x7d or a
/// backslash.
fn go_utf8_flag(name: &str) -> u16 {
    if name
        .bytes()
        .any(|b| !(0x20..=0x7d).contains(&b) || b == b'\\')
    {
        FLAG_UTF8
    } else {
        0
    }
}

fn too_large(what: String) -> ArchiveError {
    ArchiveError::TooLargeToWrite { what }
}

fn to_u32(v: u64, what: impl FnOnce() -> String) -> Result<u32, ArchiveError> {
    if v > MAX_FIELD {
        return Err(too_large(what()));
    }
    u32::try_from(v).map_err(|_| too_large(what()))
}

fn stored_len(n: usize) -> usize {
    n + n.div_ceil(MAX_STORED_BLOCK) * STORED_HEADER
}

fn compress_err(e: flate2::CompressError) -> ArchiveError {
    ArchiveError::Io(io::Error::other(e))
}

/// Compress `input` as a self-contained run of deflate blocks ending in a sync flush, into
/// `out` (cleared), using at most `cap` output bytes. `Ok(false)` if it did not fit.
fn compress_bounded(
    c: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
) -> Result<bool, ArchiveError> {
    c.reset();
    out.clear();
    out.resize(cap, 0);
    let (mut in_done, mut out_len) = (0usize, 0usize);
    loop {
        let (bi, bo) = (c.total_in(), c.total_out());
        let rest_in = input.get(in_done..).unwrap_or_default();
        let rest_out = out.get_mut(out_len..).unwrap_or_default();
        c.compress(rest_in, rest_out, FlushCompress::Sync)
            .map_err(compress_err)?;
        let consumed = usize::try_from(c.total_in() - bi).unwrap_or(usize::MAX);
        let produced = usize::try_from(c.total_out() - bo).unwrap_or(usize::MAX);
        in_done = in_done.saturating_add(consumed).min(input.len());
        out_len = out_len.saturating_add(produced).min(cap);
        if out_len >= cap {
            return Ok(false);
        }
        if in_done == input.len() {
            // Output room left after a sync flush: the flush is complete.
            out.truncate(out_len);
            return Ok(true);
        }
        if consumed == 0 && produced == 0 {
            return Ok(false);
        }
    }
}

impl<W: io::Write> ArchiveWriter<W> {
    /// A writer that appends the archive to `out`, starting at offset 0. Entries are held to
    /// the reader's default caps ([`ArchiveLimits::default`]: 2 GiB each, 4 GiB together), so
    /// nothing is written that a reader would reject for its size.
    pub fn new(out: W) -> Self {
        Self::with_limits(out, &ArchiveLimits::default())
    }

    /// [`Self::new`] with the entry size caps of `limits` (`max_entry_uncompressed`,
    /// `max_total_uncompressed`).
    pub fn with_limits(out: W, limits: &ArchiveLimits) -> Self {
        Self {
            out,
            offset: 0,
            max_entry: limits.max_entry_uncompressed,
            max_total: limits.max_total_uncompressed,
            total: 0,
            entries: Vec::new(),
            failed: false,
            chunk: Vec::new(),
            buf: Vec::new(),
            sample_buf: Vec::new(),
            compressor: None,
            sampler: None,
        }
    }

    fn emit(&mut self, data: &[u8]) -> Result<(), ArchiveError> {
        self.out.write_all(data)?;
        self.offset = self
            .offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| too_large("archive".into()))?;
        Ok(())
    }

    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ArchiveError>,
    ) -> Result<T, ArchiveError> {
        if self.failed {
            return Err(ArchiveError::WriterFailed);
        }
        let r = f(self);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn start_entry(&mut self, name: &str, want_dir: bool) -> Result<u32, ArchiveError> {
        let invalid = |why| ArchiveError::InvalidWriteName {
            name: name.to_owned(),
            why,
        };
        match check_name(self.entries.len() as u64, name) {
            Ok(is_dir) if is_dir == want_dir => {}
            Ok(_) if want_dir => return Err(invalid("a directory name must end with '/'")),
            Ok(_) => return Err(invalid("a file name must not end with '/'")),
            Err(_) => return Err(invalid("not a plain relative archive path")),
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(ArchiveError::DuplicateName { name: name.into() });
        }
        if self.entries.len() >= MAX_WRITE_ENTRIES {
            return Err(too_large(format!("entry {name:?} (too many entries)")));
        }
        if name.len() > usize::from(u16::MAX) {
            return Err(invalid("name longer than 65535 bytes"));
        }
        to_u32(self.offset, || format!("entry {name:?} (archive offset)"))
    }

    fn local_header(&mut self, name: &str, flags: u16, method: Method) -> Result<(), ArchiveError> {
        let mut h = Vec::with_capacity(LOCAL_LEN + name.len());
        h.extend_from_slice(&SIG_LOCAL.to_le_bytes());
        h.extend_from_slice(&GO_VERSION.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&method.code().to_le_bytes());
        h.extend_from_slice(&[0u8; 4]); // time, date
        h.extend_from_slice(&[0u8; 12]); // CRC-32, sizes: in the descriptor or zero
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // extra length
        h.extend_from_slice(name.as_bytes());
        self.emit(&h)
    }

    /// Add a directory entry; `name` must end with exactly one `/`.
    pub fn add_directory(&mut self, name: &str) -> Result<(), ArchiveError> {
        self.guard(|w| {
            let offset = w.start_entry(name, true)?;
            let flags = go_utf8_flag(name);
            w.local_header(name, flags, Method::Stored)?;
            w.entries.push(Written {
                name: name.to_owned(),
                flags,
                method: Method::Stored,
                crc32: 0,
                csize: 0,
                usize: 0,
                offset,
            });
            Ok(())
        })
    }

    /// Add a file, streaming `data` to its end. `progress` is called with the number of input
    /// bytes consumed since its previous call (a delta), once per chunk of up to 1 MiB.
    pub fn add_file<R: io::Read>(
        &mut self,
        name: &str,
        data: R,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        self.guard(|w| w.add_file_inner(name, data, progress))
    }

    fn add_file_inner<R: io::Read>(
        &mut self,
        name: &str,
        mut data: R,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let offset = self.start_entry(name, false)?;
        let flags = FLAG_DESCRIPTOR | go_utf8_flag(name);
        self.local_header(name, flags, Method::Deflate)?;
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(CHUNK, 0);
        let mut crc = crc32fast::Hasher::new();
        let (mut usize_, mut csize) = (0u64, 0u64);
        loop {
            let n = fill(&mut data, &mut chunk)?;
            if n == 0 {
                break;
            }
            let input = chunk.get(..n).unwrap_or_default();
            crc.update(input);
            usize_ += n as u64;
            if usize_ > self.max_entry {
                return Err(ArchiveError::EntryTooLarge {
                    name: name.to_owned(),
                    size: usize_,
                    max: self.max_entry,
                });
            }
            if self.total.saturating_add(usize_) > self.max_total {
                return Err(ArchiveError::TotalTooLarge {
                    name: name.to_owned(),
                    max: self.max_total,
                });
            }
            to_u32(usize_, || format!("entry {name:?} (uncompressed size)"))?;
            csize += self.emit_chunk(input)? as u64;
            to_u32(csize, || format!("entry {name:?} (compressed size)"))?;
            progress(n as u64);
        }
        self.chunk = chunk;
        // Final empty stored block (BFINAL=1) ends the stream on a byte boundary.
        self.emit(&[0x01, 0x00, 0x00, 0xFF, 0xFF])?;
        csize += STORED_HEADER as u64;
        let crc32 = crc.finalize();
        let csize = to_u32(csize, || format!("entry {name:?} (compressed size)"))?;
        let usize_ = to_u32(usize_, || format!("entry {name:?} (uncompressed size)"))?;
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&SIG_DESCRIPTOR.to_le_bytes());
        d.extend_from_slice(&crc32.to_le_bytes());
        d.extend_from_slice(&csize.to_le_bytes());
        d.extend_from_slice(&usize_.to_le_bytes());
        self.emit(&d)?;
        self.total += u64::from(usize_);
        self.entries.push(Written {
            name: name.to_owned(),
            flags,
            method: Method::Deflate,
            crc32,
            csize,
            usize: usize_,
            offset,
        });
        Ok(())
    }

    /// Emit one chunk as deflate blocks (stored or compressed); returns the bytes written.
    fn emit_chunk(&mut self, input: &[u8]) -> Result<usize, ArchiveError> {
        let mut buf = std::mem::take(&mut self.buf);
        let sample = input.get(..input.len().min(SAMPLE)).unwrap_or_default();
        let sampler = self
            .sampler
            .get_or_insert_with(|| Compress::new(Compression::fast(), false));
        let keep = sample.len() * SAMPLE_KEEP_NUM / SAMPLE_KEEP_DEN;
        let compressible = compress_bounded(sampler, sample, &mut self.sample_buf, keep.max(1))?;
        let mut compressed = false;
        if compressible {
            let c = self
                .compressor
                .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
            compressed = compress_bounded(c, input, &mut buf, stored_len(input.len()))?;
        }
        if !compressed {
            self.buf = buf;
            return self.emit_stored(input);
        }
        let r = self.emit(&buf).map(|()| buf.len());
        self.buf = buf;
        r
    }

    /// Emit `data` as non-final stored blocks with one vectored write: the block headers and
    /// the caller's bytes go to the sink without being copied into a buffer first.
    fn emit_stored(&mut self, data: &[u8]) -> Result<usize, ArchiveError> {
        let headers: Vec<[u8; STORED_HEADER]> = data
            .chunks(MAX_STORED_BLOCK)
            .map(|block| {
                // chunks() yields at most MAX_STORED_BLOCK bytes, so the length fits in 16 bits.
                let [l0, l1] = u16::try_from(block.len()).unwrap_or(u16::MAX).to_le_bytes();
                [0x00, l0, l1, !l0, !l1]
            })
            .collect();
        let mut slices: Vec<io::IoSlice<'_>> = headers
            .iter()
            .zip(data.chunks(MAX_STORED_BLOCK))
            .flat_map(|(h, block)| [io::IoSlice::new(h), io::IoSlice::new(block)])
            .collect();
        let mut rest = slices.as_mut_slice();
        while !rest.is_empty() {
            match self.out.write_vectored(rest) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let len = stored_len(data.len());
        self.offset = self
            .offset
            .checked_add(len as u64)
            .ok_or_else(|| too_large("archive".into()))?;
        Ok(len)
    }

    /// Write the central directory and end record; returns the sink.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        self.guard(|w| w.finish_inner())?;
        Ok(self.out)
    }

    fn finish_inner(&mut self) -> Result<(), ArchiveError> {
        let cd_offset = to_u32(self.offset, || "central directory offset".into())?;
        let mut cd = Vec::new();
        for e in &self.entries {
            cd.reserve(CENTRAL_LEN + e.name.len());
            cd.extend_from_slice(&SIG_CENTRAL.to_le_bytes());
            cd.extend_from_slice(&GO_VERSION.to_le_bytes()); // made by
            cd.extend_from_slice(&GO_VERSION.to_le_bytes()); // needed
            cd.extend_from_slice(&e.flags.to_le_bytes());
            cd.extend_from_slice(&e.method.code().to_le_bytes());
            cd.extend_from_slice(&[0u8; 4]); // time, date
            cd.extend_from_slice(&e.crc32.to_le_bytes());
            cd.extend_from_slice(&e.csize.to_le_bytes());
            cd.extend_from_slice(&e.usize.to_le_bytes());
            let name_len = u16::try_from(e.name.len()).unwrap_or(u16::MAX);
            cd.extend_from_slice(&name_len.to_le_bytes());
            cd.extend_from_slice(&[0u8; 12]); // extra, comment, disk, internal, external attrs
            cd.extend_from_slice(&e.offset.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
        }
        let cd_size = to_u32(cd.len() as u64, || "central directory size".into())?;
        let end = u64::from(cd_offset) + u64::from(cd_size);
        to_u32(end, || "archive (end record offset)".into())?;
        let count = u16::try_from(self.entries.len()).map_err(|_| too_large("entries".into()))?;
        let mut eocd = Vec::with_capacity(EOCD_LEN);
        eocd.extend_from_slice(&SIG_EOCD.to_le_bytes());
        eocd.extend_from_slice(&[0u8; 4]); // disk numbers
        eocd.extend_from_slice(&count.to_le_bytes());
        eocd.extend_from_slice(&count.to_le_bytes());
        eocd.extend_from_slice(&cd_size.to_le_bytes());
        eocd.extend_from_slice(&cd_offset.to_le_bytes());
        eocd.extend_from_slice(&0u16.to_le_bytes()); // comment length
        cd.extend_from_slice(&eocd);
        self.emit(&cd)?;
        self.out.flush()?;
        Ok(())
    }
}

/// Read from `r` until `buf` is full or the input ends; returns the bytes read.
fn fill<R: io::Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, ArchiveError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|b| !b.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// Write an OS package archive in the reference layout of `stmgr ospkg create`: `boot/`, the
/// kernel, the initramfs, `manifest.json`. The manifest's kernel and initramfs paths must be
/// `boot/<file name>`; the entries are written under exactly those names. `progress` gets the
/// kernel and initramfs input bytes consumed (deltas).
pub fn write_os_package<W: io::Write, K: io::Read, I: io::Read>(
    out: W,
    manifest: &Manifest,
    kernel: K,
    initramfs: I,
    progress: &mut dyn FnMut(u64),
) -> Result<W, ArchiveError> {
    for (field, path) in [
        ("kernel", manifest.kernel()),
        ("initramfs", manifest.initramfs()),
    ] {
        match path.strip_prefix("boot/") {
            Some(base) if !base.is_empty() && !base.contains('/') => {}
            _ => {
                return Err(ArchiveError::NotReferenceLayout {
                    field,
                    path: path.to_owned(),
                });
            }
        }
    }
    let mut w = ArchiveWriter::new(out);
    w.add_directory("boot/")?;
    w.add_file(manifest.kernel(), kernel, progress)?;
    w.add_file(manifest.initramfs(), initramfs, progress)?;
    w.add_file(MANIFEST_NAME, manifest.to_json().as_slice(), &mut |_| {})?;
    w.finish()
}

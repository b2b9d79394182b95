//! A tiny raw ZIP writer in the Go `archive/zip` layout, with every field reachable so that
//! malformed variants are easy to make.
//!
//! Go layout: version 20 everywhere, zero times, no extra fields; directories stored with flags
//! 0 and zero sizes; files deflated with flag 0x0008 and a `PK\x07\x08` data descriptor
//! (the local header then carries zero CRC and sizes).

use flate2::{Compress, Compression, FlushCompress};
use std::io::Write as _;

/// Compression method: stored.
pub const STORED: u16 = 0;
/// Compression method: deflate.
pub const DEFLATE: u16 = 8;
/// General purpose flag: sizes and CRC follow the data in a data descriptor.
pub const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;
/// General purpose flag: the entry is encrypted.
pub const FLAG_ENCRYPTED: u16 = 0x0001;

/// One archive entry, as it will be written. The local and central copies of the name,
/// method and flags are separate so they can disagree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in the local header.
    pub local_name: Vec<u8>,
    /// Name in the central directory.
    pub central_name: Vec<u8>,
    /// Method in the local header.
    pub local_method: u16,
    /// Method in the central directory.
    pub central_method: u16,
    /// Flags in the local header.
    pub local_flags: u16,
    /// Flags in the central directory.
    pub central_flags: u16,
    /// The bytes written after the local header (compressed form).
    pub data: Vec<u8>,
    /// CRC-32 of the uncompressed content.
    pub crc: u32,
    /// Uncompressed size (as recorded).
    pub uncompressed_size: u32,
}

impl Entry {
    /// A directory entry (`name` should end in `/`): stored, flags 0, empty.
    pub fn dir(name: &str) -> Self {
        Self::raw(name, STORED, 0, Vec::new(), 0, 0)
    }

    /// A deflated file entry with a data descriptor, as Go writes it.
    pub fn deflated(name: &str, content: &[u8]) -> Self {
        Self::raw(
            name,
            DEFLATE,
            FLAG_DATA_DESCRIPTOR,
            deflate(content),
            crc32(content),
            size32(content.len()),
        )
    }

    /// A stored file entry with sizes in the local header (no data descriptor).
    pub fn stored(name: &str, content: &[u8]) -> Self {
        Self::raw(
            name,
            STORED,
            0,
            content.to_vec(),
            crc32(content),
            size32(content.len()),
        )
    }

    /// An entry with everything given explicitly (same local and central copies).
    pub fn raw(
        name: &str,
        method: u16,
        flags: u16,
        data: Vec<u8>,
        crc: u32,
        uncompressed_size: u32,
    ) -> Self {
        Self {
            local_name: name.as_bytes().to_vec(),
            central_name: name.as_bytes().to_vec(),
            local_method: method,
            central_method: method,
            local_flags: flags,
            central_flags: flags,
            data,
            crc,
            uncompressed_size,
        }
    }

    /// Set the flags in both headers.
    pub fn with_flags(mut self, flags: u16) -> Self {
        self.local_flags = flags;
        self.central_flags = flags;
        self
    }
}

fn size32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// CRC-32 (IEEE) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Raw deflate (no zlib header) of `bytes` at the default level.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Raw deflate of `chunks * chunk_len` zero bytes, without materialising them: one chunk is
/// compressed with a full flush (which resets the window, so every chunk compresses to the same
/// bytes), repeated, then closed with an empty final block. Returns (deflate data, CRC-32).
pub fn deflate_zeros(chunk_len: usize, chunks: u32) -> (Vec<u8>, u32) {
    let zeros = vec![0u8; chunk_len];
    let mut c = Compress::new(Compression::default(), false);
    let mut block = Vec::with_capacity(chunk_len + chunk_len / 1000 + 1024);
    let _ = c.compress_vec(&zeros, &mut block, FlushCompress::Full);
    // More output space only if the first call ran out of it (it should not).
    for _ in 0..1000 {
        let consumed = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
        if consumed >= chunk_len && block.len() < block.capacity() {
            break;
        }
        block.reserve(block.capacity());
        let rest = zeros.get(consumed..).unwrap_or_default();
        let _ = c.compress_vec(rest, &mut block, FlushCompress::Full);
    }
    let mut out = Vec::with_capacity(block.len() * chunks as usize + 8);
    for _ in 0..chunks {
        out.extend_from_slice(&block);
    }
    // Final empty block, fixed Huffman: BFINAL=1, BTYPE=01, end-of-block code: bits 1,10,0000000.
    out.extend_from_slice(&[0x03, 0x00]);
    // CRC of the zeros by doubling with crc32fast's combine.
    let mut one = crc32fast::Hasher::new();
    one.update(&zeros);
    let mut total = crc32fast::Hasher::new();
    let mut power = one;
    let mut n = chunks;
    while n > 0 {
        if n & 1 == 1 {
            total.combine(&power);
        }
        let copy = power.clone();
        power.combine(&copy);
        n >>= 1;
    }
    (out, total.finalize())
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Fields of the end-of-central-directory record; `None` means "the true value".
#[derive(Debug, Clone, Default)]
pub struct EocdOverride {
    /// Entries on this disk.
    pub entries_this_disk: Option<u16>,
    /// Total entries.
    pub entries_total: Option<u16>,
    /// Archive comment.
    pub comment: Vec<u8>,
}

/// Write `entries` as a ZIP file in the Go layout.
pub fn build(entries: &[Entry]) -> Vec<u8> {
    build_with(entries, &EocdOverride::default())
}

/// [`build`] with EOCD fields overridden.
pub fn build_with(entries: &[Entry], eocd: &EocdOverride) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::with_capacity(entries.len());
    let csize = |e: &Entry| size32(e.data.len());
    for e in entries {
        offsets.push(size32(out.len()));
        let dd = e.local_flags & FLAG_DATA_DESCRIPTOR != 0;
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, e.local_flags);
        u16le(&mut out, e.local_method);
        u16le(&mut out, 0); // time
        u16le(&mut out, 0); // date
        if dd {
            u32le(&mut out, 0);
            u32le(&mut out, 0);
            u32le(&mut out, 0);
        } else {
            u32le(&mut out, e.crc);
            u32le(&mut out, csize(e));
            u32le(&mut out, e.uncompressed_size);
        }
        u16le(&mut out, size16(e.local_name.len()));
        u16le(&mut out, 0); // extra
        out.extend_from_slice(&e.local_name);
        out.extend_from_slice(&e.data);
        if dd {
            u32le(&mut out, 0x0807_4b50);
            u32le(&mut out, e.crc);
            u32le(&mut out, csize(e));
            u32le(&mut out, e.uncompressed_size);
        }
    }
    let cd_start = size32(out.len());
    for (e, off) in entries.iter().zip(&offsets) {
        u32le(&mut out, 0x0201_4b50);
        u16le(&mut out, 20); // made by
        u16le(&mut out, 20); // needed
        u16le(&mut out, e.central_flags);
        u16le(&mut out, e.central_method);
        u16le(&mut out, 0);
        u16le(&mut out, 0);
        u32le(&mut out, e.crc);
        u32le(&mut out, csize(e));
        u32le(&mut out, e.uncompressed_size);
        u16le(&mut out, size16(e.central_name.len()));
        u16le(&mut out, 0); // extra
        u16le(&mut out, 0); // comment
        u16le(&mut out, 0); // disk
        u16le(&mut out, 0); // internal attrs
        u32le(&mut out, 0); // external attrs
        u32le(&mut out, *off);
        out.extend_from_slice(&e.central_name);
    }
    let cd_size = size32(out.len()) - cd_start;
    let n = size16(entries.len());
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, eocd.entries_this_disk.unwrap_or(n));
    u16le(&mut out, eocd.entries_total.unwrap_or(n));
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_start);
    u16le(&mut out, size16(eocd.comment.len()));
    out.extend_from_slice(&eocd.comment);
    out
}

fn size16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read as _;

    #[test]
    fn zeros_inflate_back() {
        let (data, crc) = deflate_zeros(4096, 5);
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&data[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 5 * 4096);
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(crc, crc32(&out));
    }

    #[test]
    fn go_layout_shape() {
        let z = build(&[Entry::dir("boot/"), Entry::deflated("a", b"hello")]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        assert_eq!(&z[z.len() - 22..z.len() - 18], b"PK\x05\x06");
    }
}

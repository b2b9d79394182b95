//! cpio "newc" (SVR4, magic `070701`, no checksum) writer and reader, as the Linux kernel
//! unpacks an initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Every record is a 110-byte ASCII header (the magic and 13 fields of 8 hex digits), the
//! NUL-terminated name, padding to a multiple of 4, the data, padding to a multiple of 4. The
//! archive ends with a record named `TRAILER!!!`.
//!
//! # Paths
//!
//! Paths are **relative**, as the kernel expects (`init`, `etc/trust_policy/...`); the kernel
//! unpacks them relative to the root of the rootfs. A leading `/` is **rejected**, not stripped,
//! so each entry has exactly one spelling and duplicates are caught. Also rejected: the empty
//! path, empty components (`a//b`, a trailing `/`), `.` and `..` components, NUL, and a path
//! written twice. The parent directory of every entry must have been written earlier (the kernel
//! does not create missing parents: a file under a missing directory is silently dropped).
//!
//! # Reproducibility
//!
//! The writer sets uid, gid and mtime to 0, numbers inodes 1, 2, 3, … in write order (the
//! trailer has inode 0), and sets `nlink` to 2 for directories and 1 otherwise. The same calls
//! give the same bytes.

use std::collections::HashSet;
use std::io::{self, Read, Write};

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
/// Name of the record that ends the archive.
pub const TRAILER: &str = "TRAILER!!!";
/// Size of the trailer record: the 110-byte header and `TRAILER!!!\0`, padded to 124.
pub const TRAILER_RECORD_LEN: u64 = 124;

/// File type bits of `st_mode`.
pub mod mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u32 = 0o170_000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040_000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100_000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120_000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020_000;
    /// Permission bits (including setuid, setgid, sticky).
    pub const PERMISSIONS: u32 = 0o7777;
}

/// Why a cpio archive could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpioError {
    /// The path breaks the path rules (see the module docs).
    #[error("cpio entry {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The same path was written twice.
    #[error("cpio entry {path:?}: written twice")]
    Duplicate {
        /// The path.
        path: String,
    },
    /// The parent directory was not written before the entry.
    #[error("cpio entry {path:?}: parent directory {parent:?} was not written before it")]
    MissingParent {
        /// The path.
        path: String,
        /// Its parent.
        parent: String,
    },
    /// Mode has bits outside 0o7777.
    #[error("cpio entry {path:?}: mode {mode:#o} has bits outside 0o7777")]
    InvalidMode {
        /// The path.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// newc stores sizes and numbers in 32 bits.
    #[error("cpio entry {path:?}: {size} bytes, over the newc limit of 4 GiB - 1")]
    TooLarge {
        /// The path.
        path: String,
        /// The size given.
        size: u64,
    },
    /// The reader of a `file_from_reader` entry gave fewer or more bytes than declared.
    #[error("cpio entry {path:?}: the input has {actual} bytes, {declared} were declared")]
    LengthMismatch {
        /// The path.
        path: String,
        /// Declared length.
        declared: u64,
        /// What the reader gave (for a longer input: declared + 1).
        actual: u64,
    },
    /// A write or read failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The archive being read is malformed.
    #[error("malformed cpio archive at offset {offset}: {reason}")]
    Malformed {
        /// Byte offset of the bad record.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Check a path against the rules in the module docs.
pub fn check_path(path: &str) -> Result<(), CpioError> {
    let bad = |reason| {
        Err(CpioError::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty path");
    }
    if path.starts_with('/') {
        return bad("absolute path; initramfs paths are relative (\"etc/x\", not \"/etc/x\")");
    }
    if path.contains('\0') {
        return bad("NUL in path");
    }
    if path == TRAILER {
        return bad("reserved name");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("empty path component"),
            "." | ".." => return bad("'.' and '..' components are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

fn pad4(n: u64) -> usize {
    // Always < 4.
    ((4 - (n % 4)) % 4) as usize
}

/// Counts the bytes that go through to the inner writer.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The fields of a record header that vary.
struct Header<'a> {
    name: &'a str,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

/// Writes a newc archive to `W`. Call [`CpioWriter::finish`] to write the trailer.
pub struct CpioWriter<W: Write> {
    out: Counting<W>,
    next_ino: u32,
    paths: HashSet<String>,
    dirs: HashSet<String>,
}

impl<W: Write> CpioWriter<W> {
    /// A writer with no entries yet.
    pub fn new(out: W) -> Self {
        Self {
            out: Counting {
                inner: out,
                written: 0,
            },
            next_ino: 1,
            paths: HashSet::new(),
            dirs: HashSet::new(),
        }
    }

    /// Entries written so far (not counting the trailer).
    pub fn entries(&self) -> usize {
        self.paths.len()
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.out.written
    }

    fn admit(&mut self, path: &str, perm: u32) -> Result<u32, CpioError> {
        check_path(path)?;
        if perm & !mode::PERMISSIONS != 0 {
            return Err(CpioError::InvalidMode {
                path: path.to_owned(),
                mode: perm,
            });
        }
        if self.paths.contains(path) {
            return Err(CpioError::Duplicate {
                path: path.to_owned(),
            });
        }
        if let Some(parent) = parent(path)
            && !self.dirs.contains(parent)
        {
            return Err(CpioError::MissingParent {
                path: path.to_owned(),
                parent: parent.to_owned(),
            });
        }
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or_else(|| CpioError::TooLarge {
            path: path.to_owned(),
            size: u64::from(u32::MAX) + 1,
        })?;
        self.paths.insert(path.to_owned());
        Ok(ino)
    }

    fn header(&mut self, h: &Header<'_>) -> io::Result<()> {
        let namesize = h.name.len() + 1;
        let mut buf = Vec::with_capacity(HEADER_LEN + namesize + 3);
        buf.extend_from_slice(MAGIC);
        let fields = [
            h.ino,
            h.mode,
            0, // uid
            0, // gid
            h.nlink,
            0, // mtime
            h.size,
            0, // devmajor
            0, // devminor
            h.rdev_major,
            h.rdev_minor,
            // Names are checked to be short in `size32`.
            namesize as u32,
            0, // check
        ];
        for f in fields {
            buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        buf.extend_from_slice(h.name.as_bytes());
        buf.push(0);
        buf.resize(buf.len() + pad4(buf.len() as u64), 0);
        self.out.write_all(&buf)
    }

    fn pad_data(&mut self, len: u64) -> io::Result<()> {
        self.out.write_all(&[0u8; 3][..pad4(len)])
    }

    fn size32(path: &str, size: u64) -> Result<u32, CpioError> {
        // The name length also goes into a 32-bit field; paths this long are not sensible.
        if path.len() >= 4096 {
            return Err(CpioError::InvalidPath {
                path: path.to_owned(),
                reason: "longer than 4095 bytes",
            });
        }
        u32::try_from(size).map_err(|_| CpioError::TooLarge {
            path: path.to_owned(),
            size,
        })
    }

    /// A directory with permission bits `perm` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), CpioError> {
        Self::size32(path, 0)?;
        let ino = self.admit(path, perm)?;
        self.header(&Header {
            name: path,
            ino,
            mode: mode::S_IFDIR | perm,
            nlink: 2,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
        })?;
        self.dirs.insert(path.to_owned());
        Ok(())
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.file_from_reader(path, perm, data.len() as u64, data)
    }

    /// A regular file of exactly `len` bytes copied from `reader` (for large inputs, such as an
    /// OS package archive). The reader must hold exactly `len` bytes: fewer or more is an error
    /// (the archive written so far is then unusable).
    pub fn file_from_reader(
        &mut self,
        path: &str,
        perm: u32,
        len: u64,
        mut reader: impl Read,
    ) -> Result<(), CpioError> {
        let size = Self::size32(path, len)?;
        let ino = self.admit(path, perm)?;
        self.header(&Header {
            name: path,
            ino,
            mode: mode::S_IFREG | perm,
            nlink: 1,
            size,
            rdev_major: 0,
            rdev_minor: 0,
        })?;
        let copied = io::copy(&mut (&mut reader).take(len), &mut self.out)?;
        let mismatch = |actual| CpioError::LengthMismatch {
            path: path.to_owned(),
            declared: len,
            actual,
        };
        if copied != len {
            return Err(mismatch(copied));
        }
        let mut extra = [0u8; 1];
        loop {
            match reader.read(&mut extra) {
                Ok(0) => break,
                Ok(_) => return Err(mismatch(len + 1)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pad_data(len)?;
        Ok(())
    }

    /// A character device node `major:minor` (no privileges needed: it is only a record).
    pub fn char_device(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        Self::size32(path, 0)?;
        let ino = self.admit(path, perm)?;
        self.header(&Header {
            name: path,
            ino,
            mode: mode::S_IFCHR | perm,
            nlink: 1,
            size: 0,
            rdev_major: major,
            rdev_minor: minor,
        })?;
        Ok(())
    }

    /// A symbolic link to `target` (stored as the data, without a NUL), mode 0777.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        if target.is_empty() || target.contains('\0') {
            return Err(CpioError::InvalidPath {
                path: path.to_owned(),
                reason: "symlink target is empty or contains NUL",
            });
        }
        let size = Self::size32(path, target.len() as u64)?;
        let ino = self.admit(path, 0o777)?;
        self.header(&Header {
            name: path,
            ino,
            mode: mode::S_IFLNK | 0o777,
            nlink: 1,
            size,
            rdev_major: 0,
            rdev_minor: 0,
        })?;
        self.out.write_all(target.as_bytes())?;
        self.pad_data(target.len() as u64)?;
        Ok(())
    }

    /// Write the `TRAILER!!!` record, flush, and hand back the inner writer.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.header(&Header {
            name: TRAILER,
            ino: 0,
            mode: 0,
            nlink: 1,
            size: 0,
            rdev_major: 0,
            rdev_minor: 0,
        })?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

/// One record of an archive read by [`read_archive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path as stored.
    pub name: String,
    /// Inode number.
    pub ino: u32,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: u32,
    /// Device number of a device node: major.
    pub rdev_major: u32,
    /// Device number of a device node: minor.
    pub rdev_minor: u32,
    /// File contents, or the target of a symlink.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// The file type bits (`mode & S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & mode::S_IFMT
    }

    /// The permission bits.
    pub fn permissions(&self) -> u32 {
        self.mode & mode::PERMISSIONS
    }
}

/// Read an uncompressed newc archive up to its trailer (trailing bytes, such as zero padding
/// or a second archive, are ignored). Checks the magic, the hex fields, the name and the
/// bounds; not the path rules, so archives of other tools can be listed.
pub fn read_archive(bytes: &[u8]) -> Result<Vec<Entry<'_>>, CpioError> {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    loop {
        let start = pos;
        let bad = |reason: String| CpioError::Malformed {
            offset: start,
            reason,
        };
        let header = bytes
            .get(pos..pos + HEADER_LEN)
            .ok_or_else(|| bad("truncated header (no trailer)".into()))?;
        if &header[..6] != MAGIC {
            return Err(bad(format!(
                "magic {:?}, expected \"070701\" (newc)",
                String::from_utf8_lossy(&header[..6])
            )));
        }
        let mut fields = [0u32; 13];
        for (i, f) in fields.iter_mut().enumerate() {
            let hex = &header[6 + 8 * i..14 + 8 * i];
            let text = std::str::from_utf8(hex).map_err(|_| bad("non-ASCII header".into()))?;
            *f = u32::from_str_radix(text, 16)
                .map_err(|_| bad(format!("header field {i} {text:?} is not hex")))?;
        }
        let [
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            size,
            _,
            _,
            rdev_major,
            rdev_minor,
            namesize,
            _,
        ] = fields;
        pos += HEADER_LEN;
        let namesize = namesize as usize;
        let name = bytes
            .get(pos..pos + namesize)
            .ok_or_else(|| bad("truncated name".into()))?;
        let Some((0, name)) = name.split_last() else {
            return Err(bad("name is empty or not NUL-terminated".into()));
        };
        let name = std::str::from_utf8(name)
            .map_err(|_| bad("name is not UTF-8".into()))?
            .to_owned();
        pos += namesize;
        pos += pad4(pos as u64);
        if name == TRAILER {
            return Ok(entries);
        }
        let data = bytes
            .get(pos..pos + size as usize)
            .ok_or_else(|| bad(format!("{name:?}: truncated data")))?;
        pos += size as usize;
        pos += pad4(pos as u64);
        entries.push(Entry {
            name,
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            rdev_major,
            rdev_minor,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"\x7fELF...").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        w.dir("etc", 0o755).unwrap();
        w.file_from_reader("etc/big", 0o644, 5, &b"12345"[..])
            .unwrap();
        w.symlink("sbin", "bin").unwrap();
        assert_eq!(w.entries(), 7);
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read_archive(&bytes).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "empty",
                "etc",
                "etc/big",
                "sbin"
            ]
        );
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.ino as usize, i + 1);
            assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0));
        }
        assert_eq!(entries[0].mode, 0o040_755);
        assert_eq!(entries[0].nlink, 2);
        assert_eq!(entries[1].mode, 0o020_600);
        assert_eq!((entries[1].rdev_major, entries[1].rdev_minor), (5, 1));
        assert_eq!(entries[2].mode, 0o100_755);
        assert_eq!(entries[2].data, b"\x7fELF...");
        assert_eq!(entries[3].data, b"");
        assert_eq!(entries[5].data, b"12345");
        assert_eq!(entries[6].mode, 0o120_777);
        assert_eq!(entries[6].data, b"bin");
    }

    #[test]
    fn trailer_and_padding_are_exact() {
        let bytes = CpioWriter::new(Vec::new()).finish().unwrap();
        // 110-byte header + "TRAILER!!!\0" (11) = 121, padded to 124.
        assert_eq!(bytes.len(), 124);
        let fields = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0];
        let want: String = fields.iter().map(|f| format!("{f:08x}")).collect();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[6..HEADER_LEN], want.as_bytes());
        assert_eq!(&bytes[110..121], b"TRAILER!!!\0");
        assert!(read_archive(&bytes).unwrap().is_empty());
    }

    #[test]
    fn path_rules() {
        let mut w = CpioWriter::new(Vec::new());
        for (p, want) in [
            ("", "empty path"),
            ("/init", "absolute path"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("../x", "'.' and '..'"),
            ("./x", "'.' and '..'"),
            ("a\0b", "NUL"),
            ("TRAILER!!!", "reserved"),
        ] {
            let e = w.file(p, 0o644, b"").unwrap_err().to_string();
            assert!(e.contains(want), "{p:?}: {e}");
        }
        let e = w.file("etc/x", 0o644, b"").unwrap_err().to_string();
        assert!(e.contains("parent directory \"etc\""), "{e}");
        w.file("x", 0o644, b"").unwrap();
        let e = w.file("x", 0o644, b"").unwrap_err().to_string();
        assert!(e.contains("written twice"), "{e}");
        let e = w.dir("d", 0o40_755).unwrap_err().to_string();
        assert!(e.contains("outside 0o7777"), "{e}");
        // A regular file is not a parent directory.
        let e = w.file("x/y", 0o644, b"").unwrap_err().to_string();
        assert!(e.contains("parent directory"), "{e}");
    }

    #[test]
    fn reader_length_must_match() {
        let mut w = CpioWriter::new(Vec::new());
        let e = w.file_from_reader("a", 0o644, 4, &b"123"[..]).unwrap_err();
        assert!(
            e.to_string().contains("has 3 bytes, 4 were declared"),
            "{e}"
        );
        let mut w = CpioWriter::new(Vec::new());
        let e = w.file_from_reader("a", 0o644, 2, &b"123"[..]).unwrap_err();
        assert!(
            e.to_string().contains("has 3 bytes, 2 were declared"),
            "{e}"
        );
    }

    #[test]
    fn reader_rejects_garbage() {
        assert!(read_archive(b"").is_err());
        assert!(read_archive(&[b'0'; 200]).is_err());
        let mut bytes = CpioWriter::new(Vec::new()).finish().unwrap();
        bytes[0] = b'1';
        let e = read_archive(&bytes).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"hello").unwrap();
        let bytes = w.finish().unwrap();
        let e = read_archive(&bytes[..115]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}

//! STUB: replaced by the archive work (strict zip reader and Go-compatible writer).
#![allow(missing_docs)]
use std::io;

/// Random-access source of archive bytes: a slice in stboot, a file in stmgr.
pub trait ReadAt {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; an error if the source ends first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

#[derive(Debug, thiserror::Error)]
#[error("archive stub")]
pub struct ArchiveError;
pub struct ArchiveIndex;
pub struct ArchiveWriter;
#[derive(Default)]
pub struct ArchiveLimits;
#[derive(Debug)]
pub struct OsPackageLayout;
impl OsPackageLayout {
    pub fn check<R: ReadAt + ?Sized>(_: &R, _: &ArchiveLimits) -> Result<Self, ArchiveError> {
        Err(ArchiveError)
    }
    pub fn check_contents<R: ReadAt + ?Sized>(&self, _: &R) -> Result<(), ArchiveError> {
        Err(ArchiveError)
    }
}
impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let o = usize::try_from(offset).map_err(io::Error::other)?;
        let s = self
            .get(o..o + buf.len())
            .ok_or_else(|| io::Error::other("eof"))?;
        buf.copy_from_slice(s);
        Ok(())
    }
}
impl OsPackageLayout {
    pub fn manifest(&self) -> &crate::Manifest {
        unreachable!()
    }
}
pub fn write_os_package<W: io::Write, K: io::Read, I: io::Read>(
    _: W,
    _: &crate::Manifest,
    _: K,
    _: I,
    _: &mut dyn FnMut(u64),
) -> Result<W, ArchiveError> {
    Err(ArchiveError)
}

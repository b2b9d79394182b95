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

//! [`HashingBuffer`]: an archive stored and hashed while it arrives, the hashing on a second
//! thread so that it overlaps with receiving on a machine with more than one CPU.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::{ArchiveHasher, HashedArchive};

/// Bytes handed to the hashing thread at a time.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the receiving and the hashing thread. Bounds the extra memory to
/// about `(CHUNKS + 2) * CHUNK`, and what is left to hash after the last byte arrived to
/// `CHUNKS + 1` chunks.
const CHUNKS: usize = 4;

/// A download sink that stores an archive in one buffer and hashes it as it arrives.
///
/// Bytes are gathered into 256 KiB chunks. When the machine has more than one CPU, a second
/// thread hashes each full chunk and appends it to the archive buffer while the caller
/// receives the next one, so the hash costs (almost) no transfer time; with one CPU, or if the
/// thread cannot be started, the caller's thread does that work itself. Either way [`Self::finish`] pairs the bytes with
/// the digest of exactly those bytes, in the order they arrived.
///
/// A caller that can read straight into memory uses [`Self::spare`] and [`Self::commit`]
/// instead of [`io::Write`], which saves a copy.
pub struct HashingBuffer {
    /// The chunk being filled (empty until the first byte), and how much of it is filled.
    chunk: Vec<u8>,
    filled: usize,
    received: u64,
    state: State,
}

enum State {
    /// The archive buffer and the hasher are here: nothing handed over yet, or no thread
    /// could be started (`threaded == false`: hash here from now on).
    Here {
        bytes: Vec<u8>,
        hasher: ArchiveHasher,
        threaded: bool,
    },
    /// The hashing thread owns them.
    Running(Worker),
    /// The worker stopped with this error.
    Failed(io::ErrorKind, String),
}

enum Msg {
    Start(Vec<u8>, Box<ArchiveHasher>),
    Chunk(Vec<u8>, usize),
}

struct Worker {
    full: SyncSender<Msg>,
    empty: Receiver<Vec<u8>>,
    handle: JoinHandle<io::Result<HashedArchive>>,
}

impl Default for HashingBuffer {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

fn store(bytes: &mut Vec<u8>, hasher: &mut ArchiveHasher, data: &[u8]) -> io::Result<()> {
    bytes
        .try_reserve(data.len())
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    hasher.update(data);
    bytes.extend_from_slice(data);
    Ok(())
}

fn worker_gone() -> io::Error {
    io::Error::other("the archive hashing thread stopped")
}

/// The hashing thread: the archive buffer and hasher arrive first, then chunks in order.
fn work(full: Receiver<Msg>, empty: SyncSender<Vec<u8>>) -> io::Result<HashedArchive> {
    let Ok(Msg::Start(mut bytes, hasher)) = full.recv() else {
        return Err(worker_gone());
    };
    let mut hasher = *hasher;
    for msg in full {
        let Msg::Chunk(chunk, n) = msg else {
            return Err(worker_gone());
        };
        store(&mut bytes, &mut hasher, chunk.get(..n).unwrap_or_default())?;
        // Recycle the chunk; when the pool is full or the sender is gone, drop it.
        let _ = empty.try_send(chunk);
    }
    Ok(HashedArchive {
        bytes,
        digest: hasher.finish(),
    })
}

impl HashingBuffer {
    /// A sink with `capacity` bytes reserved (e.g. the Content-Length).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            chunk: Vec::new(),
            filled: 0,
            received: 0,
            state: State::Here {
                bytes: Vec::with_capacity(capacity),
                hasher: ArchiveHasher::new(),
                threaded: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
            },
        }
    }

    /// Hash on the caller's thread only (`false`), or on a second thread even with one CPU
    /// (`true`). The default depends on the number of CPUs.
    pub fn threaded(mut self, on: bool) -> Self {
        if let State::Here { threaded, .. } = &mut self.state {
            *threaded = on;
        }
        self
    }

    /// Make room for `additional` more bytes at once (e.g. the announced Content-Length), so
    /// the buffer is not regrown and copied while the body arrives. Call it before the first
    /// byte; once the hashing thread owns the buffer this does nothing.
    ///
    /// Fails instead of aborting when the memory is not there (a server can announce any
    /// length; in PID 1 an allocation abort would be a kernel panic).
    pub fn try_reserve(
        &mut self,
        additional: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        match &mut self.state {
            State::Here { bytes, .. } => bytes.try_reserve_exact(additional),
            State::Running(_) | State::Failed(..) => Ok(()),
        }
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.received
    }

    /// Nothing received yet.
    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// Memory to receive the next bytes into (never empty); then tell [`Self::commit`] how
    /// many were written. Fails when a chunk buffer cannot be allocated or the hashing thread
    /// failed.
    pub fn spare(&mut self) -> io::Result<&mut [u8]> {
        if let State::Failed(kind, text) = &self.state {
            return Err(io::Error::new(*kind, text.clone()));
        }
        if self.chunk.is_empty() {
            self.chunk = self.next_chunk()?;
            self.filled = 0;
        }
        Ok(self.chunk.get_mut(self.filled..).unwrap_or_default())
    }

    /// The first `n` bytes of the slice the last [`Self::spare`] returned are archive bytes.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        let n = n.min(self.chunk.len().saturating_sub(self.filled));
        self.filled += n;
        self.received += n as u64;
        if self.filled == self.chunk.len() && self.filled > 0 {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Finish: wait for the hashing thread and return the bytes with their digest.
    pub fn finish(mut self) -> io::Result<HashedArchive> {
        self.hand_over()?;
        match self.state {
            State::Here { bytes, hasher, .. } => Ok(HashedArchive {
                bytes,
                digest: hasher.finish(),
            }),
            State::Running(w) => {
                drop(w.full);
                w.handle.join().map_err(|_| worker_gone())?
            }
            State::Failed(kind, text) => Err(io::Error::new(kind, text)),
        }
    }

    /// A chunk buffer: one the worker is done with, or a new one.
    fn next_chunk(&mut self) -> io::Result<Vec<u8>> {
        if let State::Running(w) = &self.state
            && let Ok(c) = w.empty.try_recv()
        {
            return Ok(c);
        }
        let mut c = Vec::new();
        c.try_reserve_exact(CHUNK)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        c.resize(CHUNK, 0);
        Ok(c)
    }

    /// Pass the filled part of the current chunk on: to the worker, or hash it here.
    fn hand_over(&mut self) -> io::Result<()> {
        let n = std::mem::take(&mut self.filled);
        if n == 0 {
            return Ok(());
        }
        if matches!(self.state, State::Here { threaded: true, .. }) {
            self.start();
        }
        match &mut self.state {
            State::Here { bytes, hasher, .. } => {
                // The chunk stays here for the next bytes.
                store(bytes, hasher, self.chunk.get(..n).unwrap_or_default())
            }
            State::Running(w) => {
                let chunk = std::mem::take(&mut self.chunk);
                if w.full.send(Msg::Chunk(chunk, n)).is_err() {
                    return Err(self.stop());
                }
                Ok(())
            }
            State::Failed(kind, text) => Err(io::Error::new(*kind, text.clone())),
        }
    }

    /// Start the hashing thread and hand it the buffer; without a thread, stay single-threaded.
    fn start(&mut self) {
        let (full, full_rx) = sync_channel::<Msg>(CHUNKS);
        let (empty_tx, empty) = sync_channel::<Vec<u8>>(CHUNKS + 1);
        let Ok(handle) = std::thread::Builder::new()
            .name("archive-hash".into())
            .spawn(move || work(full_rx, empty_tx))
        else {
            if let State::Here { threaded, .. } = &mut self.state {
                *threaded = false;
            }
            return;
        };
        let State::Here { bytes, hasher, .. } = std::mem::replace(
            &mut self.state,
            State::Failed(io::ErrorKind::Other, worker_gone().to_string()),
        ) else {
            return;
        };
        if full.send(Msg::Start(bytes, Box::new(hasher))).is_ok() {
            self.state = State::Running(Worker {
                full,
                empty,
                handle,
            });
        }
    }

    /// The worker is gone: collect its error.
    fn stop(&mut self) -> io::Error {
        let state = std::mem::replace(
            &mut self.state,
            State::Failed(io::ErrorKind::Other, worker_gone().to_string()),
        );
        let e = match state {
            State::Running(w) => {
                drop(w.full);
                match w.handle.join() {
                    Ok(Err(e)) => e,
                    _ => worker_gone(),
                }
            }
            _ => worker_gone(),
        };
        self.state = State::Failed(e.kind(), e.to_string());
        e
    }
}

impl io::Write for HashingBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let spare = self.spare()?;
        let n = spare.len().min(buf.len());
        spare
            .get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(buf.get(..n).unwrap_or_default());
        self.commit(n)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArchiveDigest;
    use std::io::Write as _;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn threaded_and_single_threaded_give_the_bytes_and_their_digest() {
        // Sizes around the chunk boundaries, written in awkward pieces.
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12345] {
            let data = pattern(len);
            for threaded in [true, false] {
                let mut b = HashingBuffer::with_capacity(len).threaded(threaded);
                for piece in data.chunks(100_003) {
                    b.write_all(piece).unwrap();
                }
                assert_eq!(b.len(), len as u64);
                let a = b.finish().unwrap();
                assert_eq!(a.bytes(), &data[..], "len {len} threaded {threaded}");
                assert_eq!(a.digest(), ArchiveDigest::of(&data));
            }
        }
    }

    #[test]
    fn spare_and_commit_read_in_place() {
        let data = pattern(3 * CHUNK + 777);
        let mut b = HashingBuffer::default().threaded(true);
        let mut off = 0;
        while off < data.len() {
            let spare = b.spare().unwrap();
            assert!(!spare.is_empty());
            // Short reads, as a socket gives them.
            let n = spare.len().min(70_001).min(data.len() - off);
            spare[..n].copy_from_slice(&data[off..off + n]);
            b.commit(n).unwrap();
            off += n;
        }
        let a = b.finish().unwrap();
        assert_eq!(a.bytes(), &data[..]);
        assert_eq!(a.digest(), ArchiveDigest::of(&data));
    }

    #[test]
    fn committing_more_than_the_spare_counts_only_the_spare() {
        let mut b = HashingBuffer::default();
        let n = b.spare().unwrap().len();
        b.commit(n + 10).unwrap();
        assert_eq!(b.len(), n as u64);
        assert_eq!(b.finish().unwrap().bytes().len(), n);
    }
}

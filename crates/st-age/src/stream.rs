//! The payload: STREAM with ChaCha20-Poly1305 in 64 KiB chunks (C2SP age.md, "Payload"), as a
//! streaming [`Decryptor`] and [`Encryptor`].

use std::io::{self, Read, Write};

use ring::aead;
use zeroize::Zeroizing;

use crate::header::{self, FILE_KEY_LEN, Header, INTRO, MAC_PREFIX};
use crate::{
    AgeError, EncryptError, Identities, MAX_HEADER, MAX_RECIPIENTS, Recipient, Truncation,
};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 << 10;
const TAG: usize = 16;
/// Ciphertext bytes of a full chunk.
const ENC_CHUNK: usize = CHUNK + TAG;
/// The payload nonce that follows the header.
const NONCE_LEN: usize = 16;
/// First-line bytes looked at before deciding the input is not age.
const SNIFF: usize = 64;
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whether `prefix`, the first bytes of a file, starts a binary age v1 file: the version line
/// `age-encryption.org/v1` and its LF (22 bytes; a shorter prefix gives `false`).
pub fn is_encrypted(prefix: &[u8]) -> bool {
    prefix.starts_with(INTRO)
}

/// Whether `prefix` starts an ASCII-armored age file (`age -a`), after optional whitespace.
/// Such files are refused ([`AgeError::Armored`]); this lets a caller say so instead of
/// treating them as plaintext.
pub fn is_armored(prefix: &[u8]) -> bool {
    prefix.trim_ascii_start().starts_with(ARMOR_BEGIN)
}

/// Why the first line is not age v1, given at least its first [`SNIFF`] bytes or all of it.
fn not_v1(first: &[u8]) -> AgeError {
    if first.is_empty() {
        AgeError::Empty
    } else if is_armored(first) {
        AgeError::Armored
    } else if first.starts_with(b"age-encryption.org/v1\r") {
        AgeError::MalformedHeader {
            line: 1,
            reason: "CR before LF (headers use LF line ends)",
        }
    } else if let Some(v) = first.strip_prefix(b"age-encryption.org/") {
        let v = v.split(|&b| b == b'\n').next().unwrap_or_default();
        AgeError::UnsupportedVersion(String::from_utf8_lossy(v).chars().take(32).collect())
    } else {
        AgeError::NotAgeFile
    }
}

fn chunk_nonce(index: u64, last: bool) -> aead::Nonce {
    let mut n = [0u8; 12];
    // 11-byte big-endian counter: the top 3 bytes stay zero for a u64 index.
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    aead::Nonce::assume_unique_for_key(n)
}

fn payload_key(
    file_key: &[u8; FILE_KEY_LEN],
    nonce: &[u8; NONCE_LEN],
) -> Result<aead::LessSafeKey, AgeError> {
    header::aead_key(&header::hkdf32(file_key, nonce, b"payload"))
}

enum State {
    /// Collecting the header; `line_start` is where the line being read begins.
    Header { buf: Vec<u8>, line_start: usize },
    /// Header done, collecting the payload nonce.
    Nonce {
        file_key: Zeroizing<[u8; FILE_KEY_LEN]>,
        nonce: [u8; NONCE_LEN],
        have: usize,
    },
    /// Decrypting: `chunk` holds the ciphertext of the chunk being received.
    Payload {
        key: Box<aead::LessSafeKey>,
        chunk: Vec<u8>,
        spare: Vec<u8>,
        index: u64,
    },
    /// An error happened; it is returned again by every later call.
    Failed(AgeError),
}

/// A streaming decryptor: ciphertext is written in (any split, one byte at a time is fine),
/// plaintext goes to `W` one authenticated 64 KiB chunk at a time.
///
/// No plaintext is released before its chunk authenticated, and at most one chunk (64 KiB +
/// 16, and a copy of it to name the error when it fails) is held. A chunk cannot be known to be the last one until more bytes arrive or the
/// input ends, so the final chunk is released by [`Self::finish`], which also detects a
/// truncated file. Until `finish` returns `Ok`, treat everything written to `W` as
/// unverified: a file cut at a chunk boundary has released all its chunks but one when the
/// truncation is found.
///
/// After an error, every `write` fails and `finish` returns the typed error ([`AgeError`]);
/// `write`'s `io::Error` wraps the same value.
pub struct Decryptor<'a, W: Write> {
    identities: &'a Identities,
    out: W,
    state: State,
    /// Header length once known (bytes before the payload nonce).
    header_len: Option<u64>,
}

impl<'a, W: Write> Decryptor<'a, W> {
    /// A decryptor trying `identities`, writing the plaintext to `out`.
    pub fn new(identities: &'a Identities, out: W) -> Self {
        Self {
            identities,
            out,
            state: State::Header {
                buf: Vec::new(),
                line_start: 0,
            },
            header_len: None,
        }
    }

    /// The plaintext writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The plaintext writer, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Whether the header has been read and a file key found (so the identities matched and
    /// the header MAC verified).
    pub fn header_done(&self) -> bool {
        matches!(self.state, State::Nonce { .. } | State::Payload { .. })
    }

    /// The plaintext length a well-formed file of `ciphertext_len` bytes decrypts to, once the
    /// header is read ([`Self::header_done`]); `None` before, or when no payload of that size
    /// is well-formed. For sizing a buffer from a Content-Length: decryption still checks.
    pub fn plaintext_len(&self, ciphertext_len: u64) -> Option<u64> {
        let payload = ciphertext_len
            .checked_sub(self.header_len?)?
            .checked_sub(NONCE_LEN as u64)?;
        let chunks = payload.div_ceil(ENC_CHUNK as u64);
        let plain = payload.checked_sub(chunks.checked_mul(TAG as u64)?)?;
        let expected = if plain == 0 {
            1
        } else {
            plain.div_ceil(CHUNK as u64)
        };
        (chunks == expected).then_some(plain)
    }

    /// Ends the input: decrypts and writes the final chunk, flushes `W` and returns it; or
    /// the error (truncated input, or the one an earlier `write` met).
    pub fn finish(mut self) -> Result<W, AgeError> {
        let state = std::mem::replace(
            &mut self.state,
            State::Failed(AgeError::Internal("finished")),
        );
        match state {
            State::Failed(e) => Err(e),
            State::Header { buf, .. } => Err(if buf.is_empty() {
                AgeError::Empty
            } else if buf.starts_with(INTRO) || INTRO.starts_with(&buf) {
                AgeError::Truncated(Truncation::Header)
            } else {
                not_v1(&buf)
            }),
            State::Nonce { .. } => Err(AgeError::Truncated(Truncation::Nonce)),
            State::Payload {
                key,
                mut chunk,
                index,
                ..
            } => {
                if chunk.len() < TAG {
                    return Err(AgeError::Truncated(Truncation::Payload { chunks: index }));
                }
                if chunk.len() == TAG && index > 0 {
                    return Err(AgeError::EmptyLastChunk { chunk: index });
                }
                // A full-size chunk that does not authenticate as the final one may be a
                // non-final one: the file was cut at a chunk boundary. Keep a copy to tell.
                let copy = (chunk.len() == ENC_CHUNK).then(|| chunk.clone());
                match key.open_in_place(chunk_nonce(index, true), aead::Aad::empty(), &mut chunk) {
                    Ok(plain) => {
                        self.out.write_all(plain).map_err(output)?;
                        self.out.flush().map_err(output)?;
                        Ok(self.out)
                    }
                    Err(_) => {
                        if let Some(mut c) = copy
                            && let Ok(plain) = key.open_in_place(
                                chunk_nonce(index, false),
                                aead::Aad::empty(),
                                &mut c,
                            )
                        {
                            // Authentic, like every non-final chunk before it: released as
                            // age does, and the file still fails.
                            self.out.write_all(plain).map_err(output)?;
                            return Err(AgeError::Truncated(Truncation::Payload {
                                chunks: index + 1,
                            }));
                        }
                        Err(AgeError::ChunkAuthentication { chunk: index })
                    }
                }
            }
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), AgeError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Header { buf, line_start } => {
                    let (take, line_done) = match data.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (data.len(), false),
                    };
                    if buf.len() + take > MAX_HEADER {
                        return Err(AgeError::HeaderTooLarge);
                    }
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if *line_start == 0 {
                        // The version line: decide as early as the bytes allow, but late
                        // enough to name armor (after any whitespace) or another version.
                        if buf.as_slice() == INTRO {
                            *line_start = buf.len();
                            continue;
                        }
                        let undecided = buf.len() < SNIFF
                            && ((could_be_armor(buf) && !is_armored(buf))
                                || (!line_done
                                    && (INTRO.starts_with(buf)
                                        || buf.starts_with(b"age-encryption.org/"))));
                        if undecided {
                            continue;
                        }
                        return Err(not_v1(buf));
                    }
                    if !line_done {
                        continue;
                    }
                    let is_mac = *line_start > 0 && buf[*line_start..].starts_with(MAC_PREFIX);
                    *line_start = buf.len();
                    if is_mac {
                        let header = Header::parse(buf)?;
                        let file_key = header.unwrap(buf, self.identities)?;
                        self.header_len = Some(buf.len() as u64);
                        self.state = State::Nonce {
                            file_key,
                            nonce: [0; NONCE_LEN],
                            have: 0,
                        };
                    }
                }
                State::Nonce {
                    file_key,
                    nonce,
                    have,
                } => {
                    let n = (NONCE_LEN - *have).min(data.len());
                    nonce[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == NONCE_LEN {
                        let key = payload_key(file_key, nonce)?;
                        self.state = State::Payload {
                            key: Box::new(key),
                            chunk: Vec::with_capacity(ENC_CHUNK),
                            spare: Vec::with_capacity(ENC_CHUNK),
                            index: 0,
                        };
                    }
                }
                State::Payload {
                    key,
                    chunk,
                    spare,
                    index,
                } => {
                    if chunk.len() == ENC_CHUNK {
                        // More bytes follow, so this full chunk should not be the final one.
                        // ring clears a chunk that fails; the copy tells a final chunk with
                        // data after it from a tampered one.
                        spare.clear();
                        spare.extend_from_slice(chunk);
                        match key.open_in_place(
                            chunk_nonce(*index, false),
                            aead::Aad::empty(),
                            chunk,
                        ) {
                            Ok(plain) => self.out.write_all(plain).map_err(output)?,
                            Err(_) => {
                                let nonce = chunk_nonce(*index, true);
                                return Err(
                                    match key.open_in_place(nonce, aead::Aad::empty(), spare) {
                                        Ok(plain) => {
                                            // Authentic, and final: released as age does.
                                            self.out.write_all(plain).map_err(output)?;
                                            AgeError::TrailingData { chunk: *index }
                                        }
                                        Err(_) => AgeError::ChunkAuthentication { chunk: *index },
                                    },
                                );
                            }
                        }
                        chunk.clear();
                        *index = index
                            .checked_add(1)
                            .ok_or(AgeError::Internal("chunk counter"))?;
                    }
                    let n = (ENC_CHUNK - chunk.len()).min(data.len());
                    chunk.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
            }
        }
        Ok(())
    }
}

/// Whether `buf` (the start of the first line) can still turn out to be armor.
fn could_be_armor(buf: &[u8]) -> bool {
    let t = buf.trim_ascii_start();
    ARMOR_BEGIN.starts_with(t) || t.starts_with(ARMOR_BEGIN)
}

fn output(e: io::Error) -> AgeError {
    if e.kind() == io::ErrorKind::FileTooLarge
        && let Some(max) = e.get_ref().and_then(|i| i.downcast_ref::<CapExceeded>())
    {
        return AgeError::TooLarge { max: max.0 };
    }
    AgeError::Output {
        kind: e.kind(),
        message: e.to_string(),
    }
}

impl<W: Write> Write for Decryptor<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.feed(data) {
            Ok(()) => Ok(data.len()),
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[derive(Debug)]
struct CapExceeded(usize);
impl std::fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plaintext over {} bytes", self.0)
    }
}
impl std::error::Error for CapExceeded {}

/// A `Vec` that refuses to grow past `max`.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(data.len()) > self.max {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                CapExceeded(self.max),
            ));
        }
        self.bytes
            .try_reserve(data.len())
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts a whole file held in memory (a descriptor), refusing plaintext over
/// `max_plaintext` bytes.
pub fn decrypt_to_vec(
    identities: &Identities,
    ciphertext: &[u8],
    max_plaintext: usize,
) -> Result<Vec<u8>, AgeError> {
    let mut d = Decryptor::new(
        identities,
        Capped {
            bytes: Vec::new(),
            max: max_plaintext,
        },
    );
    // The error, if any, is kept and returned by `finish`.
    let _ = d.write_all(ciphertext);
    Ok(d.finish()?.bytes)
}

/// A streaming encryptor: plaintext written in, an age v1 file to `W` (binary, not armored),
/// readable by `age -d` and by [`Decryptor`]. [`Self::finish`] writes the final chunk.
pub struct Encryptor<W: Write> {
    out: W,
    key: aead::LessSafeKey,
    /// Plaintext of the chunk being gathered, with room for its tag.
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> Encryptor<W> {
    /// Writes the header and payload nonce for `recipients` to `out`. `random` fills buffers
    /// with cryptographically secure random bytes (the file key, one ephemeral secret per
    /// recipient, the payload nonce).
    pub fn new(
        recipients: &[Recipient],
        mut out: W,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Self, EncryptError> {
        if recipients.is_empty() {
            return Err(EncryptError::NoRecipients);
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(EncryptError::TooManyRecipients);
        }
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        random(file_key.as_mut_slice());
        let head = header::write(recipients, &file_key, random)?;
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce);
        out.write_all(&head)?;
        out.write_all(&nonce)?;
        let key = payload_key(&file_key, &nonce).map_err(io::Error::from)?;
        Ok(Self {
            out,
            key,
            buf: Vec::with_capacity(ENC_CHUNK),
            index: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                chunk_nonce(self.index, last),
                aead::Aad::empty(),
                &mut self.buf,
            )
            .map_err(|_| io::Error::other("sealing a chunk"))?;
        self.out.write_all(&self.buf)?;
        self.out.write_all(tag.as_ref())?;
        self.buf.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("chunk counter"))?;
        Ok(())
    }

    /// Writes the final chunk, flushes and returns `W`.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let len = data.len();
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                // More plaintext follows: the full chunk is not the final one.
                self.seal(false)?;
            }
            let n = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Encrypts everything `plaintext` gives to `recipients` into `out`; returns `out`.
pub fn encrypt<R: Read, W: Write>(
    recipients: &[Recipient],
    mut plaintext: R,
    out: W,
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<W, EncryptError> {
    let mut e = Encryptor::new(recipients, out, random)?;
    io::copy(&mut plaintext, &mut e)?;
    Ok(e.finish()?)
}

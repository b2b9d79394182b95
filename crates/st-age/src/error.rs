//! [`AgeError`]: why a file did not decrypt, and [`EncryptError`]: why one could not be made.

use std::fmt;
use std::io;

use crate::Recipient;

/// Why an age file did not decrypt. Whatever plaintext was released before the error was
/// authenticated (a whole chunk), but the file as a whole must be treated as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgeError {
    /// No bytes at all.
    Empty,
    /// The file does not start with `age-encryption.org/v1` (a plaintext file, or not age).
    NotAgeFile,
    /// An ASCII-armored file (`-----BEGIN AGE ENCRYPTED FILE-----`, `age -a`): not accepted,
    /// like Go's `age.Decrypt` on a raw reader.
    Armored,
    /// `age-encryption.org/` with another version than `v1`.
    UnsupportedVersion(String),
    /// The header is longer than [`crate::MAX_HEADER`] bytes.
    HeaderTooLarge,
    /// More than [`crate::MAX_STANZAS`] recipient stanzas.
    TooManyStanzas,
    /// A header line that breaks the format (C2SP age.md).
    MalformedHeader {
        /// 1-based line of the header.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The file is encrypted with a passphrase (one scrypt stanza).
    PassphraseNotSupported,
    /// An X25519 stanza whose share is a low-order point (the shared secret would be zero).
    LowOrderShare {
        /// 1-based header line of the stanza.
        line: usize,
    },
    /// None of the identities unwraps any X25519 stanza.
    NoIdentityMatches {
        /// Identities tried.
        identities: usize,
        /// X25519 stanzas in the header.
        x25519_stanzas: usize,
        /// The other stanza types in the header (at most a few, deduplicated).
        other_types: Vec<String>,
    },
    /// The header MAC does not verify: the header was changed after encryption.
    BadHeaderMac,
    /// The input ended early.
    Truncated(Truncation),
    /// A final chunk with no plaintext after other chunks (the spec forbids it).
    EmptyLastChunk {
        /// 0-based chunk index.
        chunk: u64,
    },
    /// A payload chunk failed authentication.
    ChunkAuthentication {
        /// 0-based chunk index.
        chunk: u64,
    },
    /// A valid final chunk with more bytes after it.
    TrailingData {
        /// 0-based index of the final chunk.
        chunk: u64,
    },
    /// More plaintext than the caller allows ([`crate::decrypt_to_vec`]).
    TooLarge {
        /// The caller's limit.
        max: usize,
    },
    /// A cryptographic primitive refused its input where that cannot happen (a bug).
    Internal(&'static str),
    /// Writing the plaintext failed.
    Output {
        /// The error's kind.
        kind: io::ErrorKind,
        /// Its message.
        message: String,
    },
}

/// Where an input ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Inside the header.
    Header,
    /// Before the 16-byte payload nonce was complete.
    Nonce,
    /// Before a final chunk: the payload has `chunks` complete non-final chunks and no final one.
    Payload {
        /// Chunks that authenticated.
        chunks: u64,
    },
}

impl fmt::Display for AgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the file is empty, not an age file"),
            Self::NotAgeFile => {
                f.write_str("not an age file: it does not start with \"age-encryption.org/v1\"")
            }
            Self::Armored => f.write_str(
                "ASCII-armored age file (\"-----BEGIN AGE ENCRYPTED FILE-----\"): not supported, encrypt without -a/--armor",
            ),
            Self::UnsupportedVersion(v) => {
                write!(f, "unsupported age format version {v:?} (only v1 is known)")
            }
            Self::HeaderTooLarge => {
                write!(f, "age header longer than {} bytes", crate::MAX_HEADER)
            }
            Self::TooManyStanzas => {
                write!(f, "age header with more than {} recipient stanzas", crate::MAX_STANZAS)
            }
            Self::MalformedHeader { line, reason } => {
                write!(f, "malformed age header, line {line}: {reason}")
            }
            Self::PassphraseNotSupported => f.write_str(
                "passphrase (scrypt) encrypted files are not supported: encrypt to an X25519 recipient (age -r age1...)",
            ),
            Self::LowOrderShare { line } => write!(
                f,
                "malformed age header, line {line}: the X25519 share is a low-order point"
            ),
            Self::NoIdentityMatches { identities, x25519_stanzas, other_types } => {
                write!(
                    f,
                    "no identity matches: {identities} identities tried against {x25519_stanzas} X25519 stanzas"
                )?;
                if !other_types.is_empty() {
                    write!(f, " (other stanza types, not supported: {})", other_types.join(", "))?;
                }
                Ok(())
            }
            Self::BadHeaderMac => {
                f.write_str("bad age header MAC: the header was changed after encryption")
            }
            Self::Truncated(Truncation::Header) => {
                f.write_str("truncated age file: the header is incomplete")
            }
            Self::Truncated(Truncation::Nonce) => {
                f.write_str("truncated age file: the payload nonce is incomplete")
            }
            Self::Truncated(Truncation::Payload { chunks }) => write!(
                f,
                "truncated age file: no final chunk (the payload ends after {chunks} chunks)"
            ),
            Self::EmptyLastChunk { chunk } => {
                write!(f, "age payload chunk {chunk} is an empty final chunk (not allowed)")
            }
            Self::ChunkAuthentication { chunk } => write!(
                f,
                "age payload chunk {chunk} failed authentication: the file was tampered with or corrupted"
            ),
            Self::TrailingData { chunk } => {
                write!(f, "data after the final chunk (chunk {chunk}) of the age payload")
            }
            Self::TooLarge { max } => write!(f, "decrypted plaintext over {max} bytes"),
            Self::Internal(what) => write!(f, "internal error: {what}"),
            Self::Output { message, .. } => write!(f, "writing the plaintext: {message}"),
        }
    }
}

impl std::error::Error for AgeError {}

impl From<AgeError> for io::Error {
    fn from(e: AgeError) -> Self {
        match e {
            AgeError::Output { kind, message } => Self::new(kind, message),
            e => Self::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Why [`crate::Encryptor`] could not start or finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncryptError {
    /// No recipient given.
    NoRecipients,
    /// More than [`crate::MAX_RECIPIENTS`] recipients.
    TooManyRecipients,
    /// A recipient that is a low-order point: no shared secret with it.
    LowOrderRecipient(Recipient),
    /// Reading the plaintext or writing the ciphertext failed.
    Io(io::Error),
}

impl fmt::Display for EncryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRecipients => f.write_str("no recipient to encrypt to"),
            Self::TooManyRecipients => {
                write!(f, "more than {} recipients", crate::MAX_RECIPIENTS)
            }
            Self::LowOrderRecipient(r) => {
                write!(
                    f,
                    "recipient {r} is a low-order point, not a usable public key"
                )
            }
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EncryptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for EncryptError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

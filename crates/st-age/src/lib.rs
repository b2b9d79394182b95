//! age v1 file encryption (C2SP age.md) for System Transparency OS packages, with X25519
//! recipients only.
//!
//! st-1.2 lets an OS package's descriptor and archive each be encrypted with age to an X25519
//! recipient whose identity is in the stboot image's trust policy directory
//! (`decryption_identities`). This crate reads and writes such files:
//!
//! - [`Identities::parse`] reads a `decryption_identities` file; [`Recipient::parse`] and
//!   [`parse_recipients`] read public keys.
//! - [`Decryptor`] decrypts as ciphertext arrives (an [`std::io::Write`] that writes the
//!   plaintext to another one, one authenticated chunk at a time); [`decrypt_to_vec`] does a
//!   small file at once.
//! - [`Encryptor`] and [`encrypt`] make files the `age` CLI decrypts.
//! - [`is_encrypted`] tells an age file from a plaintext one by its first bytes.
//!
//! Not supported, each refused with its own error: ASCII armor, passphrase (scrypt) files,
//! post-quantum, SSH and plugin keys. Other stanza types in a header are skipped, as the spec
//! asks.
//!
//! Pure: no filesystem, network or clock; the encryptor's randomness is passed in.
#![forbid(unsafe_code)]

mod bech32;
mod error;
mod header;
mod keys;
mod stream;

pub use bech32::Bech32Error;
pub use error::{AgeError, EncryptError, Truncation};
pub use keys::{
    Identities, Identity, KeyError, KeyFileError, MAX_IDENTITIES, MAX_KEY_FILE, MAX_RECIPIENTS,
    Recipient, parse_recipients,
};
pub use stream::{CHUNK, Decryptor, Encryptor, decrypt_to_vec, encrypt, is_armored, is_encrypted};

/// Longest header accepted (bytes). An X25519 stanza takes 100 bytes, a post-quantum one about
/// 1.6 KiB: room for [`MAX_STANZAS`] of either kind mixed.
pub const MAX_HEADER: usize = 64 << 10;
/// Most recipient stanzas in a header. With [`MAX_IDENTITIES`], bounds the X25519 operations
/// a header can cause (`MAX_STANZAS * MAX_IDENTITIES`).
pub const MAX_STANZAS: usize = 64;

#[cfg(test)]
mod tests;

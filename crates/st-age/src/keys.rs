//! X25519 identities (`AGE-SECRET-KEY-1…`) and recipients (`age1…`), and the files that list
//! them.

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::bech32::{self, Bech32Error};

/// The Bech32 prefix of an X25519 identity, as written (upper case).
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-";
/// The Bech32 prefix of an X25519 recipient (lower case).
const RECIPIENT_HRP: &str = "age";

/// Most identities a `decryption_identities` file may hold. Each one is tried against every
/// X25519 stanza of a header ([`crate::MAX_STANZAS`]): this bounds the work a header can cause.
pub const MAX_IDENTITIES: usize = 32;
/// Most recipients one file may be encrypted to by [`crate::Encryptor`], and most lines of a
/// recipients file.
pub const MAX_RECIPIENTS: usize = crate::MAX_STANZAS;
/// Largest identities or recipients file accepted (bytes): a key line is 74 or 62 characters,
/// so this leaves room for long comments.
pub const MAX_KEY_FILE: usize = 64 << 10;

/// Why one key string is not a usable X25519 identity or recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not valid Bech32.
    Bech32(Bech32Error),
    /// A hybrid post-quantum key (`AGE-SECRET-KEY-PQ-1…` / `age1pq1…`): not supported.
    PostQuantum,
    /// A plugin key (`AGE-PLUGIN-…` / `age1<name>1…`), e.g. age-plugin-yubikey: not supported.
    Plugin,
    /// An SSH key (`ssh-ed25519 …`, `ssh-rsa …`): age accepts those, this implementation does not.
    Ssh,
    /// Another Bech32 prefix than the one expected (for an identity, the lower-case spelling
    /// `age-secret-key-1…` is one; for a recipient, the upper-case `AGE1…`).
    WrongType {
        /// The prefix found.
        found: String,
        /// The prefix expected.
        expected: &'static str,
    },
    /// The key is not 32 bytes.
    Length(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bech32(e) => write!(f, "not a valid age key: {e}"),
            Self::PostQuantum => {
                f.write_str("post-quantum (MLKEM768-X25519) keys are not supported: use X25519 keys (age-keygen without -pq)")
            }
            Self::Plugin => f.write_str("age plugin keys are not supported: use X25519 keys (age-keygen)"),
            Self::Ssh => f.write_str("SSH keys are not supported as age keys: use X25519 keys (age-keygen)"),
            Self::WrongType { found, expected } => {
                write!(f, "wrong key type: prefix {found:?}, expected {expected:?}")
            }
            Self::Length(n) => write!(f, "the key is {n} bytes, an X25519 key is 32"),
        }
    }
}

impl std::error::Error for KeyError {}

/// An X25519 recipient: the public key files are encrypted to, written `age1…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recipient {
    key: [u8; 32],
}

impl Recipient {
    /// Parses `age1…` (lower case, as age-keygen prints it).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.starts_with("ssh-") {
            return Err(KeyError::Ssh);
        }
        let (hrp, data) = bech32::decode(s).map_err(|e| {
            // age1pq1… and age1<plugin>1… are valid Bech32 with another prefix; a prefix
            // check first would hide their checksum errors, so look at the prefix after.
            if s.starts_with("age1pq1") {
                KeyError::PostQuantum
            } else {
                KeyError::Bech32(e)
            }
        })?;
        match hrp {
            RECIPIENT_HRP => {}
            "age1pq" => return Err(KeyError::PostQuantum),
            h if h.starts_with("age1") => return Err(KeyError::Plugin),
            h => {
                return Err(KeyError::WrongType {
                    found: h.to_owned(),
                    expected: RECIPIENT_HRP,
                });
            }
        }
        let key: [u8; 32] = data
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(data.len()))?;
        Ok(Self { key })
    }

    /// The 32-byte Curve25519 point.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        PublicKey::from(self.key)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32::encode(RECIPIENT_HRP, &self.key, false))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl std::str::FromStr for Recipient {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s)
    }
}

/// An X25519 identity: the secret key that decrypts, written `AGE-SECRET-KEY-1…`.
///
/// Neither [`fmt::Debug`] nor any other formatting shows the secret: they show the recipient.
/// The secret is zeroed when the identity is dropped.
#[derive(Clone)]
pub struct Identity {
    secret: StaticSecret,
    recipient: Recipient,
}

impl Identity {
    /// Parses `AGE-SECRET-KEY-1…` (upper case, as age-keygen writes it).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.starts_with("AGE-PLUGIN-") {
            return Err(KeyError::Plugin);
        }
        let (hrp, data) = bech32::decode(s).map_err(|e| {
            if s.starts_with("AGE-SECRET-KEY-PQ-1") {
                KeyError::PostQuantum
            } else {
                KeyError::Bech32(e)
            }
        })?;
        let data = Zeroizing::new(data);
        match hrp {
            IDENTITY_HRP => {}
            "AGE-SECRET-KEY-PQ-" => return Err(KeyError::PostQuantum),
            h => {
                return Err(KeyError::WrongType {
                    found: h.to_owned(),
                    expected: IDENTITY_HRP,
                });
            }
        }
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            data.as_slice()
                .try_into()
                .map_err(|_| KeyError::Length(data.len()))?,
        );
        Ok(Self::from_secret(*bytes))
    }

    /// A new identity from 32 bytes of the caller's random generator.
    pub fn generate(random: &mut dyn FnMut(&mut [u8])) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        random(bytes.as_mut_slice());
        Self::from_secret(*bytes)
    }

    fn from_secret(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let recipient = Recipient {
            key: PublicKey::from(&secret).to_bytes(),
        };
        Self { secret, recipient }
    }

    /// The public key files for this identity are encrypted to.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The secret in its file form, `AGE-SECRET-KEY-1…`: only for writing an identity file.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.secret.to_bytes());
        Zeroizing::new(bech32::encode(IDENTITY_HRP, bytes.as_slice(), true))
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity(recipient {})", self.recipient)
    }
}

/// Why an identities or recipients file is not usable. Never contains secret material: a
/// line is named by its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// Larger than [`MAX_KEY_FILE`].
    TooLarge {
        /// The file's size.
        len: usize,
    },
    /// A line that is not UTF-8.
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is not a usable key.
    Key {
        /// 1-based line number.
        line: usize,
        /// Why.
        error: KeyError,
    },
    /// No key at all (only comments and blank lines).
    Empty,
    /// More keys than allowed.
    TooMany {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => {
                write!(f, "{len} bytes, more than the {MAX_KEY_FILE} allowed")
            }
            Self::NotUtf8 { line } => write!(f, "line {line}: not UTF-8"),
            Self::Key { line, error } => write!(f, "line {line}: {error}"),
            Self::Empty => f.write_str("no key in the file (only comments or blank lines)"),
            Self::TooMany { max } => write!(f, "more than {max} keys"),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// The key lines of an identities or recipients file, as age reads them: one key a line, `#`
/// comments and blank lines skipped, a trailing CR dropped; anything else is a key.
fn key_lines(
    text: &[u8],
    max: usize,
) -> Result<impl Iterator<Item = Result<(usize, &str), KeyFileError>>, KeyFileError> {
    if text.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge { len: text.len() });
    }
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let mut keys = 0usize;
    Ok(text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, raw)| {
            let line = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() || raw.starts_with(b"#") {
                return None;
            }
            let Ok(s) = std::str::from_utf8(raw) else {
                return Some(Err(KeyFileError::NotUtf8 { line }));
            };
            keys += 1;
            if keys > max {
                return Some(Err(KeyFileError::TooMany { max }));
            }
            Some(Ok((line, s)))
        }))
}

/// The identities stboot decrypts with: the trust policy directory's `decryption_identities`.
#[derive(Clone)]
pub struct Identities {
    list: Vec<Identity>,
}

impl Identities {
    /// Parses an identities file (age-keygen's output, or several concatenated): one
    /// `AGE-SECRET-KEY-1…` a line, `#` comments and blank lines allowed; at least one, at most
    /// [`MAX_IDENTITIES`]. Errors name the line, never its contents.
    pub fn parse(text: &[u8]) -> Result<Self, KeyFileError> {
        let mut list = Vec::new();
        for item in key_lines(text, MAX_IDENTITIES)? {
            let (line, s) = item?;
            list.push(Identity::parse(s).map_err(|error| KeyFileError::Key { line, error })?);
        }
        if list.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(Self { list })
    }

    /// From identities already parsed (at least one; more than [`MAX_IDENTITIES`] are refused).
    pub fn new(list: Vec<Identity>) -> Result<Self, KeyFileError> {
        match list.len() {
            0 => Err(KeyFileError::Empty),
            n if n > MAX_IDENTITIES => Err(KeyFileError::TooMany {
                max: MAX_IDENTITIES,
            }),
            _ => Ok(Self { list }),
        }
    }

    /// The identities, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Identity> {
        self.list.iter()
    }

    /// Their recipients (public keys), in file order: what a log line or a measurement may show.
    pub fn recipients(&self) -> impl Iterator<Item = &Recipient> {
        self.list.iter().map(Identity::recipient)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never true for a parsed value; here for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.recipients()).finish()
    }
}

/// Parses a recipients file as `age -R` reads it: one `age1…` a line, `#` comments and blank
/// lines allowed; at least one, at most [`MAX_RECIPIENTS`]. SSH and plugin recipients, which
/// age also accepts there, are refused with the line named.
pub fn parse_recipients(text: &[u8]) -> Result<Vec<Recipient>, KeyFileError> {
    let mut list = Vec::new();
    for item in key_lines(text, MAX_RECIPIENTS)? {
        let (line, s) = item?;
        list.push(Recipient::parse(s).map_err(|error| KeyFileError::Key { line, error })?);
    }
    if list.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(list)
}

//! The age v1 header: parsed strictly from its bytes (C2SP age.md, "Header"), unwrapped with
//! identities, and written for recipients.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::{aead, hkdf, hmac};
use zeroize::Zeroizing;

use crate::{AgeError, Identities, MAX_STANZAS};

/// The version line, and the first bytes of every v1 file.
pub(crate) const INTRO: &[u8] = b"age-encryption.org/v1\n";
/// How the header MAC line starts.
pub(crate) const MAC_PREFIX: &[u8] = b"---";
/// Base64 columns of a full stanza body line.
const COLUMNS: usize = 64;
/// Bytes a full body line holds.
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// The file key's length.
pub(crate) const FILE_KEY_LEN: usize = 16;
/// An X25519 stanza body: the wrapped file key and its tag.
const X25519_BODY_LEN: usize = FILE_KEY_LEN + 16;
/// Stanza types listed by name in a "no identity matches" error.
const MAX_LISTED_TYPES: usize = 4;

/// Canonical unpadded base64 (RFC 4648 §3.5): the engine rejects padding, non-zero trailing
/// bits and any character outside the alphabet (CR, LF, spaces).
pub(crate) fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

pub(crate) fn b64_encode(b: &[u8]) -> String {
    STANDARD_NO_PAD.encode(b)
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA-256 with 32 bytes of output, as age uses it everywhere.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    // 32 bytes is far below HKDF-SHA-256's 255 * 32 byte limit: `expand` and `fill` cannot
    // fail for it. Should they, the key stays zero and every tag check after it fails.
    if let Ok(okm) = prk.expand(&info, Len32) {
        let _ = okm.fill(out.as_mut_slice());
    }
    out
}

/// ChaCha20-Poly1305 under a 32-byte key.
pub(crate) fn aead_key(key: &[u8; 32]) -> Result<aead::LessSafeKey, AgeError> {
    // A key of the algorithm's length is `UnboundKey::new`'s only requirement.
    aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| AgeError::Internal("ChaCha20-Poly1305 key"))
}

fn header_mac_key(file_key: &[u8; FILE_KEY_LEN]) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        hkdf32(file_key, b"", b"header").as_slice(),
    )
}

/// A recipient stanza as parsed: type, further arguments, body.
struct Stanza<'a> {
    kind: &'a str,
    args: Vec<&'a str>,
    body: Vec<u8>,
    /// 1-based header line of the `->` line.
    line: usize,
}

/// An X25519 stanza, checked.
struct X25519Stanza {
    share: [u8; 32],
    body: [u8; X25519_BODY_LEN],
    line: usize,
}

/// A parsed header, ready to unwrap.
pub(crate) struct Header {
    x25519: Vec<X25519Stanza>,
    other_types: Vec<String>,
    mac: [u8; 32],
    /// The header bytes up to and including `---`: what the MAC covers.
    mac_input_len: usize,
}

fn malformed(line: usize, reason: &'static str) -> AgeError {
    AgeError::MalformedHeader { line, reason }
}

fn is_vchar_string(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|c| (33..=126).contains(c))
}

impl Header {
    /// Parses a complete header: `bytes` runs from the version line through the MAC line's LF.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, AgeError> {
        let rest = bytes.strip_prefix(INTRO).ok_or(AgeError::NotAgeFile)?;
        // Every line ends with LF: the caller cut the header after the MAC line's LF.
        let rest = rest
            .strip_suffix(b"\n")
            .ok_or(AgeError::Truncated(crate::Truncation::Header))?;
        let mut offset = INTRO.len();
        let mut lines = rest
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (i + 2, l));
        let mut stanzas = Vec::new();
        let (mac, mac_input_len) = loop {
            let Some((n, line)) = lines.next() else {
                return Err(AgeError::Truncated(crate::Truncation::Header));
            };
            let line_offset = offset;
            offset += line.len() + 1;
            if line.starts_with(MAC_PREFIX) {
                let mac = line
                    .strip_prefix(b"--- ")
                    .and_then(b64_decode)
                    .and_then(|m| <[u8; 32]>::try_from(m.as_slice()).ok())
                    .ok_or(malformed(
                        n,
                        "the MAC line is not \"--- \" and a 32-byte base64 MAC",
                    ))?;
                break (mac, line_offset + MAC_PREFIX.len());
            }
            let args = line.strip_prefix(b"-> ").ok_or(malformed(
                n,
                "expected a stanza (\"-> \") or the MAC line (\"--- \")",
            ))?;
            if stanzas.len() == MAX_STANZAS {
                return Err(AgeError::TooManyStanzas);
            }
            let mut parts = Vec::new();
            for a in args.split(|&b| b == b' ') {
                if !is_vchar_string(a) {
                    return Err(malformed(n, "empty or non-printable stanza argument"));
                }
                // Printable ASCII is UTF-8.
                parts.push(std::str::from_utf8(a).map_err(|_| malformed(n, "stanza argument"))?);
            }
            let Some((&kind, args)) = parts.split_first() else {
                return Err(malformed(n, "stanza without a type"));
            };
            let mut body = Vec::new();
            loop {
                let Some((m, body_line)) = lines.next() else {
                    return Err(AgeError::Truncated(crate::Truncation::Header));
                };
                offset += body_line.len() + 1;
                if body_line.len() > COLUMNS {
                    return Err(malformed(m, "stanza body line longer than 64 columns"));
                }
                let decoded = b64_decode(body_line).ok_or(malformed(
                    m,
                    "stanza body line is not canonical base64 (or the stanza has no final short line)",
                ))?;
                body.extend_from_slice(&decoded);
                if decoded.len() < BYTES_PER_LINE {
                    break;
                }
            }
            stanzas.push(Stanza {
                kind,
                args: args.to_vec(),
                body,
                line: n,
            });
        };
        // Nothing follows the MAC line inside `bytes` (the caller cuts there).
        if let Some((n, _)) = lines.next() {
            return Err(malformed(n, "bytes after the MAC line inside the header"));
        }

        let mut x25519 = Vec::new();
        let mut other_types: Vec<String> = Vec::new();
        let only_one = stanzas.len() == 1;
        for s in &stanzas {
            match s.kind {
                "scrypt" if only_one => return Err(AgeError::PassphraseNotSupported),
                "scrypt" => {
                    return Err(malformed(
                        s.line,
                        "an scrypt stanza must be the only stanza",
                    ));
                }
                "X25519" => x25519.push(X25519Stanza::check(s)?),
                other => {
                    if other_types.len() < MAX_LISTED_TYPES
                        && !other_types.iter().any(|t| t == other)
                    {
                        other_types.push(other.to_owned());
                    }
                }
            }
        }
        Ok(Self {
            x25519,
            other_types,
            mac,
            mac_input_len,
        })
    }

    /// Finds the file key with one of `identities`, then checks the header MAC over `bytes`
    /// (the same bytes [`Self::parse`] read).
    pub(crate) fn unwrap(
        &self,
        bytes: &[u8],
        identities: &Identities,
    ) -> Result<Zeroizing<[u8; FILE_KEY_LEN]>, AgeError> {
        let mut found = None;
        'outer: for id in identities.iter() {
            for s in &self.x25519 {
                let shared = id
                    .secret()
                    .diffie_hellman(&x25519_dalek::PublicKey::from(s.share));
                if !shared.was_contributory() {
                    return Err(AgeError::LowOrderShare { line: s.line });
                }
                let mut salt = [0u8; 64];
                salt[..32].copy_from_slice(&s.share);
                salt[32..].copy_from_slice(id.recipient().as_bytes());
                let wrap = aead_key(&hkdf32(shared.as_bytes(), &salt, X25519_LABEL))?;
                let mut body = Zeroizing::new(s.body);
                let zero = aead::Nonce::assume_unique_for_key([0; 12]);
                if let Ok(key) = wrap.open_in_place(zero, aead::Aad::empty(), body.as_mut_slice())
                    && let Ok(key) = <[u8; FILE_KEY_LEN]>::try_from(&*key)
                {
                    found = Some(Zeroizing::new(key));
                    break 'outer;
                }
            }
        }
        let Some(file_key) = found else {
            return Err(AgeError::NoIdentityMatches {
                identities: identities.len(),
                x25519_stanzas: self.x25519.len(),
                other_types: self.other_types.clone(),
            });
        };
        let covered = bytes
            .get(..self.mac_input_len)
            .ok_or(AgeError::BadHeaderMac)?;
        hmac::verify(&header_mac_key(&file_key), covered, &self.mac)
            .map_err(|_| AgeError::BadHeaderMac)?;
        Ok(file_key)
    }
}

impl X25519Stanza {
    fn check(s: &Stanza<'_>) -> Result<Self, AgeError> {
        let [share] = s.args.as_slice() else {
            return Err(malformed(
                s.line,
                "an X25519 stanza has exactly one argument",
            ));
        };
        let share = b64_decode(share.as_bytes())
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .ok_or(malformed(
                s.line,
                "the X25519 share is not canonical base64 of 32 bytes",
            ))?;
        let body = <[u8; X25519_BODY_LEN]>::try_from(s.body.as_slice())
            .map_err(|_| malformed(s.line, "the X25519 stanza body is not 32 bytes"))?;
        Ok(Self {
            share,
            body,
            line: s.line,
        })
    }
}

/// Writes a header for `file_key` to `recipients`, each stanza with a fresh ephemeral secret
/// from `random`.
pub(crate) fn write(
    recipients: &[crate::Recipient],
    file_key: &[u8; FILE_KEY_LEN],
    random: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, crate::EncryptError> {
    let mut out = INTRO.to_vec();
    for r in recipients {
        let mut eph = Zeroizing::new([0u8; 32]);
        random(eph.as_mut_slice());
        let secret = x25519_dalek::StaticSecret::from(*eph);
        let share = x25519_dalek::PublicKey::from(&secret);
        let shared = secret.diffie_hellman(&r.public_key());
        if !shared.was_contributory() {
            return Err(crate::EncryptError::LowOrderRecipient(*r));
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share.as_bytes());
        salt[32..].copy_from_slice(r.as_bytes());
        let wrap = aead_key(&hkdf32(shared.as_bytes(), &salt, X25519_LABEL))
            .map_err(|e| crate::EncryptError::Io(std::io::Error::other(e)))?;
        let mut body = Zeroizing::new(file_key.to_vec());
        let zero = aead::Nonce::assume_unique_for_key([0; 12]);
        // Sealing appends the tag; it fails only for inputs over 256 GiB.
        wrap.seal_in_place_append_tag(zero, aead::Aad::empty(), &mut *body)
            .map_err(|_| crate::EncryptError::Io(std::io::Error::other("sealing the file key")))?;
        out.extend_from_slice(b"-> X25519 ");
        out.extend_from_slice(b64_encode(share.as_bytes()).as_bytes());
        out.push(b'\n');
        // 32 bytes are 43 base64 columns: one short line ends the body.
        out.extend_from_slice(b64_encode(&body).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(MAC_PREFIX);
    let tag = hmac::sign(&header_mac_key(file_key), &out);
    out.push(b' ');
    out.extend_from_slice(b64_encode(tag.as_ref()).as_bytes());
    out.push(b'\n');
    Ok(out)
}

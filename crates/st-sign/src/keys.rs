//! Ed25519 keys in the file formats operators have.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// PKCS#8 v1 prefix for an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo prefix for an Ed25519 public key: the 32-byte key follows.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PEM file of a supported type.
    #[error("key: {0}")]
    Format(String),
    /// The key is not Ed25519.
    #[error("key: only Ed25519 keys are supported ({0})")]
    NotEd25519(String),
    /// An encrypted OpenSSH key.
    #[error("key: the OpenSSH key is encrypted (cipher {0}); decrypt it with ssh-keygen -p first")]
    Encrypted(String),
    /// No randomness available.
    #[error("key: the system random generator failed")]
    Random,
}

fn fmt_err(s: impl Into<String>) -> KeyError {
    KeyError::Format(s.into())
}

/// An Ed25519 signing key.
pub struct SigningKey {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({})",
            st_verify::key_fingerprint(&self.public())
        )
    }
}

/// SubjectPublicKeyInfo DER of a raw Ed25519 public key.
pub(crate) fn ed25519_spki_der(public: &[u8; 32]) -> Vec<u8> {
    [&SPKI_ED25519_PREFIX[..], public].concat()
}

impl SigningKey {
    /// A key from a 32-byte seed (deterministic: test vectors).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        Self::from_pkcs8([&PKCS8_ED25519_PREFIX[..], seed].concat())
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        Self::from_seed(&seed)
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|e| KeyError::NotEd25519(format!("PKCS#8 not an Ed25519 key: {e}")))?;
        Ok(Self { pkcs8, pair })
    }

    /// Read a private key file: PEM `PRIVATE KEY` (PKCS#8) or `OPENSSH PRIVATE KEY`
    /// (unencrypted). Exactly one PEM block.
    pub fn from_pem(bytes: &[u8]) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(bytes).map_err(|e| fmt_err(format!("malformed PEM: {e}")))?;
        let [block] = blocks.as_slice() else {
            return Err(fmt_err(format!(
                "{} PEM blocks, expected exactly one",
                blocks.len()
            )));
        };
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8(block.contents().to_vec()),
            "OPENSSH PRIVATE KEY" => Self::from_seed(&openssh_private_seed(block.contents())?),
            other => Err(fmt_err(format!(
                "PEM block is {other:?}; expected \"PRIVATE KEY\" (PKCS#8) or \"OPENSSH PRIVATE KEY\""
            ))),
        }
    }

    /// A second handle on the same key.
    pub fn clone_key(&self) -> Result<Self, KeyError> {
        Self::from_pkcs8(self.pkcs8.clone())
    }

    /// PKCS#8 PEM text (`PRIVATE KEY`), as stmgr writes.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The raw public key.
    pub fn public(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Ed25519 signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }

    /// The same key for rcgen.
    pub(crate) fn rcgen_key(&self) -> Result<rcgen::KeyPair, KeyError> {
        rcgen::KeyPair::try_from(self.pkcs8.as_slice())
            .map_err(|e| KeyError::NotEd25519(e.to_string()))
    }
}

/// Read a public key: PEM `PUBLIC KEY` (PKIX) or an `ssh-ed25519 AAAA... [comment]` line.
pub fn parse_public_key(bytes: &[u8]) -> Result<[u8; 32], KeyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| fmt_err("public key is not text"))?;
    if let Some(rest) = text.trim_start().strip_prefix("ssh-ed25519 ") {
        let b64 = rest.split_whitespace().next().unwrap_or_default();
        let blob = B64
            .decode(b64)
            .map_err(|_| fmt_err("ssh-ed25519 key is not base64"))?;
        let mut r = SshReader(&blob);
        if r.string()? != b"ssh-ed25519" {
            return Err(fmt_err("ssh key blob is not ssh-ed25519"));
        }
        return to_key(r.string()?);
    }
    if text.trim_start().starts_with("ssh-") {
        return Err(KeyError::NotEd25519(
            "OpenSSH public key of another type".into(),
        ));
    }
    let block = pem::parse(bytes).map_err(|e| fmt_err(format!("malformed PEM: {e}")))?;
    if block.tag() != "PUBLIC KEY" {
        return Err(fmt_err(format!(
            "PEM block is {:?}, expected \"PUBLIC KEY\"",
            block.tag()
        )));
    }
    let der = block.contents();
    match der.strip_prefix(&SPKI_ED25519_PREFIX[..]) {
        Some(key) => to_key(key),
        None => Err(KeyError::NotEd25519(
            "PKIX public key is not Ed25519".into(),
        )),
    }
}

fn to_key(bytes: &[u8]) -> Result<[u8; 32], KeyError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| fmt_err("Ed25519 key is not 32 bytes"))
}

/// Bounded reader for the OpenSSH wire encoding (RFC 4251 `string`, `uint32`).
struct SshReader<'a>(&'a [u8]);

impl<'a> SshReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeyError> {
        if self.0.len() < n {
            return Err(fmt_err("OpenSSH key is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, KeyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The Ed25519 seed inside an unencrypted `openssh-key-v1` blob.
fn openssh_private_seed(blob: &[u8]) -> Result<[u8; 32], KeyError> {
    let mut r = SshReader(blob);
    if r.take(15)? != b"openssh-key-v1\0" {
        return Err(fmt_err("not an openssh-key-v1 key"));
    }
    let cipher = r.string()?;
    if cipher != b"none" {
        return Err(KeyError::Encrypted(
            String::from_utf8_lossy(cipher).into_owned(),
        ));
    }
    let _kdf = r.string()?;
    let _kdf_options = r.string()?;
    if r.u32()? != 1 {
        return Err(fmt_err("OpenSSH key file holds more than one key"));
    }
    let _public = r.string()?;
    let mut p = SshReader(r.string()?);
    if p.u32()? != p.u32()? {
        return Err(fmt_err(
            "OpenSSH key check bytes differ (corrupt or encrypted)",
        ));
    }
    let kind = p.string()?;
    if kind != b"ssh-ed25519" {
        return Err(KeyError::NotEd25519(format!(
            "OpenSSH key type {}",
            String::from_utf8_lossy(kind)
        )));
    }
    let public = to_key(p.string()?)?;
    let secret = p.string()?;
    if secret.len() != 64 || secret[32..] != public {
        return Err(fmt_err("OpenSSH Ed25519 private key is malformed"));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&secret[..32]);
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_round_trip_and_openssh() {
        let k = SigningKey::from_seed(&[7u8; 32]).unwrap();
        let again = SigningKey::from_pem(k.to_pkcs8_pem().as_bytes()).unwrap();
        assert_eq!(k.public(), again.public());
        // Build an unencrypted openssh-key-v1 blob for the same seed.
        let s = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
        let pubblob = [s(b"ssh-ed25519"), s(&k.public())].concat();
        let secret = [&[7u8; 32][..], &k.public()].concat();
        let private = [
            &1234u32.to_be_bytes()[..],
            &1234u32.to_be_bytes(),
            &s(b"ssh-ed25519"),
            &s(&k.public()),
            &s(&secret),
            &s(b"comment"),
            &[1, 2, 3],
        ]
        .concat();
        let blob = [
            &b"openssh-key-v1\0"[..],
            &s(b"none"),
            &s(b"none"),
            &s(b""),
            &1u32.to_be_bytes(),
            &s(&pubblob),
            &s(&private),
        ]
        .concat();
        let pem_text = pem::encode(&pem::Pem::new("OPENSSH PRIVATE KEY", blob));
        assert_eq!(
            SigningKey::from_pem(pem_text.as_bytes()).unwrap().public(),
            k.public()
        );
        let line = format!("ssh-ed25519 {} me@host\n", B64.encode(&pubblob));
        assert_eq!(parse_public_key(line.as_bytes()).unwrap(), k.public());
        let spki = pem::encode(&pem::Pem::new("PUBLIC KEY", ed25519_spki_der(&k.public())));
        assert_eq!(parse_public_key(spki.as_bytes()).unwrap(), k.public());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            &b""[..],
            b"hello",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(SigningKey::from_pem(bad).is_err());
            assert!(parse_public_key(bad).is_err());
        }
    }
}

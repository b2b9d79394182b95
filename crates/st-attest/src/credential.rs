//! `TPM2_MakeCredential` in software (TPM 2.0 Part 1 §24, "Credential Protection"; Part 3
//! MakeCredential) for an RSA endorsement key: the verifier wraps a secret so that only the TPM
//! holding the EK can recover it, and only for the object with exactly the given name
//! (`TPM2_ActivateCredential`).
//!
//! ```text
//! seed          = caller's randomness (nameAlg digest size: 32 bytes for SHA-256)
//! encSecret     = RSA-OAEP(EK, hash nameAlg, label "IDENTITY\0")(seed)
//! symKey        = KDFa(nameAlg, seed, "STORAGE", name, "", symmetric key bits)
//! hmacKey       = KDFa(nameAlg, seed, "INTEGRITY", "", "", nameAlg digest bits)
//! encIdentity   = AES-CFB(symKey, IV = 0)(TPM2B_DIGEST(secret))
//! outerHMAC     = HMAC-nameAlg(hmacKey, encIdentity || name)
//! TPM2B_ID_OBJECT        = size || TPM2B_DIGEST(outerHMAC) || encIdentity
//! TPM2B_ENCRYPTED_SECRET = size || encSecret
//! ```
//!
//! Randomness is passed in (this crate has no random source): 32 bytes of seed and 32 bytes
//! for the OAEP padding.

use crate::tpm::{ALG_AES, ALG_CFB, HashAlg, ObjectAttributes, Public, PublicKey};
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use ring::hmac;
use rsa::traits::PublicKeyParts as _;

/// The credential the agent hands to `TPM2_ActivateCredential`: the two TPM2Bs as marshalled
/// (each with its u16 size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `TPM2B_ID_OBJECT` (the `credential_blob` of the quote request).
    pub id_object: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET` (the `encrypted_secret` of the quote request).
    pub encrypted_secret: Vec<u8>,
}

/// The caller's randomness for one credential.
#[derive(Clone)]
pub struct CredentialRandomness {
    /// The seed the keys are derived from (secret: whoever knows it can unwrap the credential).
    pub seed: [u8; 32],
    /// The OAEP padding seed.
    pub oaep_seed: [u8; 32],
}

impl std::fmt::Debug for CredentialRandomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialRandomness(..)")
    }
}

/// Why a credential could not be made for this EK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The EK is not an RSA key (ECC EKs need ECDH seeds, not implemented).
    #[error("the EK is {0}; only RSA EKs are supported")]
    NotRsa(String),
    /// The EK is not a restricted decryption (storage) key.
    #[error("the EK's attributes ({0}) are not those of a restricted decryption key")]
    NotStorageKey(String),
    /// The EK's nameAlg is not SHA-256.
    #[error("the EK's nameAlg is {0}; only sha256 is supported")]
    NameAlg(HashAlg),
    /// The EK's symmetric algorithm is not AES-CFB with 128 or 256 bits.
    #[error("the EK's symmetric algorithm is not AES-128/256-CFB")]
    Symmetric,
    /// The RSA key is unusable (size, exponent).
    #[error("the EK's RSA key is unusable: {0}")]
    Rsa(String),
    /// The secret is empty or longer than the digest.
    #[error("the secret is {0} bytes; 1 to 32 are allowed")]
    SecretSize(usize),
    /// The object name is empty or too long.
    #[error("the object name is {0} bytes; 3 to 66 are allowed")]
    NameSize(usize),
}

/// KDFa (TPM 2.0 Part 1 §11.4.10.2, SP 800-108 counter mode with HMAC): `bits` bits from
/// `key`, `label` (a NUL is appended), `context_u` and `context_v`.
pub fn kdfa(
    alg: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let hmac_alg = hmac_alg(alg);
    let key = hmac::Key::new(hmac_alg, key);
    let want = usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(want);
    let mut counter: u32 = 1;
    while out.len() < want {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        if label.last() != Some(&0) {
            ctx.update(&[0]);
        }
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(want);
    // Whole bytes only are ever asked for here (128, 256 bits).
    out
}

fn hmac_alg(alg: HashAlg) -> hmac::Algorithm {
    match alg {
        HashAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
        HashAlg::Sha512 => hmac::HMAC_SHA512,
    }
}

/// MGF1 with SHA-256 (RFC 8017 B.2.1).
fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&HashAlg::Sha256.hash(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// EME-OAEP encoding with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.1 step 2) into `k` bytes.
fn oaep_encode(
    message: &[u8],
    label: &[u8],
    k: usize,
    oaep_seed: &[u8; 32],
) -> Result<Vec<u8>, CredentialError> {
    const H: usize = 32;
    if k < 2 * H + 2 || message.len() > k - 2 * H - 2 {
        return Err(CredentialError::Rsa(format!(
            "a {k}-byte modulus cannot carry a {}-byte OAEP message",
            message.len()
        )));
    }
    let mut db = HashAlg::Sha256.hash(&[label]);
    db.resize(k - message.len() - H - 2, 0);
    db.push(1);
    db.extend_from_slice(message);
    let db_mask = mgf1_sha256(oaep_seed, k - H - 1);
    for (d, m) in db.iter_mut().zip(&db_mask) {
        *d ^= m;
    }
    let seed_mask = mgf1_sha256(&db, H);
    let mut em = Vec::with_capacity(k);
    em.push(0);
    em.extend(oaep_seed.iter().zip(&seed_mask).map(|(s, m)| s ^ m));
    em.extend_from_slice(&db);
    Ok(em)
}

/// RSA-OAEP-SHA256 encryption of `message` with `label` under (n, e), with the OAEP seed given.
pub fn rsa_oaep_sha256_encrypt(
    modulus: &[u8],
    exponent: u32,
    message: &[u8],
    label: &[u8],
    oaep_seed: &[u8; 32],
) -> Result<Vec<u8>, CredentialError> {
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from(exponent),
    )
    .map_err(|e| CredentialError::Rsa(e.to_string()))?;
    let k = key.size();
    let em = oaep_encode(message, label, k, oaep_seed)?;
    let c = rsa::hazmat::rsa_encrypt(&key, &rsa::BigUint::from_bytes_be(&em))
        .map_err(|e| CredentialError::Rsa(e.to_string()))?;
    let c = c.to_bytes_be();
    let mut out = vec![0u8; k.saturating_sub(c.len())];
    out.extend_from_slice(&c);
    Ok(out)
}

/// AES-CFB encryption with a zero IV (the TPM's credential and parameter encryption).
fn aes_cfb_encrypt(key: &[u8], data: &mut [u8]) -> Result<(), CredentialError> {
    fn run<C: BlockEncrypt + KeyInit>(key: &[u8], data: &mut [u8]) -> Result<(), CredentialError> {
        let cipher = C::new_from_slice(key).map_err(|_| CredentialError::Symmetric)?;
        let mut feedback = GenericArray::default();
        for chunk in data.chunks_mut(16) {
            let mut block = feedback.clone();
            cipher.encrypt_block(&mut block);
            for (d, k) in chunk.iter_mut().zip(block.iter()) {
                *d ^= k;
            }
            feedback = GenericArray::default();
            for (f, d) in feedback.iter_mut().zip(chunk.iter()) {
                *f = *d;
            }
        }
        Ok(())
    }
    match key.len() {
        16 => run::<aes::Aes128>(key, data),
        32 => run::<aes::Aes256>(key, data),
        _ => Err(CredentialError::Symmetric),
    }
}

fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    // Callers bound the sizes far below 64 KiB.
    let n = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Make a credential for the object named `name` (the AK's TPM name) under the RSA EK `ek`,
/// wrapping `secret` (1 to 32 bytes).
pub fn make_credential(
    ek: &Public,
    name: &[u8],
    secret: &[u8],
    random: &CredentialRandomness,
) -> Result<Credential, CredentialError> {
    let PublicKey::Rsa {
        symmetric,
        modulus,
        exponent,
        ..
    } = &ek.key
    else {
        return Err(CredentialError::NotRsa(ek.describe()));
    };
    let storage = ObjectAttributes::RESTRICTED | ObjectAttributes::DECRYPT;
    if !ek.attributes.has(storage) || ek.attributes.has(ObjectAttributes::SIGN) {
        return Err(CredentialError::NotStorageKey(ek.attributes.names()));
    }
    if ek.name_alg != HashAlg::Sha256 {
        return Err(CredentialError::NameAlg(ek.name_alg));
    }
    let sym_bits = match symmetric {
        Some(s)
            if s.algorithm == ALG_AES && s.mode == ALG_CFB && matches!(s.key_bits, 128 | 256) =>
        {
            u32::from(s.key_bits)
        }
        _ => return Err(CredentialError::Symmetric),
    };
    if secret.is_empty() || secret.len() > 32 {
        return Err(CredentialError::SecretSize(secret.len()));
    }
    if !(3..=66).contains(&name.len()) {
        return Err(CredentialError::NameSize(name.len()));
    }
    let alg = ek.name_alg;
    let seed = &random.seed;
    let encrypted =
        rsa_oaep_sha256_encrypt(modulus, *exponent, seed, b"IDENTITY\0", &random.oaep_seed)?;
    let sym_key = kdfa(alg, seed, b"STORAGE", name, &[], sym_bits);
    let hmac_key = kdfa(alg, seed, b"INTEGRITY", &[], &[], 256);
    let mut enc_identity = tpm2b(secret);
    aes_cfb_encrypt(&sym_key, &mut enc_identity)?;
    let key = hmac::Key::new(hmac_alg(alg), &hmac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&enc_identity);
    ctx.update(name);
    let outer = ctx.sign();
    let mut id = tpm2b(outer.as_ref());
    id.extend_from_slice(&enc_identity);
    Ok(Credential {
        id_object: tpm2b(&id),
        encrypted_secret: tpm2b(&encrypted),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rsa::{Oaep, RsaPrivateKey};

    #[test]
    fn kdfa_matches_the_counter_mode_definition() {
        // Two blocks: the second HMAC has counter 2; the label gets its NUL; L is the bit count.
        let out = kdfa(HashAlg::Sha256, b"key", b"STORAGE", b"u", b"v", 384);
        assert_eq!(out.len(), 48);
        let k = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let block = |i: u32| {
            let mut m = i.to_be_bytes().to_vec();
            m.extend_from_slice(b"STORAGE\0uv");
            m.extend_from_slice(&384u32.to_be_bytes());
            hmac::sign(&k, &m).as_ref().to_vec()
        };
        assert_eq!(out[..32], *block(1));
        assert_eq!(out[32..], block(2)[..16]);
        // A label that already ends in NUL is not given a second one.
        assert_eq!(
            kdfa(HashAlg::Sha256, b"key", b"STORAGE\0", b"u", b"v", 384),
            out
        );
    }

    #[test]
    fn oaep_decrypts_with_the_rsa_crate() {
        let mut rng = rand_core::OsRng;
        let sk = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let n = sk.n().to_bytes_be();
        let c = rsa_oaep_sha256_encrypt(&n, 65537, &[7; 32], b"IDENTITY\0", &[3; 32]).unwrap();
        assert_eq!(c.len(), 256);
        let padding = Oaep::new_with_label::<sha2::Sha256, _>("IDENTITY\0");
        assert_eq!(sk.decrypt(padding, &c).unwrap(), [7; 32]);
        // Another label does not decrypt.
        let padding = Oaep::new_with_label::<sha2::Sha256, _>("IDENTITY");
        assert!(sk.decrypt(padding, &c).is_err());
    }

    #[test]
    fn cfb_matches_a_known_vector() {
        // NIST SP 800-38A F.3.13 (CFB128-AES128.Encrypt), with its IV moved into the key
        // schedule's input: the first block's keystream is E(K, IV); with IV = 0 we check
        // against E(K, 0) computed by the aes crate directly.
        let key = [
            0x2bu8, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let mut data = [0u8; 20];
        aes_cfb_encrypt(&key, &mut data).unwrap();
        let cipher = aes::Aes128::new_from_slice(&key).unwrap();
        let mut b0 = GenericArray::default();
        cipher.encrypt_block(&mut b0);
        assert_eq!(data[..16], b0[..]);
        let mut b1 = GenericArray::clone_from_slice(&data[..16]);
        cipher.encrypt_block(&mut b1);
        assert_eq!(data[16..], b1[..4]);
    }
}

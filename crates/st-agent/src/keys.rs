//! The boot's service keys, made in RAM at start and never written anywhere: the WireGuard
//! (X25519) key of the demo service, and the TLS key and self-signed certificate of the agent's
//! own HTTPS endpoint (clients trust it through the binding, not through a CA).

use crate::binding::sha256;

/// The keys of one boot.
pub struct ServiceKeys {
    /// WireGuard private key.
    pub wireguard_secret: x25519_dalek::StaticSecret,
    /// Its public key.
    pub wireguard_public: [u8; 32],
    /// The TLS certificate (DER, self-signed, Ed25519).
    pub tls_certificate: Vec<u8>,
    /// The TLS private key (PKCS#8 DER).
    pub tls_key_pkcs8: Vec<u8>,
    /// SHA-256 of the TLS key's SubjectPublicKeyInfo (DER).
    pub tls_spki_sha256: [u8; 32],
}

/// Why keys could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The kernel's random source failed.
    #[error("no randomness")]
    Random,
    /// The certificate could not be made.
    #[error("TLS certificate: {0}")]
    Certificate(String),
}

impl ServiceKeys {
    /// Fresh keys from the kernel's random source.
    pub fn generate() -> Result<Self, KeyError> {
        use ring::rand::SecureRandom as _;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        let wireguard_secret = x25519_dalek::StaticSecret::from(seed);
        let wireguard_public = x25519_dalek::PublicKey::from(&wireguard_secret).to_bytes();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        let params = rcgen::CertificateParams::new(vec!["st-agent".to_owned()])
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| KeyError::Certificate(e.to_string()))?;
        Ok(Self {
            wireguard_secret,
            wireguard_public,
            tls_certificate: cert.der().to_vec(),
            tls_key_pkcs8: key.serialize_der(),
            tls_spki_sha256: sha256(&rcgen::PublicKeyData::subject_public_key_info(&key)),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_boot_has_new_keys_and_the_spki_hash_is_the_certificates() {
        let a = ServiceKeys::generate().unwrap();
        let b = ServiceKeys::generate().unwrap();
        assert_ne!(a.wireguard_public, b.wireguard_public);
        assert_ne!(a.tls_spki_sha256, b.tls_spki_sha256);
        assert_eq!(
            x25519_dalek::PublicKey::from(&a.wireguard_secret).to_bytes(),
            a.wireguard_public
        );
        // The SPKI inside the certificate hashes to the bound value.
        let (_, cert) = x509_parser::parse_x509_certificate(&a.tls_certificate).unwrap();
        assert_eq!(sha256(cert.public_key().raw), a.tls_spki_sha256);
    }
}

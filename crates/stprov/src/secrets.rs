//! The secrets of the one-time-password protocol, derived exactly as the reference does
//! (st-reference §9.3; Go `internal/secrets`, `internal/ssh`):
//!
//! * `derive(secret, label, context)` is HKDF-SHA256 with input key `secret`, salt = the
//!   decimal context number in ASCII (`"1"`, `"2"`), info = `"stprov:" + label`; outputs are
//!   prefixes of the HKDF output stream;
//! * `otp = derive(password, "otp", 1)` (32 bytes);
//! * the server's TLS key is the Ed25519 key whose seed is `derive(otp, "otp:keygen", 1)`, and
//!   its certificate is the one Go's `x509.CreateCertificate` makes from the reference's template
//!   (see [`server_certificate`]), so both sides derive the same bytes and the client pins them;
//! * HTTP basic auth: user [`BASIC_AUTH_USER`], password
//!   `hex(derive(otp, "otp:basicAuthPassword", 1))`;
//! * the unique device secret `uds = derive(remote_entropy || local_entropy, "uds", 1)`; the
//!   SSH host key seed is the first 32 bytes of `derive(uds, "uds:ssh", 1)` and the OpenSSH
//!   check word the next 4 (big-endian); identity and authentication are
//!   `hex(derive(uds, "uds:identity" | "uds:authentication", 1))`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::hkdf;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// User name of the protocol's HTTP basic auth.
pub const BASIC_AUTH_USER: &str = "example-user";
/// TLS server name both sides use (the certificate's only DNS name).
pub const SERVER_NAME: &str = "stprov";
/// Comment of the SSH host key.
pub const HOST_KEY_COMMENT: &str = "ospkg@system-transparency";
/// Bytes of entropy each side contributes.
pub const ENTROPY_BYTES: usize = 32;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The first `N` bytes of the reference's HKDF stream for `secret`, `label`, `context`.
pub fn derive<const N: usize>(secret: &[u8], label: &str, context: u32) -> [u8; N] {
    let salt = context.to_string();
    let info = format!("stprov:{label}");
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.as_bytes()).extract(secret);
    let mut out = [0u8; N];
    // HKDF-SHA256 gives up to 255 * 32 bytes; every N used here is at most 64.
    if let Ok(okm) = prk.expand(&[info.as_bytes()], Len(N)) {
        let _ = okm.fill(&mut out);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What both sides derive from the one-time password.
pub struct Otp {
    otp: [u8; 32],
}

impl Otp {
    /// The derivations of `password` (the string the operators share).
    pub fn new(password: &str) -> Self {
        Self {
            otp: derive(password.as_bytes(), "otp", 1),
        }
    }

    /// The basic-auth password (64 lower-case hex digits).
    pub fn basic_auth_password(&self) -> String {
        hex(&derive::<32>(&self.otp, "otp:basicAuthPassword", 1))
    }

    /// The Ed25519 seed of the server's TLS key.
    pub fn tls_seed(&self) -> [u8; 32] {
        derive(&self.otp, "otp:keygen", 1)
    }

    /// The server's certificate (DER) and its key as PKCS#8 v1 (DER).
    pub fn server_identity(&self) -> Result<(Vec<u8>, Vec<u8>), ring::error::Unspecified> {
        let seed = self.tls_seed();
        let key = Ed25519KeyPair::from_seed_unchecked(&seed)?;
        let cert = server_certificate(&key);
        Ok((cert, pkcs8_v1(&seed)))
    }
}

/// PKCS#8 v1 `PrivateKeyInfo` of an Ed25519 seed (RFC 8410).
fn pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

/// AlgorithmIdentifier for Ed25519.
const ED25519_ALG: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// DER tag-length-value (lengths below 64 KiB, which is all a certificate here needs).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// The self-signed certificate Go's `x509.CreateCertificate` produces for the reference's
/// template and `key`, byte for byte: v3, serial 0, Ed25519, empty issuer and subject, valid
/// from `time.Unix(0, 0)` (UTCTime 700101000000Z) to `time.Unix(MaxInt32, MaxInt32)`
/// (2^31 - 1 s plus 2.147 s = 2038-01-19T03:14:09Z), and Go's extension order: keyUsage
/// (critical; digitalSignature + dataEncipherment), extKeyUsage (clientAuth, serverAuth), and
/// subjectAltName `DNS:stprov` (critical because the subject is empty). Go makes no subject key
/// identifier for a non-CA certificate and no authority key identifier for a self-signed one.
/// Ed25519 signatures are deterministic, so the bytes depend only on the key.
pub fn server_certificate(key: &Ed25519KeyPair) -> Vec<u8> {
    let mut tbs = Vec::new();
    tbs.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]); // [0] version v3
    tbs.extend_from_slice(&[0x02, 0x01, 0x00]); // serial 0
    tbs.extend_from_slice(&ED25519_ALG);
    tbs.extend_from_slice(&[0x30, 0x00]); // issuer: empty
    let mut validity = tlv(0x17, b"700101000000Z");
    validity.extend_from_slice(&tlv(0x17, b"380119031409Z"));
    tbs.extend_from_slice(&tlv(0x30, &validity));
    tbs.extend_from_slice(&[0x30, 0x00]); // subject: empty
    let mut spki = ED25519_ALG.to_vec();
    let mut bits = vec![0x00];
    bits.extend_from_slice(key.public_key().as_ref());
    spki.extend_from_slice(&tlv(0x03, &bits));
    tbs.extend_from_slice(&tlv(0x30, &spki));
    let critical = [0x01, 0x01, 0xff];
    let mut exts = Vec::new();
    // keyUsage 2.5.29.15, critical: BIT STRING, 4 unused bits, 0x90.
    let mut ku = vec![0x06, 0x03, 0x55, 0x1d, 0x0f];
    ku.extend_from_slice(&critical);
    ku.extend_from_slice(&tlv(0x04, &[0x03, 0x02, 0x04, 0x90]));
    exts.extend_from_slice(&tlv(0x30, &ku));
    // extKeyUsage 2.5.29.37: clientAuth, serverAuth (the template's order).
    let oid = |last: u8| tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, last]);
    let mut ekus = oid(2);
    ekus.extend_from_slice(&oid(1));
    let mut eku = vec![0x06, 0x03, 0x55, 0x1d, 0x25];
    eku.extend_from_slice(&tlv(0x04, &tlv(0x30, &ekus)));
    exts.extend_from_slice(&tlv(0x30, &eku));
    // subjectAltName 2.5.29.17, critical (empty subject): dNSName "stprov".
    let mut san = vec![0x06, 0x03, 0x55, 0x1d, 0x11];
    san.extend_from_slice(&critical);
    san.extend_from_slice(&tlv(0x04, &tlv(0x30, &tlv(0x82, SERVER_NAME.as_bytes()))));
    exts.extend_from_slice(&tlv(0x30, &san));
    tbs.extend_from_slice(&tlv(0xa3, &tlv(0x30, &exts)));
    let tbs = tlv(0x30, &tbs);

    let signature = key.sign(&tbs);
    let mut sig_bits = vec![0x00];
    sig_bits.extend_from_slice(signature.as_ref());
    let mut cert = tbs;
    cert.extend_from_slice(&ED25519_ALG);
    cert.extend_from_slice(&tlv(0x03, &sig_bits));
    tlv(0x30, &cert)
}

/// The secret from which a platform's long-term secrets are derived.
pub struct DeviceSecret([u8; 32]);

impl DeviceSecret {
    /// `derive(remote || local, "uds", 1)`: `remote` is stprov remote's own entropy, `local`
    /// what stprov local sent.
    pub fn new(remote: &[u8; ENTROPY_BYTES], local: &[u8; ENTROPY_BYTES]) -> Self {
        let mut ikm = remote.to_vec();
        ikm.extend_from_slice(local);
        Self(derive(&ikm, "uds", 1))
    }

    /// The platform's SSH host key.
    pub fn host_key(&self) -> HostKey {
        let stream: [u8; 36] = derive(&self.0, "uds:ssh", 1);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&stream[..32]);
        let check = u32::from_be_bytes([stream[32], stream[33], stream[34], stream[35]]);
        HostKey { seed, check }
    }

    /// The legacy `identity` parameter (hex).
    pub fn identity(&self) -> String {
        hex(&derive::<32>(&self.0, "uds:identity", 1))
    }

    /// The legacy `authentication` parameter (hex).
    pub fn authentication(&self) -> String {
        hex(&derive::<32>(&self.0, "uds:authentication", 1))
    }
}

/// An Ed25519 SSH host key.
pub struct HostKey {
    seed: [u8; 32],
    check: u32,
}

fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

impl HostKey {
    fn public(&self) -> [u8; 32] {
        let mut p = [0u8; 32];
        if let Ok(k) = Ed25519KeyPair::from_seed_unchecked(&self.seed) {
            p.copy_from_slice(k.public_key().as_ref());
        }
        p
    }

    fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        ssh_string(&mut blob, b"ssh-ed25519");
        ssh_string(&mut blob, &self.public());
        blob
    }

    /// `ssh-ed25519 AAAA...` (an authorized_keys / known_hosts line without a comment).
    pub fn public_key_line(&self) -> String {
        format!("ssh-ed25519 {}", STANDARD.encode(self.public_blob()))
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.public_blob());
        format!("SHA256:{}", STANDARD_NO_PAD.encode(digest.as_ref()))
    }

    /// The unencrypted OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`), what
    /// the reference stores in `STHostKey`.
    pub fn openssh_pem(&self) -> String {
        let public = self.public();
        let mut private = self.check.to_be_bytes().to_vec();
        private.extend_from_slice(&self.check.to_be_bytes());
        ssh_string(&mut private, b"ssh-ed25519");
        ssh_string(&mut private, &public);
        let mut both = self.seed.to_vec();
        both.extend_from_slice(&public);
        ssh_string(&mut private, &both);
        ssh_string(&mut private, HOST_KEY_COMMENT.as_bytes());
        let mut pad = 1u8;
        while !private.len().is_multiple_of(8) {
            private.push(pad);
            pad += 1;
        }
        let mut body = b"openssh-key-v1\0".to_vec();
        ssh_string(&mut body, b"none");
        ssh_string(&mut body, b"none");
        ssh_string(&mut body, b"");
        body.extend_from_slice(&1u32.to_be_bytes());
        ssh_string(&mut body, &self.public_blob());
        ssh_string(&mut body, &private);
        let b64 = STANDARD.encode(body);
        let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
        pem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1 (HKDF-SHA256) through the same ring calls `derive` makes.
    #[test]
    fn hkdf_matches_rfc5869() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
        let mut out = [0u8; 42];
        prk.expand(&[&info], Len(42))
            .unwrap()
            .fill(&mut out)
            .unwrap();
        assert_eq!(
            hex(&out),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn derivations_are_separated_and_prefix_consistent() {
        let a: [u8; 32] = derive(b"secret", "label", 1);
        assert_ne!(a, derive::<32>(b"secret", "LABEL", 1));
        assert_ne!(a, derive::<32>(b"secret", "label", 2));
        assert_ne!(a, derive::<32>(b"SECRET", "label", 1));
        // A longer read is the same stream (the reference reads 32 + 4 from one reader).
        let long: [u8; 36] = derive(b"secret", "label", 1);
        assert_eq!(long[..32], a);
        let otp = Otp::new("cat");
        assert_eq!(otp.basic_auth_password().len(), 64);
        assert_ne!(
            otp.basic_auth_password(),
            Otp::new("dog").basic_auth_password()
        );
    }

    /// The certificate parses, is self-signed with the derived key, carries what the reference's
    /// template says, and is the same for the same password.
    #[test]
    fn server_certificate_has_the_reference_template() {
        let otp = Otp::new("correct horse");
        let (der, pkcs8) = otp.server_identity().unwrap();
        assert_eq!(der, Otp::new("correct horse").server_identity().unwrap().0);
        assert_ne!(der, Otp::new("other").server_identity().unwrap().0);
        assert_eq!(der.len(), 248);
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).unwrap();

        let (rest, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(cert.version(), x509_parser::x509::X509Version::V3);
        assert_eq!(cert.raw_serial(), &[0]);
        assert_eq!(cert.subject().as_raw(), &[0x30, 0x00]);
        assert_eq!(cert.validity().not_before.timestamp(), 0);
        assert_eq!(cert.validity().not_after.timestamp(), 2_147_483_649);
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.digital_signature() && ku.value.data_encipherment());
        assert!(!ku.value.key_encipherment());
        let eku = cert.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.client_auth && eku.value.server_auth && !eku.critical);
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(san.critical);
        assert_eq!(
            format!("{:?}", san.value.general_names),
            "[DNSName(\"stprov\")]"
        );
        assert_eq!(cert.extensions().len(), 3);
        // Self-signed with the derived key.
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&otp.tls_seed()).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            key.public_key().as_ref(),
        )
        .verify(cert.tbs_certificate.as_ref(), cert.signature_value.as_ref())
        .unwrap();
    }

    /// Byte for byte what Go derives (testdata/go-crosscheck: Go's own ed25519 and
    /// x509.CreateCertificate with the reference's template): certificate, basic-auth
    /// password, host key, identity, authentication.
    #[test]
    fn matches_go_vectors() {
        let text = include_str!("../testdata/go-crosscheck/expected.txt");
        let v: std::collections::BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once('=')).collect();
        let otp = Otp::new(v["password"]);
        let (der, _) = otp.server_identity().unwrap();
        assert_eq!(hex(&der), v["cert"]);
        assert_eq!(otp.basic_auth_password(), v["basic"]);
        let uds = DeviceSecret::new(&[1; 32], &[2; 32]);
        let hk = uds.host_key();
        assert_eq!(hk.public_key_line(), v["publickey"]);
        assert_eq!(hk.fingerprint(), v["fingerprint"]);
        assert_eq!(format!("{:08x}", hk.check), v["check"]);
        assert_eq!(uds.identity(), v["identity"]);
        assert_eq!(uds.authentication(), v["authentication"]);
    }

    /// The SSH key formats: the public line and fingerprint agree with the private file, which
    /// has the OpenSSH layout (magic, "none" cipher, matching check words, padding 1, 2, ...).
    #[test]
    fn host_key_formats() {
        let uds = DeviceSecret::new(&[1; 32], &[2; 32]);
        let hk = uds.host_key();
        let line = hk.public_key_line();
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{line}"
        );
        assert!(hk.fingerprint().starts_with("SHA256:"));
        assert_eq!(hk.fingerprint().len(), 7 + 43);
        let pem = hk.openssh_pem();
        let b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let body = STANDARD.decode(b64).unwrap();
        assert!(
            body.starts_with(b"openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01")
        );
        // The private block ends in the comment and the padding 1, 2, 3, 4.
        assert!(body.ends_with(b"ospkg@system-transparency\x01\x02\x03\x04"));
        // Different inputs, different secrets; identity and authentication differ.
        let other = DeviceSecret::new(&[1; 32], &[3; 32]);
        assert_ne!(other.host_key().fingerprint(), hk.fingerprint());
        assert_ne!(uds.identity(), uds.authentication());
        assert_eq!(uds.identity().len(), 64);
    }
}

//! Deterministic keys and certificates for the vectors.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SerialNumber, SubjectPublicKeyInfo,
};
use st_sign::{CertOptions, SigningKey};
use st_verify::{ArchiveDigest, UnixTime};

/// SubjectPublicKeyInfo DER of a fixed ECDSA P-256 public key (generated once with OpenSSL).
/// Only the public half is needed: the root signs the certificate, and the "signature" made
/// with it in the vectors is junk.
pub(crate) const P256_SPKI_DER: [u8; 91] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x22, 0x7e, 0x44, 0x03, 0x37,
    0x70, 0xad, 0xfd, 0xc3, 0x43, 0xd0, 0x12, 0xf9, 0xa1, 0x94, 0x79, 0x1d, 0x5f, 0xfe, 0x1c, 0xc7,
    0xa4, 0xba, 0x95, 0x10, 0xac, 0xb2, 0x96, 0xec, 0x55, 0xb1, 0x84, 0xbb, 0x6d, 0xfc, 0x37, 0x87,
    0xb9, 0xe0, 0x9d, 0x18, 0xac, 0xe2, 0xb6, 0xa8, 0x5b, 0x6b, 0xe0, 0xab, 0x35, 0xb9, 0xa6, 0x9b,
    0xa9, 0xb1, 0x8d, 0x30, 0x4e, 0x4d, 0xc9, 0xec, 0x06, 0xb7, 0x76,
];

/// SPKI prefix of a raw Ed25519 public key.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// OID of the unknown critical extension (a private-enterprise arc, meaningless).
pub(crate) const UNKNOWN_CRITICAL_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 99999, 42, 1];

pub(crate) type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// SHA-256 of a label: seeds and serials derive from names.
pub(crate) fn derive(label: &str) -> [u8; 32] {
    *ArchiveDigest::of(format!("st-testvectors/{label}").as_bytes()).as_bytes()
}

/// The Ed25519 key named `name` (seed = SHA-256("st-testvectors/key/" + name)).
pub(crate) fn key(name: &str) -> Result<SigningKey> {
    SigningKey::from_seed(&derive(&format!("key/{name}"))).map_err(err)
}

fn serial(name: &str) -> [u8; 16] {
    let d = derive(&format!("serial/{name}"));
    let mut s = [0u8; 16];
    s.copy_from_slice(&d[..16]);
    s[0] &= 0x7f;
    s[0] |= 0x01;
    s
}

fn time(s: &str) -> Result<UnixTime> {
    UnixTime::parse_rfc3339(s).ok_or_else(|| format!("bad time {s}"))
}

/// A validity window `[from, until]` (RFC 3339) and a serial derived from `name`.
pub(crate) fn opts(name: &str, from: &str, until: &str) -> Result<CertOptions> {
    Ok(CertOptions {
        not_before: time(from)?,
        not_after: time(until)?,
        serial: serial(name),
    })
}

/// Standard window of good certificates.
pub(crate) fn good_opts(name: &str) -> Result<CertOptions> {
    opts(name, "2020-01-01T00:00:00Z", "2099-12-31T23:59:59Z")
}

fn rcgen_key(k: &SigningKey) -> Result<rcgen::KeyPair> {
    let pem_text = k.to_pkcs8_pem();
    let block = pem::parse(pem_text.as_bytes()).map_err(err)?;
    rcgen::KeyPair::try_from(block.contents()).map_err(err)
}

fn pem_der(cert_pem: &str) -> Result<Vec<u8>> {
    Ok(pem::parse(cert_pem.as_bytes())
        .map_err(err)?
        .contents()
        .to_vec())
}

fn offset_time(t: UnixTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.as_secs()).map_err(err)
}

/// A key and its certificate (PEM).
pub(crate) struct Signer {
    /// The Ed25519 key (absent for the ECDSA leaf).
    pub key: Option<SigningKey>,
    /// PEM text of the certificate.
    pub cert: String,
}

/// A self-signed root as `stmgr keygen certificate` makes it.
pub(crate) fn root(name: &str) -> Result<Signer> {
    let k = key(name)?;
    let cert = st_sign::make_root(&k, &good_opts(name)?).map_err(err)?;
    Ok(Signer { key: Some(k), cert })
}

/// An ordinary leaf (st-sign's reference layout) for key `key_name`, issued by `root`.
pub(crate) fn leaf(key_name: &str, root: &Signer, o: &CertOptions) -> Result<Signer> {
    let k = key(key_name)?;
    let root_key = root.key.as_ref().ok_or("root without key")?;
    let cert = st_sign::make_leaf(&k.public(), &root.cert, root_key, o).map_err(err)?;
    Ok(Signer { key: Some(k), cert })
}

/// What is unusual about a hand-made certificate.
pub(crate) enum Twist {
    /// basicConstraints CA:TRUE, keyUsage digitalSignature + keyCertSign.
    Ca,
    /// extendedKeyUsage with only these purposes.
    Eku(Vec<ExtendedKeyUsagePurpose>),
    /// An unknown extension marked critical.
    UnknownCritical,
    /// keyUsage = contentCommitment (nonRepudiation) only: no digitalSignature.
    NoDigitalSignature,
}

/// A leaf with a [`Twist`], issued by `root`. `spki` overrides the subject key (ECDSA case).
pub(crate) fn custom_leaf(
    name: &str,
    root: &Signer,
    twist: Option<Twist>,
    spki: Option<&[u8]>,
) -> Result<Signer> {
    let o = good_opts(name)?;
    let k = key(name)?;
    let mut params = CertificateParams::default();
    params.not_before = offset_time(o.not_before)?;
    params.not_after = offset_time(o.not_after)?;
    params.serial_number = Some(SerialNumber::from_slice(&o.serial));
    let mut dn = DistinguishedName::new();
    let cn = match spki {
        Some(_) => format!("st-testvectors {name}"),
        None => st_sign::key_common_name(&k.public()),
    };
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    match twist {
        Some(Twist::Ca) => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        Some(Twist::Eku(p)) => params.extended_key_usages = p,
        Some(Twist::UnknownCritical) => {
            // Content: DER NULL.
            let mut ext = CustomExtension::from_oid_content(UNKNOWN_CRITICAL_OID, vec![0x05, 0x00]);
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        Some(Twist::NoDigitalSignature) => {
            params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
        }
        None => {}
    }
    let is_ed = spki.is_none();
    let ed_spki = [&SPKI_ED25519_PREFIX[..], &k.public()].concat();
    let spki = SubjectPublicKeyInfo::from_der(spki.unwrap_or(&ed_spki)).map_err(err)?;
    let root_key = root.key.as_ref().ok_or("root without key")?;
    let issuer = Issuer::from_ca_cert_der(&pem_der(&root.cert)?.into(), rcgen_key(root_key)?)
        .map_err(err)?;
    let cert = params.signed_by(&spki, &issuer).map_err(err)?.pem();
    let key = if is_ed { Some(k) } else { None };
    Ok(Signer { key, cert })
}

/// A self-signed CA made with key `key_name` but carrying the subject name of `real` (whose
/// names derive from its key): an impostor whose leaves name the real root as issuer.
pub(crate) fn impostor_root(key_name: &str, real: &Signer) -> Result<Signer> {
    let real_key = real.key.as_ref().ok_or("root without key")?;
    let o = good_opts(key_name)?;
    let k = key(key_name)?;
    let mut params = CertificateParams::default();
    params.not_before = offset_time(o.not_before)?;
    params.not_after = offset_time(o.not_after)?;
    params.serial_number = Some(SerialNumber::from_slice(&o.serial));
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        st_sign::key_common_name(&real_key.public()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&rcgen_key(&k)?).map_err(err)?.pem();
    Ok(Signer { key: Some(k), cert })
}

//! Test PKI for the HTTPS provisioning server: a CA, a server certificate for 10.0.2.2,
//! 127.0.0.1 and `localhost`, and a second, unrelated CA (the "wrong TLS root"). ECDSA P-256:
//! nginx/OpenSSL and stboot's rustls both take it.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};

/// PEM files written by [`make`].
#[derive(Clone, Debug)]
pub(crate) struct TestPki {
    /// The CA that issued the server certificate: the right TLS root for stboot.
    pub(crate) ca_cert: PathBuf,
    /// Server certificate (leaf only).
    pub(crate) server_cert: PathBuf,
    /// Server private key (PKCS#8).
    pub(crate) server_key: PathBuf,
    /// A CA unrelated to the server certificate: the wrong TLS root.
    pub(crate) other_ca_cert: PathBuf,
}

impl TestPki {
    /// The server's certificate and key, for nginx.
    pub(crate) fn server_files(&self) -> super::nginx::TlsFiles {
        super::nginx::TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
        }
    }
}

fn ca_params(name: &str) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2049, 12, 31);
    Ok(p)
}

/// Writes `ca.pem`, `server.pem`, `server.key`, `other-ca.pem` into `dir`.
pub(crate) fn make(dir: &Path) -> Result<TestPki> {
    fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let ca = ca_params("stboot e2e test TLS CA")?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut sp = CertificateParams::new(vec![
        "localhost".to_owned(),
        super::dns::DNS_NAME.to_owned(),
    ])?;
    sp.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2))));
    sp.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    sp.distinguished_name
        .push(DnType::CommonName, "stboot e2e provisioning server");
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.not_before = date_time_ymd(2020, 1, 1);
    sp.not_after = date_time_ymd(2049, 12, 31);
    let server_cert = sp.signed_by(&server_key, &issuer)?;

    let other_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let other = ca_params("stboot e2e unrelated TLS CA")?.self_signed(&other_key)?;

    let pki = TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        other_ca_cert: dir.join("other-ca.pem"),
    };
    fs::write(&pki.ca_cert, ca_cert.pem())?;
    fs::write(&pki.server_cert, server_cert.pem())?;
    fs::write(&pki.server_key, server_key.serialize_pem())?;
    fs::write(&pki.other_ca_cert, other.pem())?;
    Ok(pki)
}

//! `stmgr keygen certificate`.

use crate::cli::CertArgs;
use crate::files;
use anyhow::{Context as _, Result, anyhow};
use st_sign::{CertOptions, SigningKey};
use st_verify::UnixTime;
use std::path::{Path, PathBuf};

const YEAR: i64 = 365 * 24 * 3600;

fn read_key(path: &Path) -> Result<SigningKey> {
    let bytes = files::read_capped(path, "key", 64 << 10)?;
    SigningKey::from_pem(&bytes).with_context(|| format!("key {}", path.display()))
}

fn time_arg(value: Option<&String>, flag: &str) -> Result<Option<UnixTime>> {
    value
        .map(|t| {
            UnixTime::parse_rfc3339(t).ok_or_else(|| {
                anyhow!("--{flag} {t:?}: not an RFC 3339 time like 2027-01-01T00:00:00Z")
            })
        })
        .transpose()
}

fn random_serial() -> Result<[u8; 16]> {
    use ring::rand::SecureRandom as _;
    let mut serial = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| anyhow!("the system random generator failed"))?;
    Ok(serial)
}

pub(crate) fn certificate(a: &CertArgs) -> Result<()> {
    // Without a root to sign with, the result is a root (as the reference does).
    let is_root = a.is_ca || a.root_cert.is_none();
    if a.is_ca && a.root_cert.is_some() {
        eprintln!("stmgr: warning: --is-ca makes a self-signed root; ignoring --root-cert");
    }
    let not_before = match time_arg(a.not_before.as_ref(), "not-before")? {
        Some(t) => t,
        None => crate::ospkg::now()?,
    };
    let not_after = match time_arg(a.not_after.as_ref(), "not-after")? {
        Some(t) => t,
        None => UnixTime::from_secs(not_before.as_secs() + if is_root { 10 * YEAR } else { YEAR }),
    };
    let opts = CertOptions {
        not_before,
        not_after,
        serial: random_serial()?,
    };
    let (default_cert, default_key) = if is_root {
        ("rootcert.pem", "rootkey.pem")
    } else {
        ("cert.pem", "key.pem")
    };
    let cert_out = a
        .cert_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_cert));
    let key_out = a
        .key_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_key));

    let mut new_key = None;
    let cert_pem = if is_root {
        let key = match &a.root_key {
            Some(path) => read_key(path)?,
            None => new_key.insert(SigningKey::generate()?).clone_key()?,
        };
        st_sign::make_root(&key, &opts)?
    } else {
        let (Some(root_cert), Some(root_key)) = (&a.root_cert, &a.root_key) else {
            return Err(anyhow!("a leaf needs both --root-cert and --root-key"));
        };
        let root_pem = files::read_capped(root_cert, "root certificate", 64 << 10)?;
        let root_pem = String::from_utf8(root_pem)
            .map_err(|_| anyhow!("root certificate {}: not PEM text", root_cert.display()))?;
        let root_key = read_key(root_key)?;
        let leaf_public = match &a.leaf_key {
            Some(path) => {
                st_sign::parse_public_key(&files::read_capped(path, "leaf key", 64 << 10)?)
                    .with_context(|| format!("leaf key {}", path.display()))?
            }
            None => new_key.insert(SigningKey::generate()?).public(),
        };
        st_sign::make_leaf(&leaf_public, &root_pem, &root_key, &opts)
            .with_context(|| format!("signing with root {}", root_cert.display()))?
    };
    if let Some(key) = &new_key {
        files::write_bytes(&key_out, "private key", key.to_pkcs8_pem().as_bytes())?;
        eprintln!("stmgr: wrote private key {}", key_out.display());
    }
    files::write_bytes(&cert_out, "certificate", cert_pem.as_bytes())?;
    eprintln!(
        "stmgr: wrote {} certificate {} (valid {not_before} .. {not_after})",
        if is_root { "root" } else { "leaf" },
        cert_out.display()
    );
    Ok(())
}

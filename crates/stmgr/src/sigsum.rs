//! `stmgr ospkg sigsum`: attach a Sigsum proof (ST 1.3) to an OS package descriptor in place of
//! a plain signature, as the reference's `stmgr ospkg sigsum -proof -cert -ospkg` does.

use crate::files::{self, OspkgPaths};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use st_format::SignatureEntry;
use st_format::limits::MAX_CERTIFICATE_BYTES;
use st_verify::st_sigsum::{self, Proof};
use std::path::PathBuf;

/// Flags of `stmgr ospkg sigsum`.
#[derive(Args, Debug)]
pub(crate) struct SigsumArgs {
    /// The proof file sigsum-submit wrote for the archive (NAME.zip.proof; Sigsum ASCII proof,
    /// version 2 or 1). Its bytes go into the descriptor verbatim.
    #[arg(long, value_name = "FILE")]
    pub(crate) proof: PathBuf,
    /// Certificate (one PEM CERTIFICATE block) of the key that submitted the archive: its
    /// Ed25519 key must be the proof's leaf key.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: PathBuf,
    /// The OS package: NAME.zip, NAME.json or NAME.
    #[arg(long, value_name = "FILE")]
    pub(crate) ospkg: PathBuf,
}

pub(crate) fn attach(a: &SigsumArgs) -> Result<()> {
    let OspkgPaths { zip, json } = files::ospkg_paths(&a.ospkg)?;
    let proof_bytes = files::read_capped(&a.proof, "proof", st_sigsum::ascii::MAX_PROOF_BYTES)?;
    let proof = Proof::parse(&proof_bytes)
        .with_context(|| format!("proof {}: not a Sigsum proof", a.proof.display()))?;
    let cert_pem = files::read_capped(&a.cert, "certificate", MAX_CERTIFICATE_BYTES)?;
    let der = st_sign::single_certificate_der(&cert_pem)
        .with_context(|| format!("certificate {}", a.cert.display()))?;
    let key = st_verify::certificate_ed25519_key(&der)
        .map_err(|e| anyhow!("certificate {}: {e}", a.cert.display()))?
        .ok_or_else(|| {
            anyhow!(
                "certificate {}: its key is not Ed25519 (Sigsum leaves are signed with Ed25519)",
                a.cert.display()
            )
        })?;
    let mut descriptor = crate::ospkg::read_descriptor(&json)?;
    for (index, entry) in descriptor.entries().iter().enumerate() {
        let existing = st_verify::certificate_ed25519_key(entry.certificate_der())
            .ok()
            .flatten();
        if existing == Some(key) || entry.certificate_der() == der.as_slice() {
            bail!(
                "{}: signature {index} is already by this certificate's key; one key counts once",
                json.display()
            );
        }
    }
    let digest = crate::ospkg::hash_checked_archive(&zip, "attach a proof to")?;
    st_sigsum::check_leaf(&proof, &key, digest.as_bytes()).with_context(|| {
        format!(
            "proof {} does not fit {} and {}",
            a.proof.display(),
            zip.display(),
            a.cert.display()
        )
    })?;
    descriptor
        .push(SignatureEntry::new(cert_pem, proof_bytes).context("descriptor")?)
        .context("descriptor")?;
    files::write_bytes(&json, "descriptor", &descriptor.to_json())?;
    eprintln!(
        "stmgr: attached the Sigsum proof to {} ({} signature(s) now); the log, tree head and \
         witness cosignatures are checked by ospkg verify and stboot against ospkg_trust_policy",
        json.display(),
        descriptor.entries().len()
    );
    Ok(())
}

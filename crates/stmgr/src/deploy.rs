//! `stmgr deploy authorize`: a member of staff attests a server first and only then adds their
//! signature to its go-ahead (docs/attestation.md).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use st_format::SignatureEntry;
use st_format::go_ahead::{GoAhead, GoAheadStatement};
use st_sign::SigningKey;

use crate::files;

/// Deployment commands.
#[derive(Subcommand, Debug)]
pub(crate) enum DeployCommand {
    /// Attest a server's agent now (fresh nonce and credential), and only if the attestation
    /// verifies (the TPM, the event logs, the OS package under the trust policy, the binding),
    /// add your signature to the go-ahead that lets it start its service.
    ///
    /// The go-ahead names this boot (its attestation key and the binding of its service keys)
    /// and a validity window, so it cannot be replayed onto another boot or another server. The
    /// first signer creates --go-ahead; the next ones must name the same boot and add theirs.
    /// Then `stattest go-ahead --agent HOST:PORT --file FILE` posts it.
    Authorize(AuthorizeArgs),
}

/// `stmgr deploy authorize`.
#[derive(Args, Debug)]
pub(crate) struct AuthorizeArgs {
    /// Your Ed25519 private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Your certificate (PEM), issued under the deploy root the OS package trusts.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    #[command(flatten)]
    trust: stattest::check::TrustArgs,
    /// The go-ahead file: created if missing, else your signature is added.
    #[arg(long, value_name = "FILE")]
    go_ahead: PathBuf,
    /// How long a new go-ahead is valid, in seconds (from one minute ago).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    valid_for: u32,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `stmgr deploy authorize`.
pub(crate) fn authorize(a: &AuthorizeArgs) -> Result<()> {
    let key = SigningKey::from_pem(&files::read_capped(&a.key, "key", 64 << 10)?)
        .with_context(|| format!("key {}", a.key.display()))?;
    let cert_pem = files::read_capped(&a.cert, "certificate", 64 << 10)?;
    let cert_der = st_sign::single_certificate_der(&cert_pem)
        .with_context(|| format!("certificate {}", a.cert.display()))?;
    if st_verify::certificate_ed25519_key(&cert_der).map_err(anyhow::Error::msg)?
        != Some(key.public())
    {
        bail!(
            "certificate {} is not for key {}",
            a.cert.display(),
            a.key.display()
        );
    }
    let agent = &a.trust.agent;
    // Attest first: never authorise a server that booted the wrong package.
    let checked = stattest::check::check(agent, &a.trust.trust(), None)
        .map_err(|e| anyhow::anyhow!("{agent}: not authorising: {e}"))?;
    eprintln!("stmgr: attested {agent}: {}", checked.verdict.summary());
    let ak = st_attest::tpm::Public::parse(&checked.attestation.ak_public)
        .map_err(|e| anyhow::anyhow!("ak_public: {e}"))?;
    let ak_name = ak.name();
    let binding_sha256 =
        *st_verify::ArchiveDigest::of(checked.attestation.binding.as_bytes()).as_bytes();
    let mut go_ahead = if a.go_ahead.exists() {
        let bytes = files::read_capped(
            &a.go_ahead,
            "go-ahead",
            st_format::go_ahead::MAX_GO_AHEAD_BYTES,
        )?;
        let g = GoAhead::from_json(&bytes)
            .with_context(|| format!("go-ahead {}", a.go_ahead.display()))?;
        let st = g.statement();
        if st.ak_name != ak_name || st.binding_sha256 != binding_sha256 {
            bail!(
                "go-ahead {} names another boot (AK {}) than the one at {} (AK {}): not signing",
                a.go_ahead.display(),
                hex(&st.ak_name),
                agent,
                hex(&ak_name)
            );
        }
        if g.entries().iter().any(|e| {
            st_verify::certificate_ed25519_key(e.certificate_der())
                .ok()
                .flatten()
                == Some(key.public())
        }) {
            bail!(
                "go-ahead {}: this key already signed it",
                a.go_ahead.display()
            );
        }
        g
    } else {
        let t = now();
        GoAhead::new(GoAheadStatement {
            ak_name,
            binding_sha256,
            not_before: t - 60,
            not_after: t + i64::from(a.valid_for),
        })
    };
    let digest = st_verify::ArchiveDigest::of(go_ahead.statement().to_text().as_bytes());
    let signature = key.sign(digest.as_bytes());
    go_ahead.push(SignatureEntry::new(cert_pem, signature.to_vec()).context("certificate")?);
    files::write_bytes(&a.go_ahead, "go-ahead", &go_ahead.to_json())?;
    eprintln!(
        "stmgr: signed go-ahead {} for AK {} ({} signature(s) now)",
        a.go_ahead.display(),
        hex(&go_ahead.statement().ak_name),
        go_ahead.entries().len()
    );
    Ok(())
}

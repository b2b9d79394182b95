//! Sigsum logging for the e2e packages (ST 1.3), as an operator would do it with
//! `sigsum-submit` but without a network log: a fixed-seed in-memory log
//! (`st_sigsum::testlog`) with three witnesses, a 2-of-3 quorum. The package's signer key (the
//! PKCS#8 file of `stmgr keygen certificate`) signs the Sigsum leaf for SHA-256 of the archive;
//! the log includes it among filler leaves and writes a real proof (`NAME.zip.proof`, where
//! sigsum-submit leaves it), which `stmgr ospkg sigsum` attaches to the descriptor.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use st_sigsum::testlog::{TestKey, TestLog};

use super::{OsPkg, SigningKeys};
use crate::util::{cmd, run};

/// The time the witnesses state in their cosignatures (2025-11-14T22:13:20Z; stboot does not
/// check it, as sigsum-go does not).
const COSIGNED_AT: u64 = 1_763_158_400;

/// What logging a package left: the proof file and the Sigsum policy that trusts the log.
pub(crate) struct Logged {
    /// `NAME.zip.proof` next to the archive (already attached to the descriptor).
    pub(crate) proof: PathBuf,
    /// The `ospkg_trust_policy` text: the test log, three witnesses, quorum 2 of 3.
    pub(crate) policy: String,
}

/// A key of the test log from a one-byte label (fixed seeds: runs are reproducible).
fn key(label: u8) -> Result<TestKey> {
    TestKey::from_seed(&[label; 32]).ok_or_else(|| anyhow!("test log key {label}"))
}

fn witnesses() -> Result<[TestKey; 3]> {
    Ok([key(3)?, key(4)?, key(5)?])
}

/// The Sigsum policy (`ospkg_trust_policy`) that trusts the test log: its key, three
/// witnesses, a quorum of 2 of them.
pub(crate) fn policy() -> Result<String> {
    let w = witnesses()?;
    Ok(format!(
        "# e2e test log (in memory, fixed seeds)\n\
         {}\
         {}{}{}\
         group quorum-rule 2 witness-1 witness-2 witness-3\n\
         quorum quorum-rule\n",
        key(1)?.log_line(),
        w[0].witness_line("witness-1"),
        w[1].witness_line("witness-2"),
        w[2].witness_line("witness-3"),
    ))
}

/// The log's key hash (hex), as stboot names the log.
pub(crate) fn log_key_hash() -> Result<String> {
    Ok(key(1)?.key_hash().to_string())
}

/// Logs `pkg`'s archive, signed as a Sigsum leaf by `signer`'s key, in the test log (3 filler
/// leaves, the package's, 2 more; witnesses 1 and 3 of 3 cosign), writes the proof next to the
/// archive and attaches it with `stmgr ospkg sigsum --proof --cert --ospkg`.
pub(crate) fn log_and_attach(
    stmgr: &std::path::Path,
    signer: &SigningKeys,
    pkg: &OsPkg,
) -> Result<Logged> {
    let pem = fs::read(&signer.key).with_context(|| format!("reading {}", signer.key.display()))?;
    let submitter = st_sign::SigningKey::from_pem(&pem)
        .map_err(|e| anyhow!("{}: {e}", signer.key.display()))?;
    let zip = fs::read(&pkg.zip).with_context(|| format!("reading {}", pkg.zip.display()))?;
    let digest = *st_verify::ArchiveDigest::of(&zip).as_bytes();

    let (log_key, filler) = (key(1)?, key(2)?);
    let witnesses = witnesses()?;
    let policy = policy()?;
    let mut log = TestLog::new(log_key);
    for i in 0..3u8 {
        log.add(&filler, &[0xf0 | i; 32]);
    }
    let signature = submitter.sign(&st_sigsum::leaf_signed_data(&st_sigsum::leaf_checksum(
        &digest,
    )));
    let index = log.add_signed(
        &digest,
        st_sigsum::KeyHash::of(&submitter.public()),
        signature,
    );
    for i in 3..5u8 {
        log.add(&filler, &[0xf0 | i; 32]);
    }
    let [w1, _, w3] = &witnesses;
    let proof = log
        .proof(index, &[(w1, COSIGNED_AT), (w3, COSIGNED_AT + 1)])
        .context("test log proof")?;
    let mut proof_path = pkg.zip.clone().into_os_string();
    proof_path.push(".proof");
    let proof_path = PathBuf::from(proof_path);
    fs::write(&proof_path, proof.to_ascii())?;
    run(cmd(stmgr)
        .args(["ospkg", "sigsum", "--proof"])
        .arg(&proof_path)
        .arg("--cert")
        .arg(&signer.cert)
        .arg("--ospkg")
        .arg(&pkg.json))?;
    Ok(Logged {
        proof: proof_path,
        policy,
    })
}

//! `stmgr ospkg create | sign | verify`.

use crate::cli::{CreateArgs, SignArgs, VerifyArgs};
use crate::files::{self, FileSource, OspkgPaths};
use anyhow::{Context as _, Result, anyhow, bail};
use st_format::archive::{ArchiveLimits, OsPackageLayout};
use st_format::limits::{
    MAX_CERTIFICATE_BYTES, MAX_DESCRIPTOR_BYTES, MAX_ENTRY_BYTES, MAX_TOTAL_UNCOMPRESSED_BYTES,
};
use st_format::{Descriptor, Manifest};
use st_sign::SigningKey;
use st_verify::{Policy, SigningRoots, Threshold, TrustDir, UnixTime, VerifyError, VerifyReport};
use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

fn basename(path: &Path, what: &str) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("--{what} {}: not a file name", path.display()))
}

/// The size of a kernel or initramfs file for `ospkg create`: non-empty and within the one
/// entry cap stboot and `ospkg verify` apply ([`MAX_ENTRY_BYTES`]).
fn entry_len(path: &Path, what: &str) -> Result<u64> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {}: not a regular file", path.display());
    }
    if meta.len() == 0 {
        bail!("{what} {}: file is empty", path.display());
    }
    if meta.len() > MAX_ENTRY_BYTES {
        bail!(
            "{what} {}: {} bytes, over the {MAX_ENTRY_BYTES}-byte (2 GiB) limit for an OS package \
             entry (stboot and ospkg verify reject larger entries)",
            path.display(),
            meta.len()
        );
    }
    Ok(meta.len())
}

pub(crate) fn create(a: &CreateArgs) -> Result<()> {
    let OspkgPaths { zip, json } = files::create_paths(a.out.as_deref())?;
    let (kname, iname) = (
        basename(&a.kernel, "kernel")?,
        basename(&a.initramfs, "initramfs")?,
    );
    if kname == iname {
        bail!(
            "kernel and initramfs have the same file name {kname:?}; the archive needs two names"
        );
    }
    let total = entry_len(&a.kernel, "kernel")? + entry_len(&a.initramfs, "initramfs")?;
    let manifest = Manifest::new(
        &a.label,
        format!("boot/{kname}"),
        format!("boot/{iname}"),
        &a.cmdline,
    )
    .context("manifest")?;
    let all = total + manifest.to_json().len() as u64;
    if all > MAX_TOTAL_UNCOMPRESSED_BYTES {
        bail!(
            "kernel, initramfs and manifest total {all} bytes, over the \
             {MAX_TOTAL_UNCOMPRESSED_BYTES}-byte (4 GiB) limit for an OS package"
        );
    }
    let descriptor = Descriptor::unsigned(&a.url).context("--url")?;
    let kernel = File::open(&a.kernel).with_context(|| format!("kernel {}", a.kernel.display()))?;
    let initramfs =
        File::open(&a.initramfs).with_context(|| format!("initramfs {}", a.initramfs.display()))?;
    let bar = files::progress_bar(total, "create");
    files::write_atomic(&zip, "archive", |w| {
        let (kernel, initramfs) = (
            files::ReadAhead::new(kernel),
            files::ReadAhead::new(initramfs),
        );
        st_format::archive::write_os_package(w, &manifest, kernel, initramfs, &mut |n| bar.inc(n))?;
        Ok(())
    })?;
    bar.finish_and_clear();
    files::write_bytes(&json, "descriptor", &descriptor.to_json())?;
    eprintln!("stmgr: created {} and {}", zip.display(), json.display());
    Ok(())
}

pub(crate) fn read_descriptor(path: &Path) -> Result<Descriptor> {
    let bytes = files::read_capped(path, "descriptor", MAX_DESCRIPTOR_BYTES)?;
    Descriptor::from_json(&bytes).with_context(|| format!("descriptor {}", path.display()))
}

pub(crate) fn sign(a: &SignArgs) -> Result<()> {
    let OspkgPaths { zip, json } = files::ospkg_paths(&a.ospkg)?;
    let key_file = files::read_capped(&a.key, "key", 64 << 10)?;
    let key: Box<dyn st_sign::Ed25519Signer> = if crate::agent::is_public_key_line(&key_file) {
        Box::new(
            crate::agent::AgentKey::new(&key_file)
                .with_context(|| format!("key {}", a.key.display()))?,
        )
    } else {
        Box::new(
            SigningKey::from_pem(&key_file).with_context(|| format!("key {}", a.key.display()))?,
        )
    };
    let cert = files::read_capped(&a.cert, "certificate", MAX_CERTIFICATE_BYTES)?;
    let mut descriptor = read_descriptor(&json)?;
    let digest = hash_checked_archive(&zip, "sign")?;
    st_sign::sign_descriptor(&mut descriptor, &digest, key.as_ref(), &cert)
        .with_context(|| format!("signing with {} and {}", a.key.display(), a.cert.display()))?;
    files::write_bytes(&json, "descriptor", &descriptor.to_json())?;
    eprintln!(
        "stmgr: signed {} ({} signature(s) now)",
        json.display(),
        descriptor.entries().len()
    );
    Ok(())
}

/// SHA-256 of an archive that stboot would not refuse for its structure. Never sign (or attach
/// a proof to) what stboot and `ospkg verify` would reject (entry caps, zip tricks, manifest):
/// the index, the local headers and the manifest are read, not the entry data.
pub(crate) fn hash_checked_archive(zip: &Path, verb: &str) -> Result<st_verify::ArchiveDigest> {
    let src = FileSource::open(zip)?;
    OsPackageLayout::check(&src, &ArchiveLimits::default()).with_context(|| {
        format!(
            "refusing to {verb} {}: stboot would reject this archive",
            zip.display()
        )
    })?;
    let bar = files::progress_bar(st_format::ReadAt::len(&src), "hash");
    let digest = st_verify::hash_archive(&src, &|n| bar.set_position(n))
        .with_context(|| format!("reading archive {}", zip.display()))?;
    bar.finish_and_clear();
    Ok(digest)
}

pub(crate) fn now() -> Result<UnixTime> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow!("the system clock is before 1970"))?
        .as_secs();
    Ok(UnixTime::from_secs(i64::try_from(secs)?))
}

/// What `ospkg verify` judges by: a whole trust policy directory, or bare roots (threshold
/// "all", no Sigsum policy).
enum Trust {
    Dir(Box<TrustDir>),
    Roots(SigningRoots),
}

impl Trust {
    fn policy<'a>(&'a self, now: UnixTime, limits: &'a ArchiveLimits) -> Policy<'a> {
        match self {
            Self::Dir(dir) => dir.verify_policy(now, limits),
            Self::Roots(roots) => Policy::new(roots, Threshold::All, now, limits),
        }
    }
}

fn load_trust(a: &VerifyArgs) -> Result<Trust> {
    let read_roots = |path: &Path| -> Result<SigningRoots> {
        let bytes = files::read_capped(
            path,
            "signing roots",
            st_format::limits::MAX_ROOTS_FILE_BYTES,
        )?;
        SigningRoots::from_pem(&bytes).with_context(|| format!("signing roots {}", path.display()))
    };
    match (&a.trust_policy, &a.root_certs) {
        (Some(dir), _) => Ok(Trust::Dir(Box::new(files::load_trust_dir(dir)?))),
        (None, Some(file)) => Ok(Trust::Roots(read_roots(file)?)),
        (None, None) => bail!("give --trust-policy DIR or --root-certs FILE"),
    }
}

fn report_json(report: &VerifyReport) -> serde_json::Value {
    let signatures: Vec<_> = report
        .outcomes
        .iter()
        .map(|o| {
            let mut v = serde_json::json!({
                "index": o.index,
                "signer": o.signer.as_ref().map(|s| s.name.clone()),
                "key": o.signer.as_ref().and_then(|s| s.key.clone()),
                "kind": o.kind.as_str(),
                "counted": o.verdict.is_ok(),
                "reason": o.verdict.as_ref().err().map(ToString::to_string),
            });
            if let (Some(l), Some(obj)) = (&o.logged, v.as_object_mut()) {
                obj.insert(
                    "logged".into(),
                    serde_json::json!({
                        "log": l.log.to_string(),
                        "log_url": l.log_url,
                        "tree_size": l.tree_size,
                        "leaf_index": l.leaf_index,
                        "witnesses": l.witnesses,
                        "proof_version": match l.version {
                            st_verify::st_sigsum::ProofVersion::V1 { .. } => 1,
                            st_verify::st_sigsum::ProofVersion::V2 => 2,
                        },
                    }),
                );
            }
            v
        })
        .collect();
    serde_json::json!({
        "archive_sha256": report.archive_sha256,
        "time": report.time.to_string(),
        "threshold": report.threshold.to_string(),
        "found": report.found(),
        "valid": report.valid(),
        "signatures": signatures,
    })
}

pub(crate) fn verify(a: &VerifyArgs) -> Result<ExitCode> {
    let OspkgPaths { zip, json } = files::ospkg_paths(&a.ospkg)?;
    let now = match &a.at {
        Some(t) => UnixTime::parse_rfc3339(t)
            .ok_or_else(|| anyhow!("--at {t:?}: not an RFC 3339 time like 2027-01-01T00:00:00Z"))?,
        None => now()?,
    };
    let trust = load_trust(a)?;
    let reject = |stage: &str, reason: String, report: Option<&VerifyReport>| -> ExitCode {
        if a.json {
            let mut v = serde_json::json!({"verdict": "reject", "stage": stage, "reason": reason});
            if let (Some(r), Some(obj)) = (report, v.as_object_mut()) {
                obj.insert("report".into(), report_json(r));
            }
            println!("{v:#}");
        }
        if let Some(r) = report {
            eprintln!("{r}");
        }
        eprintln!("stmgr: rejected {}: {reason}", zip.display());
        ExitCode::from(1)
    };
    let descriptor = match read_descriptor(&json) {
        Ok(d) => d,
        Err(e) => return Ok(reject("descriptor", format!("{e:#}"), None)),
    };
    let src = FileSource::open(&zip)?;
    let limits = ArchiveLimits::default();
    let policy = trust.policy(now, &limits);
    let bar = files::progress_bar(st_format::ReadAt::len(&src), "verify");
    let result = st_verify::verify(&descriptor, &src, &policy, &|n| bar.set_position(n));
    bar.finish_and_clear();
    match result {
        Ok(verified) => {
            let r = verified.report();
            let m = verified.layout().manifest();
            if a.json {
                let mut v = serde_json::json!({
                    "verdict": "accept",
                    "report": report_json(r),
                    "manifest": {
                        "label": m.label(), "kernel": m.kernel(),
                        "initramfs": m.initramfs(), "cmdline": m.cmdline(),
                    },
                });
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("os_pkg_url".into(), descriptor.os_pkg_url().into());
                }
                println!("{v:#}");
            } else {
                println!("{r}");
                println!(
                    "stmgr: verified {}: kernel {}, initramfs {}, cmdline {:?}",
                    zip.display(),
                    m.kernel(),
                    m.initramfs(),
                    m.cmdline()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(VerifyError::Io(e)) => {
            Err(e).with_context(|| format!("reading archive {}", zip.display()))
        }
        Err(e @ VerifyError::ThresholdNotMet { .. }) => Ok(reject(
            "threshold",
            {
                let r = e.report();
                r.map_or_else(String::new, |r| {
                    format!(
                        "{} valid of {} signatures, {} required",
                        r.valid(),
                        r.found(),
                        r.threshold
                    )
                })
            },
            e.report(),
        )),
        Err(VerifyError::Archive { report, error }) => {
            Ok(reject("archive", error.to_string(), Some(&report)))
        }
        Err(e) => Ok(reject("verify", e.to_string(), e.report())),
    }
}

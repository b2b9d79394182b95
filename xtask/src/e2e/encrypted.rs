//! Encrypted OS packages (ST 1.2) end to end: an operator makes an identity with
//! `stmgr keygen age`, encrypts a signed package with `stmgr ospkg encrypt`, and puts the
//! identity into the image's trust policy directory; stboot decrypts the download and boots it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use super::bootbench::big_initramfs;
use super::hostconfig::HostConfigJson;
use super::nginx::NginxConfig;
use super::ospkg::OsPkgSpec;
use super::run::{Serve, StbootImage, StbootRun, TrustPolicy};
use super::{Ctx, OS_BOOTED};
use crate::util::{cmd, output, run, say};

/// `stmgr keygen age --out dir/<name>`: the identity file and its recipient.
fn identity(ctx: &Ctx<'_>, name: &str) -> Result<(PathBuf, String)> {
    let file = ctx.path(name);
    let printed = output(
        cmd(ctx.stmgr()?)
            .args(["keygen", "age", "--force", "--out"])
            .arg(&file),
    )?;
    let recipient = printed
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .context("stmgr keygen age printed no recipient")?
        .to_owned();
    Ok((file, recipient))
}

/// `stmgr ospkg encrypt --recipient R --ospkg <json> --out-dir <dir>`.
fn encrypt(ctx: &Ctx<'_>, json: &Path, recipient: &str, out_dir: &Path) -> Result<()> {
    run(cmd(ctx.stmgr()?)
        .args([
            "ospkg",
            "encrypt",
            "--force",
            "--recipient",
            recipient,
            "--ospkg",
        ])
        .arg(json)
        .arg("--out-dir")
        .arg(out_dir))
}

/// Fails unless both files start as binary age files.
fn ensure_encrypted(dir: &Path, name: &str) -> Result<()> {
    for ext in ["json", "zip"] {
        let path = dir.join(format!("{name}.{ext}"));
        let head = fs::read(&path).with_context(|| path.display().to_string())?;
        ensure!(
            head.starts_with(b"age-encryption.org/v1\n"),
            "{} is not an age file",
            path.display()
        );
    }
    Ok(())
}

/// The standard package, encrypted, served over HTTPS next to the plaintext one: stboot (with
/// the identity in its trust policy directory) decrypts descriptor and archive and boots it.
pub(crate) fn encrypted_package(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let (id, recipient) = identity(ctx, "decryption_identities")?;
    let enc = s.www.join("enc");
    encrypt(ctx, &s.www.join("os.json"), &recipient, &enc)?;
    ensure_encrypted(&enc, "os")?;
    let img = StbootImage::new(ctx, s.trust().decryption_identities(&id))
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/enc/os.json")?))
        .build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("descriptor was age-encrypted: decrypted")?;
    vm.ensure_line("archive is age-encrypted: decrypting as it arrives")?;
    vm.ensure_line("decrypted (age) and hashed on arrival")?;
    vm.ensure_line("/enc/os.zip")?;
    Ok(())
}

/// A 256 MiB package (kernel + initramfs with a random payload), encrypted, over plain HTTP
/// (encryption is what keeps it private there), booted in a 1024 MiB guest: decryption
/// streams into the one archive buffer, so no second copy is needed.
pub(crate) fn encrypted_256m(ctx: &Ctx<'_>) -> Result<()> {
    const MIB: u64 = 256;
    let kernel = ctx.env.kernel.vmlinuz.clone();
    let kernel_len = fs::metadata(&kernel)?.len();
    let initramfs = ctx.path("big-initramfs.cpio");
    big_initramfs(&initramfs, kernel_len, MIB << 20)?;
    let keys = ctx.signing_keys("keys")?;
    let spec = OsPkgSpec {
        kernel,
        initramfs,
        cmdline: "console=ttyS0 panic=-1 e2e.test=encrypted-256m".into(),
        url: "os.zip".into(),
        label: format!("encrypted {MIB} MiB"),
    };
    let pkg = ctx.ospkg("os", &spec, &[&keys])?;
    let (id, recipient) = identity(ctx, "decryption_identities")?;
    let www = ctx.path("www");
    encrypt(ctx, &pkg.json, &recipient, &www)?;
    ensure_encrypted(&www, "os")?;
    let size = fs::metadata(www.join("os.zip"))?.len();
    say!("e2e: encrypted archive {size} bytes");
    // The plaintext copy is not needed any more.
    fs::remove_file(&pkg.zip)?;
    let nginx = ctx.nginx(&NginxConfig::http(&www))?;
    let img = StbootImage::new(
        ctx,
        TrustPolicy::network(&keys.root_cert).decryption_identities(&id),
    )
    .host_config(&HostConfigJson::slirp().pointer(&nginx.http_url("/os.json")?))
    .build()?;
    // 1024 MiB is the harness's default guest.
    let vm = StbootRun::new(ctx, &img)
        .timeout(Duration::from_secs(600))
        .run()?;
    vm.ensure_line("decrypted (age) and hashed on arrival")?;
    ensure!(
        vm.lines()
            .iter()
            .any(|l| l.contains(OS_BOOTED) && l.contains("e2e.test=encrypted-256m")),
        "the 256 MiB OS did not report in"
    );
    if let Some(t) = vm.lines().iter().find(|l| l.contains("timing:")) {
        say!("e2e: {}", t.trim());
    }
    Ok(())
}

//! `stmgr ospkg encrypt` and `stmgr keygen age`: OS packages encrypted with age (st-1.2) to
//! X25519 recipients whose identities stboot holds in its trust policy directory.

use crate::files::{self, OspkgPaths};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use st_age::{Identity, MAX_KEY_FILE, Recipient};
use st_format::limits::MAX_DESCRIPTOR_BYTES;
use std::cell::Cell;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Where an identity goes in the stboot image, for help texts and messages.
const IDENTITIES_FILE: &str = "decryption_identities";

#[derive(Args, Debug)]
#[command(after_long_help = "\
stboot decrypts each file right after downloading it, with the identities in the file \
`decryption_identities` of the trust policy directory of its image (/etc/trust_policy/ in the \
stboot initramfs). Make one with `stmgr keygen age --out decryption_identities` (or \
age-keygen) and give its public key (age1...) here. Signatures are over the plaintext, so \
sign before or after encrypting: `ospkg sign` works on the plaintext package only.

The files are binary age v1 files, also readable by `age -d -i IDENTITY_FILE`; packages \
encrypted with `age -e -r age1...` (not -a/--armor, not -p) work with stboot as well.")]
pub(crate) struct EncryptArgs {
    /// The OS package to encrypt: NAME.zip, NAME.json or NAME (plaintext, normally signed).
    #[arg(long, value_name = "FILE")]
    pub(crate) ospkg: PathBuf,
    /// An X25519 recipient (`age1...`, as age-keygen or `stmgr keygen age` print it); repeat
    /// for more. Any one of their identities decrypts.
    #[arg(long, value_name = "RECIPIENT")]
    pub(crate) recipient: Vec<String>,
    /// A recipients file as `age -R` reads it: one `age1...` a line, `#` comments; repeatable.
    #[arg(long, value_name = "FILE")]
    pub(crate) recipients_file: Vec<PathBuf>,
    /// Directory to write NAME.json and NAME.zip to (both encrypted; created if missing).
    /// The descriptor's os_pkg_url is not changed.
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: PathBuf,
    /// Overwrite NAME.json / NAME.zip in --out-dir if they exist.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
#[command(after_long_help = "\
Put the file in the trust policy directory the stboot image is built from (stmgr image \
initramfs --trust-policy DIR), as DIR/decryption_identities: stboot then decrypts OS packages \
encrypted to the printed recipient. The image then holds a secret: keep it like one. Several \
identities may be concatenated into one file (one AGE-SECRET-KEY-1... a line).")]
pub(crate) struct AgeKeygenArgs {
    /// Identity file to write (mode 0600), in age-keygen's format; e.g. decryption_identities.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The system random generator as `st_age` wants it: failures are recorded in `failed`, and
/// the caller must check it after use.
fn system_random(failed: &Cell<bool>) -> impl FnMut(&mut [u8]) + '_ {
    use ring::rand::SecureRandom as _;
    let rng = ring::rand::SystemRandom::new();
    move |buf: &mut [u8]| {
        if rng.fill(buf).is_err() {
            failed.set(true);
        }
    }
}

fn check_random(failed: &Cell<bool>) -> Result<()> {
    if failed.get() {
        bail!("the system random generator failed");
    }
    Ok(())
}

fn recipients(a: &EncryptArgs) -> Result<Vec<Recipient>> {
    let mut list = Vec::new();
    for r in &a.recipient {
        list.push(Recipient::parse(r).with_context(|| format!("--recipient {r:?}"))?);
    }
    for path in &a.recipients_file {
        let bytes = files::read_capped(path, "recipients file", MAX_KEY_FILE)?;
        let parsed = st_age::parse_recipients(&bytes)
            .with_context(|| format!("recipients file {}", path.display()))?;
        list.extend(parsed);
    }
    let mut unique: Vec<Recipient> = Vec::with_capacity(list.len());
    for r in list {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if unique.is_empty() {
        bail!("no recipient: give --recipient age1... or --recipients-file FILE");
    }
    if unique.len() > st_age::MAX_RECIPIENTS {
        bail!(
            "{} recipients, more than the {} allowed",
            unique.len(),
            st_age::MAX_RECIPIENTS
        );
    }
    Ok(unique)
}

/// Refuses an input that is already age (binary or armored).
fn refuse_encrypted(path: &Path, prefix: &[u8], what: &str) -> Result<()> {
    if st_age::is_encrypted(prefix) || st_age::is_armored(prefix) {
        bail!("{what} {} is already age-encrypted", path.display());
    }
    Ok(())
}

fn out_path(dir: &Path, input: &Path, force: bool) -> Result<PathBuf> {
    let name = input
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file name", input.display()))?;
    let out = dir.join(name);
    if !force && out.symlink_metadata().is_ok() {
        bail!("{} exists; give --force to overwrite it", out.display());
    }
    Ok(out)
}

pub(crate) fn encrypt(a: &EncryptArgs) -> Result<()> {
    let OspkgPaths { zip, json } = files::ospkg_paths(&a.ospkg)?;
    let to = recipients(a)?;
    let descriptor = files::read_capped(&json, "descriptor", MAX_DESCRIPTOR_BYTES)?;
    refuse_encrypted(&json, &descriptor, "descriptor")?;
    st_format::Descriptor::from_json(&descriptor)
        .with_context(|| format!("descriptor {}", json.display()))?;
    let mut archive =
        std::fs::File::open(&zip).with_context(|| format!("archive {}", zip.display()))?;
    let archive_len = archive.metadata().map(|m| m.len()).unwrap_or(0);
    let mut prefix = [0u8; 64];
    let n = read_prefix(&mut archive, &mut prefix)
        .with_context(|| format!("archive {}", zip.display()))?;
    refuse_encrypted(&zip, &prefix[..n], "archive")?;

    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating --out-dir {}", a.out_dir.display()))?;
    let out_json = out_path(&a.out_dir, &json, a.force)?;
    let out_zip = out_path(&a.out_dir, &zip, a.force)?;

    let failed = Cell::new(false);
    let mut random = system_random(&failed);
    files::write_atomic(&out_json, "encrypted descriptor", |w| {
        st_age::encrypt(&to, descriptor.as_slice(), w, &mut random)?;
        check_random(&failed)
    })?;
    let bar = files::progress_bar(archive_len, "encrypt");
    files::write_atomic(&out_zip, "encrypted archive", |w| {
        let mut e = st_age::Encryptor::new(&to, w, &mut random)?;
        check_random(&failed)?;
        std::io::Write::write_all(&mut e, &prefix[..n])?;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = n as u64;
        loop {
            let k = match archive.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading archive {}", zip.display()));
                }
            };
            std::io::Write::write_all(&mut e, &buf[..k])?;
            done += k as u64;
            bar.set_position(done);
        }
        e.finish()?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let names: Vec<String> = to.iter().map(Recipient::to_string).collect();
    eprintln!(
        "stmgr: encrypted {} and {} to {}: {}",
        out_json.display(),
        out_zip.display(),
        if to.len() == 1 {
            "1 recipient".to_string()
        } else {
            format!("{} recipients", to.len())
        },
        names.join(", ")
    );
    Ok(())
}

fn read_prefix(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(crate) fn keygen(a: &AgeKeygenArgs) -> Result<()> {
    if !a.force && a.out.symlink_metadata().is_ok() {
        bail!("{} exists; give --force to overwrite it", a.out.display());
    }
    let failed = Cell::new(false);
    let id = Identity::generate(&mut system_random(&failed));
    check_random(&failed)?;
    let created = crate::ospkg::now()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let text = zeroize_string(format!(
        "# created: {created}\n# public key: {}\n# stboot: put this file in the trust policy directory as {IDENTITIES_FILE}\n{}\n",
        id.recipient(),
        id.to_secret_string().as_str()
    ));
    files::write_atomic(&a.out, "identity file", |w| {
        std::io::Write::write_all(w, text.as_bytes())?;
        Ok(())
    })?;
    eprintln!(
        "stmgr: wrote identity {} (mode 0600); its recipient:",
        a.out.display()
    );
    println!("{}", id.recipient());
    Ok(())
}

/// Text holding a secret, cleared when dropped.
fn zeroize_string(s: String) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(s)
}

//! The test OS: an initramfs with a static busybox and `testdata/e2e/os-init` as `/init`, booted
//! with the same Debian kernel; packed and signed into an OS package with the real `stmgr`.
//! Also a minimal cpio (newc) writer and signing keys / trust policy helpers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::util::{cmd, run};

/// `/init` of the test OS (a busybox shell script; see the file for its options and markers).
pub(crate) const OS_INIT: &str = include_str!("../../../testdata/e2e/os-init");

/// Printed by the test OS's `/init` once it runs, followed by ` cmdline=<cmdline>`.
pub(crate) const OS_BOOTED: &str = "STBOOT-E2E-OS-BOOTED";

/// Static busybox on the host (Debian `busybox-static`).
pub(crate) const BUSYBOX: &str = "/bin/busybox";

/// A cpio archive in the `newc` format, as the kernel unpacks it into its initial rootfs.
pub(crate) struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime: reproducible
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0,
            0,
            0,
            0,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.ino += 1;
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A directory (parents must be added first).
    pub(crate) fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, 0o040_755, &[]);
        self
    }

    /// A regular file with permission bits `perm` (e.g. `0o755`).
    pub(crate) fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100_000 | (perm & 0o7777), data);
        self
    }

    /// The archive bytes, with the trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }

    /// Writes the archive gzip-compressed to `out`.
    pub(crate) fn write_gz(self, out: &Path) -> Result<()> {
        let data = self.finish();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&data)?;
        fs::write(out, gz.finish()?).with_context(|| format!("writing {}", out.display()))
    }
}

/// Writes the test OS initramfs (`.cpio.gz`): `/init` = [`OS_INIT`] (or `init` if given),
/// `/bin/busybox`, and `modules` (in this order) as `/modules/NN-<name>.ko`.
pub(crate) fn test_os_initramfs(out: &Path, modules: &[PathBuf], init: Option<&str>) -> Result<()> {
    let busybox = fs::read(BUSYBOX)
        .with_context(|| format!("reading {BUSYBOX} (apt-get install busybox-static)"))?;
    let mut cpio = Cpio::new();
    cpio.dir("bin").file("bin/busybox", 0o755, &busybox).file(
        "init",
        0o755,
        init.unwrap_or(OS_INIT).as_bytes(),
    );
    if !modules.is_empty() {
        cpio.dir("modules");
        for (i, ko) in modules.iter().enumerate() {
            let name = ko
                .file_name()
                .and_then(|n| n.to_str())
                .context("module file name")?;
            let data = fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
            cpio.file(&format!("modules/{i:02}-{name}"), 0o644, &data);
        }
    }
    cpio.write_gz(out)
}

/// Appends `cpio`, uncompressed and 4-byte aligned, to the initramfs at `path` (the kernel
/// unpacks concatenated archives).
pub(crate) fn append_cpio(path: &Path, cpio: Cpio) -> Result<()> {
    let mut bytes = fs::read(path)?;
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    bytes.extend_from_slice(&cpio.finish());
    fs::write(path, bytes)?;
    Ok(())
}

/// An Ed25519 signing root and a leaf signed by it (made by `stmgr keygen certificate`).
#[derive(Clone, Debug)]
pub(crate) struct SigningKeys {
    /// Root certificate: goes into the trust policy as `ospkg_signing_root.pem`.
    pub(crate) root_cert: PathBuf,
    /// Root private key.
    pub(crate) root_key: PathBuf,
    /// Leaf certificate.
    pub(crate) cert: PathBuf,
    /// Leaf private key.
    pub(crate) key: PathBuf,
}

/// Makes a root and a leaf in `dir` (`root.pem`, `root.key`, `signer.pem`, `signer.key`).
pub(crate) fn signing_keys(stmgr: &Path, dir: &Path) -> Result<SigningKeys> {
    fs::create_dir_all(dir)?;
    let k = SigningKeys {
        root_cert: dir.join("root.pem"),
        root_key: dir.join("root.key"),
        cert: dir.join("signer.pem"),
        key: dir.join("signer.key"),
    };
    run(cmd(stmgr)
        .args(["keygen", "certificate", "--is-ca", "--cert-out"])
        .arg(&k.root_cert)
        .arg("--key-out")
        .arg(&k.root_key))?;
    run(cmd(stmgr)
        .args(["keygen", "certificate", "--root-cert"])
        .arg(&k.root_cert)
        .arg("--root-key")
        .arg(&k.root_key)
        .arg("--cert-out")
        .arg(&k.cert)
        .arg("--key-out")
        .arg(&k.key))?;
    Ok(k)
}

/// What goes into an OS package.
#[derive(Clone, Debug)]
pub(crate) struct OsPkgSpec {
    /// Kernel (bzImage).
    pub(crate) kernel: PathBuf,
    /// Initramfs.
    pub(crate) initramfs: PathBuf,
    /// Command line of the booted OS.
    pub(crate) cmdline: String,
    /// Archive URL written into the descriptor (may be empty or relative).
    pub(crate) url: String,
    /// Label.
    pub(crate) label: String,
}

/// An OS package on disk.
#[derive(Clone, Debug)]
pub(crate) struct OsPkg {
    /// `NAME.zip`.
    pub(crate) zip: PathBuf,
    /// `NAME.json` (the descriptor).
    pub(crate) json: PathBuf,
    /// What went in.
    pub(crate) spec: OsPkgSpec,
}

/// `stmgr ospkg create` to `out` (a path without extension) and `stmgr ospkg sign` once per
/// signer.
pub(crate) fn build_ospkg(
    stmgr: &Path,
    spec: &OsPkgSpec,
    out: &Path,
    signers: &[&SigningKeys],
) -> Result<OsPkg> {
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    run(cmd(stmgr)
        .args(["ospkg", "create", "--kernel"])
        .arg(&spec.kernel)
        .arg("--initramfs")
        .arg(&spec.initramfs)
        .args(["--cmdline", &spec.cmdline, "--url", &spec.url])
        .args(["--label", &spec.label, "--out"])
        .arg(out))?;
    let pkg = OsPkg {
        zip: out.with_extension("zip"),
        json: out.with_extension("json"),
        spec: spec.clone(),
    };
    if !pkg.zip.is_file() || !pkg.json.is_file() {
        bail!(
            "stmgr ospkg create did not write {}.{{zip,json}}",
            out.display()
        );
    }
    for s in signers {
        run(cmd(stmgr)
            .args(["ospkg", "sign", "--key"])
            .arg(&s.key)
            .arg("--cert")
            .arg(&s.cert)
            .arg("--ospkg")
            .arg(&pkg.json))?;
    }
    Ok(pkg)
}

/// Writes a trust policy directory: `trust_policy.json` (`threshold`, `fetch_method` =
/// `"network"` or `"initramfs"`), `ospkg_signing_root.pem` (the given roots concatenated) and,
/// if given, `tls_roots.pem`.
pub(crate) fn trust_policy_dir(
    dir: &Path,
    signing_roots: &[&Path],
    threshold: u32,
    fetch_method: &str,
    tls_roots: Option<&Path>,
) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("trust_policy.json"),
        format!(
            "{{\"ospkg_signature_threshold\": {threshold}, \"ospkg_fetch_method\": \"{fetch_method}\"}}\n"
        ),
    )?;
    let mut roots = String::new();
    for r in signing_roots {
        roots.push_str(&fs::read_to_string(r)?);
    }
    fs::write(dir.join("ospkg_signing_root.pem"), roots)?;
    if let Some(tls) = tls_roots {
        fs::copy(tls, dir.join("tls_roots.pem"))?;
    }
    Ok(())
}

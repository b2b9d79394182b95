//! `stmgr uki create | to-iso` (UEFI boot images, see `st_image::uki` and `st_image::iso`) and
//! the PE part of `stmgr image inspect`.

use crate::files;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use st_image::pe::{self, PeHeaders};
use st_image::uki::{self, Sbat, UkiInputs};
use std::path::{Path, PathBuf};

/// Cap on the kernel and on the initramfs (a UKI is a PE image: below 4 GiB in all).
const MAX_PART_BYTES: usize = 2 << 30;
/// Cap on the stub, the os-release and the SBAT file.
const MAX_SMALL_BYTES: usize = 16 << 20;
/// Cap on a UKI read by `to-iso` or `image inspect`.
pub(crate) const MAX_UKI_BYTES: usize = 4 << 30;

/// `stmgr uki` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum UkiCommand {
    /// Build a unified kernel image (UKI) and/or a UEFI-bootable ISO from a kernel and an
    /// initramfs (normally the stboot image).
    ///
    /// The UKI is the systemd EFI stub with the sections .osrel, .cmdline, .initrd and .linux
    /// (and .sbat with --sbat) added, page-aligned after the stub. The ISO holds the UKI as
    /// /EFI/BOOT/BOOTX64.EFI on a FAT32 image that its El Torito EFI entry boots. The same
    /// inputs always give the same bytes.
    Create(CreateArgs),
    /// Make a UEFI-bootable ISO from a UKI (as `create --format iso` does).
    ToIso(ToIsoArgs),
}

/// `--format` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// ISO 9660 with El Torito (OUT.iso).
    Iso,
    /// The UKI itself, a PE/COFF EFI application (OUT.uki).
    Uki,
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Linux kernel (bzImage with its EFI stub); goes into .linux.
    #[arg(long, value_name = "FILE")]
    pub(crate) kernel: PathBuf,
    /// Initramfs (the stboot image); goes into .initrd.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/tmp/initramfs.linux_amd64.cpio"
    )]
    pub(crate) initramfs: PathBuf,
    /// Kernel command line; .cmdline holds it followed by a newline. UEFI firmware or a boot
    /// loader passing its own command line replaces it when Secure Boot is off.
    #[arg(long, value_name = "STRING", default_value = "")]
    pub(crate) cmdline: String,
    /// os-release file for .osrel [default: NAME="stboot", PRETTY_NAME="System Transparency
    /// Boot Loader", ID=stboot, BUILD_ID=rolling].
    #[arg(long = "os-release", value_name = "FILE")]
    pub(crate) os_release: Option<PathBuf>,
    /// Output base name: OUT.uki and/or OUT.iso (a .uki or .iso suffix already there is
    /// kept).
    #[arg(long, value_name = "PATH", default_value = "stmgr")]
    pub(crate) out: PathBuf,
    /// Outputs to write, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "iso,uki",
        default_value = "iso"
    )]
    pub(crate) format: Vec<Format>,
    /// Replace an existing ISO (an existing UKI is always replaced, as in the Go stmgr).
    #[arg(long)]
    pub(crate) force: bool,
    /// The systemd EFI stub (an unsigned PE image).
    #[arg(long, value_name = "FILE", default_value = uki::DEBIAN_STUB_PATH)]
    pub(crate) stub: PathBuf,
    /// SBAT metadata (CSV) for .sbat, replacing the stub's [default: keep the stub's].
    #[arg(long, value_name = "FILE")]
    pub(crate) sbat: Option<PathBuf>,
    /// With --sbat: the stub's SBAT lines followed by the file's, instead of the file's only.
    #[arg(long, requires = "sbat")]
    pub(crate) append_sbat: bool,
    /// Sign the UKI for UEFI Secure Boot (Authenticode) with the certificate in this PEM
    /// file (needs --sign-key).
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    pub(crate) sign_cert: Option<PathBuf>,
    /// The certificate's RSA private key (PEM, PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE
    /// KEY", unencrypted).
    #[arg(long, value_name = "FILE", requires = "sign_cert")]
    pub(crate) sign_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct ToIsoArgs {
    /// The UKI (or any EFI application) to boot from the ISO.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: PathBuf,
    /// Output ISO [default: the input without a .uki suffix, plus .iso].
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// `PATH` with `suffix` appended unless it already ends with it (the reference's rule).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let s = path.as_os_str().to_string_lossy();
    if s.ends_with(suffix) {
        path.to_path_buf()
    } else {
        PathBuf::from(format!("{s}{suffix}"))
    }
}

/// The error for a stub that is not there; for the default path it names the package.
fn stub_not_found(path: &Path) -> anyhow::Error {
    if path == Path::new(uki::DEBIAN_STUB_PATH) {
        anyhow::anyhow!(
            "--stub {}: not found; install the Debian package systemd-boot-efi \
             (apt-get install systemd-boot-efi) or give the systemd EFI stub with --stub",
            path.display()
        )
    } else {
        anyhow::anyhow!("--stub {}: not found", path.display())
    }
}

fn read_stub(path: &Path) -> Result<Vec<u8>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(stub_not_found(path)),
        _ => files::read_capped(path, "EFI stub", MAX_SMALL_BYTES),
    }
}

fn write_iso(efi_app: &[u8], out: &Path, force: bool) -> Result<()> {
    if !force && out.exists() {
        bail!("{}: already exists (--force replaces it)", out.display());
    }
    let iso = st_image::iso::uefi_iso(efi_app).with_context(|| format!("ISO {}", out.display()))?;
    files::write_bytes(out, "ISO", &iso)?;
    eprintln!("stmgr: wrote {}: {} bytes", out.display(), iso.len());
    Ok(())
}

pub(crate) fn create(a: &CreateArgs) -> Result<()> {
    let stub = read_stub(&a.stub)?;
    let kernel = files::read_capped(&a.kernel, "kernel", MAX_PART_BYTES)?;
    let initramfs = files::read_capped(&a.initramfs, "initramfs", MAX_PART_BYTES)?;
    let os_release = a
        .os_release
        .as_deref()
        .map(|p| files::read_capped(p, "os-release", MAX_SMALL_BYTES))
        .transpose()?;
    let sbat_bytes = a
        .sbat
        .as_deref()
        .map(|p| files::read_capped(p, "SBAT file", MAX_SMALL_BYTES))
        .transpose()?;
    let sbat = match (&sbat_bytes, a.append_sbat) {
        (None, _) => Sbat::Keep,
        (Some(b), false) => Sbat::Replace(b),
        (Some(b), true) => Sbat::Append(b),
    };
    let image = uki::build(
        &stub,
        &UkiInputs {
            kernel: &kernel,
            initramfs: &initramfs,
            cmdline: &a.cmdline,
            os_release: os_release.as_deref(),
            sbat,
        },
    )
    .with_context(|| format!("--stub {}", a.stub.display()))?;
    let image = match (&a.sign_cert, &a.sign_key) {
        (Some(cert), Some(key)) => sign_pe(&image, cert, key)?,
        _ => image,
    };
    if a.format.contains(&Format::Uki) {
        let out = with_suffix(&a.out, ".uki");
        files::write_bytes(&out, "UKI", &image)?;
        eprintln!("stmgr: wrote {}: {} bytes", out.display(), image.len());
    }
    if a.format.contains(&Format::Iso) {
        write_iso(&image, &with_suffix(&a.out, ".iso"), a.force)?;
    }
    Ok(())
}

/// One PEM block of type `want` (or any of `want`) from `path`, as DER.
fn pem_file(path: &Path, what: &str, want: &[&str]) -> Result<(String, Vec<u8>)> {
    let text = files::read_capped(path, what, 1 << 20)?;
    let block = pem::parse(&text).with_context(|| format!("{what} {}", path.display()))?;
    if !want.contains(&block.tag()) {
        bail!(
            "{what} {}: a PEM {:?} block, expected {}",
            path.display(),
            block.tag(),
            want.join(" or ")
        );
    }
    Ok((block.tag().to_owned(), block.into_contents()))
}

/// Authenticode-signs `image` (RSA PKCS#1 v1.5, SHA-256).
fn sign_pe(image: &[u8], cert_path: &Path, key_path: &Path) -> Result<Vec<u8>> {
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let (_, cert) = pem_file(cert_path, "signing certificate", &["CERTIFICATE"])?;
    let (tag, key) = pem_file(key_path, "signing key", &["PRIVATE KEY", "RSA PRIVATE KEY"])?;
    let key = match tag.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&key),
        _ => RsaKeyPair::from_der(&key),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "signing key {}: not an RSA key ring accepts: {e}",
            key_path.display()
        )
    })?;
    let cert_key = st_image::authenticode::subject_public_key(&cert)
        .with_context(|| format!("signing certificate {}", cert_path.display()))?;
    if cert_key != key.public().as_ref() {
        bail!(
            "signing key {} does not belong to the certificate {}",
            key_path.display(),
            cert_path.display()
        );
    }
    let rng = ring::rand::SystemRandom::new();
    st_image::authenticode::sign(image, &cert, sha256, |msg| {
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .map_err(|e| e.to_string())?;
        Ok(sig)
    })
    .with_context(|| format!("signing with {}", cert_path.display()))
}

pub(crate) fn to_iso(a: &ToIsoArgs) -> Result<()> {
    let image = files::read_capped(&a.input, "UKI", MAX_UKI_BYTES)?;
    PeHeaders::parse(&image).with_context(|| format!("--in {}", a.input.display()))?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let s = a.input.as_os_str().to_string_lossy();
            PathBuf::from(format!("{}.iso", s.strip_suffix(".uki").unwrap_or(&s)))
        }
    };
    write_iso(&image, &out, a.force)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a section as it is in memory (its loaded bytes, then zeros up to VirtualSize),
/// without allocating VirtualSize bytes.
fn section_sha256(s: &pe::Section, file: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let loaded = s.loaded(file);
    ctx.update(loaded);
    let mut zeros = (s.virtual_size as usize).saturating_sub(loaded.len());
    let block = [0u8; 4096];
    while zeros > 0 {
        let n = zeros.min(block.len());
        ctx.update(&block[..n]);
        zeros -= n;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether `path` starts with the `MZ` of a PE image (unreadable: no, and the initramfs
/// inspection reports the error).
pub(crate) fn is_pe_file(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"MZ")
}

/// PCR 11 in `banks` after systemd-stub 252 measured this UKI's sections (st-measure computes).
pub(crate) fn stub_pcr11(
    h: &PeHeaders,
    bytes: &[u8],
    banks: &[st_measure::Bank],
) -> st_measure::PcrValues {
    let sections: Vec<(&str, Vec<u8>)> = uki::stub_252_pcr11_sections(h)
        .into_iter()
        .map(|(name, s)| (name, s.memory(bytes)))
        .collect();
    let refs: Vec<(&str, &[u8])> = sections.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    st_measure::systemd_stub_pcr11(&refs, banks)
}

/// `stmgr image inspect FILE` for a PE image.
pub(crate) fn inspect_file(path: &Path) -> Result<()> {
    let bytes = files::read_capped(path, "image", MAX_UKI_BYTES)?;
    inspect(path, &bytes)
}

/// `stmgr image inspect` of a PE image: the headers that matter for booting and every
/// section with its RVA, size, file range and the SHA-256 of its in-memory bytes (what the
/// systemd stub measures into PCR 11 for the UKI sections).
pub(crate) fn inspect(path: &Path, bytes: &[u8]) -> Result<()> {
    let h = PeHeaders::parse(bytes).with_context(|| format!("image {}", path.display()))?;
    let kind = match h.magic {
        pe::MAGIC_PE32_PLUS => "PE32+",
        _ => "PE32",
    };
    let computed = pe::checksum(bytes, h.checksum_offset());
    let cert = h.directory(pe::DIR_CERTIFICATE);
    println!(
        "{kind} machine {:#06x} subsystem {} entry {:#x} image base {:#x}",
        h.machine, h.subsystem, h.entry_point, h.image_base
    );
    println!(
        "SizeOfImage {:#x} SizeOfHeaders {:#x} SectionAlignment {:#x} FileAlignment {:#x}",
        h.size_of_image, h.size_of_headers, h.section_alignment, h.file_alignment
    );
    println!(
        "CheckSum {:#x} ({}) signature: {}",
        h.checksum,
        if computed == h.checksum {
            "matches".to_owned()
        } else {
            format!("computed {computed:#x}")
        },
        if cert.size == 0 {
            "none".to_owned()
        } else {
            format!(
                "certificate table at {:#x}, {} bytes",
                cert.address, cert.size
            )
        }
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10}  sha256",
        "section", "rva", "size", "offset", "raw size"
    );
    for s in &h.sections {
        println!(
            "{:<8} {:>#10x} {:>#10x} {:>#10x} {:>#10x}  {}",
            s.name(),
            s.virtual_address,
            s.virtual_size,
            s.raw_offset,
            s.raw_size,
            hex(&section_sha256(s, bytes))
        );
    }
    let is_uki = h.section(".linux").is_some();
    if is_uki {
        // What systemd-stub 252 extends into PCR 11 (sha256 bank), from a zero PCR.
        let pcrs = stub_pcr11(&h, bytes, &[st_measure::Bank::Sha256]);
        if let Some(pcr) = pcrs.get(st_measure::Bank::Sha256, st_measure::STUB_SECTIONS_PCR) {
            println!("PCR 11 (sha256) after systemd-stub 252: {}", hex(pcr));
        }
    }
    for name in [".osrel", ".cmdline", ".uname", ".sdmagic"] {
        if let Some(s) = h.section(name) {
            let text = String::from_utf8_lossy(s.loaded(bytes)).into_owned();
            println!("{name}: {:?}", text);
        }
    }
    eprintln!(
        "stmgr: {}: {kind} image, {} sections, {} bytes{}",
        path.display(),
        h.sections.len(),
        bytes.len(),
        if is_uki { ", a UKI" } else { "" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_default_stub_names_the_package() {
        let e = stub_not_found(Path::new(uki::DEBIAN_STUB_PATH)).to_string();
        assert!(e.contains("Debian package systemd-boot-efi"), "{e}");
        let e = stub_not_found(Path::new("my.stub")).to_string();
        assert_eq!(e, "--stub my.stub: not found");
    }

    #[test]
    fn output_suffixes_as_the_reference() {
        assert_eq!(with_suffix(Path::new("st"), ".uki"), Path::new("st.uki"));
        assert_eq!(
            with_suffix(Path::new("st.uki"), ".uki"),
            Path::new("st.uki")
        );
        assert_eq!(
            with_suffix(Path::new("st.uki"), ".iso"),
            Path::new("st.uki.iso")
        );
    }
}

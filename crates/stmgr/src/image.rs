//! `stmgr image initramfs | inspect`: build and list stboot images (see `st_image`).

use crate::cli::{ImageCompression, InitramfsArgs, InspectArgs};
use crate::files::{self, OspkgPaths};
use anyhow::{Context as _, Result, anyhow};
use st_format::limits::{MAX_DESCRIPTOR_BYTES, MAX_HOST_CONFIG_BYTES};
use st_image::cpio::mode;
use st_image::{Compression, Contents, StbootImage};
use std::fs::File;
use std::path::Path;

/// Cap on the stboot binary and on each module (both are a few MB at most).
const MAX_BINARY_BYTES: usize = 256 << 20;
/// Cap on an image read by `inspect` and on what it decompresses to.
const MAX_IMAGE_BYTES: usize = 4 << 30;

fn file_name(path: &Path, flag: &str) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("--{flag} {}: not a UTF-8 file name", path.display()))
}

pub(crate) fn initramfs(a: &InitramfsArgs) -> Result<()> {
    let stboot = files::read_capped(&a.stboot, "stboot binary", MAX_BINARY_BYTES)?;

    let dir = &a.trust_policy;
    let trust = files::load_trust_dir(dir)?;
    let host_config = a
        .host_config
        .as_deref()
        .map(|p| files::read_capped(p, "host config", MAX_HOST_CONFIG_BYTES))
        .transpose()?;
    let modules = a
        .modules
        .iter()
        .map(|p| {
            Ok((
                p,
                file_name(p, "module")?,
                files::read_capped(p, "module", MAX_BINARY_BYTES)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let ospkg = match &a.ospkg {
        None => None,
        Some(path) => {
            let OspkgPaths { zip, json } = files::ospkg_paths(path)?;
            let name = zip
                .file_stem()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow!("--ospkg {}: not a UTF-8 file name", path.display()))?
                .to_owned();
            let descriptor = files::read_capped(&json, "descriptor", MAX_DESCRIPTOR_BYTES)?;
            let archive = File::open(&zip).with_context(|| format!("archive {}", zip.display()))?;
            let len = archive
                .metadata()
                .with_context(|| format!("archive {}", zip.display()))?
                .len();
            Some((name, json, zip, descriptor, archive, len))
        }
    };

    let mut image =
        StbootImage::new(&stboot).with_context(|| format!("--stboot {}", a.stboot.display()))?;
    image
        .trust_dir(trust)
        .with_context(|| format!("--trust-policy {}", dir.display()))?;
    if let (Some(path), Some(bytes)) = (&a.host_config, &host_config) {
        image
            .host_config(bytes)
            .with_context(|| format!("--host-config {}", path.display()))?;
    }
    for (path, name, bytes) in &modules {
        image
            .module(name, bytes)
            .with_context(|| format!("--module {}", path.display()))?;
    }
    let mut ospkg_files = None;
    if let Some((name, json, zip, descriptor, archive, len)) = &ospkg {
        let reader = files::ReadAhead::new(
            archive
                .try_clone()
                .with_context(|| format!("archive {}", zip.display()))?,
        );
        image
            .os_package(
                name,
                descriptor,
                Contents::Reader {
                    len: *len,
                    reader: Box::new(reader),
                },
            )
            .with_context(|| format!("--ospkg {} and {}", json.display(), zip.display()))?;
        ospkg_files = Some(zip);
    }

    for w in image.warnings() {
        eprintln!("stmgr: warning: {w}");
    }
    let compression = match a.compression {
        ImageCompression::Gzip => Compression::Gzip,
        ImageCompression::None => Compression::None,
    };
    let mut summary = None;
    files::write_atomic(&a.out, "image", |w| {
        let s = image
            .write(w, compression)
            .map_err(|e| match (&e, ospkg_files) {
                // A length mismatch or read error of the streamed archive: name the file.
                (st_image::ImageError::Cpio(_), Some(zip)) => {
                    anyhow::Error::new(e).context(format!("archive {}", zip.display()))
                }
                _ => anyhow::Error::new(e),
            })?;
        summary = Some(s);
        Ok(())
    })?;
    if let Some(s) = summary {
        let compressed = match compression {
            Compression::Gzip => format!(", {} bytes gzip-compressed", s.output_bytes),
            Compression::None => String::new(),
        };
        eprintln!(
            "stmgr: wrote {}: {} entries, {} bytes cpio{compressed}",
            a.out.display(),
            s.entries,
            s.cpio_bytes
        );
    }
    Ok(())
}

pub(crate) fn inspect(a: &InspectArgs) -> Result<()> {
    let bytes = files::read_capped(&a.file, "image", MAX_IMAGE_BYTES)?;
    let cpio = st_image::uncompressed(&bytes, MAX_IMAGE_BYTES as u64)
        .with_context(|| format!("image {}", a.file.display()))?;
    let entries = st_image::cpio::read_archive(&cpio)
        .with_context(|| format!("image {}", a.file.display()))?;
    for e in &entries {
        let kind = match e.file_type() {
            mode::S_IFDIR => 'd',
            mode::S_IFREG => '-',
            mode::S_IFLNK => 'l',
            mode::S_IFCHR => 'c',
            _ => '?',
        };
        let size = match e.file_type() {
            mode::S_IFCHR => format!("{},{}", e.rdev_major, e.rdev_minor),
            _ => e.data.len().to_string(),
        };
        let target = match e.file_type() {
            mode::S_IFLNK => format!(" -> {}", String::from_utf8_lossy(e.data)),
            _ => String::new(),
        };
        println!(
            "{kind}{:04o} {:>4} {:>4} {size:>10} {}{target}",
            e.permissions(),
            e.uid,
            e.gid,
            e.name
        );
    }
    eprintln!(
        "stmgr: {}: {} entries, {} bytes cpio",
        a.file.display(),
        entries.len(),
        cpio.len()
    );
    Ok(())
}

//! Builds the stboot image: a reproducible initramfs (cpio newc, optionally gzip) that the
//! kernel unpacks and whose `/init` is stboot.
//!
//! Pure: the caller reads the files and passes bytes (or, for a large OS package archive, a
//! reader and its length); nothing here touches the filesystem or the clock.
//!
//! # Layout
//!
//! | path | mode | present |
//! |---|---|---|
//! | `dev proc sys run tmp etc etc/stboot etc/trust_policy lib lib/modules` | dir 0755 | always |
//! | `ospkg` | dir 0755 | with an OS package |
//! | `dev/console` | char 5:1, 0600 | always |
//! | `init` | 0755 | always: the stboot binary |
//! | `etc/trust_policy/trust_policy.json` | 0644 | always |
//! | `etc/trust_policy/ospkg_signing_root.pem` | 0644 | always |
//! | `etc/trust_policy/tls_roots.pem` | 0644 | when given |
//! | `etc/trust_policy/ospkg_trust_policy` | 0644 | when the directory has one (Sigsum policy, ST 1.3) |
//! | `etc/host_configuration.json` | 0644 | when given |
//! | `lib/modules/<name>.ko` | 0644 | one per module |
//! | `etc/stboot/modules.order` | 0644 | when modules are given: their names, one a line, in load order |
//! | `ospkg/<name>.json`, `ospkg/<name>.zip` | 0644 | with an OS package (initramfs fetch method) |
//!
//! Entries are written directories first (sorted by path, so parents come first), then every
//! other entry sorted by path (byte order). uid, gid and mtime are 0 and inodes are numbered in
//! write order, so the same inputs give the same bytes; gzip output has mtime 0 and no file
//! name. Input files are copied byte for byte.

mod elf;

pub mod authenticode;
pub mod cpio;
pub mod fat;
pub mod iso;
pub mod pe;
pub mod uki;

use cpio::{CpioError, CpioWriter};
use st_format::image::{effective_fetch_method, trust_files};
use st_format::{Descriptor, DescriptorError, FetchMethod, HostConfig, HostConfigError};
use st_verify::{TrustDir, TrustDirError};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};

/// Directories of every image (0755).
pub const DIRECTORIES: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "run",
    "tmp",
    "etc",
    "etc/stboot",
    "etc/trust_policy",
    "lib",
    "lib/modules",
];
/// stboot itself.
pub const INIT_PATH: &str = st_format::image::paths::INIT;
/// The console device node (c 5 1), so that PID 1 starts with stdio on the console.
pub const CONSOLE_PATH: &str = st_format::image::paths::CONSOLE;
/// Trust policy directory inside the image.
pub const TRUST_POLICY_DIR: &str = st_format::image::paths::TRUST_POLICY_DIR;
/// Host config inside the image.
pub const HOST_CONFIG_PATH: &str = st_format::image::paths::HOST_CONFIG;
/// Kernel modules directory.
pub const MODULES_DIR: &str = st_format::image::paths::MODULES_DIR;
/// Module load order, one file name a line.
pub const MODULES_ORDER_PATH: &str = st_format::image::paths::MODULES_ORDER;
/// OS package directory for the initramfs fetch method.
pub const OSPKG_DIR: &str = st_format::image::paths::OSPKG_DIR;

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip, level 9, mtime 0, no file name (the kernel's `RD_GZIP`).
    #[default]
    Gzip,
    /// The bare cpio archive.
    None,
}

/// Bytes of a file in the image: in memory, or read when the image is written.
pub enum Contents<'a> {
    /// In memory.
    Bytes(&'a [u8]),
    /// Exactly `len` bytes from `reader`, read once while writing.
    Reader {
        /// Length; the reader must hold exactly this many bytes.
        len: u64,
        /// The bytes.
        reader: Box<dyn Read + 'a>,
    },
}

impl Contents<'_> {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Reader { len, .. } => *len,
        }
    }
}

impl fmt::Debug for Contents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Contents({} bytes)", self.len())
    }
}

/// Why an image was refused. Each message names the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The stboot binary is not an ELF program.
    #[error("stboot binary: {0}")]
    Stboot(String),
    /// A file of the trust policy directory is invalid (the message names it).
    #[error("{0}")]
    TrustDir(#[source] TrustDirError),
    /// The host config is invalid (the message starts with "host config").
    #[error("{0}")]
    HostConfig(#[source] HostConfigError),
    /// A module name or module file is unusable.
    #[error("module {name:?}: {reason}")]
    Module {
        /// The file name given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The OS package name is unusable.
    #[error("OS package name {name:?}: {reason}")]
    OsPackageName {
        /// The name given.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The OS package descriptor is invalid.
    #[error("OS package {name:?}: {source}")]
    Descriptor {
        /// The package name.
        name: String,
        /// Why.
        source: DescriptorError,
    },
    /// The OS package archive is not a zip file.
    #[error("OS package {name:?}: archive: {reason}")]
    Archive {
        /// The package name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An input that may be given once was given twice.
    #[error("{0} given twice")]
    Repeated(&'static str),
    /// No trust policy: stboot cannot boot anything without one.
    #[error("no trust policy given; stboot needs one")]
    NoTrustPolicy,
    /// Writing the cpio archive failed (includes the length of a reader not matching).
    #[error(transparent)]
    Cpio(#[from] CpioError),
    /// Writing the output failed.
    #[error("writing the image: {0}")]
    Io(#[from] io::Error),
}

/// Something that does not stop the image from being built but that the operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The stboot binary needs a program interpreter (dynamic loader), which the image does not
    /// hold: the kernel cannot start it as `/init`.
    DynamicallyLinked {
        /// The `PT_INTERP` path.
        interpreter: String,
    },
    /// Network fetch method without `tls_roots.pem`.
    NoTlsRoots,
    /// Initramfs fetch method without an OS package in the image.
    NoOsPackage,
    /// An OS package in the image, but the trust policy fetches over the network.
    OsPackageUnused {
        /// The package name.
        name: String,
    },
    /// The host config in the image points stboot at other initramfs paths than the OS
    /// package in the image.
    PointerMismatch {
        /// Where stboot will look (`ospkg/X.json`), or why the pointer is no file name.
        expected: String,
        /// The descriptor path in the image.
        built: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DynamicallyLinked { interpreter } => write!(
                f,
                "the stboot binary is dynamically linked (interpreter {interpreter}); the image \
                 holds no libraries, so the kernel will fail to start it as /init; build it \
                 static"
            ),
            Self::NoTlsRoots => write!(
                f,
                "the trust policy fetches over the network but has no tls_roots.pem: stboot \
                 will only be able to fetch OS packages over plain http"
            ),
            Self::NoOsPackage => write!(
                f,
                "the trust policy fetch method is \"initramfs\" but the image holds no OS \
                 package: stboot will have nothing to boot"
            ),
            Self::OsPackageUnused { name } => write!(
                f,
                "OS package {name:?} is in the image, but the trust policy fetch method is \
                 \"network\": stboot will not use it (only a package named \"provision\" is \
                 used: as the provisioning fallback and when normal boot fails)"
            ),
            Self::PointerMismatch { expected, built } => write!(
                f,
                "the host config's ospkg_pointer makes stboot read {expected}, but the image \
                 holds {built}"
            ),
        }
    }
}

/// What [`StbootImage::write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// cpio entries (not counting the trailer).
    pub entries: usize,
    /// Size of the uncompressed cpio archive.
    pub cpio_bytes: u64,
    /// Bytes written to the output (after compression).
    pub output_bytes: u64,
}

struct OsPackage<'a> {
    name: String,
    descriptor: &'a [u8],
    archive: Contents<'a>,
}

/// The stboot image builder. Every setter checks its input and refuses bad ones; then
/// [`StbootImage::write`] writes the initramfs.
pub struct StbootImage<'a> {
    stboot: &'a [u8],
    interpreter: Option<String>,
    trust_policy: Option<TrustDir>,
    host_config: Option<(HostConfig, &'a [u8])>,
    modules: Vec<(String, &'a [u8])>,
    os_package: Option<OsPackage<'a>>,
}

/// One entry of the layout, before writing.
enum Item<'a> {
    Console,
    File { perm: u32, contents: Contents<'a> },
}

impl<'a> StbootImage<'a> {
    /// Start an image around the stboot binary, which must be an ELF executable.
    pub fn new(stboot: &'a [u8]) -> Result<Self, ImageError> {
        let facts = elf::inspect(stboot).map_err(|e| ImageError::Stboot(e.to_owned()))?;
        match facts.kind {
            elf::ElfType::Executable => {}
            elf::ElfType::Relocatable => {
                return Err(ImageError::Stboot(
                    "ELF relocatable object (a kernel module?), not a program".to_owned(),
                ));
            }
            elf::ElfType::Other(t) => {
                return Err(ImageError::Stboot(format!(
                    "ELF type {t}, not an executable program"
                )));
            }
        }
        Ok(Self {
            stboot,
            interpreter: facts.interpreter,
            trust_policy: None,
            host_config: None,
            modules: Vec::new(),
            os_package: None,
        })
    }

    /// The trust policy directory, loaded by [`TrustDir::load`] (the one loader stboot uses
    /// too). Required.
    pub fn trust_dir(&mut self, dir: TrustDir) -> Result<&mut Self, ImageError> {
        if self.trust_policy.is_some() {
            return Err(ImageError::Repeated("trust policy"));
        }
        self.trust_policy = Some(dir);
        Ok(self)
    }

    /// The trust policy directory's files given as bytes: `trust_policy.json`,
    /// `ospkg_signing_root.pem` (Ed25519 root certificates) and optionally `tls_roots.pem` (at
    /// least one certificate). Shorthand for [`TrustDir::load`] + [`Self::trust_dir`].
    pub fn trust_policy(
        &mut self,
        policy_json: &[u8],
        signing_roots_pem: &[u8],
        tls_roots_pem: Option<&[u8]>,
    ) -> Result<&mut Self, ImageError> {
        if self.trust_policy.is_some() {
            return Err(ImageError::Repeated("trust policy"));
        }
        let dir = TrustDir::load(|name, _| {
            Ok::<_, std::convert::Infallible>(match name {
                trust_files::TRUST_POLICY => Some(policy_json.to_vec()),
                trust_files::SIGNING_ROOTS => Some(signing_roots_pem.to_vec()),
                trust_files::TLS_ROOTS => tls_roots_pem.map(<[u8]>::to_vec),
                _ => None,
            })
        })
        .map_err(ImageError::TrustDir)?;
        self.trust_dir(dir)
    }

    /// The host config (`/etc/host_configuration.json`). Optional: stboot also finds it
    /// elsewhere (EFI variable).
    pub fn host_config(&mut self, json: &'a [u8]) -> Result<&mut Self, ImageError> {
        if self.host_config.is_some() {
            return Err(ImageError::Repeated("host config"));
        }
        let config = HostConfig::from_json(json).map_err(ImageError::HostConfig)?;
        self.host_config = Some((config, json));
        Ok(self)
    }

    /// A kernel module, loaded after the ones added before it. `file_name` is a plain file
    /// name ending in `.ko` (uncompressed); the bytes must be an ELF relocatable object.
    pub fn module(&mut self, file_name: &str, bytes: &'a [u8]) -> Result<&mut Self, ImageError> {
        let bad = |reason: &str| ImageError::Module {
            name: file_name.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(stem) = file_name.strip_suffix(".ko") else {
            return Err(bad(
                "name must end in .ko (an uncompressed module; the image holds no decompressor)",
            ));
        };
        if stem.is_empty() {
            return Err(bad("empty name before .ko"));
        }
        if file_name.contains('/') || file_name.chars().any(char::is_control) {
            return Err(bad(
                "must be a plain file name (no '/', no control characters)",
            ));
        }
        if self.modules.iter().any(|(n, _)| n == file_name) {
            return Err(bad("given twice"));
        }
        match elf::inspect(bytes) {
            Ok(facts) if facts.kind == elf::ElfType::Relocatable => {}
            Ok(_) => return Err(bad("ELF file but not a relocatable object (not a module)")),
            Err(e) => return Err(bad(e)),
        }
        self.modules.push((file_name.to_owned(), bytes));
        Ok(self)
    }

    /// An OS package for the initramfs fetch method: `ospkg/<name>.json` (the descriptor,
    /// checked) and `ospkg/<name>.zip` (the archive; only its zip magic is checked here, the
    /// signatures are stboot's business).
    pub fn os_package(
        &mut self,
        name: &str,
        descriptor_json: &'a [u8],
        archive: Contents<'a>,
    ) -> Result<&mut Self, ImageError> {
        if self.os_package.is_some() {
            return Err(ImageError::Repeated("OS package"));
        }
        let bad = |reason| ImageError::OsPackageName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.contains('/') || name.chars().any(char::is_control) {
            return Err(bad(
                "must be a plain base name (no '/', no control characters)",
            ));
        }
        if name == "." || name == ".." {
            return Err(bad("'.' and '..' are not names"));
        }
        Descriptor::from_json(descriptor_json).map_err(|source| ImageError::Descriptor {
            name: name.to_owned(),
            source,
        })?;
        let archive_error = |reason| ImageError::Archive {
            name: name.to_owned(),
            reason,
        };
        if archive.len() == 0 {
            return Err(archive_error("empty"));
        }
        if archive.len() > u64::from(u32::MAX) {
            return Err(archive_error(
                "4 GiB or larger; a cpio newc entry holds at most 4 GiB - 1",
            ));
        }
        // Check the zip magic; a reader gets its first bytes put back in front.
        let (head, archive) = match archive {
            Contents::Bytes(bytes) => (
                bytes.get(..4).unwrap_or(bytes).to_vec(),
                Contents::Bytes(bytes),
            ),
            Contents::Reader { len, mut reader } => {
                let mut head = Vec::with_capacity(4);
                (&mut reader).take(4).read_to_end(&mut head)?;
                let reader = Box::new(io::Cursor::new(head.clone()).chain(reader));
                (head, Contents::Reader { len, reader })
            }
        };
        if head != b"PK\x03\x04" {
            return Err(archive_error("not a zip file (no PK\\x03\\x04 magic)"));
        }
        self.os_package = Some(OsPackage {
            name: name.to_owned(),
            descriptor: descriptor_json,
            archive,
        });
        Ok(self)
    }

    /// Non-fatal problems with the inputs given so far (see [`Warning`]).
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        if let Some(interpreter) = &self.interpreter {
            out.push(Warning::DynamicallyLinked {
                interpreter: interpreter.clone(),
            });
        }
        let Some(tp) = &self.trust_policy else {
            return out;
        };
        // The host config stboot will use: the image's, or (without one) the EFI variable's
        // or, when that is absent too, the provisioning fallback.
        let fallback = HostConfig::provisioning_fallback();
        let method = match &self.host_config {
            Some((config, _)) => effective_fetch_method(tp.policy(), config),
            None => tp.policy().fetch_method(),
        };
        match method {
            FetchMethod::Network => {
                if tp.tls_roots_pem().is_none() {
                    out.push(Warning::NoTlsRoots);
                }
                let fallback_paths = fallback.initramfs_paths().ok();
                if let Some(pkg) = &self.os_package {
                    // The provisioning package: booted when no host config is found, and when
                    // normal boot fails (provisioning mode).
                    let is_fallback = fallback_paths
                        .is_some_and(|(json, _)| json == format!("{OSPKG_DIR}/{}.json", pkg.name));
                    if !is_fallback {
                        out.push(Warning::OsPackageUnused {
                            name: pkg.name.clone(),
                        });
                    }
                }
            }
            FetchMethod::Initramfs => match (&self.os_package, &self.host_config) {
                (None, _) => out.push(Warning::NoOsPackage),
                (Some(pkg), Some((config, _))) => {
                    let built = format!("{OSPKG_DIR}/{}.json", pkg.name);
                    let expected = match config.initramfs_paths() {
                        Ok((json, _)) => json,
                        Err(e) => format!("nothing ({e})"),
                    };
                    if expected != built {
                        out.push(Warning::PointerMismatch { expected, built });
                    }
                }
                (Some(_), None) => {}
            },
        }
        out
    }

    /// Paths of the image in write order (without the trailer).
    pub fn paths(&self) -> Vec<String> {
        let (dirs, items) = self.layout_paths();
        dirs.into_iter().chain(items).collect()
    }

    fn layout_paths(&self) -> (Vec<String>, Vec<String>) {
        let mut dirs: Vec<String> = DIRECTORIES.iter().map(|d| (*d).to_owned()).collect();
        if self.os_package.is_some() {
            dirs.push(OSPKG_DIR.to_owned());
        }
        dirs.sort();
        let mut items = vec![CONSOLE_PATH.to_owned(), INIT_PATH.to_owned()];
        if let Some(tp) = &self.trust_policy {
            items.push(format!("{TRUST_POLICY_DIR}/trust_policy.json"));
            items.push(format!("{TRUST_POLICY_DIR}/ospkg_signing_root.pem"));
            if tp.tls_roots_pem().is_some() {
                items.push(format!("{TRUST_POLICY_DIR}/tls_roots.pem"));
            }
            if tp.sigsum_policy_text().is_some() {
                items.push(format!("{TRUST_POLICY_DIR}/{}", trust_files::SIGSUM_POLICY));
            }
            if tp.decryption_identities_file().is_some() {
                items.push(format!(
                    "{TRUST_POLICY_DIR}/{}",
                    trust_files::DECRYPTION_IDENTITIES
                ));
            }
        }
        if self.host_config.is_some() {
            items.push(HOST_CONFIG_PATH.to_owned());
        }
        if !self.modules.is_empty() {
            items.push(MODULES_ORDER_PATH.to_owned());
        }
        for (name, _) in &self.modules {
            items.push(format!("{MODULES_DIR}/{name}"));
        }
        if let Some(pkg) = &self.os_package {
            items.push(format!("{OSPKG_DIR}/{}.json", pkg.name));
            items.push(format!("{OSPKG_DIR}/{}.zip", pkg.name));
        }
        items.sort();
        (dirs, items)
    }

    /// Write the image to `out`. Needs a trust policy.
    pub fn write<W: Write>(self, out: W, compression: Compression) -> Result<Summary, ImageError> {
        let Some(tp) = self.trust_policy else {
            return Err(ImageError::NoTrustPolicy);
        };
        let order: Vec<u8> = self
            .modules
            .iter()
            .flat_map(|(name, _)| name.bytes().chain([b'\n']))
            .collect();
        let mut dirs: Vec<&str> = DIRECTORIES.to_vec();
        let mut items: BTreeMap<String, Item<'_>> = BTreeMap::new();
        let file = |perm, contents| Item::File { perm, contents };
        items.insert(CONSOLE_PATH.to_owned(), Item::Console);
        items.insert(
            INIT_PATH.to_owned(),
            file(0o755, Contents::Bytes(self.stboot)),
        );
        items.insert(
            format!("{TRUST_POLICY_DIR}/trust_policy.json"),
            file(0o644, Contents::Bytes(tp.policy_json())),
        );
        items.insert(
            format!("{TRUST_POLICY_DIR}/ospkg_signing_root.pem"),
            file(0o644, Contents::Bytes(tp.roots_pem())),
        );
        if let Some(tls) = tp.tls_roots_pem() {
            items.insert(
                format!("{TRUST_POLICY_DIR}/tls_roots.pem"),
                file(0o644, Contents::Bytes(tls)),
            );
        }
        if let Some(sigsum) = tp.sigsum_policy_text() {
            items.insert(
                format!("{TRUST_POLICY_DIR}/{}", trust_files::SIGSUM_POLICY),
                file(0o644, Contents::Bytes(sigsum)),
            );
        }
        if let Some(identities) = tp.decryption_identities_file() {
            // A secret: readable by root (stboot) only.
            items.insert(
                format!("{TRUST_POLICY_DIR}/{}", trust_files::DECRYPTION_IDENTITIES),
                file(0o600, Contents::Bytes(identities)),
            );
        }
        if let Some((_, json)) = self.host_config {
            items.insert(
                HOST_CONFIG_PATH.to_owned(),
                file(0o644, Contents::Bytes(json)),
            );
        }
        for (name, bytes) in &self.modules {
            items.insert(
                format!("{MODULES_DIR}/{name}"),
                file(0o644, Contents::Bytes(bytes)),
            );
        }
        if let Some(pkg) = self.os_package {
            dirs.push(OSPKG_DIR);
            items.insert(
                format!("{OSPKG_DIR}/{}.json", pkg.name),
                file(0o644, Contents::Bytes(pkg.descriptor)),
            );
            items.insert(
                format!("{OSPKG_DIR}/{}.zip", pkg.name),
                file(0o644, pkg.archive),
            );
        }
        if !self.modules.is_empty() {
            items.insert(
                MODULES_ORDER_PATH.to_owned(),
                file(0o644, Contents::Bytes(&order)),
            );
        }
        dirs.sort_unstable();

        let mut counted = CountingWriter { inner: out, n: 0 };
        let (entries, cpio_bytes) = match compression {
            Compression::None => write_cpio(&mut counted, &dirs, items)?,
            Compression::Gzip => {
                let mut gz = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut counted, flate2::Compression::best());
                let r = write_cpio(&mut gz, &dirs, items)?;
                gz.try_finish()?;
                r
            }
        };
        counted.flush()?;
        Ok(Summary {
            entries,
            cpio_bytes,
            output_bytes: counted.n,
        })
    }
}

/// The cpio archive inside an image: `bytes` itself, or gunzipped when it starts with the gzip
/// magic. Refuses more than `max` bytes of output (a gzip bomb guard).
pub fn uncompressed(bytes: &[u8], max: u64) -> Result<std::borrow::Cow<'_, [u8]>, ImageError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(ImageError::Io(io::Error::other(format!(
            "decompresses to more than {max} bytes"
        ))));
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn write_cpio<W: Write>(
    out: W,
    dirs: &[&str],
    items: BTreeMap<String, Item<'_>>,
) -> Result<(usize, u64), ImageError> {
    let mut w = CpioWriter::new(out);
    for d in dirs {
        w.dir(d, 0o755)?;
    }
    for (path, item) in items {
        match item {
            Item::Console => w.char_device(&path, 0o600, 5, 1)?,
            Item::File {
                perm,
                contents: Contents::Bytes(b),
            } => w.file(&path, perm, b)?,
            Item::File {
                perm,
                contents: Contents::Reader { len, reader },
            } => w.file_from_reader(&path, perm, len, reader)?,
        }
    }
    let entries = w.entries();
    let cpio_bytes = w.bytes_written() + cpio::TRAILER_RECORD_LEN;
    w.finish()?;
    Ok((entries, cpio_bytes))
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

//! EFI variables through efivarfs.
//!
//! Each variable is a file `Name-guid` under `/sys/firmware/efi/efivars`; its content is the
//! 4-byte little-endian attribute word followed by the data. stboot reads `STHostConfig` from
//! here (see [`ST_VENDOR_GUID`]); the provisioning tool writes it.
//!
//! Two efivarfs rules shape [`Efivarfs::write`] and [`Efivarfs::remove`]:
//! - existing variables are created with `FS_IMMUTABLE_FL`; writing or unlinking them fails
//!   with `EPERM` until the flag is cleared with `FS_IOC_SETFLAGS`;
//! - a write must be a single `write(2)` call of attributes and data together.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::IFlags;

/// Vendor GUID of the System Transparency variables (`STHostConfig`, `STHostName`,
/// `STHostKey`).
pub const ST_VENDOR_GUID: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";

/// `EFI_VARIABLE_NON_VOLATILE`.
pub const ATTR_NON_VOLATILE: u32 = 0x1;
/// `EFI_VARIABLE_BOOTSERVICE_ACCESS`.
pub const ATTR_BOOTSERVICE_ACCESS: u32 = 0x2;
/// `EFI_VARIABLE_RUNTIME_ACCESS`.
pub const ATTR_RUNTIME_ACCESS: u32 = 0x4;
/// NV|BS|RT (0x7): what stprov uses for the ST variables.
pub const ATTR_NV_BS_RT: u32 = ATTR_NON_VOLATILE | ATTR_BOOTSERVICE_ACCESS | ATTR_RUNTIME_ACCESS;

/// Largest variable file (attributes + data) read or written.
pub const MAX_VARIABLE_BYTES: usize = 64 * 1024;

/// `EFIVARFS_MAGIC` from `<linux/magic.h>`.
const EFIVARFS_MAGIC: u32 = 0xde5e_81e4;

/// A failed efivarfs operation. The message names the variable file and the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EfiError {
    /// The variable name is empty or contains `/` or NUL.
    #[error("invalid EFI variable name {name:?}")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The GUID is not of the form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    #[error("invalid EFI vendor GUID {guid:?}")]
    InvalidGuid {
        /// The rejected GUID.
        guid: String,
    },
    /// An OS call on the variable file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted (`opening`, `reading`, `writing`, `removing`, ...).
        op: &'static str,
        /// The variable file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is shorter than the 4-byte attribute word.
    #[error("reading {path}: {len} bytes, shorter than the 4-byte attribute header")]
    Truncated {
        /// The variable file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The variable exceeds [`MAX_VARIABLE_BYTES`].
    #[error("{path}: variable larger than the limit of {limit} bytes")]
    TooLarge {
        /// The variable file.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// `write(2)` took only part of the buffer (efivarfs needs it in one call).
    #[error("writing {path}: short write of {written} of {len} bytes")]
    ShortWrite {
        /// The variable file.
        path: PathBuf,
        /// Bytes written.
        written: usize,
        /// Bytes offered.
        len: usize,
    },
}

/// An EFI variable's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `EFI_VARIABLE_*` attribute bits.
    pub attributes: u32,
    /// The value.
    pub data: Vec<u8>,
}

/// An efivarfs mount (or, in tests, any directory with the same layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Efivarfs {
    /// The directory holding the `Name-guid` files.
    pub root: PathBuf,
}

impl Efivarfs {
    /// The system mount, `/sys/firmware/efi/efivars`.
    pub fn system() -> Self {
        Self::at("/sys/firmware/efi/efivars")
    }

    /// efivarfs-style variables under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Whether `root` is an efivarfs mount (checked with `statfs`); `false` for a plain
    /// directory (tests) or when `root` does not exist.
    pub fn is_mounted(&self) -> bool {
        rustix::fs::statfs(&self.root).is_ok_and(|st| st.f_type as u32 == EFIVARFS_MAGIC)
    }

    /// The file of variable `name` with vendor `guid` (the GUID is written lower-case).
    pub fn path(&self, name: &str, guid: &str) -> Result<PathBuf, EfiError> {
        if name.is_empty() || name.contains(['/', '\0']) {
            return Err(EfiError::InvalidName {
                name: name.to_owned(),
            });
        }
        let guid = normalize_guid(guid)?;
        Ok(self.root.join(format!("{name}-{guid}")))
    }

    /// Reads a variable; `Ok(None)` when it does not exist.
    pub fn read(&self, name: &str, guid: &str) -> Result<Option<Variable>, EfiError> {
        let path = self.path(name, guid)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_err("opening", &path, source)),
        };
        let mut bytes = Vec::new();
        // `take` bounds the read; usize -> u64 is lossless on every Linux target.
        file.take(MAX_VARIABLE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| io_err("reading", &path, source))?;
        if bytes.len() > MAX_VARIABLE_BYTES {
            return Err(EfiError::TooLarge {
                path,
                limit: MAX_VARIABLE_BYTES,
            });
        }
        let Some((attr, data)) = bytes.split_first_chunk::<4>() else {
            return Err(EfiError::Truncated {
                len: bytes.len(),
                path,
            });
        };
        Ok(Some(Variable {
            attributes: u32::from_le_bytes(*attr),
            data: data.to_vec(),
        }))
    }

    /// Creates or replaces a variable: clears the immutable flag of an existing file, then
    /// writes attributes and data in one `write(2)`.
    ///
    /// On efivarfs the firmware decides what a write means (e.g. `EFI_VARIABLE_APPEND_WRITE`
    /// appends); on other filesystems (tests) the file is replaced.
    pub fn write(
        &self,
        name: &str,
        guid: &str,
        attributes: u32,
        data: &[u8],
    ) -> Result<(), EfiError> {
        let path = self.path(name, guid)?;
        let len = data.len().saturating_add(4);
        if len > MAX_VARIABLE_BYTES {
            return Err(EfiError::TooLarge {
                path,
                limit: MAX_VARIABLE_BYTES,
            });
        }
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&attributes.to_le_bytes());
        buf.extend_from_slice(data);

        clear_immutable(&path)?;
        // No O_TRUNC (efivarfs ignores truncation; a regular file is truncated after the write).
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|source| io_err("opening", &path, source))?;
        // One write(2) call: efivarfs takes attributes and data together or not at all.
        let written = loop {
            match file.write(&buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("writing", &path, e)),
            }
        };
        if written != buf.len() {
            return Err(EfiError::ShortWrite {
                path,
                written,
                len: buf.len(),
            });
        }
        // efivarfs ignores truncation; a regular file must not keep the tail of a longer value.
        if !is_efivarfs(&file) {
            file.set_len(u64::try_from(written).unwrap_or(u64::MAX))
                .map_err(|source| io_err("truncating", &path, source))?;
        }
        Ok(())
    }

    /// Deletes a variable (clearing its immutable flag first). Returns `false` if it did not
    /// exist.
    pub fn remove(&self, name: &str, guid: &str) -> Result<bool, EfiError> {
        let path = self.path(name, guid)?;
        if !clear_immutable(&path)? {
            return Ok(false);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io_err("removing", &path, source)),
        }
    }
}

/// Lower-cases and checks `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn normalize_guid(guid: &str) -> Result<String, EfiError> {
    let bytes = guid.as_bytes();
    let ok = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !ok {
        return Err(EfiError::InvalidGuid {
            guid: guid.to_owned(),
        });
    }
    Ok(guid.to_ascii_lowercase())
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> EfiError {
    EfiError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Clears `FS_IMMUTABLE_FL` on `path` if set. Returns `false` when the file does not exist.
/// Filesystems without inode flags (`ENOTTY`, `EOPNOTSUPP`, `EINVAL`) count as "no flags".
fn clear_immutable(path: &Path) -> Result<bool, EfiError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_err("opening", path, source)),
    };
    let Some(flags) = get_flags(&file).map_err(|e| io_err("reading inode flags of", path, e))?
    else {
        return Ok(true);
    };
    if flags.contains(IFlags::IMMUTABLE) {
        set_flags(&file, flags - IFlags::IMMUTABLE)
            .map_err(|e| io_err("clearing the immutable flag of", path, e))?;
    }
    Ok(true)
}

fn no_flags_support(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL)
    )
}

/// `FS_IOC_GETFLAGS`; `None` when the filesystem has no inode flags.
fn get_flags(file: &File) -> io::Result<Option<IFlags>> {
    match rustix::fs::ioctl_getflags(file) {
        Ok(flags) => Ok(Some(flags)),
        Err(e) => {
            let err = io::Error::from(e);
            if no_flags_support(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// `FS_IOC_SETFLAGS`.
fn set_flags(file: &File, flags: IFlags) -> io::Result<()> {
    rustix::fs::ioctl_setflags(file, flags).map_err(io::Error::from)
}

fn is_efivarfs(file: &File) -> bool {
    // f_type is a signed word; magic numbers are 32-bit: compare the low 32 bits.
    rustix::fs::fstatfs(file).is_ok_and(|st| st.f_type as u32 == EFIVARFS_MAGIC)
}

/// Sets or clears `FS_IMMUTABLE_FL` on `path`, mimicking efivarfs on a filesystem with inode
/// flags. Returns `Ok(false)` if the filesystem has no inode flags.
#[cfg(test)]
fn set_immutable(path: &Path, immutable: bool) -> io::Result<bool> {
    let file = File::open(path)?;
    let Some(flags) = get_flags(&file)? else {
        return Ok(false);
    };
    let new = if immutable {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    set_flags(&file, new)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_checked_and_lowercased() {
        assert_eq!(
            normalize_guid("F401F2C1-B005-4BE0-8CEE-F2E5945BCBE7").unwrap(),
            ST_VENDOR_GUID
        );
        assert!(normalize_guid("f401f2c1b0054be08ceef2e5945bcbe7").is_err());
        assert!(normalize_guid("f401f2c1-b005-4be0-8cee-f2e5945bcbeg").is_err());
        assert!(normalize_guid("f401f2c1-b005-4be0-8cee-f2e5945bcbe7x").is_err());
    }

    #[test]
    fn names_cannot_escape_the_root() {
        let efi = Efivarfs::at("/x");
        for bad in ["", "a/b", "../../etc/passwd", "a\0b"] {
            assert!(matches!(
                efi.path(bad, ST_VENDOR_GUID),
                Err(EfiError::InvalidName { .. })
            ));
        }
        assert_eq!(
            efi.path("STHostConfig", ST_VENDOR_GUID).unwrap(),
            Path::new("/x/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7")
        );
    }

    /// efivarfs marks existing variables immutable; write and remove must clear the flag.
    /// Needs a filesystem with inode flags and CAP_LINUX_IMMUTABLE; skipped otherwise.
    #[test]
    fn write_and_remove_clear_the_immutable_flag() {
        let dir =
            std::env::temp_dir().join(format!("st-host-efi-immutable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let efi = Efivarfs::at(&dir);
        efi.write("Var", ST_VENDOR_GUID, ATTR_NV_BS_RT, b"one")
            .unwrap();
        let path = efi.path("Var", ST_VENDOR_GUID).unwrap();
        match set_immutable(&path, true) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                eprintln!("skipped: cannot set FS_IMMUTABLE_FL on {}", path.display());
                std::fs::remove_dir_all(&dir).unwrap();
                return;
            }
        }
        // The flag really blocks writes, as on efivarfs.
        assert!(std::fs::OpenOptions::new().write(true).open(&path).is_err());

        efi.write("Var", ST_VENDOR_GUID, ATTR_NV_BS_RT, b"two")
            .unwrap();
        assert_eq!(
            efi.read("Var", ST_VENDOR_GUID).unwrap().unwrap().data,
            b"two"
        );
        set_immutable(&path, true).unwrap();
        assert!(efi.remove("Var", ST_VENDOR_GUID).unwrap());
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

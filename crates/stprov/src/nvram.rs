//! The ST variables in EFI NVRAM, through efivarfs (`st_host::efi`: one `write(2)` of
//! attributes and data; the immutable flag of an existing variable cleared first).
//!
//! [`Nvram::open`] checks, before anything else happens, that the variables can be written:
//! the machine booted through UEFI, efivarfs is mounted (stprov mounts it when it can), and
//! stprov runs as root. Tests point it at a plain directory instead (`--efivarfs DIR` or
//! `$STPROV_EFIVARFS`); then only the directory has to exist.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use st_host::efi::{ATTR_NV_BS_RT, EfiError, Efivarfs, ST_VENDOR_GUID};

use crate::Failure;

/// Host config variable (JSON).
pub const HOST_CONFIG: &str = "STHostConfig";
/// Host name variable (raw bytes).
pub const HOST_NAME: &str = "STHostName";
/// SSH host key variable (OpenSSH private key PEM).
pub const HOST_KEY: &str = "STHostKey";

const SYSTEM_EFI: &str = "/sys/firmware/efi";

/// Where the variables go.
#[derive(Debug, Clone)]
pub struct Nvram {
    efi: Efivarfs,
}

fn efi_failure(e: &EfiError) -> Failure {
    let hint = match e {
        EfiError::Io { source, .. } => match source.raw_os_error() {
            // EPERM, EACCES
            Some(1 | 13) => " (permission denied: run stprov as root)",
            // ENOSPC, EINVAL
            Some(28) => " (no space left in NVRAM)",
            Some(22) => " (the firmware refused the variable)",
            _ => "",
        },
        _ => "",
    };
    Failure::Efi(format!("{e}{hint}"))
}

impl Nvram {
    /// The efivarfs to use: `override_dir` (or `$STPROV_EFIVARFS`) when given, for tests;
    /// else the system's, checked (UEFI boot, efivarfs mounted, root).
    pub fn open(override_dir: Option<&Path>) -> Result<Self, Failure> {
        let env = std::env::var_os(crate::cli::EFIVARFS_ENV).map(PathBuf::from);
        if let Some(dir) = override_dir.map(Path::to_path_buf).or(env) {
            if !dir.is_dir() {
                return Err(Failure::Efi(format!(
                    "{}: not a directory (given with --efivarfs or ${})",
                    dir.display(),
                    crate::cli::EFIVARFS_ENV
                )));
            }
            return Ok(Self {
                efi: Efivarfs::at(dir),
            });
        }
        let efi = Efivarfs::system();
        if !Path::new(SYSTEM_EFI).is_dir() {
            return Err(Failure::Efi(format!(
                "{SYSTEM_EFI} is absent: this machine did not boot through UEFI (legacy BIOS \
                 boot, or a kernel without EFI support), so there is no NVRAM to provision"
            )));
        }
        // The owner of /proc/self is the effective uid. Without /proc the check is left to
        // the write itself (EPERM names the cause then).
        if let Some(uid) = std::fs::metadata("/proc/self").ok().map(|m| m.uid())
            && uid != 0
        {
            return Err(Failure::Efi(format!(
                "writing EFI variables needs root (running as uid {uid})"
            )));
        }
        if !efi.is_mounted() {
            match st_host::sys::mount_efivarfs() {
                Ok(outcome) => log::info!("efivarfs: {outcome:?}"),
                Err(e) => log::warn!("mounting efivarfs: {e}"),
            }
        }
        if !efi.is_mounted() {
            return Err(Failure::Efi(format!(
                "efivarfs is not mounted on {} and mounting it failed (load the efivarfs module, \
                 then: mount -t efivarfs efivarfs {})",
                efi.root.display(),
                efi.root.display()
            )));
        }
        Ok(Self { efi })
    }

    /// The directory the variables are files in.
    pub fn root(&self) -> &Path {
        &self.efi.root
    }

    /// Writes an ST variable (vendor GUID f401f2c1-..., attributes NV|BS|RT).
    pub fn write(&self, name: &str, data: &[u8]) -> Result<(), Failure> {
        self.efi
            .write(name, ST_VENDOR_GUID, ATTR_NV_BS_RT, data)
            .map_err(|e| efi_failure(&e))
    }

    /// Writes any variable (Secure Boot ones, `OsIndications`).
    pub fn write_with(
        &self,
        name: &str,
        guid: &str,
        attributes: u32,
        data: &[u8],
    ) -> Result<(), Failure> {
        self.efi
            .write(name, guid, attributes, data)
            .map_err(|e| efi_failure(&e))
    }

    /// Reads an ST variable's data; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        self.read_with(name, ST_VENDOR_GUID)
    }

    /// Reads any variable's data.
    pub fn read_with(&self, name: &str, guid: &str) -> Result<Option<Vec<u8>>, Failure> {
        self.efi
            .read(name, guid)
            .map(|v| v.map(|v| v.data))
            .map_err(|e| efi_failure(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_directory_is_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let nv = Nvram::open(Some(dir.path())).unwrap();
        nv.write(HOST_NAME, b"h.example").unwrap();
        let file = dir
            .path()
            .join("STHostName-f401f2c1-b005-4be0-8cee-f2e5945bcbe7");
        assert_eq!(std::fs::read(file).unwrap(), b"\x07\0\0\0h.example");
        assert_eq!(nv.read(HOST_NAME).unwrap().unwrap(), b"h.example");
        assert_eq!(nv.read(HOST_KEY).unwrap(), None);
        let e = Nvram::open(Some(&dir.path().join("absent"))).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("not a directory"), "{e}");
    }
}

//! Loading and starting the next kernel with `kexec_file_load(2)` from memory.
//!
//! The kernel and initramfs are streamed into anonymous memory files ([`Memfd`]), so nothing
//! touches a disk and no path can be swapped between verification and loading. [`load`] hands
//! the fds to the kernel, which parses (and, under lockdown, verifies) the bzImage; [`execute`]
//! jumps into it.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// A failed kexec step. The message says what the kernel refused and why, as far as the error
/// number tells.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KexecError {
    /// `memfd_create(2)` failed.
    #[error("memfd_create({name:?}): {source}")]
    Memfd {
        /// The memfd name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel command line contains a NUL byte, which would silently truncate it.
    #[error("kernel command line contains a NUL byte at offset {offset}")]
    CmdlineNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The kernel image is empty.
    #[error("kexec_file_load: the kernel image is empty")]
    EmptyKernel,
    /// `EPERM`.
    #[error(
        "kexec_file_load refused (EPERM): lockdown or Secure Boot requires a signed kernel, or \
         missing CAP_SYS_BOOT"
    )]
    Refused,
    /// `EKEYREJECTED` or `EBADMSG`: the kernel's signature did not verify.
    #[error("kexec_file_load: kernel signature rejected: {source}")]
    SignatureRejected {
        /// The OS error.
        source: io::Error,
    },
    /// `ENOEXEC`.
    #[error("kexec_file_load: not a bootable bzImage (ENOEXEC)")]
    NotBootable,
    /// `ENOSYS`.
    #[error("kexec_file_load unsupported (ENOSYS): kernel built without CONFIG_KEXEC_FILE")]
    Unsupported,
    /// `EBUSY`: a kexec is in progress or another image is loaded in a conflicting way.
    #[error("kexec_file_load: {source} (kexec in progress?)")]
    Busy {
        /// The OS error.
        source: io::Error,
    },
    /// Any other `kexec_file_load` failure.
    #[error("kexec_file_load: {source}{hint}", hint = load_hint(source))]
    Load {
        /// The OS error.
        source: io::Error,
    },
    /// `reboot(LINUX_REBOOT_CMD_KEXEC)` returned.
    #[error("reboot(LINUX_REBOOT_CMD_KEXEC): {source}{hint}", hint = execute_hint(source))]
    Execute {
        /// The OS error.
        source: io::Error,
    },
}

fn load_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EINVAL) => " (command line too long for this kernel, or invalid image)",
        Some(libc::ENOMEM) => " (not enough memory to stage the new kernel)",
        Some(libc::ENOKEY) => " (kernel unsigned or signed with an unknown key)",
        _ => "",
    }
}

fn execute_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EINVAL) => " (no kernel loaded)",
        Some(libc::EPERM) => " (missing CAP_SYS_BOOT)",
        _ => "",
    }
}

/// An anonymous, close-on-exec memory file (`memfd_create`), written sequentially.
///
/// Implements [`Write`], so a decompressed zip entry can be copied straight into it with
/// [`std::io::copy`].
#[derive(Debug)]
pub struct Memfd {
    file: File,
    len: u64,
}

impl Memfd {
    /// A memfd named `stboot-kernel` (the name shows in `/proc/self/fd`).
    pub fn new() -> Result<Self, KexecError> {
        Self::named(c"stboot-kernel")
    }

    /// A memfd with another name (e.g. `stboot-initramfs`).
    pub fn named(name: &CStr) -> Result<Self, KexecError> {
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).map_err(|e| {
            KexecError::Memfd {
                name: name.to_string_lossy().into_owned(),
                source: e.into(),
            }
        })?;
        Ok(Self {
            file: File::from(fd),
            len: 0,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for Memfd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len = self
            .len
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    /// One `writev` for many pieces (the stored blocks of a zip entry).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.file.write_vectored(bufs)?;
        self.len = self
            .len
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for Memfd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The command line as passed to the kernel: checked for NUL bytes, NUL-terminated.
fn kexec_cmdline(cmdline: &str) -> Result<CString, KexecError> {
    if let Some(offset) = cmdline.bytes().position(|b| b == 0) {
        return Err(KexecError::CmdlineNul { offset });
    }
    CString::new(cmdline).map_err(|e| KexecError::CmdlineNul {
        offset: e.nul_position(),
    })
}

/// Loads `kernel` (a bzImage) with an optional `initramfs` and `cmdline` for a later
/// [`execute`], with `kexec_file_load(2)`.
///
/// Nothing is checked here beyond the arguments; the kernel parses the image and, under
/// lockdown or `KEXEC_SIG_FORCE`, verifies its signature.
pub fn load(kernel: &Memfd, initramfs: Option<&Memfd>, cmdline: &str) -> Result<(), KexecError> {
    let cmdline = kexec_cmdline(cmdline)?;
    if kernel.is_empty() {
        return Err(KexecError::EmptyKernel);
    }
    let (initrd_fd, flags) = match initramfs {
        Some(initramfs) => (initramfs.as_raw_fd(), 0),
        None => (-1, libc::KEXEC_FILE_NO_INITRAMFS),
    };
    // The length includes the terminating NUL; the kernel rejects a line without one.
    let cmdline_len = cmdline.as_bytes_with_nul().len();
    // SAFETY: the fds are open for the duration of the call (borrowed from live `Memfd`s, or -1
    // with KEXEC_FILE_NO_INITRAMFS), and `cmdline` points to `cmdline_len` readable bytes
    // ending in NUL. The kernel copies everything it needs before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd_fd,
            cmdline_len as libc::c_ulong,
            cmdline.as_ptr(),
            flags as libc::c_ulong,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(map_load_error(io::Error::last_os_error()))
}

/// Unloads a kernel staged by [`load`] (`KEXEC_FILE_UNLOAD`).
pub fn unload() -> Result<(), KexecError> {
    // SAFETY: with KEXEC_FILE_UNLOAD the kernel ignores the fds and the (NULL, 0) command line.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            -1 as libc::c_int,
            -1 as libc::c_int,
            0 as libc::c_ulong,
            std::ptr::null::<libc::c_char>(),
            libc::KEXEC_FILE_UNLOAD as libc::c_ulong,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(map_load_error(io::Error::last_os_error()))
}

fn map_load_error(source: io::Error) -> KexecError {
    match source.raw_os_error() {
        Some(libc::EPERM) => KexecError::Refused,
        Some(libc::EKEYREJECTED | libc::EBADMSG) => KexecError::SignatureRejected { source },
        Some(libc::ENOEXEC) => KexecError::NotBootable,
        Some(libc::ENOSYS) => KexecError::Unsupported,
        Some(libc::EBUSY) => KexecError::Busy { source },
        _ => KexecError::Load { source },
    }
}

/// Syncs and jumps into the kernel staged by [`load`] (`reboot(LINUX_REBOOT_CMD_KEXEC)`).
/// Returns only on failure.
pub fn execute() -> KexecError {
    crate::sys::sync();
    // On success reboot(2) does not return.
    let source = match rustix::system::reboot(rustix::system::RebootCommand::Kexec) {
        Err(e) => e.into(),
        Ok(()) => io::Error::other("returned without starting the new kernel"),
    };
    KexecError::Execute { source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let e = |n| map_load_error(io::Error::from_raw_os_error(n));
        assert!(matches!(e(libc::EPERM), KexecError::Refused));
        assert!(matches!(
            e(libc::EKEYREJECTED),
            KexecError::SignatureRejected { .. }
        ));
        assert!(matches!(
            e(libc::EBADMSG),
            KexecError::SignatureRejected { .. }
        ));
        assert!(matches!(e(libc::ENOEXEC), KexecError::NotBootable));
        assert!(matches!(e(libc::ENOSYS), KexecError::Unsupported));
        assert!(matches!(e(libc::EINVAL), KexecError::Load { .. }));
        assert!(e(libc::EPERM).to_string().contains("lockdown"));
        assert!(
            e(libc::ENOEXEC)
                .to_string()
                .contains("not a bootable bzImage")
        );
        assert!(e(libc::ENOSYS).to_string().contains("CONFIG_KEXEC_FILE"));
    }

    #[test]
    fn cmdline_gets_exactly_one_terminating_nul() {
        let c = kexec_cmdline("console=ttyS0 quiet").unwrap();
        assert_eq!(c.as_bytes_with_nul().len(), "console=ttyS0 quiet".len() + 1);
        assert_eq!(kexec_cmdline("").unwrap().as_bytes_with_nul(), b"\0");
    }
}

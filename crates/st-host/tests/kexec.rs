//! Tests of `st_host::kexec` that need no VM: the memfd, and the argument checks that fail
//! before `kexec_file_load` is called. (Loading a real kernel is covered by the QEMU suite.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use st_host::kexec::{self, KexecError, Memfd};

fn read_back(memfd: &Memfd) -> Vec<u8> {
    // A fresh open file description via /proc starts at offset 0, like the kernel's read.
    let mut bytes = Vec::new();
    std::fs::File::open(format!("/proc/self/fd/{}", memfd.as_raw_fd()))
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn memfd_write_len_round_trip() {
    let mut memfd = Memfd::new().unwrap();
    assert!(memfd.is_empty());
    assert_eq!(memfd.len(), 0);

    let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let mut source = std::io::Cursor::new(chunk.repeat(3));
    let copied = std::io::copy(&mut source, &mut memfd).unwrap();
    memfd.write_all(b"tail").unwrap();
    memfd.flush().unwrap();

    assert_eq!(copied, 300_000);
    assert_eq!(memfd.len(), 300_004);
    let bytes = read_back(&memfd);
    assert_eq!(bytes.len(), 300_004);
    assert_eq!(&bytes[..300_000], chunk.repeat(3).as_slice());
    assert!(bytes.ends_with(b"tail"));
}

#[test]
fn memfd_is_named_and_close_on_exec() {
    let memfd = Memfd::named(c"stboot-initramfs").unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", memfd.as_raw_fd())).unwrap();
    assert_eq!(link.to_str().unwrap(), "/memfd:stboot-initramfs (deleted)");
    let flags = rustix::io::fcntl_getfd(&memfd).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));

    let kernel = Memfd::new().unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", kernel.as_raw_fd())).unwrap();
    assert!(link.to_str().unwrap().contains("memfd:stboot-kernel"));
}

#[test]
fn load_rejects_nul_in_cmdline_before_the_syscall() {
    let mut kernel = Memfd::new().unwrap();
    kernel.write_all(b"MZ not really a kernel").unwrap();
    let err = kexec::load(&kernel, None, "console=ttyS0\0 init=/evil").unwrap_err();
    assert!(
        matches!(err, KexecError::CmdlineNul { offset: 13 }),
        "{err}"
    );
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[test]
fn load_rejects_empty_kernel_before_the_syscall() {
    let kernel = Memfd::new().unwrap();
    let initramfs = Memfd::named(c"stboot-initramfs").unwrap();
    let err = kexec::load(&kernel, Some(&initramfs), "console=ttyS0").unwrap_err();
    assert!(matches!(err, KexecError::EmptyKernel), "{err}");
}

#[test]
fn error_messages() {
    assert_eq!(
        KexecError::Refused.to_string(),
        "kexec_file_load refused (EPERM): lockdown or Secure Boot requires a signed kernel, or \
         missing CAP_SYS_BOOT"
    );
    assert!(
        KexecError::NotBootable
            .to_string()
            .contains("not a bootable bzImage")
    );
    let err = KexecError::Execute {
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    };
    assert!(
        err.to_string()
            .starts_with("reboot(LINUX_REBOOT_CMD_KEXEC): "),
        "{err}"
    );
    assert!(err.to_string().contains("no kernel loaded"), "{err}");
}

//! Linux side effects for stboot (PID 1) and stprov.
//!
//! Everything that touches the running system lives here, behind small functions with typed
//! errors: mounting the pseudo filesystems, loading kernel modules, configuring the network
//! (static addresses, DHCPv4, bonding), reading EFI variables, sending commands to the TPM
//! device, loading a kernel with `kexec_file_load` from memory, rebooting, and logging to the
//! console. The pure crates
//! (`st-format`, `st-verify`) never call into this crate; the binaries do.
//!
//! System calls go through `rustix` (safe wrappers, raw Linux syscalls) where it has them. What
//! it lacks is called through `libc` in the few `unsafe` blocks of the workspace, each with a
//! `// SAFETY:` comment saying why it is sound: `kexec_file_load`, `setsockopt` for
//! `SO_BINDTODEVICE` and the netlink acknowledgement options, and the console logger's `write`
//! to a file descriptor it borrows by number.

pub mod console;
pub mod efi;
pub mod kexec;
pub mod log;
pub mod net;
pub mod sys;
pub mod tpm;

//! Linux side effects for stboot (PID 1) and stprov.
//!
//! Everything that touches the running system lives here, behind small functions with typed
//! errors: mounting the pseudo filesystems, loading kernel modules, configuring the network
//! (static addresses, DHCPv4, bonding), reading EFI variables, loading a kernel with
//! `kexec_file_load` from memory, rebooting, and logging to the console. The pure crates
//! (`st-format`, `st-verify`) never call into this crate; the binaries do.
//!
//! This is the only crate of the workspace that contains `unsafe` code; every block says why it
//! is sound in a `// SAFETY:` comment.

pub mod efi;
pub mod kexec;
pub mod log;
pub mod net;
pub mod sys;

//! Caps on every input size and count, with where each number comes from.
//!
//! The Go reference has no limits at all (st-reference §1.4, §11.8). Ours are generous for real
//! deployments and small enough that a hostile server cannot exhaust a 1 GiB machine.

/// Largest descriptor (`NAME.json`) accepted. A descriptor holds one base64 PEM certificate
/// (~1 KiB) and one signature (~90 B) per signer; 1 MiB fits hundreds of signers.
pub const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;

/// Most signatures in one descriptor. Thresholds in practice are 1..5 signers; a trust policy
/// threshold above this could never be met and is rejected.
pub const MAX_SIGNATURES: usize = 64;

/// Largest single certificate PEM inside a descriptor or a root file.
pub const MAX_CERTIFICATE_BYTES: usize = 16 << 10;

/// Largest `manifest.json` accepted (it holds a label, two paths and a command line).
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// Longest kernel command line carried in a manifest, in bytes: the most `kexec_file_load`
/// passes to an x86_64 kernel. Its bzImage loader requires `cmdline_len + 30 <= cmdline_size`,
/// where `cmdline_len` counts the terminating NUL, 30 bytes are kept for `elfcorehdr=0x<addr>`
/// (checked for every load, not only crash kernels), and `cmdline_size` in the kernel's setup
/// header is `COMMAND_LINE_SIZE - 1` = 2047 (x86 `COMMAND_LINE_SIZE` is 2048). So 2047 - 30 - 1
/// = 2016; a longer one would pass verification and fail only at kexec.
pub const MAX_CMDLINE_BYTES: usize = 2016;

/// Largest trust policy JSON (`trust_policy.json`).
pub const MAX_TRUST_POLICY_BYTES: usize = 64 << 10;

/// Largest host config JSON (initramfs file or `STHostConfig` EFI variable).
pub const MAX_HOST_CONFIG_BYTES: usize = 64 << 10;

/// Largest root certificate file (`ospkg_signing_root.pem`, `tls_roots.pem`).
pub const MAX_ROOTS_FILE_BYTES: usize = 1 << 20;

/// Most certificates in a root file.
pub const MAX_ROOT_CERTIFICATES: usize = 256;

/// Largest uncompressed size of one OS package archive entry (kernel, initramfs or any other
/// file): 2 GiB, twice the 1 GiB package of the performance tests (real kernels are ~10 MiB,
/// initramfs images rarely pass a few hundred MiB). One number for every side: the archive
/// reader (stboot, `stmgr ospkg verify`), the writer (`stmgr ospkg create`) and
/// `stmgr ospkg sign` refuse larger entries.
pub const MAX_ENTRY_BYTES: u64 = 2 << 30;

/// Largest sum of the uncompressed sizes of all entries of an archive: 4 GiB, the most a ZIP
/// without ZIP64 can hold stored. Used by the reader and the writer alike.
pub const MAX_TOTAL_UNCOMPRESSED_BYTES: u64 = 4 << 30;

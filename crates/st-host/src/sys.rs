//! PID 1 housekeeping: pseudo filesystems, console, kernel modules, the kernel command line,
//! uptime, reboot and power-off.
//!
//! stboot runs as PID 1 of a LinuxBoot initramfs. The kernel hands it an empty rootfs: no
//! `/proc`, no `/sys`, no `/dev` (Debian kernels build `DEVTMPFS` without `DEVTMPFS_MOUNT`), and
//! possibly no open file descriptors at all. [`setup_console`] and [`mount_pseudo_filesystems`]
//! repair that; [`load_modules`] loads the NIC drivers (and efivarfs, a module on Debian) with
//! `finit_module`; [`reboot`] and [`poweroff`] end the boot when everything else failed.
//!
//! Every function returns a [`SysError`] whose message names the path and the operation and
//! ends with the OS error, e.g. `mounting devtmpfs on /dev: Operation not permitted (os error
//! 1)`.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::mount::MountFlags;
use rustix::system::RebootCommand;

/// Largest `/proc/cmdline` accepted (x86 allows 2 KiB; some architectures more).
pub const MAX_CMDLINE_BYTES: u64 = 64 * 1024;
/// Largest module order file accepted.
pub const MAX_ORDER_FILE_BYTES: u64 = 64 * 1024;

/// A failed system operation. The message names the path and the operation and includes the OS
/// error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    /// `mkdir` of a mount point failed.
    #[error("creating directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `mount(2)` failed.
    #[error("mounting {fstype} on {target}: {source}")]
    Mount {
        /// The filesystem type (`proc`, `devtmpfs`, ...).
        fstype: &'static str,
        /// The mount point.
        target: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Opening a file failed.
    #[error("opening {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing a (sysfs or proc) file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file exceeded its size bound.
    #[error("reading {path}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A path handed to the kernel contained a NUL byte.
    #[error("path {path:?} contains a NUL byte")]
    NulInPath {
        /// The offending path.
        path: PathBuf,
    },
    /// A module order file named something other than a relative path inside the module
    /// directory.
    #[error(
        "module order file {order_file}: invalid module name {name:?} (must be a relative path \
         without `..`)"
    )]
    InvalidModuleName {
        /// The order file.
        order_file: PathBuf,
        /// The rejected line.
        name: String,
    },
    /// `finit_module(2)` failed.
    #[error("loading module {path}: {source}{hint}", hint = module_hint(source))]
    LoadModule {
        /// The `.ko` file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Attaching fds 0/1/2 to the console failed.
    #[error("attaching stdin/stdout/stderr to {path}: {source}")]
    Console {
        /// The console device.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `reboot(2)` returned, so the command failed.
    #[error("{command}: {source}")]
    Reboot {
        /// The call, e.g. `reboot(RB_AUTOBOOT)`.
        command: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

fn module_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOEXEC) => " (not a valid module for this kernel)",
        Some(libc::ENOENT) => " (unknown symbol: load its dependencies first)",
        Some(libc::EKEYREJECTED) | Some(libc::EBADMSG) => " (module signature rejected)",
        Some(libc::ENOKEY) => " (module is unsigned or its key is unknown)",
        Some(libc::ENOSYS) => " (kernel built without module support)",
        Some(libc::EPERM) => " (module loading disabled, or missing CAP_SYS_MODULE)",
        Some(libc::ENODEV) => " (no hardware or CPU feature for it on this machine)",
        _ => "",
    }
}

impl SysError {
    /// A module that refused to load because this machine lacks what it drives (`ENODEV`):
    /// a NIC driver without its NIC, `sha256_ssse3` on a CPU without SSSE3. One image can list
    /// modules for several kinds of machine, so this is no fault.
    pub fn is_module_not_for_this_machine(&self) -> bool {
        matches!(self, Self::LoadModule { source, .. } if source.raw_os_error() == Some(libc::ENODEV))
    }
}

// ---------------------------------------------------------------------------------------------
// Pseudo filesystems
// ---------------------------------------------------------------------------------------------

/// One pseudo filesystem stboot mounts.
#[derive(Debug, Clone, Copy)]
struct PseudoFs {
    source: &'static CStr,
    /// Mount point relative to the root.
    target: &'static str,
    fstype: &'static str,
    /// `fstype` for the kernel.
    fstype_c: &'static CStr,
    flags: MountFlags,
    data: Option<&'static CStr>,
}

const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);
const NOSUID_NODEV: MountFlags = MountFlags::NOSUID.union(MountFlags::NODEV);

/// Mounted in this order; a failure is an error. Mount points are created when missing.
const REQUIRED_MOUNTS: [PseudoFs; 5] = [
    PseudoFs {
        source: c"proc",
        target: "proc",
        fstype: "proc",
        fstype_c: c"proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    PseudoFs {
        source: c"sysfs",
        target: "sys",
        fstype: "sysfs",
        fstype_c: c"sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    PseudoFs {
        source: c"devtmpfs",
        target: "dev",
        fstype: "devtmpfs",
        fstype_c: c"devtmpfs",
        flags: MountFlags::NOSUID,
        data: Some(c"mode=0755"),
    },
    PseudoFs {
        source: c"tmpfs",
        target: "run",
        fstype: "tmpfs",
        fstype_c: c"tmpfs",
        flags: NOSUID_NODEV,
        data: Some(c"mode=0755"),
    },
    PseudoFs {
        source: c"tmpfs",
        target: "tmp",
        fstype: "tmpfs",
        fstype_c: c"tmpfs",
        flags: NOSUID_NODEV,
        data: Some(c"mode=1777"),
    },
];

const EFIVARFS: PseudoFs = PseudoFs {
    source: c"efivarfs",
    target: "sys/firmware/efi/efivars",
    fstype: "efivarfs",
    fstype_c: c"efivarfs",
    flags: NOSUID_NODEV_NOEXEC,
    data: None,
};

const SECURITYFS: PseudoFs = PseudoFs {
    source: c"securityfs",
    target: "sys/kernel/security",
    fstype: "securityfs",
    fstype_c: c"securityfs",
    flags: NOSUID_NODEV_NOEXEC,
    data: None,
};

/// What happened to one mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// Mounted now.
    Mounted,
    /// Something was already mounted there (a second run, or the kernel did it).
    AlreadyMounted,
    /// Not mounted, and that is not an error; the string says why.
    Skipped(String),
}

/// The result of [`mount_pseudo_filesystems`]: one entry per mount point, in mount order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountReport {
    /// `(mount point, outcome)`.
    pub entries: Vec<(PathBuf, MountOutcome)>,
}

impl MountReport {
    /// Human-readable notes for the skipped mounts, e.g. for debug logging.
    pub fn skipped(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|(target, outcome)| match outcome {
                MountOutcome::Skipped(why) => Some(format!("{}: {why}", target.display())),
                _ => None,
            })
            .collect()
    }

    /// The outcome for `target`, if it was attempted.
    pub fn outcome(&self, target: &Path) -> Option<&MountOutcome> {
        self.entries
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, outcome)| outcome)
    }
}

/// Mounts `/proc`, `/sys`, `/dev` (devtmpfs), `/run` (tmpfs, 0755) and `/tmp` (tmpfs, 1777),
/// creating the directories as needed; then efivarfs on `/sys/firmware/efi/efivars` if
/// `/sys/firmware/efi` exists, and securityfs on `/sys/kernel/security`, both best effort.
///
/// Idempotent: mount points that already carry a mount are left alone. Failing to mount one of
/// the first five is an error; efivarfs and securityfs failures are reported as
/// [`MountOutcome::Skipped`] (efivarfs is a module on Debian kernels: load it, then call
/// [`mount_efivarfs`] again).
pub fn mount_pseudo_filesystems() -> Result<MountReport, SysError> {
    mount_pseudo_filesystems_at(Path::new("/"))
}

/// [`mount_pseudo_filesystems`] below `root` instead of `/` (for tests in a private mount
/// namespace).
pub fn mount_pseudo_filesystems_at(root: &Path) -> Result<MountReport, SysError> {
    let mut report = MountReport::default();
    for fs in &REQUIRED_MOUNTS {
        let target = root.join(fs.target);
        if let Err(source) = std::fs::create_dir_all(&target) {
            return Err(SysError::CreateDir {
                path: target,
                source,
            });
        }
        let outcome = mount_one(fs, &target)?;
        report.entries.push((target, outcome));
    }
    let efivars = root.join(EFIVARFS.target);
    let outcome = mount_efivarfs_at(root)?;
    report.entries.push((efivars, outcome));
    let securityfs = root.join(SECURITYFS.target);
    let outcome = mount_optional(&SECURITYFS, &securityfs);
    report.entries.push((securityfs, outcome));
    Ok(report)
}

/// Mounts efivarfs on `/sys/firmware/efi/efivars`. Not an error when the machine did not boot
/// through UEFI (no `/sys/firmware/efi`) or the kernel does not know efivarfs (module not
/// loaded yet): those give [`MountOutcome::Skipped`].
pub fn mount_efivarfs() -> Result<MountOutcome, SysError> {
    mount_efivarfs_at(Path::new("/"))
}

/// [`mount_efivarfs`] below `root`.
pub fn mount_efivarfs_at(root: &Path) -> Result<MountOutcome, SysError> {
    let efi = root.join("sys/firmware/efi");
    if !efi.is_dir() {
        return Ok(MountOutcome::Skipped(format!(
            "{} absent (not booted through UEFI)",
            efi.display()
        )));
    }
    Ok(mount_optional(&EFIVARFS, &root.join(EFIVARFS.target)))
}

/// Mounts `fs` on an existing `target`, turning every failure into a skip note.
fn mount_optional(fs: &PseudoFs, target: &Path) -> MountOutcome {
    if !target.is_dir() {
        return MountOutcome::Skipped(format!("{} not mounted: mount point absent", fs.fstype));
    }
    match mount_one(fs, target) {
        Ok(outcome) => outcome,
        Err(SysError::Mount { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
            MountOutcome::Skipped(format!(
                "{} not mounted: filesystem type unknown to the kernel (module not loaded?)",
                fs.fstype
            ))
        }
        Err(err) => MountOutcome::Skipped(err.to_string()),
    }
}

fn mount_one(fs: &PseudoFs, target: &Path) -> Result<MountOutcome, SysError> {
    if is_mount_point(target) {
        return Ok(MountOutcome::AlreadyMounted);
    }
    let c_target = path_cstring(target)?;
    match rustix::mount::mount(fs.source, &*c_target, fs.fstype_c, fs.flags, fs.data) {
        Ok(()) => Ok(MountOutcome::Mounted),
        Err(rustix::io::Errno::BUSY) => Ok(MountOutcome::AlreadyMounted),
        Err(e) => Err(SysError::Mount {
            fstype: fs.fstype,
            target: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Whether `path` is a mount point: its device differs from its parent's. (Works before
/// `/proc` exists; bind mounts of the same filesystem are not detected, which stboot never
/// creates.)
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Ok(parent) = std::fs::metadata(path.join("..")) else {
        return false;
    };
    meta.dev() != parent.dev() || meta.ino() == parent.ino()
}

fn path_cstring(path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SysError::NulInPath {
        path: path.to_path_buf(),
    })
}

// ---------------------------------------------------------------------------------------------
// Console
// ---------------------------------------------------------------------------------------------

/// Attaches fds 0, 1 and 2 to `/dev/console` where they are closed or point to `/dev/null`.
///
/// The kernel starts init without any fds when it cannot open `/dev/console` (no node in the
/// initramfs). Rust's runtime then points the closed fds at `/dev/null` before `main` (and
/// aborts if that node is missing too, so the initramfs must carry `/dev/console` or
/// `/dev/null`); this function undoes that once devtmpfs is mounted. Returns whether any fd was
/// replaced.
pub fn setup_console() -> Result<bool, SysError> {
    setup_console_with(Path::new("/dev/console"))
}

/// [`setup_console`] with another device or file (for tests).
pub fn setup_console_with(console: &Path) -> Result<bool, SysError> {
    use rustix::stdio::{dup2_stderr, dup2_stdin, dup2_stdout, stderr, stdin, stdout};
    type Dup2 = fn(&rustix::fd::OwnedFd) -> rustix::io::Result<()>;
    // std keeps fds 0-2 open (on /dev/null if they were closed at start), so they can be
    // borrowed; `dup2_*` replace them in place.
    let stdio: [(rustix::fd::BorrowedFd<'static>, Dup2); 3] = [
        (stdin(), |fd| dup2_stdin(fd)),
        (stdout(), |fd| dup2_stdout(fd)),
        (stderr(), |fd| dup2_stderr(fd)),
    ];
    let missing: Vec<Dup2> = stdio
        .into_iter()
        .filter(|(fd, _)| !fd_is_useful(*fd))
        .map(|(_, dup2)| dup2)
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let c_path = path_cstring(console)?;
    let err = |e: rustix::io::Errno| SysError::Console {
        path: console.to_path_buf(),
        source: e.into(),
    };
    // Close-on-exec is for this fd only: the copies dup2 makes as 0-2 are inherited.
    let fd = rustix::fs::open(
        &*c_path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    for dup2 in missing {
        dup2(&fd).map_err(err)?;
    }
    // Should the console have been opened as one of 0-2 (only possible if one was closed),
    // it is one of the new stdio fds: keep it open.
    if rustix::fd::AsRawFd::as_raw_fd(&fd) <= 2 {
        let _ = rustix::fd::IntoRawFd::into_raw_fd(fd);
    }
    Ok(true)
}

/// Whether `fd` is open and not `/dev/null` (character device 1:3).
fn fd_is_useful(fd: rustix::fd::BorrowedFd<'_>) -> bool {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    let is_chr = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice;
    !(is_chr && st.st_rdev == rustix::fs::makedev(1, 3))
}

// ---------------------------------------------------------------------------------------------
// Kernel modules
// ---------------------------------------------------------------------------------------------

/// The result of loading one module of an order file.
#[derive(Debug)]
pub struct ModuleLoad {
    /// The name as written in the order file.
    pub name: String,
    /// `Ok` when loaded now or already loaded.
    pub result: Result<(), SysError>,
}

/// The module file names of an order file: one per line, surrounding whitespace trimmed; blank
/// lines and lines starting with `#` are ignored.
pub fn parse_module_order(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Loads the modules listed in `order_file` (see [`parse_module_order`]) from `dir`, in order.
///
/// Every listed module is attempted even after a failure; the caller logs the results. A
/// module that is already loaded counts as success. The error is for the order file itself
/// (missing, unreadable, larger than [`MAX_ORDER_FILE_BYTES`]).
pub fn load_modules(dir: &Path, order_file: &Path) -> Result<Vec<ModuleLoad>, SysError> {
    let bytes = read_bounded(order_file, MAX_ORDER_FILE_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(parse_module_order(&text)
        .into_iter()
        .map(|name| {
            let result = match module_path(dir, name) {
                Some(path) => load_module(&path),
                None => Err(SysError::InvalidModuleName {
                    order_file: order_file.to_path_buf(),
                    name: name.to_owned(),
                }),
            };
            ModuleLoad {
                name: name.to_owned(),
                result,
            }
        })
        .collect())
}

/// `dir/name` if `name` is a relative path that stays inside `dir`.
fn module_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    let ok = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then(|| dir.join(rel))
}

/// Loads one uncompressed `.ko` file with `finit_module(fd, "", 0)`. `EEXIST` (already loaded)
/// is success.
pub fn load_module(path: &Path) -> Result<(), SysError> {
    let file = File::open(path).map_err(|source| SysError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    match rustix::system::finit_module(&file, c"", 0) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(SysError::LoadModule {
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Where the kernel's internal shmem mount (memfds) takes its huge-page policy from.
pub const SHMEM_HUGE_PAGES: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// Lets memfds use transparent huge pages (`always` in [`SHMEM_HUGE_PAGES`]): the kernel and
/// initramfs images are then written into 2 MiB pages instead of 4 KiB ones, which makes
/// filling the memfds two to three times faster under QEMU/TCG (docs/benchmarks.md also has
/// what it does to `kexec_file_load`). The setting lives in RAM and ends with this kernel; it
/// touches only the internal mount (memfds, SysV shm), not tmpfs mounts. An error when the
/// kernel has no transparent huge pages or refuses the value; callers log it and go on.
pub fn memfd_huge_pages() -> Result<(), SysError> {
    memfd_huge_pages_at(Path::new(SHMEM_HUGE_PAGES))
}

/// [`memfd_huge_pages`] with another control file (tests).
pub fn memfd_huge_pages_at(control: &Path) -> Result<(), SysError> {
    std::fs::write(control, "always").map_err(|source| SysError::Write {
        path: control.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// Kernel command line
// ---------------------------------------------------------------------------------------------

/// The kernel command line from `/proc/cmdline`, without the trailing newline.
pub fn kernel_cmdline() -> Result<String, SysError> {
    let bytes = read_bounded(Path::new("/proc/cmdline"), MAX_CMDLINE_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_end_matches(['\n', '\0']).to_owned())
}

/// Parser for `prefix.key=value` options on the kernel command line.
#[derive(Debug, Clone, Copy)]
pub struct CmdlineOptions;

impl CmdlineOptions {
    /// The options of `cmdline` whose name starts with `prefix` followed by a dot (`"stboot"`
    /// and `"stboot."` are the same prefix), keyed by the rest of the name.
    ///
    /// Tokens are split like the kernel's `next_arg`: whitespace separates them except inside
    /// double quotes, and quotes around the value (`key="a b"`) or the whole token
    /// (`"key=a b"`) are removed. A flag without `=` maps to `""`. When a key repeats, the
    /// last one wins.
    pub fn parse(cmdline: &str, prefix: &str) -> BTreeMap<String, String> {
        let prefix = prefix.strip_suffix('.').unwrap_or(prefix);
        let mut options = BTreeMap::new();
        for (name, value) in cmdline_tokens(cmdline) {
            let Some(key) = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
            else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            options.insert(key.to_owned(), value.unwrap_or_default().to_owned());
        }
        options
    }
}

/// Splits a command line into `(name, value)` pairs the way the kernel's `next_arg` does.
fn cmdline_tokens(cmdline: &str) -> Vec<(&str, Option<&str>)> {
    let mut tokens = Vec::new();
    let mut rest = cmdline.trim_start_matches(is_kernel_space);
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        let quoted = bytes[0] == b'"';
        let start = usize::from(quoted);
        let mut in_quote = quoted;
        let mut equals = None;
        let mut end = start;
        while end < bytes.len() {
            let b = bytes[end];
            if is_kernel_space_byte(b) && !in_quote {
                break;
            }
            if equals.is_none() && b == b'=' {
                equals = Some(end);
            }
            if b == b'"' {
                in_quote = !in_quote;
            }
            end += 1;
        }
        let token = &rest[start..end];
        // `end` is at a char boundary: it is either the end or an ASCII space.
        rest = rest[end..].trim_start_matches(is_kernel_space);
        // A token that opened with a quote loses its closing quote, wherever the `=` is.
        let token = if quoted {
            token.strip_suffix('"').unwrap_or(token)
        } else {
            token
        };
        match equals.map(|eq| eq - start) {
            Some(eq) if eq < token.len() => {
                let value = &token[eq + 1..];
                let value = match value.strip_prefix('"') {
                    Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
                    None => value,
                };
                tokens.push((&token[..eq], Some(value)));
            }
            _ => tokens.push((token, None)),
        }
    }
    tokens
}

fn is_kernel_space_byte(b: u8) -> bool {
    // The kernel's isspace(): space, \t, \n, \v, \f, \r (and 0xa0, which is not valid UTF-8 on
    // its own and therefore cannot start a char here).
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_kernel_space(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_kernel_space_byte)
}

// ---------------------------------------------------------------------------------------------
// Time, reboot, power-off
// ---------------------------------------------------------------------------------------------

/// Time since boot, suspend included (`CLOCK_BOOTTIME`).
pub fn uptime() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0).min(999_999_999);
    Duration::new(secs, nanos)
}

/// Flushes all filesystem buffers (`sync(2)`).
pub fn sync() {
    rustix::fs::sync();
}

/// Syncs and restarts the machine. Returns only on failure (e.g. not CAP_SYS_BOOT).
pub fn reboot() -> SysError {
    reboot_with(RebootCommand::Restart, "reboot(RB_AUTOBOOT)")
}

/// Syncs and powers the machine off. Returns only on failure.
pub fn poweroff() -> SysError {
    reboot_with(RebootCommand::PowerOff, "reboot(RB_POWER_OFF)")
}

fn reboot_with(cmd: RebootCommand, command: &'static str) -> SysError {
    sync();
    // On success reboot(2) does not return.
    let source = match rustix::system::reboot(cmd) {
        Err(e) => e.into(),
        Ok(()) => io::Error::other("returned without restarting"),
    };
    SysError::Reboot { command, source }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Reads at most `limit` bytes of `path`; a longer file is [`SysError::TooLarge`].
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SysError> {
    let file = File::open(path).map_err(|source| SysError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| SysError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(SysError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_next_arg() {
        assert_eq!(
            cmdline_tokens(r#"  a b=c  "d=e f" g="h i" j= k=l"m n" "o""#),
            vec![
                ("a", None),
                ("b", Some("c")),
                ("d", Some("e f")),
                ("g", Some("h i")),
                ("j", Some("")),
                ("k", Some(r#"l"m n""#)),
                ("o", None),
            ]
        );
    }

    #[test]
    fn enodev_module_is_not_for_this_machine() {
        let e = SysError::LoadModule {
            path: PathBuf::from("/lib/modules/sha256-ssse3.ko"),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        };
        assert!(e.is_module_not_for_this_machine());
        assert!(e.to_string().contains("no hardware or CPU feature"), "{e}");
        let e = SysError::LoadModule {
            path: PathBuf::from("/lib/modules/x.ko"),
            source: io::Error::from_raw_os_error(libc::ENOEXEC),
        };
        assert!(!e.is_module_not_for_this_machine());
    }

    #[test]
    fn memfd_huge_pages_writes_always_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("st-host-thp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let control = dir.join("shmem_enabled");
        std::fs::write(&control, "never").unwrap();
        memfd_huge_pages_at(&control).unwrap();
        assert_eq!(std::fs::read_to_string(&control).unwrap(), "always");
        let missing = dir.join("missing/shmem_enabled");
        let e = memfd_huge_pages_at(&missing).unwrap_err().to_string();
        assert!(e.contains("missing/shmem_enabled"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn module_paths_stay_inside_dir() {
        let dir = Path::new("/lib/modules");
        assert_eq!(
            module_path(dir, "drivers/net/e1000.ko"),
            Some(PathBuf::from("/lib/modules/drivers/net/e1000.ko"))
        );
        assert_eq!(module_path(dir, "../x.ko"), None);
        assert_eq!(module_path(dir, "a/../../x.ko"), None);
        assert_eq!(module_path(dir, "/etc/x.ko"), None);
    }

    #[test]
    fn mount_table_is_complete() {
        let targets: Vec<_> = REQUIRED_MOUNTS.iter().map(|fs| fs.target).collect();
        assert_eq!(targets, ["proc", "sys", "dev", "run", "tmp"]);
        assert_eq!(REQUIRED_MOUNTS[3].data, Some(c"mode=0755"));
        for fs in REQUIRED_MOUNTS.iter().chain([&EFIVARFS, &SECURITYFS]) {
            assert_eq!(fs.fstype_c.to_str().unwrap(), fs.fstype);
        }
    }
}

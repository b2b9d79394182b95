//! Tests of `st_host::sys`. The mount and console tests run the real code in a child process
//! (a private mount namespace for the mounts), so the machine running the tests is not touched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use st_host::sys::{self, CmdlineOptions, MountOutcome, SysError};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn cmdline_options_with_prefix() {
    let cmdline = r#"BOOT_IMAGE=/vmlinuz console=ttyS0 stboot.loglevel=debug stboot.dryrun stboot.url="http://a b/c" quiet stbootx.no=1 stboot.=x stboot.loglevel=info -- stboot.after=1"#;
    let expected = map(&[
        ("loglevel", "info"),
        ("dryrun", ""),
        ("url", "http://a b/c"),
        ("after", "1"),
    ]);
    assert_eq!(CmdlineOptions::parse(cmdline, "stboot"), expected);
    assert_eq!(CmdlineOptions::parse(cmdline, "stboot."), expected);
}

#[test]
fn cmdline_quoting_like_the_kernel() {
    // A quote before the name quotes the whole token; the `=` inside still splits.
    let opts = CmdlineOptions::parse("\"stboot.a=b c\"\tstboot.d=\"\" stboot.e=x=y\n", "stboot");
    assert_eq!(opts, map(&[("a", "b c"), ("d", ""), ("e", "x=y")]));
    // An unterminated quote runs to the end of the line.
    let opts = CmdlineOptions::parse("stboot.a=\"b c stboot.d=1", "stboot");
    assert_eq!(opts, map(&[("a", "b c stboot.d=1")]));
    assert!(CmdlineOptions::parse("", "stboot").is_empty());
    assert!(CmdlineOptions::parse("   ", "stboot").is_empty());
    // Non-ASCII bytes pass through.
    let opts = CmdlineOptions::parse("stboot.name=grüße", "stboot");
    assert_eq!(opts, map(&[("name", "grüße")]));
}

#[test]
fn kernel_cmdline_of_this_machine() {
    let line = sys::kernel_cmdline().unwrap();
    assert!(!line.ends_with('\n'));
}

#[test]
fn uptime_is_monotonic_and_positive() {
    let a = sys::uptime();
    let b = sys::uptime();
    assert!(a > std::time::Duration::ZERO);
    assert!(b >= a);
}

#[test]
fn module_order_parsing() {
    let text = "# virtio-net\n\nvirtio_ring.ko\n  virtio.ko  \n#virtio_pci.ko\nnet/e1000.ko\n";
    assert_eq!(
        sys::parse_module_order(text),
        ["virtio_ring.ko", "virtio.ko", "net/e1000.ko"]
    );
}

#[test]
fn load_modules_reports_each_module() {
    let dir = tempfile::tempdir().unwrap();
    // Not an ELF module: the kernel rejects it (ENOEXEC, or ENOSYS/EPERM where modules are
    // unavailable) without loading anything.
    std::fs::write(dir.path().join("garbage.ko"), b"not a module").unwrap();
    let order = dir.path().join("modules.order");
    std::fs::write(&order, "# test\nmissing.ko\n\n../escape.ko\ngarbage.ko\n").unwrap();

    let loads = sys::load_modules(dir.path(), &order).unwrap();
    let names: Vec<_> = loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["missing.ko", "../escape.ko", "garbage.ko"]);

    let missing = loads[0].result.as_ref().unwrap_err();
    assert!(matches!(missing, SysError::Open { .. }), "{missing}");
    let msg = missing.to_string();
    assert!(
        msg.starts_with("opening ") && msg.contains("missing.ko"),
        "{msg}"
    );

    let escape = loads[1].result.as_ref().unwrap_err();
    assert!(
        matches!(escape, SysError::InvalidModuleName { .. }),
        "{escape}"
    );

    let garbage = loads[2].result.as_ref().unwrap_err();
    eprintln!("{garbage}");
    assert!(matches!(garbage, SysError::LoadModule { .. }), "{garbage}");
    assert!(
        garbage.to_string().starts_with("loading module "),
        "{garbage}"
    );
    assert!(garbage.to_string().contains("garbage.ko"), "{garbage}");
}

#[test]
fn load_modules_order_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = sys::load_modules(dir.path(), &dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, SysError::Open { .. }), "{err}");

    let big = dir.path().join("big.order");
    std::fs::write(&big, vec![b'#'; sys::MAX_ORDER_FILE_BYTES as usize + 1]).unwrap();
    let err = sys::load_modules(dir.path(), &big).unwrap_err();
    assert!(matches!(err, SysError::TooLarge { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Child-process tests
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "ST_HOST_TEST_CHILD";

/// Runs test `name` of this binary in a child, optionally under `unshare`.
fn run_child(name: &str, env: &[(&str, &str)], unshare: bool) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if unshare {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name)
    .envs(env.iter().copied());
    cmd.output().unwrap()
}

fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

fn mount_ns() -> String {
    std::fs::read_link("/proc/self/ns/mnt")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn can_unshare() -> bool {
    let root = rustix::process::geteuid().is_root();
    root && Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn mounts_in_a_private_namespace() {
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = run_child(
        "child_mounts",
        &[
            ("ST_HOST_TEST_ROOT", root.path().to_str().unwrap()),
            ("ST_HOST_TEST_PARENT_NS", &mount_ns()),
        ],
        true,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("CHILD-MOUNTS-OK"),
        "child did not run:\n{stdout}\n{stderr}"
    );
    // Nothing leaked into this namespace.
    assert!(!root.path().join("proc/self").exists());
}

#[test]
#[ignore = "runs only as the child of mounts_in_a_private_namespace"]
fn child_mounts() {
    if !is_child("child_mounts") {
        return;
    }
    // Refuse to mount anything unless we really are in another mount namespace.
    let parent_ns = std::env::var("ST_HOST_TEST_PARENT_NS").unwrap();
    assert!(!parent_ns.is_empty() && parent_ns != mount_ns());
    let root = std::path::PathBuf::from(std::env::var("ST_HOST_TEST_ROOT").unwrap());

    let report = sys::mount_pseudo_filesystems_at(&root).unwrap();
    eprintln!("{report:#?}");
    for dir in ["proc", "sys", "dev", "run", "tmp"] {
        assert_eq!(
            report.outcome(&root.join(dir)),
            Some(&MountOutcome::Mounted),
            "{dir}: {report:?}"
        );
    }
    assert!(root.join("proc/self/stat").exists());
    assert!(root.join("sys/kernel").is_dir());
    assert!(root.join("dev/null").exists());
    let mode = |d: &str| {
        std::fs::metadata(root.join(d))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("run"), 0o755);
    assert_eq!(mode("tmp"), 0o1777);
    // No EFI on a BIOS machine is a skip, not an error.
    if !Path::new("/sys/firmware/efi").exists() {
        let efivars = root.join("sys/firmware/efi/efivars");
        assert!(
            matches!(report.outcome(&efivars), Some(MountOutcome::Skipped(_))),
            "{report:?}"
        );
        assert!(
            report
                .skipped()
                .iter()
                .any(|s| s.contains("not booted through UEFI"))
        );
    }

    // Second run: everything already there.
    let again = sys::mount_pseudo_filesystems_at(&root).unwrap();
    for dir in ["proc", "sys", "dev", "run", "tmp"] {
        assert_eq!(
            again.outcome(&root.join(dir)),
            Some(&MountOutcome::AlreadyMounted),
            "{dir}: {again:?}"
        );
    }
    println!("CHILD-MOUNTS-OK");
}

#[test]
fn mount_errors_name_target_and_os_error() {
    let root = tempfile::tempdir().unwrap();
    // A file where a mount point directory must go.
    std::fs::write(root.path().join("proc"), b"").unwrap();
    let err = sys::mount_pseudo_filesystems_at(root.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SysError::CreateDir { .. }), "{msg}");
    assert!(
        msg.starts_with("creating directory ") && msg.contains("proc: "),
        "{msg}"
    );
}

#[test]
fn console_replaces_dev_null_fds() {
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console");
    std::fs::write(&console, b"").unwrap();
    let exe = std::env::current_exe().unwrap();
    // stdin/stdout/stderr = /dev/null: what Rust's runtime leaves when init starts without fds.
    let status = Command::new(exe)
        .args(["--exact", "child_console", "--ignored", "--test-threads=1"])
        .env(CHILD_ENV, "child_console")
        .env("ST_HOST_TEST_CONSOLE", &console)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&console).unwrap();
    assert!(text.contains("fd1-on-console"), "{text:?}");
    assert!(text.contains("fd2-on-console"), "{text:?}");
}

#[test]
#[ignore = "runs only as the child of console_replaces_dev_null_fds"]
fn child_console() {
    if !is_child("child_console") {
        return;
    }
    let console = std::env::var("ST_HOST_TEST_CONSOLE").unwrap();
    assert!(sys::setup_console_with(Path::new(&console)).unwrap());
    // Now fds 1 and 2 are the "console"; a second call finds nothing to fix.
    assert!(!sys::setup_console_with(Path::new(&console)).unwrap());
    for (fd, text) in [
        (rustix::stdio::stdout(), "fd1-on-console\n"),
        (rustix::stdio::stderr(), "fd2-on-console\n"),
    ] {
        assert_eq!(rustix::io::write(fd, text.as_bytes()), Ok(text.len()));
    }
}

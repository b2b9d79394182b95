//! The panic hook: logs through the installed logger, then runs the recovery instead of
//! unwinding. Its own test binary, because it installs the global logger and panic hook.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

fn recovery() -> ! {
    // The hook ran and logged; leave the way stboot's recovery would: never return.
    std::process::exit(42)
}

#[test]
fn panic_hook_logs_and_calls_recovery() {
    if std::env::var("ST_HOST_PANIC_CHILD").is_ok() {
        st_host::log::init(log::LevelFilter::Info, false).unwrap();
        // Calling init again only changes the settings.
        st_host::log::init(log::LevelFilter::Info, false).unwrap();
        st_host::log::install_panic_hook(recovery);
        log::info!("before the panic");
        let v: Vec<u8> = Vec::new();
        let i = std::hint::black_box(3);
        let _ = v[i];
        unreachable!();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "panic_hook_logs_and_calls_recovery",
            "--nocapture",
        ])
        .env("ST_HOST_PANIC_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(42), "{stderr}");
    assert!(
        stderr.contains("stboot: [INFO] before the panic\n"),
        "{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stboot: [ERROR] panic at "))
        .unwrap_or_else(|| panic!("no panic line in {stderr}"));
    assert!(line.contains("tests/log_panic.rs:"), "{line}");
    assert!(line.contains("index out of bounds"), "{line}");
}

//! `stboot --dry-run` as an operator runs it: the same flow, exit status and output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

fn stboot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stboot"))
        .args(args)
        .output()
        .unwrap()
}

/// An initramfs root holding `ospkg/provision.{json,zip}` copied from a scenario vector.
fn root_with(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ospkg = dir.path().join("ospkg");
    std::fs::create_dir(&ospkg).unwrap();
    let src = vectors().join("cases").join(case);
    std::fs::copy(src.join("ospkg.json"), ospkg.join("provision.json")).unwrap();
    std::fs::copy(src.join("ospkg.zip"), ospkg.join("provision.zip")).unwrap();
    dir
}

fn run(root: &Path, policy: &str) -> Output {
    let tp = vectors().join("trust").join(policy);
    stboot(&[
        "--dry-run",
        "--trust-policy",
        tp.to_str().unwrap(),
        "--initramfs-root",
        root.to_str().unwrap(),
    ])
}

#[test]
fn prints_what_it_would_boot() {
    let root = root_with("good-1-of-1");
    let o = run(root.path(), "policy-1");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("would boot: kernel boot/vmlinuz (32 bytes)"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("PROVISION MODE"));
}

#[test]
fn boots_a_descriptor_with_wrapped_base64() {
    let root = root_with("base64-line-breaks");
    let o = run(root.path(), "policy-1");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn refuses_what_does_not_verify() {
    for (case, why) in [
        ("tampered-byte", "does not verify"),
        ("zip-bomb", "compression ratio"),
        // What stmgr ospkg verify rejects, stboot rejects: every entry's CRC is checked, junk
        // after a deflate stream is refused, and a cmdline kexec would refuse is refused.
        ("bad-crc-in-extra-file", "\"boot/README\": CRC-32"),
        (
            "directory-deflate-trailing-junk",
            "\"boot/\": 4 bytes after the end of the deflate stream",
        ),
        ("cmdline-with-nul", "\"cmdline\" has a NUL character"),
        ("cmdline-too-long", "\"cmdline\" is 2017 bytes"),
        ("entry-over-2-gib", "over the 2147483648-byte limit"),
    ] {
        let root = root_with(case);
        let o = run(root.path(), "policy-1");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains("no OS package could be booted") && err.contains(why),
            "{case}: {err}"
        );
        assert!(
            o.stdout.is_empty(),
            "{case}: nothing may be reported as bootable"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(stboot(&["--dry-run"]).status.code(), Some(2));
    assert_eq!(stboot(&["--frobnicate"]).status.code(), Some(2));
    assert_eq!(
        stboot(&[
            "--dry-run",
            "--trust-policy",
            "x",
            "--option",
            "loglevel=loud"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(stboot(&["--help"]).status.code(), Some(0));
}

#[test]
fn trust_policy_errors_name_the_directory_given() {
    let root = root_with("good-1-of-1");
    let tp = tempfile::tempdir().unwrap();
    let o = stboot(&[
        "--dry-run",
        "--trust-policy",
        tp.path().to_str().unwrap(),
        "--initramfs-root",
        root.path().to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let want = format!("{}/trust_policy.json: missing", tp.path().display());
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("/etc/trust_policy"), "{err}");
}

/// With the network fetch method the dry run prints the network plan PID 1 would apply (here a
/// bond, so the plan does not depend on this machine's links), and applies none of it.
#[test]
fn prints_the_network_plan_without_applying_it() {
    let dir = tempfile::tempdir().unwrap();
    let bond = format!("stdry{}", std::process::id() % 100_000);
    let hc = dir.path().join("host_config.json");
    std::fs::write(
        &hc,
        format!(
            r#"{{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2",
            "dns":["127.0.0.1","9.9.9.9"],"bonding_mode":"active-backup","bond_name":"{bond}",
            "network_interfaces":[{{"interface_name":"eth0"}},{{"interface_name":"eth1"}}],
            "ospkg_pointer":"http://127.0.0.1:9/ospkg.json","identity":null,"authentication":null}}"#
        ),
    )
    .unwrap();
    let tp = vectors().join("trust/policy-1");
    let o = stboot(&[
        "--dry-run",
        "--trust-policy",
        tp.to_str().unwrap(),
        "--host-config",
        hc.to_str().unwrap(),
        "--option",
        "deadline=0",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [format!(
            "network plan: static 10.0.2.15/24 via 10.0.2.2 on {bond} (bond active-backup over \
             eth0, eth1); dns 9.9.9.9 (ignoring 127.0.0.1 (in 127.0.0.0/8 (loopback)))"
        )],
        "{err}"
    );
    assert!(
        err.contains("network: not configured (dry run: using this machine's network)"),
        "{err}"
    );
    assert!(
        !Path::new("/sys/class/net").join(&bond).exists(),
        "the dry run built the bond"
    );
}

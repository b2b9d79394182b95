//! stmgr end to end through its command line: exit codes, files, interop with the Go reference.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stmgr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stmgr"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    o
}

fn go_vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go-reference")
}

/// A root, a leaf and a 2-file OS package in a fresh directory.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("vmlinuz"), b"kernel bytes kernel bytes").unwrap();
    std::fs::write(d.join("initrd.img"), vec![7u8; 300_000]).unwrap();
    ok(stmgr(
        d,
        &[
            "keygen",
            "certificate",
            "--is-ca",
            "--cert-out",
            "root.pem",
            "--key-out",
            "root.key",
        ],
    ));
    ok(stmgr(
        d,
        &[
            "keygen",
            "certificate",
            "--root-cert",
            "root.pem",
            "--root-key",
            "root.key",
            "--cert-out",
            "leaf.pem",
            "--key-out",
            "leaf.key",
        ],
    ));
    ok(stmgr(
        d,
        &[
            "ospkg",
            "create",
            "--kernel",
            "vmlinuz",
            "--initramfs",
            "initrd.img",
            "--cmdline",
            "console=ttyS0",
            "--url",
            "os.zip",
            "--out",
            "os",
        ],
    ));
    std::fs::create_dir(d.join("policy")).unwrap();
    std::fs::copy(d.join("root.pem"), d.join("policy/ospkg_signing_root.pem")).unwrap();
    std::fs::write(
        d.join("policy/trust_policy.json"),
        r#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "network"}"#,
    )
    .unwrap();
    dir
}

#[test]
fn create_sign_verify_round_trip() {
    let dir = setup();
    let d = dir.path();
    // Unsigned: rejected both ways, and --root-certs does not accept zero signatures.
    let o = stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os.zip",
            "--trust-policy",
            "policy",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os",
            "--root-certs",
            "root.pem",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    ok(stmgr(
        d,
        &[
            "ospkg", "sign", "--key", "leaf.key", "--cert", "leaf.pem", "--ospkg", "os.json",
        ],
    ));
    let o = stmgr(
        d,
        &[
            "ospkg", "sign", "--key", "leaf.key", "--cert", "leaf.pem", "--ospkg", "os",
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("already has a signature by this key"),
        "{}",
        stderr(&o)
    );

    ok(stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os.zip",
            "--trust-policy",
            "policy",
        ],
    ));
    let o = ok(stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os.json",
            "--root-certs",
            "root.pem",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "accept");
    assert_eq!(v["report"]["valid"], 1);
    assert_eq!(v["manifest"]["kernel"], "boot/vmlinuz");
    assert_eq!(v["manifest"]["cmdline"], "console=ttyS0");
    assert_eq!(v["os_pkg_url"], "os.zip");

    // The leaf is valid for a year from now: ten years on, it is rejected, naming the reason.
    let o = stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os.zip",
            "--trust-policy",
            "policy",
            "--at",
            "2040-01-01T00:00:00Z",
            "--json",
        ],
    );
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "reject");
    assert_eq!(v["stage"], "threshold");
    let reason = v["report"]["signatures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("expired"), "{reason}");

    // One flipped byte in the archive.
    let mut zip = std::fs::read(d.join("os.zip")).unwrap();
    let mid = zip.len() / 2;
    zip[mid] ^= 1;
    std::fs::write(d.join("os.zip"), zip).unwrap();
    let o = stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "os.zip",
            "--trust-policy",
            "policy",
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not verify"), "{}", stderr(&o));
}

#[test]
fn create_is_reproducible() {
    let a = setup();
    let b = setup();
    for f in ["os.zip", "os.json"] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
}

#[test]
fn unsigned_descriptor_is_the_reference_bytes() {
    let dir = setup();
    let json = std::fs::read_to_string(dir.path().join("os.json")).unwrap();
    assert_eq!(
        json,
        "{\n  \"version\": 1,\n  \"os_pkg_url\": \"os.zip\",\n  \"certificates\": null,\n  \"signatures\": null\n}"
    );
}

/// Signing the Go reference's archive with the same key and certificate gives exactly the Go
/// reference's descriptor: same encoding, same layout, same (deterministic) signature.
#[test]
fn signing_reproduces_the_go_descriptor_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = go_vectors();
    std::fs::copy(v.join("cases/01-good-1sig.zip"), d.join("pkg.zip")).unwrap();
    std::fs::write(
        d.join("pkg.json"),
        "{\n  \"version\": 1,\n  \"os_pkg_url\": \"\",\n  \"certificates\": null,\n  \"signatures\": null\n}",
    )
    .unwrap();
    let key = v.join("keys/signer1.key.pem");
    let cert = v.join("keys/signer1.cert.pem");
    ok(stmgr(
        d,
        &[
            "ospkg",
            "sign",
            "-key",
            key.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-ospkg",
            "pkg.zip",
        ],
    ));
    assert_eq!(
        std::fs::read(d.join("pkg.json")).unwrap(),
        std::fs::read(v.join("cases/01-good-1sig.json")).unwrap()
    );
}

#[test]
fn go_reference_vectors_get_the_reference_verdicts() {
    let v = go_vectors();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v.join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let threshold = case["threshold"].as_u64().unwrap();
        let policy = dir.path().join(format!("policy-{threshold}"));
        std::fs::create_dir_all(&policy).unwrap();
        std::fs::copy(
            v.join("keys/root.cert.pem"),
            policy.join("ospkg_signing_root.pem"),
        )
        .unwrap();
        std::fs::copy(
            v.join(format!("policy-threshold-{threshold}.json")),
            policy.join("trust_policy.json"),
        )
        .unwrap();
        let pkg = v.join(format!("cases/{name}.zip"));
        let o = stmgr(
            dir.path(),
            &[
                "ospkg",
                "verify",
                "--ospkg",
                pkg.to_str().unwrap(),
                "--trust-policy",
                policy.to_str().unwrap(),
                "--at",
                "2026-01-01T00:00:00Z",
                "--json",
            ],
        );
        let want = if case["expected"] == "accept" { 0 } else { 1 };
        assert_eq!(code(&o), want, "{name}: {}", stderr(&o));
        let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if let Some(found) = case["found"].as_u64()
            && (out["report"]["found"] != found || out["report"]["valid"] != case["valid"])
        {
            failures.push(format!("{name}: report {}", out["report"]));
        }
        if let Some(reason) = case["reason"].as_str() {
            let text = out.to_string();
            if !text.contains(reason) {
                failures.push(format!("{name}: reason {reason:?} not in {text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

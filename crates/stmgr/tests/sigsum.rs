//! `stmgr ospkg sigsum`: attach a Sigsum proof in place of a signature, then verify it under a
//! trust policy with an ospkg_trust_policy. The proofs come from the vectors' test log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use base64::Engine as _;
use common::{ok, refused, stderr, stdout, stmgr};
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

const UNSIGNED: &str = r#"{"version":1,"os_pkg_url":"","certificates":null,"signatures":null}"#;

/// `case`'s archive with an unsigned descriptor, as `pkg.zip` + `pkg.json` in `d`, plus the
/// proof file of `proof_case` as `pkg.zip.proof`.
fn package(d: &Path, case: &str, proof_case: &str) {
    let v = vectors().join("cases");
    std::fs::copy(v.join(case).join("ospkg.zip"), d.join("pkg.zip")).unwrap();
    std::fs::write(d.join("pkg.json"), UNSIGNED).unwrap();
    std::fs::copy(
        v.join(proof_case).join("ospkg.zip.proof"),
        d.join("pkg.zip.proof"),
    )
    .unwrap();
}

fn cert(name: &str) -> String {
    vectors()
        .join("trust")
        .join(format!("{name}.pem"))
        .to_str()
        .unwrap()
        .to_string()
}

fn attach(d: &Path, cert_name: &str) -> std::process::Output {
    stmgr(
        d,
        &[
            "ospkg",
            "sigsum",
            "--proof",
            "pkg.zip.proof",
            "--cert",
            &cert(cert_name),
            "--ospkg",
            "pkg.json",
        ],
    )
}

fn verify_json(d: &Path, policy: &str) -> (i32, serde_json::Value) {
    let dir = vectors().join("trust").join(policy);
    let o = stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "pkg.zip",
            "--trust-policy",
            dir.to_str().unwrap(),
            "--at",
            "2026-01-01T00:00:00Z",
            "--json",
        ],
    );
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o))),
    )
}

#[test]
fn an_attached_proof_is_the_proof_file_verbatim_and_verifies_as_logged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    package(d, "sigsum-logged", "sigsum-logged");
    let o = ok(attach(d, "signer1"));
    assert!(stderr(&o).contains("1 signature(s) now"), "{}", stderr(&o));
    let desc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("pkg.json")).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = b64.decode(desc["signatures"][0].as_str().unwrap()).unwrap();
    assert_eq!(sig, std::fs::read(d.join("pkg.zip.proof")).unwrap());
    let pem = b64
        .decode(desc["certificates"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(pem, std::fs::read(cert("signer1")).unwrap());

    let (code, out) = verify_json(d, "sigsum-1");
    assert_eq!(code, 0, "{out:#}");
    let s = &out["report"]["signatures"][0];
    assert_eq!(s["kind"], "sigsum-proof");
    assert_eq!(s["counted"], true);
    assert_eq!(s["logged"]["tree_size"], 6);
    assert_eq!(s["logged"]["leaf_index"], 3);
    assert_eq!(s["logged"]["proof_version"], 2);
    assert_eq!(
        s["logged"]["witnesses"],
        serde_json::json!(["witness-1.example.org", "witness-2.example.org"])
    );
    assert_eq!(s["logged"]["log_url"], "https://log.example.org/test");
    // The same package under a trust policy without ospkg_trust_policy: the proof does not count.
    let (code, out) = verify_json(d, "policy-1");
    assert_eq!(code, 1);
    let reason = out["report"]["signatures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("no ospkg_trust_policy"), "{reason}");
    // Human-readable output says it is logged.
    let dir1 = vectors().join("trust").join("sigsum-1");
    let o = ok(stmgr(
        d,
        &[
            "ospkg",
            "verify",
            "--ospkg",
            "pkg.zip",
            "--trust-policy",
            dir1.to_str().unwrap(),
            "--at",
            "2026-01-01T00:00:00Z",
        ],
    ));
    assert!(
        stdout(&o).contains("counted (Sigsum-logged: log "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_reference_flags_work_and_a_plain_signature_mixes_with_the_proof() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    package(d, "sigsum-logged", "sigsum-logged");
    let c = cert("signer1");
    ok(stmgr(
        d,
        &[
            "ospkg",
            "sigsum",
            "-proof",
            "pkg.zip.proof",
            "-cert",
            &c,
            "-ospkg",
            "pkg",
        ],
    ));
    let key = vectors().join("trust/signer2.key.pem");
    ok(stmgr(
        d,
        &[
            "ospkg",
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--cert",
            &cert("signer2"),
            "--ospkg",
            "pkg.zip",
        ],
    ));
    let (code, out) = verify_json(d, "sigsum-2");
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["report"]["valid"], 2);
    assert_eq!(out["report"]["signatures"][1]["kind"], "plain");
    // Logging required: the plain one no longer counts, and says why.
    let (code, out) = verify_json(d, "sigsum-required-1");
    assert_eq!(code, 0, "{out:#}");
    let plain = &out["report"]["signatures"][1];
    assert_eq!(plain["counted"], false);
    assert!(
        plain["reason"].as_str().unwrap().contains("not logged"),
        "{plain}"
    );
}

#[test]
fn attaching_refuses_what_does_not_fit_naming_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Another certificate's key.
    package(d, "sigsum-logged", "sigsum-logged");
    refused(attach(d, "signer2"), "is not the signer's key hash");
    // The proof of another archive.
    package(d, "sigsum-and-plain-mix", "sigsum-logged");
    refused(attach(d, "signer1"), "leaf signature does not verify");
    // Twice by the same key.
    package(d, "sigsum-logged", "sigsum-logged");
    ok(attach(d, "signer1"));
    refused(attach(d, "signer1"), "already by this certificate's key");
    // Not a proof.
    package(d, "sigsum-logged", "sigsum-logged");
    std::fs::write(d.join("pkg.zip.proof"), "version=2\nlog=12\n").unwrap();
    refused(attach(d, "signer1"), "proof line 2: log: 1 bytes of hex");
    // The descriptor was never touched by the refusals.
    assert_eq!(
        std::fs::read_to_string(d.join("pkg.json")).unwrap(),
        UNSIGNED
    );
}

#[test]
fn help_explains_the_sigsum_workflow() {
    let o = ok(stmgr(Path::new("."), &["ospkg", "sigsum", "--help"]));
    let h = stdout(&o);
    for want in [
        "sigsum-submit",
        "--proof",
        "--cert",
        "leaf key",
        "ospkg_trust_policy",
    ] {
        assert!(h.contains(want), "{want}: {h}");
    }
}

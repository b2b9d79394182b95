//! stmgr end to end through its command line: exit codes, files, interop with the Go reference.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{code, ok, stderr, stmgr, stmgr_line};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn go_vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go-reference")
}

/// A root, a leaf and a 2-file OS package in a fresh directory.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("vmlinuz"), b"kernel bytes kernel bytes").unwrap();
    std::fs::write(d.join("initrd.img"), vec![7u8; 300_000]).unwrap();
    ok(stmgr_line(
        d,
        "keygen certificate --is-ca --cert-out root.pem --key-out root.key",
    ));
    ok(stmgr_line(
        d,
        "keygen certificate --root-cert root.pem --root-key root.key --cert-out leaf.pem --key-out leaf.key",
    ));
    ok(stmgr_line(
        d,
        "ospkg create --kernel vmlinuz --initramfs initrd.img --cmdline console=ttyS0 --url os.zip --out os",
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
    let o = stmgr_line(d, "ospkg verify --ospkg os.zip --trust-policy policy");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = stmgr_line(d, "ospkg verify --ospkg os --root-certs root.pem");
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    ok(stmgr_line(
        d,
        "ospkg sign --key leaf.key --cert leaf.pem --ospkg os.json",
    ));
    let o = stmgr_line(d, "ospkg sign --key leaf.key --cert leaf.pem --ospkg os");
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("already has a signature by this key"),
        "{}",
        stderr(&o)
    );

    ok(stmgr_line(
        d,
        "ospkg verify --ospkg os.zip --trust-policy policy",
    ));
    let o = ok(stmgr_line(
        d,
        "ospkg verify --ospkg os.json --root-certs root.pem --json",
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "accept");
    assert_eq!(v["report"]["valid"], 1);
    assert_eq!(v["manifest"]["kernel"], "boot/vmlinuz");
    assert_eq!(v["manifest"]["cmdline"], "console=ttyS0");
    assert_eq!(v["os_pkg_url"], "os.zip");

    // The leaf is valid for a year from now: ten years on, it is rejected, naming the reason.
    let o = stmgr_line(
        d,
        "ospkg verify --ospkg os.zip --trust-policy policy --at 2040-01-01T00:00:00Z --json",
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
    let o = stmgr_line(d, "ospkg verify --ospkg os.zip --trust-policy policy");
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
        if let Some(found) = case["found"].as_u64() {
            assert_eq!(out["report"]["found"], found, "{name}");
            assert_eq!(out["report"]["valid"], case["valid"], "{name}");
        }
        let stage = case["stage"].as_str();
        let ours = out["stage"].as_str();
        let matches = match stage {
            None => ours.is_none(),
            Some("threshold") => ours == Some("threshold"),
            Some("descriptor-parse" | "verify") => ours == Some("descriptor"),
            Some("archive-extract") => ours == Some("archive"),
            Some(other) => panic!("unknown stage {other}"),
        };
        assert!(matches, "{name}: reference stage {stage:?}, ours {ours:?}");
    }
}

#[test]
fn exit_codes_scripts_can_rely_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&stmgr(d, &["--help"])), 0);
    assert_eq!(code(&stmgr(d, &["ospkg", "verify", "--help"])), 0);
    assert_eq!(code(&stmgr(d, &[])), 2);
    assert_eq!(code(&stmgr(d, &["frobnicate"])), 2);
    assert_eq!(
        code(&stmgr(d, &["ospkg", "verify", "--ospkg", "x.zip"])),
        2,
        "needs a trust source"
    );
    assert_eq!(
        code(&stmgr(
            d,
            &[
                "ospkg",
                "verify",
                "--ospkg",
                "x.zip",
                "--root-certs",
                "a",
                "--trust-policy",
                "b"
            ]
        )),
        2
    );
    let o = stmgr(
        d,
        &["ospkg", "verify", "--ospkg", "x.tar", "--root-certs", "a"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("invalid file extension"),
        "{}",
        stderr(&o)
    );
    let o = stmgr_line(d, "ospkg verify --ospkg missing.zip --root-certs nope.pem");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope.pem"), "{}", stderr(&o));
}

/// `--at` names a moment that exists: no February 31st read as March 3rd, no `+99:99` offset.
#[test]
fn verify_at_rejects_impossible_times() {
    let dir = setup();
    let d = dir.path();
    for bad in [
        "2027-02-31T00:00:00Z",
        "2027-01-01T00:00:00+99:99",
        "2027-01-01T24:00:00Z",
    ] {
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
                bad,
            ],
        );
        assert_eq!(code(&o), 1, "{bad}");
        assert!(
            stderr(&o).contains("--at") && stderr(&o).contains("not an RFC 3339 time"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn create_refuses_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty"), b"").unwrap();
    std::fs::write(d.join("k"), b"k").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/k"), b"k").unwrap();
    let o = stmgr_line(d, "ospkg create --kernel empty --initramfs k --out p");
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("kernel empty: file is empty"),
        "{}",
        stderr(&o)
    );
    let o = stmgr_line(d, "ospkg create --kernel k --initramfs sub/k --out p");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("same file name"), "{}", stderr(&o));
    let o = stmgr_line(
        d,
        "ospkg create --kernel k --initramfs empty --url ftp://x/y.zip",
    );
    assert_eq!(code(&o), 1);
    let o = stmgr_line(d, "ospkg create --kernel k --initramfs sub/k --out nodir/p");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // An existing directory as --out gets the default name inside it.
    std::fs::write(d.join("i"), b"i").unwrap();
    ok(stmgr_line(
        d,
        "ospkg create --kernel k --initramfs i --out sub",
    ));
    assert!(d.join("sub/system-transparency-os-package.zip").is_file());
    assert!(d.join("sub/system-transparency-os-package.json").is_file());
}

/// An entry stboot and `ospkg verify` would reject for its size (over 2 GiB) is refused before
/// anything is written (sparse files: no disk space used).
#[test]
fn create_refuses_an_entry_over_2_gib() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = std::fs::File::create(d.join("vmlinuz")).unwrap();
    big.set_len((2 << 30) + 1).unwrap();
    std::fs::write(d.join("initrd"), b"i").unwrap();
    let o = stmgr_line(
        d,
        "ospkg create --kernel vmlinuz --initramfs initrd --out p",
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("kernel vmlinuz: 2147483649 bytes, over the 2147483648-byte"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("p.zip").exists());
}

/// `ospkg sign` refuses an archive stboot would reject for its structure: here an entry over
/// the 2 GiB cap (the scenario vector `entry-over-2-gib`), named with the cap.
#[test]
fn sign_refuses_an_archive_stboot_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors");
    std::fs::copy(v.join("cases/entry-over-2-gib/ospkg.zip"), d.join("os.zip")).unwrap();
    std::fs::write(
        d.join("os.json"),
        r#"{"version":1,"os_pkg_url":"","certificates":null,"signatures":null}"#,
    )
    .unwrap();
    for f in ["signer1.pem", "signer1.key.pem"] {
        std::fs::copy(v.join("trust").join(f), d.join(f)).unwrap();
    }
    let o = stmgr_line(
        d,
        "ospkg sign --key signer1.key.pem --cert signer1.pem --ospkg os",
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refusing to sign")
            && err.contains(
                "\"boot/vmlinuz\": 2147483649 bytes uncompressed, over the 2147483648-byte limit"
            ),
        "{err}"
    );
    let json = std::fs::read_to_string(d.join("os.json")).unwrap();
    assert!(
        json.contains("\"signatures\":null"),
        "descriptor unchanged: {json}"
    );
}

#[test]
fn reference_single_dash_flags_work() {
    let dir = setup();
    let d = dir.path();
    ok(stmgr_line(
        d,
        "ospkg sign -key leaf.key -cert=leaf.pem -ospkg os.zip",
    ));
    ok(stmgr_line(
        d,
        "ospkg verify -ospkg os.zip -rootCerts root.pem",
    ));
    ok(stmgr_line(
        d,
        "ospkg verify -ospkg os.json -trustPolicy policy -loglevel debug",
    ));
    ok(stmgr_line(
        d,
        "keygen certificate -isCA -certOut r2.pem -keyOut r2.key -validFrom 2020-01-01T00:00:00Z -validUntil 2030-01-01T00:00:00Z",
    ));
}

#[test]
fn keygen_leaf_from_a_public_key_and_explicit_validity() {
    let dir = setup();
    let d = dir.path();
    // An ssh-ed25519 public key line for a key we hold as PKCS#8.
    let key = st_sign::SigningKey::from_seed(&[9; 32]).unwrap();
    std::fs::write(d.join("k2.pem"), key.to_pkcs8_pem()).unwrap();
    let s = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
    let blob = [s(b"ssh-ed25519"), s(&key.public())].concat();
    use base64::Engine as _;
    let line = format!(
        "ssh-ed25519 {} op@host\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    std::fs::write(d.join("k2.pub"), line).unwrap();
    ok(stmgr_line(
        d,
        "keygen certificate --is-ca --cert-out old-root.pem --key-out old-root.key --not-before 2020-01-01T00:00:00Z",
    ));
    ok(stmgr_line(
        d,
        "keygen certificate --root-cert old-root.pem --root-key old-root.key --leaf-key k2.pub --cert-out k2.cert --not-before 2025-01-01T00:00:00Z --not-after 2025-06-01T00:00:00Z",
    ));
    assert!(
        !d.join("key.pem").exists(),
        "no key is generated when --leaf-key is given"
    );
    ok(stmgr_line(
        d,
        "ospkg sign --key k2.pem --cert k2.cert --ospkg os",
    ));
    ok(stmgr_line(
        d,
        "ospkg verify --ospkg os --root-certs old-root.pem --at 2025-03-01T00:00:00Z",
    ));
    let o = stmgr_line(
        d,
        "ospkg verify --ospkg os --root-certs old-root.pem --at 2025-07-01T00:00:00Z",
    );
    assert_eq!(code(&o), 1);
    // A key that does not match the certificate is refused.
    let o = stmgr_line(d, "ospkg sign --key leaf.key --cert k2.cert --ospkg os");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
}

#[test]
fn trust_policy_check() {
    let d = tempfile::tempdir().unwrap();
    let o = ok(stmgr(
        d.path(),
        &[
            "trustpolicy",
            "check",
            r#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network","x":1}"#,
        ],
    ));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out,
        "{\n  \"ospkg_signature_threshold\": 2,\n  \"ospkg_fetch_method\": \"network\"\n}\n"
    );
    for (bad, field) in [
        (
            r#"{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}"#,
            "ospkg_signature_threshold",
        ),
        (r#"{"ospkg_signature_threshold":1}"#, "ospkg_fetch_method"),
        (
            r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"usb"}"#,
            "ospkg_fetch_method",
        ),
        ("not json", "JSON"),
        (
            r#"{"ospkg_signature_threshold":65,"ospkg_fetch_method":"network"}"#,
            "\"ospkg_signature_threshold\": 65 can never be met",
        ),
    ] {
        let o = stmgr(d.path(), &["trustpolicy", "check", bad]);
        assert_eq!(code(&o), 1, "{bad}");
        assert!(stderr(&o).contains(field), "{bad}: {}", stderr(&o));
    }
    std::fs::write(
        d.path().join("p.json"),
        r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#,
    )
    .unwrap();
    ok(stmgr(
        d.path(),
        &["trustpolicy", "check", "--file", "p.json"],
    ));
}

#[test]
fn host_config_check() {
    let d = tempfile::tempdir().unwrap();
    let o = ok(stmgr(
        d.path(),
        &[
            "hostconfig",
            "check",
            r#"{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":"9.9.9.9","provisioning_urls":["https://a.example/os.json"],"version":1}"#,
        ],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ospkg_pointer"], "https://a.example/os.json");
    assert_eq!(v["dns"][0], "9.9.9.9");
    let o = stmgr(
        d.path(),
        &[
            "hostconfig",
            "check",
            r#"{"network_mode":"static","ospkg_pointer":"https://a/x.json"}"#,
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("host_ip"), "{}", stderr(&o));
}

/// Every attack-named scenario in `testdata/vectors` gets its expected verdict, at the expected
/// stage, with the expected reason, through the full `stmgr ospkg verify` path.
#[test]
fn scenario_vectors_get_their_verdicts() {
    let v = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v.join("expected.json")).unwrap()).unwrap();
    let time = expected["time"].as_str().unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let policy = v.join("trust").join(case["policy"].as_str().unwrap());
        let pkg = v.join("cases").join(name).join("ospkg.zip");
        let o = stmgr(
            &v,
            &[
                "ospkg",
                "verify",
                "--ospkg",
                pkg.to_str().unwrap(),
                "--trust-policy",
                policy.to_str().unwrap(),
                "--at",
                time,
                "--json",
            ],
        );
        let out: serde_json::Value = match serde_json::from_slice(&o.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: no JSON ({e}); stderr: {}", stderr(&o)));
                continue;
            }
        };
        let accept = case["expected"] == "accept";
        if code(&o) != if accept { 0 } else { 1 } {
            failures.push(format!("{name}: exit {}; stderr: {}", code(&o), stderr(&o)));
            continue;
        }
        if out["stage"] != case["stage"] {
            failures.push(format!(
                "{name}: stage {} expected {}",
                out["stage"], case["stage"]
            ));
        }
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

fn tool(dir: &Path, program: &str, args: &[&str]) -> Output {
    let o = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            let package = match program {
                "ssh-keygen" | "ssh-agent" | "ssh-add" => "openssh-client",
                other => other,
            };
            panic!(
                "this test needs `{program}` (Debian package {package}; `cargo xtask test` installs it): {e}"
            )
        });
    assert!(o.status.success(), "{program} {args:?}: {}", stderr(&o));
    o
}

/// An unencrypted Ed25519 key pair `name` + `name.pub` made by ssh-keygen.
fn ssh_keygen_ed25519(dir: &Path, name: &str, comment: &str) {
    tool(
        dir,
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", name],
    );
}

/// Keys made by OpenSSL and certificates checked by OpenSSL: our certificates are ordinary
/// X.509 that an independent implementation accepts, with the reference's extensions.
#[test]
fn openssl_keys_in_and_openssl_verifies_our_certificates() {
    let dir = setup();
    let d = dir.path();
    tool(
        d,
        "openssl",
        &["genpkey", "-algorithm", "ed25519", "-out", "ca.key"],
    );
    tool(
        d,
        "openssl",
        &["genpkey", "-algorithm", "ed25519", "-out", "signer.key"],
    );
    tool(
        d,
        "openssl",
        &["pkey", "-in", "signer.key", "-pubout", "-out", "signer.pub"],
    );
    ok(stmgr_line(
        d,
        "keygen certificate --is-ca --root-key ca.key --cert-out ca.pem",
    ));
    assert!(
        !d.join("rootkey.pem").exists(),
        "no key is generated when --root-key is given"
    );
    ok(stmgr_line(
        d,
        "keygen certificate --root-cert ca.pem --root-key ca.key --leaf-key signer.pub --cert-out signer.pem",
    ));
    let o = tool(d, "openssl", &["verify", "-CAfile", "ca.pem", "signer.pem"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("signer.pem: OK"));
    let ca =
        String::from_utf8(tool(d, "openssl", &["x509", "-in", "ca.pem", "-noout", "-text"]).stdout)
            .unwrap();
    assert!(
        ca.contains("CA:TRUE") && ca.contains("Digital Signature, Certificate Sign"),
        "{ca}"
    );
    let leaf = String::from_utf8(
        tool(
            d,
            "openssl",
            &["x509", "-in", "signer.pem", "-noout", "-text"],
        )
        .stdout,
    )
    .unwrap();
    assert!(
        !leaf.contains("CA:TRUE") && leaf.contains("Digital Signature"),
        "{leaf}"
    );
    assert!(!leaf.contains("Extended Key Usage"), "{leaf}");
    // The OpenSSL key signs; the package verifies under the OpenSSL-keyed root.
    ok(stmgr_line(
        d,
        "ospkg sign --key signer.key --cert signer.pem --ospkg os",
    ));
    ok(stmgr(
        d,
        &["ospkg", "verify", "--ospkg", "os", "--root-certs", "ca.pem"],
    ));
}

/// OpenSSH keys from ssh-keygen: the public key makes a leaf, the private key signs.
#[test]
fn openssh_keys_from_ssh_keygen() {
    let dir = setup();
    let d = dir.path();
    ssh_keygen_ed25519(d, "op", "op@example");
    ok(stmgr_line(
        d,
        "keygen certificate --root-cert root.pem --root-key root.key --leaf-key op.pub --cert-out op.pem",
    ));
    ok(stmgr_line(
        d,
        "ospkg sign --key op --cert op.pem --ospkg os.zip",
    ));
    ok(stmgr_line(
        d,
        "ospkg verify --ospkg os.zip --root-certs root.pem",
    ));
    // An RSA OpenSSH key is refused with a reason.
    tool(
        d,
        "ssh-keygen",
        &["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", "rsa"],
    );
    let o = stmgr_line(d, "ospkg sign --key rsa --cert op.pem --ospkg os.zip");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("Ed25519"), "{}", stderr(&o));
}

/// The Go stmgr's agent mode: `--key` is the ssh-ed25519 public key and ssh-agent signs.
#[test]
fn signing_through_ssh_agent() {
    let dir = setup();
    let d = dir.path();
    ssh_keygen_ed25519(d, "ak", "agent@example");
    ok(stmgr(
        d,
        &[
            "keygen",
            "certificate",
            "--root-cert",
            "root.pem",
            "--root-key",
            "root.key",
            "--leaf-key",
            "ak.pub",
            "--cert-out",
            "ak.pem",
        ],
    ));
    let sock = d.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test needs `ssh-agent` (Debian package openssh-client; `cargo xtask test` installs it): {e}")
        });
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sign = |env: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stmgr"));
        c.current_dir(d).args([
            "ospkg", "sign", "--key", "ak.pub", "--cert", "ak.pem", "--ospkg", "os",
        ]);
        c.env_remove("SSH_AUTH_SOCK");
        if let Some(s) = env {
            c.env("SSH_AUTH_SOCK", s);
        }
        c.output().unwrap()
    };
    // No agent socket given: a clear error.
    let o = sign(None);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("SSH_AUTH_SOCK is not set"),
        "{}",
        stderr(&o)
    );
    // The agent does not hold the key yet.
    let o = sign(Some(&sock));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("ssh-add"), "{}", stderr(&o));
    let added = Command::new("ssh-add")
        .current_dir(d)
        .arg("ak")
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    let o = sign(Some(&sock));
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok(stmgr_line(
        d,
        "ospkg verify --ospkg os --root-certs root.pem",
    ));
}

/// `stmgr ... | head`: a reader that went away is no panic, just the SIGPIPE status.
#[test]
fn a_closed_stdout_pipe_ends_quietly_with_status_141() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_stmgr"))
        .args([
            "trustpolicy",
            "check",
            r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#,
        ])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

//! `stmgr image initramfs | inspect` through the command line, checked against GNU cpio and
//! gzip as independent readers (Debian packages `cpio`, `gzip`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ok, refused, stderr, stmgr};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

/// Fails the test, naming the Debian package, when `program` cannot be started.
fn missing_tool(program: &str, e: &std::io::Error) -> ! {
    panic!(
        "this test needs `{program}` (Debian package {program}; `cargo xtask test` installs it): {e}"
    )
}

/// Run a host tool on `input` (stdin) and return its stdout; fails naming the package when
/// the tool is missing.
fn tool(program: &str, args: &[&str], input: &Path) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| missing_tool(program, &e));
    assert!(out.status.success(), "{program}: {}", stderr(&out));
    out.stdout
}

/// A 64-bit ELF relocatable object (what a kernel module is, as far as the checks go).
fn fake_module(tail: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16] = 1;
    h.extend_from_slice(tail);
    h
}

/// A work directory: `tp/` (policy-1 + tls_roots.pem), `host.json`, two modules, the
/// good-1-of-1 OS package as `pkg/my-os.{json,zip}` and the stboot stand-in `/bin/true`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = vectors();
    std::fs::create_dir(d.join("tp")).unwrap();
    for f in ["trust_policy.json", "ospkg_signing_root.pem"] {
        std::fs::copy(v.join("trust/policy-1").join(f), d.join("tp").join(f)).unwrap();
    }
    std::fs::copy(v.join("trust/other-root.pem"), d.join("tp/tls_roots.pem")).unwrap();
    std::fs::write(
        d.join("host.json"),
        br#"{"network_mode":"dhcp","ospkg_pointer":"https://example.org/os.json"}"#,
    )
    .unwrap();
    std::fs::write(d.join("virtio_net.ko"), fake_module(b"virtio")).unwrap();
    std::fs::write(d.join("e1000.ko"), fake_module(b"e1000")).unwrap();
    std::fs::create_dir(d.join("pkg")).unwrap();
    std::fs::copy(
        v.join("cases/good-1-of-1/ospkg.json"),
        d.join("pkg/my-os.json"),
    )
    .unwrap();
    std::fs::copy(
        v.join("cases/good-1-of-1/ospkg.zip"),
        d.join("pkg/my-os.zip"),
    )
    .unwrap();
    std::fs::copy("/bin/true", d.join("stboot")).unwrap();
    dir
}

/// Build with everything. `extra` is flag/value pairs: one of the single-valued flags below
/// replaces its default; anything else (`--module`, `--compression`) is appended.
fn build_full(d: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "image",
        "initramfs",
        "--stboot",
        "stboot",
        "--trust-policy",
        "tp",
        "--host-config",
        "host.json",
        "--module",
        "virtio_net.ko",
        "--module",
        "e1000.ko",
        "--ospkg",
        "pkg/my-os.zip",
        "--out",
        out,
    ];
    for pair in extra.chunks(2) {
        let single = ["--stboot", "--trust-policy", "--host-config", "--ospkg"];
        match args.iter().position(|a| *a == pair[0]) {
            Some(i) if single.contains(&pair[0]) => args[i + 1] = pair[1],
            _ => args.extend_from_slice(pair),
        }
    }
    stmgr(d, &args)
}

const FULL_LISTING: &[&str] = &[
    "dev",
    "etc",
    "etc/stboot",
    "etc/trust_policy",
    "lib",
    "lib/modules",
    "ospkg",
    "proc",
    "run",
    "sys",
    "tmp",
    "dev/console",
    "etc/host_configuration.json",
    "etc/stboot/modules.order",
    "etc/trust_policy/ospkg_signing_root.pem",
    "etc/trust_policy/tls_roots.pem",
    "etc/trust_policy/trust_policy.json",
    "init",
    "lib/modules/e1000.ko",
    "lib/modules/virtio_net.ko",
    "ospkg/my-os.json",
    "ospkg/my-os.zip",
];

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn gnu_cpio_lists_exactly_the_layout() {
    let dir = setup();
    let d = dir.path();
    let o = ok(build_full(d, "img.cpio", &["--compression", "none"]));
    let e = stderr(&o);
    assert!(e.contains("wrote img.cpio: 22 entries"), "{e}");
    assert_eq!(
        lines(&tool("cpio", &["-it"], &d.join("img.cpio"))),
        FULL_LISTING
    );

    // Modes, owners and the console node as GNU cpio sees them.
    let long = lines(&tool("cpio", &["-itv"], &d.join("img.cpio")));
    let find = |name: &str| {
        long.iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not in {long:?}"))
            .clone()
    };
    let console = find("dev/console");
    assert!(console.starts_with("crw-------"), "{console}");
    assert!(console.contains("5,   1"), "{console}");
    assert!(find("init").starts_with("-rwxr-xr-x"), "{}", find("init"));
    assert!(find("etc/trust_policy").starts_with("drwxr-xr-x"));
    assert!(find("ospkg/my-os.zip").starts_with("-rw-r--r--"));
    for l in &long {
        assert!(l.contains(" root     root "), "{l}");
        assert!(l.contains("Jan  1  1970"), "{l}");
    }
}

#[test]
fn gnu_cpio_extracts_the_files_byte_for_byte() {
    let dir = setup();
    let d = dir.path();
    ok(build_full(d, "img.cpio", &["--compression", "none"]));
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    // Extract without the device node (mknod needs privileges not every test runner has).
    let status = Command::new("cpio")
        .args(["-id", "--quiet", "--nonmatching", "dev/console"])
        .current_dir(&x)
        .stdin(std::fs::File::open(d.join("img.cpio")).unwrap())
        .status()
        .unwrap_or_else(|e| missing_tool("cpio", &e));
    assert!(status.success());
    let same = |inside: &str, outside: &str| {
        assert_eq!(
            std::fs::read(x.join(inside)).unwrap(),
            std::fs::read(d.join(outside)).unwrap(),
            "{inside}"
        );
    };
    same("init", "stboot");
    same("etc/trust_policy/trust_policy.json", "tp/trust_policy.json");
    same(
        "etc/trust_policy/ospkg_signing_root.pem",
        "tp/ospkg_signing_root.pem",
    );
    same("etc/trust_policy/tls_roots.pem", "tp/tls_roots.pem");
    same("etc/host_configuration.json", "host.json");
    same("lib/modules/virtio_net.ko", "virtio_net.ko");
    same("lib/modules/e1000.ko", "e1000.ko");
    same("ospkg/my-os.json", "pkg/my-os.json");
    same("ospkg/my-os.zip", "pkg/my-os.zip");
    assert_eq!(
        std::fs::read_to_string(x.join("etc/stboot/modules.order")).unwrap(),
        "virtio_net.ko\ne1000.ko\n"
    );
}

#[test]
fn gzip_image_is_the_same_cpio_and_reproducible() {
    let dir = setup();
    let d = dir.path();
    ok(build_full(d, "a.img", &[]));
    ok(build_full(d, "b.img", &[]));
    ok(build_full(d, "plain.cpio", &["--compression", "none"]));
    let a = std::fs::read(d.join("a.img")).unwrap();
    assert_eq!(
        a,
        std::fs::read(d.join("b.img")).unwrap(),
        "not reproducible"
    );
    assert_eq!(&a[..2], [0x1f, 0x8b]);
    let gunzipped = tool("gzip", &["-dc"], &d.join("a.img"));
    assert_eq!(gunzipped, std::fs::read(d.join("plain.cpio")).unwrap());
    // Our own reader agrees with GNU cpio.
    let entries = st_image::cpio::read_archive(&gunzipped).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, FULL_LISTING);
}

#[test]
fn inspect_lists_the_image() {
    let dir = setup();
    let d = dir.path();
    ok(build_full(d, "a.img", &[]));
    let o = ok(stmgr(d, &["image", "inspect", "a.img"]));
    let out = lines(&o.stdout);
    assert_eq!(out.len(), FULL_LISTING.len());
    assert!(
        out.iter()
            .any(|l| l.starts_with("c0600") && l.ends_with("5,1 dev/console")),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("-0755") && l.ends_with(" init"))
    );
    assert!(stderr(&o).contains("22 entries"));
}

#[test]
fn minimal_image_and_network_warning() {
    let dir = setup();
    let d = dir.path();
    std::fs::remove_file(d.join("tp/tls_roots.pem")).unwrap();
    let o = ok(stmgr(
        d,
        &[
            "image",
            "initramfs",
            "--stboot",
            "stboot",
            "--trust-policy",
            "tp",
            "--compression",
            "none",
            "--out",
            "min.cpio",
        ],
    ));
    let e = stderr(&o);
    assert!(
        e.contains("warning: the trust policy fetches over the network but has no tls_roots.pem"),
        "{e}"
    );
    assert!(e.contains("plain http"), "{e}");
    assert_eq!(
        lines(&tool("cpio", &["-it"], &d.join("min.cpio"))),
        [
            "dev",
            "etc",
            "etc/stboot",
            "etc/trust_policy",
            "lib",
            "lib/modules",
            "proc",
            "run",
            "sys",
            "tmp",
            "dev/console",
            "etc/trust_policy/ospkg_signing_root.pem",
            "etc/trust_policy/trust_policy.json",
            "init",
        ]
    );
}

/// Each refusal: exit 1, a message naming the input, and no output file.
#[test]
fn refusals_name_the_input() {
    let dir = setup();
    let d = dir.path();
    let check = |extra: &[&str], want: &str| {
        let o = build_full(d, "bad.img", extra);
        refused(o, want);
        assert!(!d.join("bad.img").exists(), "{want}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{want}: temporary files left");
    };

    std::fs::write(d.join("script"), "#!/bin/sh\n").unwrap();
    check(
        &["--stboot", "script"],
        "--stboot script: stboot binary: not an ELF file",
    );
    check(
        &["--stboot", "e1000.ko"],
        "stboot binary: ELF relocatable object",
    );
    check(&["--stboot", "missing"], "stboot binary missing");

    check(
        &["--module", "host.json"],
        "--module host.json: module \"host.json\": name must end in .ko",
    );
    check(
        &["--module", "e1000.ko"],
        "--module e1000.ko: module \"e1000.ko\": given twice",
    );
    std::fs::write(d.join("text.ko"), "not elf").unwrap();
    check(
        &["--module", "text.ko"],
        "module \"text.ko\": not an ELF file",
    );

    std::fs::write(d.join("bad-host.json"), r#"{"network_mode":"dhcp"}"#).unwrap();
    check(
        &["--host-config", "bad-host.json"],
        "--host-config bad-host.json: host config: field \"ospkg_pointer\"",
    );

    std::fs::write(d.join("pkg/broken.json"), "{}").unwrap();
    std::fs::copy(d.join("pkg/my-os.zip"), d.join("pkg/broken.zip")).unwrap();
    check(
        &["--ospkg", "pkg/broken"],
        "OS package \"broken\": descriptor:",
    );
    std::fs::copy(d.join("pkg/my-os.json"), d.join("pkg/notzip.json")).unwrap();
    std::fs::write(d.join("pkg/notzip.zip"), "hello").unwrap();
    check(
        &["--ospkg", "pkg/notzip.json"],
        "OS package \"notzip\": archive: not a zip file",
    );
    check(&["--ospkg", "pkg/missing"], "descriptor pkg/missing.json");
    check(&["--ospkg", "pkg/my-os.tar"], "invalid file extension");

    // Trust policy directory: each file in turn.
    let tp2 = d.join("tp2");
    std::fs::create_dir(&tp2).unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: trust_policy.json: missing (required)",
    );
    std::fs::write(
        tp2.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold":1}"#,
    )
    .unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: trust_policy.json: trust policy: field \"ospkg_fetch_method\" is missing",
    );
    std::fs::write(tp2.join("ospkg_signing_root.pem"), "no pem").unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: trust_policy.json: trust policy: field \"ospkg_fetch_method\" is missing",
    );
    std::fs::copy(
        d.join("tp/trust_policy.json"),
        tp2.join("trust_policy.json"),
    )
    .unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: ospkg_signing_root.pem: no PEM block of type CERTIFICATE",
    );
    std::fs::copy(
        d.join("tp/ospkg_signing_root.pem"),
        tp2.join("ospkg_signing_root.pem"),
    )
    .unwrap();
    std::fs::write(tp2.join("tls_roots.pem"), "junk").unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: tls_roots.pem: no PEM block of type CERTIFICATE",
    );
    check(
        &["--trust-policy", "host.json"],
        "trust policy directory host.json: not a directory",
    );
    // The Sigsum policy is checked like every other file.
    std::fs::remove_file(tp2.join("tls_roots.pem")).unwrap();
    std::fs::write(tp2.join("ospkg_trust_policy"), "log 1234\n").unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: ospkg_trust_policy: Sigsum policy: line 1: log public key",
    );
    // So are the age identities: an image with a broken identity file would not boot
    // encrypted packages.
    std::fs::remove_file(tp2.join("ospkg_trust_policy")).unwrap();
    std::fs::write(tp2.join("decryption_identities"), "AGE-SECRET-KEY-1\n").unwrap();
    check(
        &["--trust-policy", "tp2"],
        "trust policy directory tp2: decryption_identities: age identities: line 1",
    );
}

#[test]
fn command_line_misuse_exits_2() {
    let dir = setup();
    let d = dir.path();
    let o = build_full(d, "x.img", &["--compression", "xz"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = stmgr(
        d,
        &["image", "initramfs", "--stboot", "stboot", "--out", "x"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!d.join("x.img").exists());
}

#[test]
fn ospkg_pointer_mismatch_warns() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(
        d.join("tp/trust_policy.json"),
        r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("host.json"),
        r#"{"network_mode":"dhcp","ospkg_pointer":"my-os.zip"}"#,
    )
    .unwrap();
    let o = ok(build_full(d, "a.img", &[]));
    assert!(!stderr(&o).contains("ospkg_pointer"), "{}", stderr(&o));
    std::fs::write(
        d.join("host.json"),
        r#"{"network_mode":"dhcp","ospkg_pointer":"other.zip"}"#,
    )
    .unwrap();
    let o = ok(build_full(d, "a.img", &[]));
    assert!(
        stderr(&o).contains(
            "warning: the host config's ospkg_pointer makes stboot read ospkg/other.json, \
             but the image holds ospkg/my-os.json"
        ),
        "{}",
        stderr(&o)
    );
}

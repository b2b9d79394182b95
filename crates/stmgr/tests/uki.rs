//! `stmgr uki create | to-iso` and `stmgr image inspect` of a UKI through the command line,
//! checked with independent readers from Debian: objdump/objcopy (binutils) for the PE,
//! xorriso and isoinfo (genisoimage) for the ISO, mtools and fsck.fat (dosfstools) for the
//! FAT image inside it. The stub is Debian's (systemd-boot-efi).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ok, refused, stderr, stmgr};

use std::path::Path;
use std::process::{Command, Output};

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// Runs a host tool in `dir`; fails naming the Debian package when it cannot be started.
fn tool(dir: &Path, program: &str, package: &str, args: &[&str]) -> Output {
    Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs `{program}` (Debian package {package}; `cargo xtask test` \
                 installs it): {e}"
            )
        })
}

#[track_caller]
fn tool_ok(dir: &Path, program: &str, package: &str, args: &[&str]) -> String {
    let o = tool(dir, program, package, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A work directory with a stand-in kernel and initramfs (the stub does not look inside
/// them until it runs) and an SBAT file.
fn setup() -> tempfile::TempDir {
    assert!(
        Path::new(STUB).is_file(),
        "this test needs {STUB} (Debian package systemd-boot-efi; `cargo xtask test` installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kernel: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("vmlinuz"), kernel).unwrap();
    std::fs::write(d.join("initrd.cpio.gz"), vec![0x1f; 123_457]).unwrap();
    std::fs::write(
        d.join("sbat.csv"),
        "stboot,1,System Transparency,stboot,1,https://example.invalid/stboot\n",
    )
    .unwrap();
    dir
}

fn read(d: &Path, f: &str) -> Vec<u8> {
    std::fs::read(d.join(f)).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `objdump -h`: (name, size, vma, file offset) per section.
fn objdump_sections(d: &Path, file: &str) -> Vec<(String, u64, u64, u64)> {
    let out = tool_ok(d, "objdump", "binutils", &["-h", file]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 6 && f[0].parse::<u32>().is_ok() {
                let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
                Some((f[1].to_owned(), hex(f[2]), hex(f[3]), hex(f[5])))
            } else {
                None
            }
        })
        .collect()
}

fn create(d: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "uki",
        "create",
        "-format",
        "uki,iso",
        "-kernel",
        "vmlinuz",
        "-initramfs",
        "initrd.cpio.gz",
        "-cmdline",
        "console=ttyS0 stboot.deadline=60",
        "-out",
        out,
    ];
    args.extend_from_slice(extra);
    stmgr(d, &args)
}

#[test]
fn uki_sections_as_objdump_sees_them() {
    let dir = setup();
    let d = dir.path();
    ok(create(d, "st", &[]));
    let uki = read(d, "st.uki");
    let stub = objdump_sections(Path::new("/"), STUB);
    let got = objdump_sections(d, "st.uki");
    assert_eq!(got.len(), stub.len() + 4, "{got:?}");
    assert_eq!(
        got[..stub.len()],
        stub[..],
        "the stub's sections are unchanged"
    );
    let names: Vec<&str> = got[stub.len()..].iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, [".osrel", ".cmdline", ".initrd", ".linux"]);
    let stub_end = stub.iter().map(|s| s.2 + s.1).max().unwrap();
    let mut prev = stub_end;
    for (name, size, vma, off) in &got[stub.len()..] {
        assert_eq!(vma % 0x1000, 0, "{name} at {vma:#x}");
        assert!(*vma >= prev, "{name} overlaps the section before it");
        assert_eq!(off % 0x200, 0, "{name} file offset {off:#x}");
        prev = vma + size;
    }
    // Section contents, as objcopy extracts them.
    for (section, want) in [
        (".linux", read(d, "vmlinuz")),
        (".initrd", read(d, "initrd.cpio.gz")),
        (".cmdline", b"console=ttyS0 stboot.deadline=60\n".to_vec()),
    ] {
        tool_ok(
            d,
            "objcopy",
            "binutils",
            &[
                "-O",
                "binary",
                &format!("--only-section={section}"),
                "st.uki",
                "section.bin",
            ],
        );
        assert_eq!(read(d, "section.bin"), want, "{section}");
    }
    let osrel =
        String::from_utf8(uki[got[stub.len()].3 as usize..][..got[stub.len()].1 as usize].to_vec())
            .unwrap();
    assert!(osrel.contains("ID=stboot"), "{osrel}");
    // An unsigned PE: sbverify (sbsigntool) agrees there is no signature yet.
    let o = tool(d, "sbverify", "sbsigntool", &["--list", "st.uki"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(text.contains("No signature table present"), "{text}");
}

#[test]
fn image_inspect_lists_sections_with_sha256() {
    let dir = setup();
    let d = dir.path();
    ok(create(d, "st", &[]));
    let o = ok(stmgr(d, &["image", "inspect", "st.uki"]));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("PE32+ machine 0x8664 subsystem 10"), "{out}");
    assert!(out.contains("(matches) signature: none"), "{out}");
    let linux = out.lines().find(|l| l.starts_with(".linux ")).unwrap();
    assert!(linux.ends_with(&sha256_hex(&read(d, "vmlinuz"))), "{linux}");
    let cmdline = out.lines().find(|l| l.starts_with(".cmdline ")).unwrap();
    assert!(
        cmdline.ends_with(&sha256_hex(b"console=ttyS0 stboot.deadline=60\n")),
        "{cmdline}"
    );
    assert!(out.contains(".cmdline: \"console=ttyS0 stboot.deadline=60\\n\""));
    // PCR 11 as systemd-stub 252 extends it: per measured section, name+NUL then contents.
    let mut pcr = [0u8; 32];
    for (name, data) in [
        (".linux", read(d, "vmlinuz")),
        (".osrel", b"NAME=\"stboot\"\nPRETTY_NAME=\"System Transparency Boot Loader\"\nID=stboot\nBUILD_ID=rolling\n".to_vec()),
        (".cmdline", b"console=ttyS0 stboot.deadline=60\n".to_vec()),
        (".initrd", read(d, "initrd.cpio.gz")),
    ] {
        for m in [format!("{name}\0").into_bytes(), data] {
            let digest = ring::digest::digest(&ring::digest::SHA256, &m);
            let next = ring::digest::digest(&ring::digest::SHA256, &[&pcr[..], digest.as_ref()].concat());
            pcr.copy_from_slice(next.as_ref());
        }
    }
    let hex: String = pcr.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        out.contains(&format!("PCR 11 (sha256) after systemd-stub 252: {hex}")),
        "{out}"
    );
    assert!(stderr(&o).contains("a UKI"));
}

#[test]
fn same_inputs_same_bytes() {
    let dir = setup();
    let d = dir.path();
    ok(create(d, "a", &[]));
    ok(create(d, "b", &[]));
    assert_eq!(read(d, "a.uki"), read(d, "b.uki"));
    assert_eq!(read(d, "a.iso"), read(d, "b.iso"));
    std::fs::write(d.join("initrd.cpio.gz"), b"other").unwrap();
    ok(create(d, "c", &[]));
    assert_ne!(read(d, "a.uki"), read(d, "c.uki"));
}

#[test]
fn iso_as_xorriso_isoinfo_mtools_and_fsck_see_it() {
    let dir = setup();
    let d = dir.path();
    ok(create(d, "st", &[]));
    let report = tool_ok(
        d,
        "xorriso",
        "xorriso",
        &["-indev", "st.iso", "-report_el_torito", "plain"],
    );
    let entry = report
        .lines()
        .find(|l| l.starts_with("El Torito boot img :"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(entry.contains("UEFI") && entry.contains("none"), "{entry}");
    assert!(report.contains("/EFIBOOT.IMG"), "{report}");
    let files = tool_ok(d, "xorriso", "xorriso", &["-indev", "st.iso", "-find", "/"]);
    assert!(files.contains("'/EFIBOOT.IMG'") && files.contains("'/BOOT.CAT'"));
    let info = tool_ok(d, "isoinfo", "genisoimage", &["-d", "-i", "st.iso"]);
    assert!(info.contains("Volume id: STBOOT"), "{info}");
    assert!(info.contains("El Torito VD version 1 found"), "{info}");

    tool_ok(
        d,
        "xorriso",
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            "st.iso",
            "-extract",
            "/EFIBOOT.IMG",
            "esp.img",
        ],
    );
    let fsck = tool_ok(d, "/sbin/fsck.fat", "dosfstools", &["-n", "esp.img"]);
    assert!(!fsck.contains("differ"), "{fsck}");
    let dirs = tool_ok(d, "mdir", "mtools", &["-i", "esp.img", "-b", "::/EFI/BOOT"]);
    assert_eq!(dirs.trim(), "::/EFI/BOOT/BOOTX64.EFI");
    tool_ok(
        d,
        "mcopy",
        "mtools",
        &["-n", "-i", "esp.img", "::/EFI/BOOT/BOOTX64.EFI", "back.efi"],
    );
    assert_eq!(read(d, "back.efi"), read(d, "st.uki"));
}

#[test]
fn to_iso_matches_create_and_keeps_existing_files() {
    let dir = setup();
    let d = dir.path();
    ok(create(d, "st", &[]));
    std::fs::rename(d.join("st.iso"), d.join("first.iso")).unwrap();
    ok(stmgr(d, &["uki", "to-iso", "-in", "st.uki"]));
    assert_eq!(read(d, "st.iso"), read(d, "first.iso"));
    refused(
        stmgr(d, &["uki", "to-iso", "--in", "st.uki"]),
        "already exists (--force replaces it)",
    );
    ok(stmgr(
        d,
        &[
            "uki", "to-iso", "--in", "st.uki", "--out", "st.iso", "--force",
        ],
    ));
    refused(create(d, "st", &[]), "st.iso: already exists");
    ok(create(d, "st", &["-force"]));
    refused(
        stmgr(d, &["uki", "to-iso", "--in", "vmlinuz", "--out", "x.iso"]),
        "not a PE image",
    );
}

#[test]
fn formats_and_output_names() {
    let dir = setup();
    let d = dir.path();
    let base = [
        "uki",
        "create",
        "--kernel",
        "vmlinuz",
        "--initramfs",
        "initrd.cpio.gz",
    ];
    ok(stmgr(
        d,
        &[&base[..], &["--out", "only.uki", "--format", "uki"]].concat(),
    ));
    assert!(d.join("only.uki").is_file() && !d.join("only.uki.iso").exists());
    // The default format is iso, the default name stmgr.
    ok(stmgr(d, &base));
    assert!(d.join("stmgr.iso").is_file() && !d.join("stmgr.uki").exists());
    let o = stmgr(d, &[&base[..], &["--format", "zip"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn sbat_replaced_or_appended() {
    let dir = setup();
    let d = dir.path();
    let mine = read(d, "sbat.csv");
    let dump = |file: &str| {
        tool_ok(
            d,
            "objcopy",
            "binutils",
            &["-O", "binary", "--only-section=.sbat", file, "sbat.bin"],
        );
        read(d, "sbat.bin")
    };
    let stub_sbat = {
        std::fs::copy(STUB, d.join("stub.efi")).unwrap();
        let s = dump("stub.efi");
        s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())].to_vec()
    };
    assert!(stub_sbat.starts_with(b"sbat,1,"));
    ok(create(d, "keep", &[]));
    assert_eq!(&dump("keep.uki")[..stub_sbat.len()], &stub_sbat[..]);
    ok(create(d, "repl", &["-sbat", "sbat.csv"]));
    assert_eq!(dump("repl.uki"), mine);
    let sections = objdump_sections(d, "repl.uki");
    assert_eq!(sections.iter().filter(|s| s.0 == ".sbat").count(), 1);
    ok(create(d, "app", &["-sbat", "sbat.csv", "-append-sbat"]));
    assert_eq!(dump("app.uki"), [stub_sbat, mine].concat());
}

#[test]
fn bad_inputs_are_named() {
    let dir = setup();
    let d = dir.path();
    refused(
        create(d, "x", &["-stub", "no-such-stub.efi"]),
        "--stub no-such-stub.efi: not found",
    );
    refused(
        create(d, "x", &["-stub", "vmlinuz"]),
        "stub: not a PE image: no MZ signature",
    );
    refused(
        stmgr(
            d,
            &[
                "uki",
                "create",
                "--kernel",
                "missing",
                "--initramfs",
                "initrd.cpio.gz",
            ],
        ),
        "kernel missing",
    );
    // A UKI is not a stub.
    ok(create(d, "st", &["-format", "uki"]));
    refused(
        create(d, "x", &["-stub", "st.uki"]),
        "already has a .osrel section",
    );
}

/// An RSA key and self-signed certificate made by openssl (`/O=name/`): (cert, key) file names.
fn openssl_cert(d: &Path, name: &str, bits: &str) -> (String, String) {
    let (cert, key) = (format!("{name}-cert.pem"), format!("{name}-key.pem"));
    tool_ok(
        d,
        "openssl",
        "openssl",
        &[
            "req",
            "-quiet",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
            &key,
            "-new",
            "-x509",
            "-sha256",
            "-days",
            "10",
            "-subj",
            &format!("/O={name}/"),
            "-out",
            &cert,
        ],
    );
    (cert, key)
}

#[test]
fn signed_uki_passes_sbverify() {
    let dir = setup();
    let d = dir.path();
    let (cert, key) = openssl_cert(d, "db", "2048");
    let (other, other_key) = openssl_cert(d, "other", "3072");
    ok(create(d, "st", &["-signcert", &cert, "-signkey", &key]));
    let out = tool_ok(d, "sbverify", "sbsigntool", &["--cert", &cert, "st.uki"]);
    assert!(out.contains("Signature verification OK"), "{out}");
    let wrong = tool(d, "sbverify", "sbsigntool", &["--cert", &other, "st.uki"]);
    assert!(
        !wrong.status.success(),
        "verified with the wrong certificate"
    );
    let listing = tool_ok(d, "sbverify", "sbsigntool", &["--list", "st.uki"]);
    assert!(listing.contains("subject: /O=db"), "{listing}");
    let o = ok(stmgr(d, &["image", "inspect", "st.uki"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signature: certificate table at"));
    // The ISO carries the signed UKI.
    tool_ok(
        d,
        "xorriso",
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            "st.iso",
            "-extract",
            "/EFIBOOT.IMG",
            "esp.img",
        ],
    );
    tool_ok(
        d,
        "mcopy",
        "mtools",
        &["-n", "-i", "esp.img", "::/EFI/BOOT/BOOTX64.EFI", "back.efi"],
    );
    assert_eq!(read(d, "back.efi"), read(d, "st.uki"));
    // A PKCS#1 key works too (openssl rsa -traditional), and signing is deterministic.
    tool_ok(
        d,
        "openssl",
        "openssl",
        &[
            "rsa",
            "-in",
            &other_key,
            "-traditional",
            "-out",
            "pkcs1.pem",
        ],
    );
    ok(create(
        d,
        "o1",
        &[
            "-signcert",
            &other,
            "-signkey",
            "pkcs1.pem",
            "-format",
            "uki",
        ],
    ));
    ok(create(
        d,
        "o2",
        &[
            "-signcert",
            &other,
            "-signkey",
            &other_key,
            "-format",
            "uki",
        ],
    ));
    assert_eq!(read(d, "o1.uki"), read(d, "o2.uki"));
    tool_ok(d, "sbverify", "sbsigntool", &["--cert", &other, "o1.uki"]);

    refused(
        create(d, "x", &["-signcert", &cert, "-signkey", &other_key]),
        "does not belong to the certificate",
    );
    let o = create(d, "x", &["-signcert", &cert]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn os_release_from_a_file() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(d.join("os-release"), "ID=my-stboot\nVERSION_ID=7\n").unwrap();
    ok(create(
        d,
        "st",
        &["-osrelease", "os-release", "-format", "uki"],
    ));
    let o = ok(stmgr(d, &["image", "inspect", "st.uki"]));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(".osrel: \"ID=my-stboot\\nVERSION_ID=7\\n\""),
        "{out}"
    );
}

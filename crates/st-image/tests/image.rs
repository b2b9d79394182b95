//! The stboot image builder: layout, reproducibility, gzip, refusals and warnings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_image::cpio::{self, mode};
use st_image::{Compression, Contents, ImageError, StbootImage, Warning};
use std::io::Read as _;

const POLICY_NETWORK: &[u8] =
    include_bytes!("../../../testdata/vectors/trust/policy-1/trust_policy.json");
const POLICY_INITRAMFS: &[u8] =
    br#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "initramfs"}"#;
const ROOTS: &[u8] =
    include_bytes!("../../../testdata/vectors/trust/policy-1/ospkg_signing_root.pem");
const TLS: &[u8] = include_bytes!("../../../testdata/vectors/trust/other-root.pem");
const DESCRIPTOR: &[u8] = include_bytes!("../../../testdata/vectors/cases/good-1-of-1/ospkg.json");
const ARCHIVE: &[u8] = include_bytes!("../../../testdata/vectors/cases/good-1-of-1/ospkg.zip");
const HOST_CONFIG: &[u8] =
    br#"{"network_mode": "dhcp", "ospkg_pointer": "ospkg.zip", "description": "t"}"#;

/// A 64-bit little-endian ELF header of type `e_type` with no program headers: 2 = a static
/// executable, 1 = a relocatable object (a module).
fn elf(e_type: u8, tail: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16] = e_type;
    h.extend_from_slice(tail);
    h
}

struct Inputs {
    stboot: Vec<u8>,
    virtio: Vec<u8>,
    e1000: Vec<u8>,
}

fn inputs() -> Inputs {
    Inputs {
        stboot: elf(2, b"stboot code"),
        virtio: elf(1, b"virtio module"),
        e1000: elf(1, b"e1000 module"),
    }
}

/// Everything: initramfs policy, TLS roots, host config, two modules, an OS package.
fn full(i: &Inputs) -> StbootImage<'_> {
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_policy(POLICY_INITRAMFS, ROOTS, Some(TLS))
        .unwrap()
        .host_config(HOST_CONFIG)
        .unwrap()
        .module("virtio_ring.ko", &i.virtio)
        .unwrap()
        .module("e1000.ko", &i.e1000)
        .unwrap()
        .os_package("ospkg", DESCRIPTOR, Contents::Bytes(ARCHIVE))
        .unwrap();
    img
}

fn build(img: StbootImage<'_>, c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let s = img.write(&mut out, c).unwrap();
    assert_eq!(s.output_bytes, out.len() as u64);
    out
}

#[test]
fn full_layout_is_exact() {
    let i = inputs();
    let img = full(&i);
    assert!(img.warnings().is_empty(), "{:?}", img.warnings());
    let planned = img.paths();
    let bytes = build(img, Compression::None);
    let entries = cpio::read_archive(&bytes).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let want = [
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
        "lib/modules/virtio_ring.ko",
        "ospkg/ospkg.json",
        "ospkg/ospkg.zip",
    ];
    assert_eq!(names, want);
    assert_eq!(planned, want);
    let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
    for (k, e) in entries.iter().enumerate() {
        assert_eq!(e.ino as usize, k + 1, "{}", e.name);
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.name);
        let want_mode = match e.name.as_str() {
            "init" => mode::S_IFREG | 0o755,
            "dev/console" => mode::S_IFCHR | 0o600,
            n if k < 11 => {
                assert!(!n.contains('.'), "{n}");
                mode::S_IFDIR | 0o755
            }
            _ => mode::S_IFREG | 0o644,
        };
        assert_eq!(e.mode, want_mode, "{}", e.name);
    }
    let console = get("dev/console");
    assert_eq!((console.rdev_major, console.rdev_minor), (5, 1));
    assert_eq!(get("init").data, i.stboot);
    assert_eq!(
        get("etc/trust_policy/trust_policy.json").data,
        POLICY_INITRAMFS
    );
    assert_eq!(get("etc/trust_policy/ospkg_signing_root.pem").data, ROOTS);
    assert_eq!(get("etc/trust_policy/tls_roots.pem").data, TLS);
    assert_eq!(get("etc/host_configuration.json").data, HOST_CONFIG);
    assert_eq!(get("lib/modules/virtio_ring.ko").data, i.virtio);
    assert_eq!(get("lib/modules/e1000.ko").data, i.e1000);
    // Load order = the order given, not the sorted order.
    assert_eq!(
        get("etc/stboot/modules.order").data,
        b"virtio_ring.ko\ne1000.ko\n"
    );
    assert_eq!(get("ospkg/ospkg.json").data, DESCRIPTOR);
    assert_eq!(get("ospkg/ospkg.zip").data, ARCHIVE);
}

#[test]
fn minimal_layout_has_no_optional_entries() {
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_policy(POLICY_NETWORK, ROOTS, None).unwrap();
    assert_eq!(img.warnings(), [Warning::NoTlsRoots]);
    // Also next to a network host config: it is what boots when normal boot fails.
    let mut with_hc = StbootImage::new(&i.stboot).unwrap();
    with_hc
        .trust_policy(POLICY_NETWORK, ROOTS, None)
        .unwrap()
        .host_config(br#"{"network_mode":"dhcp","ospkg_pointer":"https://a.example/os.json"}"#)
        .unwrap()
        .os_package("provision", DESCRIPTOR, Contents::Bytes(ARCHIVE))
        .unwrap();
    assert_eq!(with_hc.warnings(), [Warning::NoTlsRoots]);
    let bytes = build(img, Compression::None);
    let names: Vec<String> = cpio::read_archive(&bytes)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
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

#[test]
fn same_inputs_same_bytes_and_reader_equals_bytes() {
    let i = inputs();
    for c in [Compression::None, Compression::Gzip] {
        let a = build(full(&i), c);
        let b = build(full(&i), c);
        assert_eq!(a, b);
        // The archive streamed from a reader gives the same image.
        let mut img = StbootImage::new(&i.stboot).unwrap();
        img.trust_policy(POLICY_INITRAMFS, ROOTS, Some(TLS))
            .unwrap()
            .host_config(HOST_CONFIG)
            .unwrap()
            .module("virtio_ring.ko", &i.virtio)
            .unwrap()
            .module("e1000.ko", &i.e1000)
            .unwrap()
            .os_package(
                "ospkg",
                DESCRIPTOR,
                Contents::Reader {
                    len: ARCHIVE.len() as u64,
                    reader: Box::new(ARCHIVE),
                },
            )
            .unwrap();
        assert_eq!(build(img, c), a);
    }
}

#[test]
fn gzip_is_reproducible_and_decompresses() {
    let i = inputs();
    let plain = build(full(&i), Compression::None);
    let gz = build(full(&i), Compression::Gzip);
    assert_eq!(&gz[..3], [0x1f, 0x8b, 8]);
    assert_eq!(gz[3], 0, "no FNAME/FEXTRA/FCOMMENT flags");
    assert_eq!(&gz[4..8], [0, 0, 0, 0], "mtime 0");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plain);
    assert_eq!(*st_image::uncompressed(&gz, 1 << 30).unwrap(), plain[..]);
    assert_eq!(*st_image::uncompressed(&plain, 1 << 30).unwrap(), plain[..]);
    assert!(st_image::uncompressed(&gz, 100).is_err());
}

#[test]
fn summary_counts() {
    let i = inputs();
    let plain_len = build(full(&i), Compression::None).len() as u64;
    let mut out = Vec::new();
    let s = full(&i).write(&mut out, Compression::Gzip).unwrap();
    assert_eq!(s.entries, 22);
    assert_eq!(s.cpio_bytes, plain_len);
    assert_eq!(s.output_bytes, out.len() as u64);
}

fn err(r: Result<impl Sized, ImageError>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn has(msg: String, want: &str) {
    assert!(msg.contains(want), "{msg:?} lacks {want:?}");
}

#[test]
fn refuses_a_stboot_that_is_not_an_elf_program() {
    has(err(StbootImage::new(b"")), "stboot binary: file is empty");
    has(
        err(StbootImage::new(b"#!/bin/sh\nexec stboot\n")),
        "stboot binary: not an ELF file",
    );
    has(
        err(StbootImage::new(&elf(1, b""))),
        "stboot binary: ELF relocatable object",
    );
    has(
        err(StbootImage::new(&elf(4, b""))),
        "stboot binary: ELF type 4",
    );
}

#[test]
fn refuses_bad_trust_policies() {
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    has(
        err(img.trust_policy(br#"{"ospkg_fetch_method":"network"}"#, ROOTS, None)),
        "trust_policy.json: trust policy: field \"ospkg_signature_threshold\" is missing",
    );
    has(
        err(img.trust_policy(
            br#"{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}"#,
            ROOTS,
            None,
        )),
        "trust_policy.json: trust policy: field \"ospkg_signature_threshold\"",
    );
    has(
        err(img.trust_policy(POLICY_NETWORK, b"not pem", None)),
        "ospkg_signing_root.pem: no PEM block of type CERTIFICATE found",
    );
    has(
        err(img.trust_policy(
            POLICY_NETWORK,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            None,
        )),
        "ospkg_signing_root.pem: certificate 0:",
    );
    has(
        err(img.trust_policy(POLICY_NETWORK, ROOTS, Some(b"junk"))),
        "tls_roots.pem: no PEM block of type CERTIFICATE found",
    );
    img.trust_policy(POLICY_NETWORK, ROOTS, None).unwrap();
    has(
        err(img.trust_policy(POLICY_NETWORK, ROOTS, None)),
        "trust policy given twice",
    );
}

#[test]
fn refuses_to_write_without_a_trust_policy() {
    let i = inputs();
    let img = StbootImage::new(&i.stboot).unwrap();
    has(
        err(img.write(Vec::new(), Compression::None)),
        "no trust policy given",
    );
}

#[test]
fn refuses_bad_host_configs() {
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    has(err(img.host_config(b"{")), "host config: invalid JSON");
    has(
        err(img.host_config(br#"{"network_mode":"carrier-pigeon","ospkg_pointer":"x.zip"}"#)),
        "host config: field \"network_mode\"",
    );
    img.host_config(HOST_CONFIG).unwrap();
    has(err(img.host_config(HOST_CONFIG)), "host config given twice");
}

#[test]
fn refuses_bad_modules() {
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    has(
        err(img.module("virtio.ko.xz", &i.virtio)),
        "module \"virtio.ko.xz\": name must end in .ko",
    );
    has(
        err(img.module(".ko", &i.virtio)),
        "module \".ko\": empty name",
    );
    has(
        err(img.module("net/virtio.ko", &i.virtio)),
        "module \"net/virtio.ko\": must be a plain file name",
    );
    has(
        err(img.module("bad\n.ko", &i.virtio)),
        "must be a plain file name",
    );
    has(
        err(img.module("text.ko", b"hello")),
        "module \"text.ko\": not an ELF file",
    );
    has(
        err(img.module("prog.ko", &i.stboot)),
        "module \"prog.ko\": ELF file but not a relocatable object",
    );
    img.module("virtio.ko", &i.virtio).unwrap();
    has(
        err(img.module("virtio.ko", &i.e1000)),
        "module \"virtio.ko\": given twice",
    );
}

#[test]
fn refuses_bad_os_packages() {
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    let bytes = Contents::Bytes;
    has(
        err(img.os_package("", DESCRIPTOR, bytes(ARCHIVE))),
        "OS package name \"\": empty",
    );
    has(
        err(img.os_package("a/b", DESCRIPTOR, bytes(ARCHIVE))),
        "OS package name \"a/b\": must be a plain base name",
    );
    has(
        err(img.os_package("..", DESCRIPTOR, bytes(ARCHIVE))),
        "'.' and '..' are not names",
    );
    has(
        err(img.os_package("p", b"{}", bytes(ARCHIVE))),
        "OS package \"p\": descriptor:",
    );
    has(
        err(img.os_package("p", br#"{"version":2}"#, bytes(ARCHIVE))),
        "OS package \"p\": descriptor: field \"version\"",
    );
    has(
        err(img.os_package("p", DESCRIPTOR, bytes(b"not a zip"))),
        "OS package \"p\": archive: not a zip file",
    );
    has(
        err(img.os_package("p", DESCRIPTOR, bytes(b""))),
        "OS package \"p\": archive: empty",
    );
    has(
        err(img.os_package(
            "p",
            DESCRIPTOR,
            Contents::Reader {
                len: 9,
                reader: Box::new(&b"not a zip"[..]),
            },
        )),
        "archive: not a zip file",
    );
    has(
        err(img.os_package(
            "p",
            DESCRIPTOR,
            Contents::Reader {
                len: 1 << 32,
                reader: Box::new(ARCHIVE),
            },
        )),
        "archive: 4 GiB or larger",
    );
    img.os_package("p", DESCRIPTOR, bytes(ARCHIVE)).unwrap();
    has(
        err(img.os_package("q", DESCRIPTOR, bytes(ARCHIVE))),
        "OS package given twice",
    );
}

#[test]
fn refuses_an_archive_reader_of_the_wrong_length() {
    let i = inputs();
    for declared in [ARCHIVE.len() as u64 + 1, ARCHIVE.len() as u64 - 1] {
        let mut img = StbootImage::new(&i.stboot).unwrap();
        img.trust_policy(POLICY_INITRAMFS, ROOTS, None).unwrap();
        img.os_package(
            "p",
            DESCRIPTOR,
            Contents::Reader {
                len: declared,
                reader: Box::new(ARCHIVE),
            },
        )
        .unwrap();
        has(
            err(img.write(Vec::new(), Compression::None)),
            &format!(
                "cpio entry \"ospkg/p.zip\": the input has {} bytes, {declared} were declared",
                ARCHIVE.len().min(declared as usize + 1)
            ),
        );
    }
}

#[test]
fn warnings() {
    let i = inputs();
    // Initramfs method without a package.
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_policy(POLICY_INITRAMFS, ROOTS, None).unwrap();
    assert_eq!(img.warnings(), [Warning::NoOsPackage]);
    // Host config pointing elsewhere.
    img.host_config(br#"{"network_mode":"dhcp","ospkg_pointer":"other.zip"}"#)
        .unwrap()
        .os_package("ospkg", DESCRIPTOR, Contents::Bytes(ARCHIVE))
        .unwrap();
    let w = img.warnings();
    assert_eq!(
        w,
        [Warning::PointerMismatch {
            expected: "ospkg/other.json".into(),
            built: "ospkg/ospkg.json".into()
        }]
    );
    has(
        w[0].to_string(),
        "makes stboot read ospkg/other.json, but the image holds ospkg/ospkg.json",
    );
    // Network method with a package and no TLS roots.
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_policy(POLICY_NETWORK, ROOTS, None)
        .unwrap()
        .os_package("ospkg", DESCRIPTOR, Contents::Bytes(ARCHIVE))
        .unwrap();
    let w: Vec<String> = img.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2);
    has(
        w[0].clone(),
        "only be able to fetch OS packages over plain http",
    );
    has(w[1].clone(), "stboot will not use it");
    // The same with the package named "provision": the provisioning package, booted when no
    // host config is found and when normal boot fails.
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_policy(POLICY_NETWORK, ROOTS, None)
        .unwrap()
        .os_package("provision", DESCRIPTOR, Contents::Bytes(ARCHIVE))
        .unwrap();
    assert_eq!(img.warnings(), [Warning::NoTlsRoots]);
    // A host config in the image whose pointer is provision.zip forces the initramfs method
    // (the reference's rule), so the package is used and no TLS roots are needed.
    img.host_config(br#"{"network_mode":"dhcp","ospkg_pointer":"provision.zip"}"#)
        .unwrap();
    assert_eq!(img.warnings(), []);
    // A dynamically linked program (the host's /bin/true, on glibc systems).
    if let Ok(t) = std::fs::read("/bin/true") {
        let img = StbootImage::new(&t).unwrap();
        if let Some(Warning::DynamicallyLinked { interpreter }) = img.warnings().first() {
            assert!(interpreter.contains("ld"), "{interpreter}");
        }
    }
}

/// The trust directory's Sigsum policy (ST 1.3 `ospkg_trust_policy`) goes into the image byte
/// for byte: without it stboot would count no proof, and refuse a directory with
/// `ospkg_sigsum_required`.
#[test]
fn sigsum_policy_is_in_the_image() {
    const SIGSUM: &[u8] =
        include_bytes!("../../../testdata/vectors/trust/sigsum-required-1/ospkg_trust_policy");
    const REQUIRED: &[u8] =
        include_bytes!("../../../testdata/vectors/trust/sigsum-required-1/trust_policy.json");
    let dir = st_verify::TrustDir::load(|name, _| {
        Ok::<_, std::convert::Infallible>(match name {
            "trust_policy.json" => Some(REQUIRED.to_vec()),
            "ospkg_signing_root.pem" => Some(ROOTS.to_vec()),
            "tls_roots.pem" => Some(TLS.to_vec()),
            "ospkg_trust_policy" => Some(SIGSUM.to_vec()),
            _ => None,
        })
    })
    .unwrap();
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_dir(dir).unwrap();
    let planned = img.paths();
    let bytes = build(img, Compression::None);
    let entries = cpio::read_archive(&bytes).unwrap();
    let name = "etc/trust_policy/ospkg_trust_policy";
    assert!(planned.iter().any(|p| p == name), "{planned:?}");
    let e = entries.iter().find(|e| e.name == name).unwrap();
    assert_eq!(e.data, SIGSUM);
    assert_eq!(e.mode, mode::S_IFREG | 0o644);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("etc/trust_policy/"))
            .count(),
        4,
        "{names:?}"
    );
}

/// The age identities (ST 1.2 `decryption_identities`) go into the image byte for byte, readable
/// by root only: without them stboot could not decrypt an encrypted package.
#[test]
fn decryption_identities_are_in_the_image_root_only() {
    let mut seed = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = 5);
    let id = st_age::Identity::generate(&mut seed);
    let file = format!("{}\n", id.to_secret_string().as_str()).into_bytes();
    let policy = br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#;
    let dir = st_verify::TrustDir::load(|name, _| {
        Ok::<_, std::convert::Infallible>(match name {
            "trust_policy.json" => Some(policy.to_vec()),
            "ospkg_signing_root.pem" => Some(ROOTS.to_vec()),
            "decryption_identities" => Some(file.clone()),
            _ => None,
        })
    })
    .unwrap();
    let i = inputs();
    let mut img = StbootImage::new(&i.stboot).unwrap();
    img.trust_dir(dir).unwrap();
    let planned = img.paths();
    let bytes = build(img, Compression::None);
    let entries = cpio::read_archive(&bytes).unwrap();
    let name = "etc/trust_policy/decryption_identities";
    assert!(planned.iter().any(|p| p == name), "{planned:?}");
    let e = entries.iter().find(|e| e.name == name).unwrap();
    assert_eq!(e.data, file);
    assert_eq!(e.mode, mode::S_IFREG | 0o600);
}

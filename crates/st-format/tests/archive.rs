//! Archive reader/writer tests: Go reference vectors, writer layout against Go's, round trips,
//! and one hand-built malicious archive per rejection rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_format::archive::{
    ArchiveError, ArchiveIndex, ArchiveLimits, ArchiveWriter, Method, OsPackageLayout, read_entry,
    write_os_package,
};
use st_format::manifest::Manifest;
use std::path::PathBuf;

const KERNEL: &[u8] = b"DUMMY-KERNEL-bzImage-0123456789\n";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go-reference/cases")
}

fn vector_zips() -> Vec<(String, Vec<u8>)> {
    let dir = vectors_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("vector dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 9,
        "expected the Go vector zips in {}",
        dir.display()
    );
    out
}

fn extract(zip: &[u8], e: &st_format::archive::Entry) -> Vec<u8> {
    let mut v = Vec::new();
    let n = read_entry(zip, e, &mut v).unwrap();
    assert_eq!(n, v.len() as u64);
    v
}

#[test]
fn go_vectors_parse_and_check() {
    let limits = ArchiveLimits::default();
    for (name, zip) in vector_zips() {
        let index =
            ArchiveIndex::parse(zip.as_slice(), &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        for e in index.entries() {
            if !name.starts_with("09-") {
                extract(&zip, e);
            }
        }
        let layout = OsPackageLayout::check(zip.as_slice(), &limits);
        if name.starts_with("09-tampered-archive") {
            // One bit flipped inside manifest.json's deflate data: the structure is intact but
            // the manifest no longer decodes to its CRC (or is invalid deflate).
            let err = layout.unwrap_err();
            assert!(
                matches!(&err, ArchiveError::CrcMismatch { name, .. } | ArchiveError::Deflate { name, .. } if name == "manifest.json"),
                "{err}"
            );
            continue;
        }
        if name.starts_with("19-missing-kernel") {
            let err = layout.unwrap_err();
            assert!(
                matches!(&err, ArchiveError::MissingKernel { name } if name == "boot/vmlinuz"),
                "{err}"
            );
            assert!(err.to_string().contains("boot/vmlinuz"));
            continue;
        }
        let layout = layout.unwrap_or_else(|e| panic!("{name}: {e}"));
        layout.check_contents(zip.as_slice()).unwrap();
        assert_eq!(layout.kernel().name(), "boot/vmlinuz");
        assert_eq!(extract(&zip, layout.kernel()), KERNEL);
        assert_eq!(extract(&zip, layout.initramfs()).len(), 32);
        assert_eq!(layout.manifest().cmdline(), "console=ttyS0");
    }
}

/// Every header field of a Go-style archive, without compressed sizes and offsets.
#[derive(Debug, PartialEq)]
struct Fields {
    local: Vec<u8>, // version, flags, method, time, date, crc, csize, usize, name len, extra len
    central: Vec<u8>, // made by .. usize, name len .. external attrs (no offset)
    name: Vec<u8>,
    descriptor: Option<(u32, u32)>, // signature, CRC (sizes differ)
    central_csize_matches_descriptor: bool,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Raw header walk for archives with no EOCD comment (Go's output).
fn raw_fields(zip: &[u8]) -> (Vec<Fields>, Vec<u8>) {
    let eocd = zip.len() - 22;
    assert_eq!(u32_at(zip, eocd), 0x0605_4b50);
    let n = u16_at(zip, eocd + 10) as usize;
    let mut pos = u32_at(zip, eocd + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..n {
        let c = &zip[pos..];
        assert_eq!(u32_at(c, 0), 0x0201_4b50);
        let name_len = u16_at(c, 28) as usize;
        let extra = u16_at(c, 30) as usize + u16_at(c, 32) as usize;
        let name = c[46..46 + name_len].to_vec();
        let off = u32_at(c, 42) as usize;
        let csize = u32_at(c, 20);
        let mut central = c[4..20].to_vec(); // made by, needed, flags, method, time, date, crc
        central.extend_from_slice(&c[24..42]); // usize, lens, disk, attrs
        let l = &zip[off..];
        assert_eq!(u32_at(l, 0), 0x0403_4b50);
        assert_eq!(&l[30..30 + name_len], name.as_slice());
        let local = l[4..30].to_vec();
        let data_end = off + 30 + name_len + u16_at(l, 28) as usize + csize as usize;
        let flags = u16_at(c, 8);
        let descriptor =
            (flags & 8 != 0).then(|| (u32_at(zip, data_end), u32_at(zip, data_end + 4)));
        let central_csize_matches_descriptor =
            descriptor.is_none() || u32_at(zip, data_end + 8) == csize;
        out.push(Fields {
            local,
            central,
            name,
            descriptor,
            central_csize_matches_descriptor,
        });
        pos += 46 + name_len + extra;
    }
    (out, zip[eocd..eocd + 12].to_vec()) // EOCD without cd size/offset/comment len
}

#[test]
fn writer_layout_matches_go_reference() {
    let limits = ArchiveLimits::default();
    let go = std::fs::read(vectors_dir().join("01-good-1sig.zip")).unwrap();
    let layout = OsPackageLayout::check(go.as_slice(), &limits).unwrap();
    let kernel = extract(&go, layout.kernel());
    let initramfs = extract(&go, layout.initramfs());
    let manifest_entry = layout.index().get("manifest.json").unwrap();
    let manifest_json = extract(&go, manifest_entry);
    assert_eq!(layout.manifest().to_json(), manifest_json, "manifest bytes");
    let ours = write_os_package(
        Vec::new(),
        layout.manifest(),
        kernel.as_slice(),
        initramfs.as_slice(),
        &mut |_| {},
    )
    .unwrap();
    let (go_fields, go_eocd) = raw_fields(&go);
    let (our_fields, our_eocd) = raw_fields(&ours);
    assert_eq!(go_eocd, our_eocd);
    assert_eq!(go_fields.len(), 4);
    assert_eq!(go_fields, our_fields);
    // Our archive passes our own strict check too, with identical contents.
    let ours_layout = OsPackageLayout::check(ours.as_slice(), &limits).unwrap();
    ours_layout.check_contents(ours.as_slice()).unwrap();
    assert_eq!(extract(&ours, ours_layout.kernel()), KERNEL);
    assert_eq!(ours_layout.manifest(), layout.manifest());
}

fn write_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new());
    let mut seen = 0;
    w.add_file(name, data, &mut |n| seen += n).unwrap();
    assert_eq!(seen, data.len() as u64);
    w.finish().unwrap()
}

fn round_trip(data: &[u8]) -> Vec<u8> {
    let zip = write_one("f", data);
    let index = ArchiveIndex::parse(zip.as_slice(), &ArchiveLimits::default()).unwrap();
    let e = index.get("f").unwrap();
    assert_eq!(e.method(), Method::Deflate);
    assert_eq!(e.uncompressed_size(), data.len() as u64);
    assert_eq!(extract(&zip, e), data);
    zip
}

fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn round_trips_across_chunk_boundaries() {
    const MIB: usize = 1 << 20;
    round_trip(b"");
    round_trip(b"x");
    round_trip(KERNEL);
    let text: Vec<u8> = b"System Transparency OS package "
        .iter()
        .cycle()
        .take(3 * MIB + 17)
        .copied()
        .collect();
    let zip = round_trip(&text);
    assert!(zip.len() < text.len() / 20, "compressible data compresses");
    for n in [MIB - 1, MIB, MIB + 1, 2 * MIB + 65535, 65535, 65536] {
        let random = pseudo_random(n, n as u64 + 1);
        let zip = round_trip(&random);
        assert!(zip.len() < n + n / 100 + 200, "random data is stored");
    }
    // Mixed: random chunk, compressible chunk, random tail.
    let mut mixed = pseudo_random(MIB, 7);
    mixed.extend(std::iter::repeat_n(0u8, MIB + 3));
    mixed.extend(pseudo_random(MIB / 2, 9));
    round_trip(&mixed);
}

#[test]
fn writer_is_deterministic() {
    let mut data = pseudo_random(1 << 20, 3);
    data.extend(std::iter::repeat_n(b'a', 1 << 20));
    assert_eq!(write_one("f", &data), write_one("f", &data));
}

#[test]
fn writer_refuses_bad_names_and_reuse() {
    let mut w = ArchiveWriter::new(Vec::new());
    for bad in ["", "/abs", "a/../b", "a\\b", "dir/"] {
        let mut w = ArchiveWriter::new(Vec::new());
        assert!(matches!(
            w.add_file(bad, &b"x"[..], &mut |_| {}),
            Err(ArchiveError::InvalidWriteName { .. })
        ));
        assert!(matches!(
            w.add_directory("d/"),
            Err(ArchiveError::WriterFailed)
        ));
    }
    assert!(matches!(
        w.add_directory("d"),
        Err(ArchiveError::InvalidWriteName { .. })
    ));
    let mut w = ArchiveWriter::new(Vec::new());
    w.add_file("a", &b"x"[..], &mut |_| {}).unwrap();
    assert!(matches!(
        w.add_file("a", &b"y"[..], &mut |_| {}),
        Err(ArchiveError::DuplicateName { .. })
    ));
}

/// The writer holds entries to the reader's caps: what it writes, the reader accepts; what the
/// reader would reject for its size, it refuses to write.
#[test]
fn writer_refuses_entries_the_reader_would_reject() {
    let limits = ArchiveLimits {
        max_entry_uncompressed: 100,
        max_total_uncompressed: 150,
        ..ArchiveLimits::default()
    };
    let mut w = ArchiveWriter::with_limits(Vec::new(), &limits);
    w.add_file("a", &[1u8; 100][..], &mut |_| {}).unwrap();
    w.add_file("b", &[2u8; 50][..], &mut |_| {}).unwrap();
    let zip = w.finish().unwrap();
    ArchiveIndex::parse(zip.as_slice(), &limits).unwrap();
    let mut w = ArchiveWriter::with_limits(Vec::new(), &limits);
    let e = w.add_file("big", &[1u8; 101][..], &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, ArchiveError::EntryTooLarge { name, max: 100, .. } if name == "big"),
        "{e}"
    );
    let mut w = ArchiveWriter::with_limits(Vec::new(), &limits);
    w.add_file("a", &[1u8; 100][..], &mut |_| {}).unwrap();
    let e = w.add_file("b", &[2u8; 51][..], &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, ArchiveError::TotalTooLarge { name, max: 150 } if name == "b"),
        "{e}"
    );
    // The default writer uses the one cap in st_format::limits, as the reader does.
    let d = ArchiveLimits::default();
    assert_eq!(d.max_entry_uncompressed, st_format::limits::MAX_ENTRY_BYTES);
    assert_eq!(d.max_entry_uncompressed, 2 << 30);
    assert_eq!(
        d.max_total_uncompressed,
        st_format::limits::MAX_TOTAL_UNCOMPRESSED_BYTES
    );
}

/// An entry one byte over the 2 GiB cap is refused by the default writer (as
/// `stmgr ospkg create` uses it) before the archive is finished. Input that does not compress
/// is written as stored blocks at copy speed, so this costs one pass over 2 GiB.
#[test]
fn default_writer_refuses_an_entry_over_2_gib() {
    struct Pattern(u64, Vec<u8>);
    impl std::io::Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf
                .len()
                .min(self.1.len())
                .min(usize::try_from(self.0).unwrap_or(usize::MAX));
            buf[..n].copy_from_slice(&self.1[..n]);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let mut w = ArchiveWriter::new(std::io::sink());
    let input = Pattern(
        st_format::limits::MAX_ENTRY_BYTES + 1,
        pseudo_random(1 << 20, 7),
    );
    let e = w.add_file("boot/vmlinuz", input, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, ArchiveError::EntryTooLarge { name, max, .. }
            if name == "boot/vmlinuz" && *max == 2 << 30),
        "{e}"
    );
}

#[test]
fn write_os_package_requires_reference_paths() {
    let m = Manifest::new("l", "kern/vmlinuz", "boot/initrd", "").unwrap();
    let err = write_os_package(Vec::new(), &m, &b"k"[..], &b"i"[..], &mut |_| {}).unwrap_err();
    assert!(matches!(
        err,
        ArchiveError::NotReferenceLayout {
            field: "kernel",
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Hand-built archives.

#[derive(Clone, Default)]
struct E {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u32,
    usize: u32,
    data: Vec<u8>,
    descriptor: Option<Vec<u8>>,
    cextra: Vec<u8>,
    lextra: Vec<u8>,
    disk: u16,
    /// Central offset override; the local header is then not written.
    phantom_offset: Option<u32>,
    lname: Option<Vec<u8>>,
    lflags: Option<u16>,
    lmethod: Option<u16>,
    lcrc: Option<u32>,
    lcsize: Option<u32>,
    lusize: Option<u32>,
}

fn stored(name: &str, content: &[u8]) -> E {
    E {
        name: name.into(),
        crc: crc32fast::hash(content),
        csize: content.len() as u32,
        usize: content.len() as u32,
        data: content.to_vec(),
        ..E::default()
    }
}

fn deflate_bytes(content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(content).unwrap();
    enc.finish().unwrap()
}

fn deflated(name: &str, content: &[u8]) -> E {
    let data = deflate_bytes(content);
    E {
        name: name.into(),
        method: 8,
        crc: crc32fast::hash(content),
        csize: data.len() as u32,
        usize: content.len() as u32,
        data,
        ..E::default()
    }
}

fn local_header(e: &E) -> Vec<u8> {
    let name = e.lname.clone().unwrap_or_else(|| e.name.clone());
    let mut h = Vec::new();
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&20u16.to_le_bytes());
    h.extend_from_slice(&e.lflags.unwrap_or(e.flags).to_le_bytes());
    h.extend_from_slice(&e.lmethod.unwrap_or(e.method).to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&e.lcrc.unwrap_or(e.crc).to_le_bytes());
    h.extend_from_slice(&e.lcsize.unwrap_or(e.csize).to_le_bytes());
    h.extend_from_slice(&e.lusize.unwrap_or(e.usize).to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(e.lextra.len() as u16).to_le_bytes());
    h.extend_from_slice(&name);
    h.extend_from_slice(&e.lextra);
    h
}

struct Built {
    zip: Vec<u8>,
    eocd: usize,
    cd: usize,
}

fn build(entries: &[E]) -> Built {
    let mut zip = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        if let Some(o) = e.phantom_offset {
            offsets.push(o);
            continue;
        }
        offsets.push(zip.len() as u32);
        zip.extend(local_header(e));
        zip.extend_from_slice(&e.data);
        if let Some(d) = &e.descriptor {
            zip.extend_from_slice(d);
        }
    }
    let cd = zip.len();
    for (e, off) in entries.iter().zip(offsets) {
        zip.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        zip.extend_from_slice(&20u16.to_le_bytes());
        zip.extend_from_slice(&20u16.to_le_bytes());
        zip.extend_from_slice(&e.flags.to_le_bytes());
        zip.extend_from_slice(&e.method.to_le_bytes());
        zip.extend_from_slice(&[0; 4]);
        zip.extend_from_slice(&e.crc.to_le_bytes());
        zip.extend_from_slice(&e.csize.to_le_bytes());
        zip.extend_from_slice(&e.usize.to_le_bytes());
        zip.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&(e.cextra.len() as u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip.extend_from_slice(&e.disk.to_le_bytes());
        zip.extend_from_slice(&[0; 6]);
        zip.extend_from_slice(&off.to_le_bytes());
        zip.extend_from_slice(&e.name);
        zip.extend_from_slice(&e.cextra);
    }
    let eocd = zip.len();
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0; 4]);
    zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zip.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    zip.extend_from_slice(&((eocd - cd) as u32).to_le_bytes());
    zip.extend_from_slice(&(cd as u32).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    Built { zip, eocd, cd }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn parse(zip: &[u8]) -> Result<ArchiveIndex, ArchiveError> {
    ArchiveIndex::parse(zip, &ArchiveLimits::default())
}

fn parse_err(zip: &[u8]) -> ArchiveError {
    match parse(zip) {
        Ok(_) => panic!("archive was accepted"),
        Err(e) => e,
    }
}

macro_rules! rejects {
    ($zip:expr, $pat:pat) => {{
        let err = parse_err(&$zip);
        assert!(matches!(err, $pat), "got {err:?}: {err}");
        err
    }};
}

fn good() -> Vec<E> {
    vec![
        stored("boot/", b""),
        deflated("boot/vmlinuz", KERNEL),
        stored("manifest.json", b"{}"),
    ]
}

#[test]
fn builder_baseline_is_accepted() {
    let b = build(&good());
    let index = parse(&b.zip).unwrap();
    assert_eq!(index.entries().len(), 3);
    assert!(index.get("boot/").unwrap().is_dir());
    assert_eq!(extract(&b.zip, index.get("boot/vmlinuz").unwrap()), KERNEL);
    // A comment that ends exactly at the end of the file is fine.
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 20, 5);
    z.extend_from_slice(b"hello");
    parse(&z).unwrap();
}

#[test]
fn rejects_missing_or_misplaced_eocd() {
    rejects!(
        Vec::<u8>::new(),
        ArchiveError::NoEndOfCentralDirectory { .. }
    );
    rejects!([0u8; 100], ArchiveError::NoEndOfCentralDirectory { .. });
    let mut z = build(&good()).zip;
    z.push(0); // trailing byte: comment length no longer matches
    rejects!(z, ArchiveError::NoEndOfCentralDirectory { .. });
}

#[test]
fn rejects_multi_disk() {
    let b = build(&good());
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 4, 1);
    rejects!(z, ArchiveError::MultiDisk { .. });
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 6, 1);
    rejects!(z, ArchiveError::MultiDisk { .. });
    let mut es = good();
    es[1].disk = 2;
    rejects!(build(&es).zip, ArchiveError::MultiDisk { .. });
}

#[test]
fn rejects_zip64() {
    let b = build(&good());
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 8, 0xFFFF);
    put16(&mut z, b.eocd + 10, 0xFFFF);
    rejects!(z, ArchiveError::Zip64Unsupported { .. });
    let mut z = b.zip.clone();
    put32(&mut z, b.eocd + 16, u32::MAX);
    rejects!(z, ArchiveError::Zip64Unsupported { .. });
    // A ZIP64 locator just before the EOCD.
    let mut z = b.zip.clone();
    put32(&mut z, b.eocd - 20, 0x0706_4b50);
    rejects!(z, ArchiveError::Zip64Unsupported { .. });
    let mut es = good();
    es[2].csize = u32::MAX;
    es[2].usize = u32::MAX;
    es[2].lcsize = Some(2);
    es[2].lusize = Some(2);
    rejects!(build(&es).zip, ArchiveError::Zip64Unsupported { .. });
    let mut es = good();
    es[1].cextra = vec![1, 0, 0, 0];
    rejects!(build(&es).zip, ArchiveError::Zip64Unsupported { .. });
    let mut es = good();
    es[1].lextra = vec![1, 0, 0, 0];
    rejects!(build(&es).zip, ArchiveError::Zip64Unsupported { .. });
}

#[test]
fn rejects_count_mismatches() {
    let b = build(&good());
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 8, 2);
    rejects!(
        z,
        ArchiveError::EntryCountMismatch {
            on_disk: 2,
            total: 3
        }
    );
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 8, 4);
    put16(&mut z, b.eocd + 10, 4);
    rejects!(
        z,
        ArchiveError::CentralDirectoryCountMismatch {
            declared: 4,
            found: 3
        }
    );
    let mut z = b.zip.clone();
    put16(&mut z, b.eocd + 8, 2);
    put16(&mut z, b.eocd + 10, 2);
    rejects!(
        z,
        ArchiveError::CentralDirectoryCountMismatch {
            declared: 2,
            found: 3
        }
    );
}

#[test]
fn rejects_central_directory_bounds() {
    let b = build(&good());
    let size = (b.eocd - b.cd) as u32;
    let mut z = b.zip.clone();
    put32(&mut z, b.eocd + 12, size + 1);
    rejects!(z, ArchiveError::CentralDirectoryOutOfBounds { .. });
    let mut z = b.zip.clone();
    put32(&mut z, b.eocd + 16, 1_000_000);
    rejects!(z, ArchiveError::CentralDirectoryOutOfBounds { .. });
    let mut z = b.zip.clone();
    put32(&mut z, b.eocd + 12, size - 1);
    rejects!(z, ArchiveError::CentralDirectoryNotAtEnd { .. });
    let limits = ArchiveLimits {
        max_central_directory_size: 16,
        ..ArchiveLimits::default()
    };
    let err = ArchiveIndex::parse(b.zip.as_slice(), &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::CentralDirectoryTooLarge { .. }),
        "{err}"
    );
    let mut z = b.zip.clone();
    put32(&mut z, b.cd, 0x1234_5678);
    rejects!(
        z,
        ArchiveError::BadCentralRecord {
            index: 0,
            what: "bad signature",
            ..
        }
    );
}

#[test]
fn rejects_over_caps() {
    let zip = build(&good()).zip;
    let lim = |f: &dyn Fn(&mut ArchiveLimits)| {
        let mut l = ArchiveLimits::default();
        f(&mut l);
        ArchiveIndex::parse(zip.as_slice(), &l).unwrap_err()
    };
    assert!(matches!(
        lim(&|l| l.max_entries = 2),
        ArchiveError::TooManyEntries { count: 3, .. }
    ));
    assert!(matches!(
        lim(&|l| l.max_name_len = 5),
        ArchiveError::NameTooLong { index: 1, .. }
    ));
    let e = lim(&|l| l.max_entry_uncompressed = 31);
    assert!(
        matches!(&e, ArchiveError::EntryTooLarge { name, .. } if name == "boot/vmlinuz"),
        "{e}"
    );
    let e = lim(&|l| l.max_total_uncompressed = 33);
    assert!(
        matches!(&e, ArchiveError::TotalTooLarge { name, .. } if name == "manifest.json"),
        "{e}"
    );
    // Zip bomb: 4 MiB of zeros deflate to a few KiB.
    let bomb = build(&[deflated("zeros", &vec![0u8; 4 << 20])]).zip;
    let err = rejects!(bomb, ArchiveError::CompressionRatio { .. });
    assert!(err.to_string().contains("zeros"));
}

#[test]
fn rejects_unsafe_names() {
    type Check = fn(&ArchiveError) -> bool;
    let cases: Vec<(&[u8], Check)> = vec![
        (b"", |e| matches!(e, ArchiveError::EmptyName { .. })),
        (b"\xffbad", |e| {
            matches!(e, ArchiveError::NameNotUtf8 { .. })
        }),
        (b"/etc/passwd", |e| {
            matches!(e, ArchiveError::AbsolutePath { .. })
        }),
        (b"/", |e| matches!(e, ArchiveError::AbsolutePath { .. })),
        (b"a/../b", |e| {
            matches!(e, ArchiveError::DotComponent { .. })
        }),
        (b"../b", |e| matches!(e, ArchiveError::DotComponent { .. })),
        (b"./b", |e| matches!(e, ArchiveError::DotComponent { .. })),
        (b"a/./", |e| matches!(e, ArchiveError::DotComponent { .. })),
        (b"a//b", |e| {
            matches!(e, ArchiveError::EmptyComponent { .. })
        }),
        (b"a//", |e| matches!(e, ArchiveError::EmptyComponent { .. })),
        (b"a\\b", |e| matches!(e, ArchiveError::Backslash { .. })),
        (b"a\0b", |e| matches!(e, ArchiveError::NulInName { .. })),
    ];
    for (name, ok) in cases {
        let mut es = good();
        es[2].name = name.to_vec();
        let err = parse_err(&build(&es).zip);
        assert!(ok(&err), "{name:?}: {err:?}");
    }
    let mut es = good();
    es.push(stored("manifest.json", b"{\"version\":1}"));
    let err = rejects!(build(&es).zip, ArchiveError::DuplicateName { .. });
    assert!(err.to_string().contains("manifest.json"));
}

#[test]
fn rejects_flags_and_methods() {
    for (flags, enc) in [
        (1u16, true),
        (1 << 6, true),
        (1 << 13, true),
        (1 << 5, false),
    ] {
        let mut es = good();
        es[1].flags = flags;
        let err = parse_err(&build(&es).zip);
        if enc {
            assert!(matches!(err, ArchiveError::Encrypted { .. }), "{err}");
        } else {
            assert!(matches!(err, ArchiveError::PatchedData { .. }), "{err}");
        }
        assert!(err.to_string().contains("boot/vmlinuz"));
    }
    for method in [1u16, 12, 14, 93, 99] {
        let mut es = good();
        es[1].method = method;
        rejects!(build(&es).zip, ArchiveError::UnsupportedMethod { .. });
    }
    let mut es = good();
    es[0] = stored("boot/", b"data");
    rejects!(
        build(&es).zip,
        ArchiveError::DirectoryWithData { size: 4, .. }
    );
    let mut es = good();
    es[2].usize = 3;
    es[2].lusize = Some(3);
    rejects!(build(&es).zip, ArchiveError::StoredSizeMismatch { .. });
}

#[test]
fn rejects_local_header_problems() {
    let b = build(&good());
    let off1 = u32_at(&b.zip, b.cd + 46 + 5 + 42);
    // Local header offset pointing into the central directory.
    let mut es = good();
    es.push(E {
        phantom_offset: Some(b.cd as u32 + 8),
        ..stored("x", b"")
    });
    rejects!(build(&es).zip, ArchiveError::LocalHeaderOutOfBounds { .. });
    // Offset pointing at data, not a header.
    let mut es = good();
    es.push(E {
        phantom_offset: Some(off1 + 31),
        ..stored("x", b"")
    });
    rejects!(build(&es).zip, ArchiveError::BadLocalHeader { .. });
    // Field disagreements.
    type Patch = fn(&mut E);
    let patches: [(Patch, &str); 6] = [
        (|e| e.lname = Some(b"boot/vmlinuX".to_vec()), "name"),
        (|e| e.lmethod = Some(0), "compression method"),
        (|e| e.lflags = Some(2), "flags"),
        (|e| e.lcrc = Some(1), "CRC-32"),
        (|e| e.lcsize = Some(1), "compressed size"),
        (|e| e.lusize = Some(1), "uncompressed size"),
    ];
    for (patch, field) in patches {
        let mut es = good();
        patch(&mut es[1]);
        let err = parse_err(&build(&es).zip);
        assert!(
            matches!(&err, ArchiveError::LocalHeaderMismatch { field: f, name } if *f == field && name == "boot/vmlinuz"),
            "{field}: {err:?}"
        );
    }
    let mut es = good();
    es[1].cextra = vec![0x99, 0x99, 10, 0];
    rejects!(
        build(&es).zip,
        ArchiveError::MalformedExtraField {
            which: "central directory",
            ..
        }
    );
    let mut es = good();
    es[1].lextra = vec![0x99];
    rejects!(
        build(&es).zip,
        ArchiveError::MalformedExtraField {
            which: "local header",
            ..
        }
    );
    // Compressed data claimed to run into the central directory.
    let mut es = good();
    es[2].csize = 100;
    es[2].usize = 100;
    es[2].lcsize = Some(100);
    es[2].lusize = Some(100);
    rejects!(build(&es).zip, ArchiveError::DataOutOfBounds { .. });
}

fn with_descriptor(mut e: E, desc: Option<Vec<u8>>) -> E {
    e.flags |= 8;
    e.lcrc = Some(0);
    e.lcsize = Some(0);
    e.lusize = Some(0);
    e.descriptor = desc;
    e
}

fn descriptor(sig: bool, crc: u32, c: u32, u: u32) -> Vec<u8> {
    let mut d = Vec::new();
    if sig {
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
    }
    for v in [crc, c, u] {
        d.extend_from_slice(&v.to_le_bytes());
    }
    d
}

#[test]
fn data_descriptors() {
    let k = deflated("boot/vmlinuz", KERNEL);
    let (crc, c, u) = (k.crc, k.csize, k.usize);
    for sig in [true, false] {
        let mut es = good();
        es[1] = with_descriptor(k.clone(), Some(descriptor(sig, crc, c, u)));
        let b = build(&es);
        let index = parse(&b.zip).unwrap();
        assert_eq!(extract(&b.zip, index.get("boot/vmlinuz").unwrap()), KERNEL);
    }
    let mut es = good();
    es[1] = with_descriptor(k.clone(), Some(descriptor(true, crc ^ 1, c, u)));
    rejects!(
        build(&es).zip,
        ArchiveError::DataDescriptorMismatch {
            field: "CRC-32",
            ..
        }
    );
    let mut es = good();
    es[1] = with_descriptor(k.clone(), Some(descriptor(true, crc, c, u + 1)));
    rejects!(
        build(&es).zip,
        ArchiveError::DataDescriptorMismatch {
            field: "uncompressed size",
            ..
        }
    );
    // Last entry, bit 3 set, nothing between the data and the central directory.
    let mut es = good();
    es.push(with_descriptor(deflated("last", b"abc"), None));
    rejects!(build(&es).zip, ArchiveError::MissingDataDescriptor { .. });
}

#[test]
fn rejects_overlapping_entries() {
    // Entry "outer" is stored; its data is a complete local header + data of "inner", whose
    // central record points inside "outer".
    let inner = stored("inner", b"hidden");
    let mut payload = local_header(&inner);
    payload.extend_from_slice(&inner.data);
    let outer = stored("outer", &payload);
    let inner_off = (30 + "outer".len()) as u32;
    let es = vec![
        outer,
        E {
            phantom_offset: Some(inner_off),
            ..inner
        },
    ];
    let err = rejects!(build(&es).zip, ArchiveError::OverlappingEntries { .. });
    assert!(err.to_string().contains("inner") && err.to_string().contains("outer"));
    // Two central records for one local header.
    let a = stored("a", b"1");
    let es = vec![
        a.clone(),
        E {
            phantom_offset: Some(0),
            ..a
        },
    ];
    rejects!(build(&es).zip, ArchiveError::DuplicateName { .. });
}

fn read_err(es: &[E], name: &str) -> ArchiveError {
    let b = build(es);
    let index = parse(&b.zip).unwrap();
    read_entry(
        b.zip.as_slice(),
        index.get(name).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap_err()
}

#[test]
fn read_entry_checks_sizes_crc_and_stream_bounds() {
    let k = deflated("k", KERNEL);
    let mut e = k.clone();
    e.usize -= 1;
    assert!(matches!(
        read_err(&[e], "k"),
        ArchiveError::SizeMismatch { expected: 31, .. }
    ));
    let mut e = k.clone();
    e.usize += 1;
    assert!(matches!(
        read_err(&[e], "k"),
        ArchiveError::SizeMismatch {
            expected: 33,
            actual: 32,
            ..
        }
    ));
    let mut e = k.clone();
    e.crc ^= 0x8000_0000;
    let err = read_err(&[e], "k");
    assert!(matches!(err, ArchiveError::CrcMismatch { .. }), "{err}");
    let mut e = stored("s", KERNEL);
    e.crc ^= 1;
    assert!(matches!(
        read_err(&[e], "s"),
        ArchiveError::CrcMismatch { .. }
    ));
    // Invalid block type 3.
    let mut e = k.clone();
    e.data = vec![0xFF; 8];
    e.csize = 8;
    assert!(matches!(read_err(&[e], "k"), ArchiveError::Deflate { .. }));
    // Stream cut short: needs more than its compressed size.
    let mut e = k.clone();
    e.data.truncate(e.data.len() - 3);
    e.csize = e.data.len() as u32;
    assert!(matches!(
        read_err(&[e], "k"),
        ArchiveError::DeflateOverrun { .. }
    ));
    // Bytes after the end of the stream inside the compressed size.
    let mut e = k.clone();
    e.data.extend_from_slice(b"junk");
    e.csize = e.data.len() as u32;
    assert!(matches!(
        read_err(&[e], "k"),
        ArchiveError::DeflateTrailingData { unused: 4, .. }
    ));
    // Empty deflate data.
    let mut e = k.clone();
    e.data.clear();
    e.csize = 0;
    assert!(matches!(
        read_err(&[e], "k"),
        ArchiveError::DeflateOverrun { .. }
    ));
    // Entry from another, longer archive: out of bounds, no panic.
    let big = build(&[stored("pad", &[7u8; 1000]), k.clone()]);
    let idx = parse(&big.zip).unwrap();
    let small = build(&[k]).zip;
    let err = read_entry(
        small.as_slice(),
        idx.get("k").unwrap(),
        &mut std::io::sink(),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::DataOutOfBounds { .. }));
}

fn manifest_json(kernel: &str, initramfs: &str) -> Vec<u8> {
    format!(r#"{{"version":1,"kernel":"{kernel}","initramfs":"{initramfs}"}}"#).into_bytes()
}

fn layout_err(es: &[E]) -> ArchiveError {
    OsPackageLayout::check(build(es).zip.as_slice(), &ArchiveLimits::default()).unwrap_err()
}

#[test]
fn layout_rules() {
    let m = manifest_json("boot/k", "boot/i");
    let ok = vec![
        stored("boot/", b""),
        deflated("boot/k", b"K"),
        deflated("boot/i", b"I"),
        deflated("manifest.json", &m),
    ];
    let b = build(&ok);
    let layout = OsPackageLayout::check(b.zip.as_slice(), &ArchiveLimits::default()).unwrap();
    layout.check_contents(b.zip.as_slice()).unwrap();
    assert_eq!(layout.initramfs().name(), "boot/i");

    assert!(matches!(
        layout_err(&ok[..3]),
        ArchiveError::MissingManifest
    ));
    let mut es = ok.clone();
    es[1].name = b"boot/K".to_vec();
    assert!(matches!(layout_err(&es), ArchiveError::MissingKernel { name } if name == "boot/k"));
    let mut es = ok.clone();
    es.remove(2);
    assert!(matches!(layout_err(&es), ArchiveError::MissingInitramfs { name } if name == "boot/i"));
    let mut es = ok.clone();
    es[1] = deflated("boot/k", b"");
    assert!(matches!(
        layout_err(&es),
        ArchiveError::EmptyFile { role: "kernel", .. }
    ));
    let mut es = ok.clone();
    es[3] = stored("manifest.json", b"{not json");
    assert!(matches!(layout_err(&es), ArchiveError::Manifest(_)));
    let mut es = ok.clone();
    let mut big = m.clone();
    big.extend(std::iter::repeat_n(b' ', 70_000));
    es[3] = deflated("manifest.json", &big);
    let err = layout_err(&es);
    assert!(
        matches!(
            err,
            ArchiveError::Manifest(st_format::ManifestError::TooLarge { .. })
        ),
        "{err}"
    );
    // Corrupt kernel data is caught by check_contents.
    let mut es = ok.clone();
    es[1].crc ^= 1;
    let b = build(&es);
    let layout = OsPackageLayout::check(b.zip.as_slice(), &ArchiveLimits::default()).unwrap();
    assert!(matches!(
        layout.check_contents(b.zip.as_slice()),
        Err(ArchiveError::CrcMismatch { .. })
    ));
}

#[test]
fn fuzz_entry_point_runs() {
    for (_, zip) in vector_zips() {
        st_format::archive::fuzz_archive(&zip);
        for cut in [0, 1, 22, zip.len() / 2] {
            st_format::archive::fuzz_archive(&zip[..cut]);
        }
    }
}

//! Property tests: writer/reader round trips, and no panics on arbitrary or mutated archives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use st_format::archive::{ArchiveIndex, ArchiveLimits, ArchiveWriter, fuzz_archive, read_entry};
use st_format::manifest::Manifest;

fn sample_package() -> Vec<u8> {
    let m = Manifest::new("l", "boot/vmlinuz", "boot/initrd", "console=ttyS0").unwrap();
    let kernel = b"DUMMY-KERNEL-bzImage-0123456789\n".repeat(40);
    st_format::archive::write_os_package(
        Vec::new(),
        &m,
        kernel.as_slice(),
        &b"initramfs"[..],
        &mut |_| {},
    )
    .unwrap()
}

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        // Low-entropy data that compresses.
        proptest::collection::vec(0u8..3, 0..20_000),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(files in proptest::collection::vec(data_strategy(), 1..5)) {
        let mut w = ArchiveWriter::new(Vec::new());
        w.add_directory("d/").unwrap();
        for (i, f) in files.iter().enumerate() {
            w.add_file(&format!("d/f{i}"), f.as_slice(), &mut |_| {}).unwrap();
        }
        let zip = w.finish().unwrap();
        let index = ArchiveIndex::parse(zip.as_slice(), &ArchiveLimits::default()).unwrap();
        prop_assert_eq!(index.entries().len(), files.len() + 1);
        for (i, f) in files.iter().enumerate() {
            let mut out = Vec::new();
            read_entry(zip.as_slice(), index.get(&format!("d/f{i}")).unwrap(), &mut out).unwrap();
            prop_assert_eq!(&out, f);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_archive(&data);
    }

    #[test]
    fn mutated_archives_never_panic(
        muts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut zip = sample_package();
        for (at, v) in muts {
            let i = at.index(zip.len());
            zip[i] = v;
        }
        if truncate {
            zip.truncate(cut.index(zip.len()));
        }
        fuzz_archive(&zip);
        let tight = ArchiveLimits {
            max_entries: 3,
            max_name_len: 12,
            max_entry_uncompressed: 100,
            max_total_uncompressed: 1000,
            max_compression_ratio: 2,
            ratio_exempt_size: 0,
            ..ArchiveLimits::default()
        };
        if let Ok(index) = ArchiveIndex::parse(zip.as_slice(), &tight) {
            for e in index.entries() {
                let _ = read_entry(zip.as_slice(), e, &mut std::io::sink());
            }
        }
    }
}

#[test]
fn sample_package_is_valid() {
    let zip = sample_package();
    let layout =
        st_format::archive::OsPackageLayout::check(zip.as_slice(), &ArchiveLimits::default())
            .unwrap();
    layout.check_contents(zip.as_slice()).unwrap();
}

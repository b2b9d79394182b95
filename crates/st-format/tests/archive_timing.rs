//! Manual timing check (not an assertion): writing a package of random data vs `cp`.
//!
//! `cargo test --release -p st-format --test archive_timing -- --ignored --nocapture`
//! Size in MiB from `ST_TIMING_MIB` (default 256).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_format::archive::{ArchiveIndex, ArchiveLimits, ReadAt, read_entry, write_os_package};
use st_format::manifest::Manifest;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

struct FileSrc(std::fs::File, u64);
impl ReadAt for FileSrc {
    fn len(&self) -> u64 {
        self.1
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

#[test]
#[ignore = "manual timing run"]
fn write_speed_vs_cp() {
    let mib: usize = std::env::var("ST_TIMING_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let dir = std::env::temp_dir().join(format!("st-archive-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (kpath, ipath) = (dir.join("vmlinuz"), dir.join("initrd"));
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut gen_file = |path: &std::path::Path, n: usize| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..n {
            for b in buf.chunks_mut(8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.copy_from_slice(&seed.to_le_bytes()[..b.len()]);
            }
            f.write_all(&buf).unwrap();
        }
    };
    gen_file(&kpath, 8);
    gen_file(&ipath, mib - 8);

    let sync = || {
        assert!(
            std::process::Command::new("sync")
                .status()
                .unwrap()
                .success()
        )
    };
    sync();
    let t = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&kpath)
        .arg(dir.join("k.copy"))
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("cp")
        .arg(&ipath)
        .arg(dir.join("i.copy"))
        .status()
        .unwrap();
    assert!(st.success());
    sync();
    let cp = t.elapsed();

    let m = Manifest::new("timing", "boot/vmlinuz", "boot/initrd", "console=ttyS0").unwrap();
    let zpath = dir.join("pkg.zip");
    let t = Instant::now();
    let out = std::fs::File::create(&zpath).unwrap();
    let k = std::fs::File::open(&kpath).unwrap();
    let i = std::fs::File::open(&ipath).unwrap();
    let out = write_os_package(out, &m, k, i, &mut |_| {}).unwrap();
    drop(out);
    sync();
    let write = t.elapsed();

    let f = std::fs::File::open(&zpath).unwrap();
    let len = f.metadata().unwrap().len();
    let src = FileSrc(f, len);
    let t = Instant::now();
    let index = ArchiveIndex::parse(&src, &ArchiveLimits::default()).unwrap();
    let mut total = 0;
    for e in index.entries() {
        total += read_entry(&src, e, &mut std::io::sink()).unwrap();
    }
    let read = t.elapsed();
    assert_eq!(total, ((mib as u64) << 20) + m.to_json().len() as u64);

    let rate = |d: std::time::Duration| mib as f64 / d.as_secs_f64();
    println!(
        "{mib} MiB random: cp {:.3}s ({:.0} MiB/s), write_os_package {:.3}s ({:.0} MiB/s, {:.2}x cp), archive {} bytes; parse+read_entry all {:.3}s ({:.0} MiB/s)",
        cp.as_secs_f64(),
        rate(cp),
        write.as_secs_f64(),
        rate(write),
        write.as_secs_f64() / cp.as_secs_f64(),
        len,
        read.as_secs_f64(),
        rate(read)
    );
    // CPU cost alone: from memory to memory, against a plain copy of the same bytes.
    let kernel = std::fs::read(&kpath).unwrap();
    let initrd = std::fs::read(&ipath).unwrap();
    let t = Instant::now();
    let mut copy = Vec::with_capacity(kernel.len() + initrd.len());
    copy.extend_from_slice(&kernel);
    copy.extend_from_slice(&initrd);
    let memcpy = t.elapsed();
    drop(copy);
    let t = Instant::now();
    let zip = write_os_package(
        Vec::with_capacity(kernel.len() + initrd.len() + (1 << 20)),
        &m,
        kernel.as_slice(),
        initrd.as_slice(),
        &mut |_| {},
    )
    .unwrap();
    let mem_write = t.elapsed();
    println!(
        "in memory: copy {:.3}s ({:.0} MiB/s), write_os_package {:.3}s ({:.0} MiB/s), {} bytes",
        memcpy.as_secs_f64(),
        rate(memcpy),
        mem_write.as_secs_f64(),
        rate(mem_write),
        zip.len()
    );
    // Compressible input (text): the deflate path.
    let text: Vec<u8> = (0..(64usize << 20) / 40)
        .flat_map(|i| format!("line {i:08} of an uncompressed cpio....\n").into_bytes())
        .collect();
    let t = Instant::now();
    let zip = write_os_package(Vec::new(), &m, &b"k"[..], text.as_slice(), &mut |_| {}).unwrap();
    let d = t.elapsed();
    println!(
        "compressible {} MiB text: write_os_package {:.3}s ({:.0} MiB/s), {} bytes",
        text.len() >> 20,
        d.as_secs_f64(),
        (text.len() >> 20) as f64 / d.as_secs_f64(),
        zip.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

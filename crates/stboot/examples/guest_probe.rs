//! Benchmark probe run inside the QEMU guest by `cargo xtask bench-boot` (not part of stboot).
//!
//! `guest_probe BASE_URL` measures, in the same VM stboot boots in, what each step of a network
//! boot costs on its own, so stboot's phase timings can be compared with their floors:
//! a bare GET (std `TcpStream`, no HTTP library, no hashing), the same GET through stboot's
//! transport, that GET hashed on arrival (stboot's real path), SHA-256 (ring), CRC-32,
//! a memcpy, a write into a memfd, and kexec_file_load itself with and without the initramfs
//! (the difference is what the kernel spends per initramfs byte: reading, copying and hashing
//! it for purgatory). It prints one line: `E2E-PROBE key=value ...` (seconds and bytes).
//!
//! BASE_URL must serve `os.zip`, `vmlinuz` and `initramfs` over plain HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use stboot::fetch::{HttpTransport, Transport};

fn main() {
    let base = std::env::args().nth(1).unwrap_or_default();
    let mut out = String::from("E2E-PROBE");
    if let Err(e) = run(&base, &mut out) {
        out.push_str(&format!(" error={e:?}"));
    }
    println!("{out}");
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn run(base: &str, out: &mut String) -> Result<(), String> {
    let base = url::Url::parse(base).map_err(|e| e.to_string())?;
    let url = |p: &str| base.join(p).map_err(|e| e.to_string());
    let deadline = || Instant::now() + Duration::from_secs(300);
    let mut http = HttpTransport::new(&[], Duration::from_secs(30));

    // 0. stboot's path first, as stboot runs it: on memory nothing else has used yet (repeated
    // last, as step 7, after every other step has allocated and freed).
    if st_host::sys::memfd_huge_pages().is_ok() {
        if std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| c.contains("e2e.probe_warm")) {
            // Touch and free most of the free memory first (does a used layout help?).
            let free_mib: usize = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| {
                    let l = t.lines().find(|l| l.starts_with("MemFree:"))?.to_owned();
                    l.split_whitespace().nth(1)?.parse::<usize>().ok()
                })
                .unwrap_or(0)
                / 1024;
            let t = Instant::now();
            let warm = vec![1u8; (free_mib * 8 / 10) << 20];
            drop(warm);
            out.push_str(&format!(
                " warm_mib={} warm={:.3}",
                free_mib * 8 / 10,
                secs(t)
            ));
            kexec_stboot_path(&mut http, &url("os.zip")?, "_warm", out)?;
        } else {
            kexec_stboot_path(&mut http, &url("os.zip")?, "_first", out)?;
        }
    }

    // 1. Bare GET: a std TcpStream into one preallocated buffer.
    let t = Instant::now();
    let raw = bare_get(&url("os.zip")?)?;
    out.push_str(&format!(" bytes={} bare_get={:.3}", raw.len(), secs(t)));

    // 2. stboot's transport, no hashing.
    let mut plain: Vec<u8> = Vec::new();
    let t = Instant::now();
    http.get(&url("os.zip")?, u64::MAX, deadline(), &mut plain)
        .map_err(|e| e.to_string())?;
    out.push_str(&format!(" transport_get={:.3}", secs(t)));
    drop(plain);

    // 3. stboot's path: hashed as it arrives, on a second thread (stboot's choice with more
    // than one CPU) and on the receiving thread (its choice with one), up to the digest.
    for (key, threaded) in [("hashed_get", true), ("hashed_get_1thread", false)] {
        let mut hashed = st_verify::HashingBuffer::default().threaded(threaded);
        let t = Instant::now();
        http.get(&url("os.zip")?, u64::MAX, deadline(), &mut hashed)
            .map_err(|e| e.to_string())?;
        let got = secs(t);
        let archive = hashed.finish().map_err(|e| e.to_string())?;
        out.push_str(&format!(" {key}={got:.3} {key}_digest={:.3}", secs(t)));
        drop(archive);
    }

    // 4. The primitives on the downloaded bytes.
    let t = Instant::now();
    let d = ring::digest::digest(&ring::digest::SHA256, &raw);
    out.push_str(&format!(" sha256={:.3}", secs(t)));
    let t = Instant::now();
    let c = crc32fast::hash(&raw);
    out.push_str(&format!(" crc32={:.3}", secs(t)));
    let t = Instant::now();
    let copy = raw.clone();
    out.push_str(&format!(" memcpy={:.3}", secs(t)));
    drop(copy);
    std::hint::black_box((d, c));
    // Writing into a memfd, without and with transparent huge pages (as stboot sets them),
    // then without again: A-B-A, so that an effect of the order shows.
    let thp = st_host::sys::SHMEM_HUGE_PAGES;
    let before = std::fs::read_to_string(thp).unwrap_or_default();
    let default = before
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(['[', ']']).to_owned())
        .unwrap_or_else(|| "never".into());
    let huge = |on: bool| {
        if on {
            st_host::sys::memfd_huge_pages().is_ok()
        } else {
            std::fs::write(thp, &default).is_ok()
        }
    };
    let modes = [("", false), ("_thp", true), ("_again", false)];
    for (suffix, on) in modes {
        if !huge(on) {
            continue;
        }
        let mut m = st_host::kexec::Memfd::named(c"probe").map_err(|e| e.to_string())?;
        let t = Instant::now();
        m.write_all(&raw).map_err(|e| e.to_string())?;
        out.push_str(&format!(" memfd_write{suffix}={:.3}", secs(t)));
    }
    // stboot's extraction on its own: every entry of the archive into a memfd (huge pages, as
    // stboot has them), through the same reader (CRC-32 and size checked).
    if huge(true) {
        let index = st_format::archive::ArchiveIndex::parse(
            raw.as_slice(),
            &st_format::archive::ArchiveLimits::default(),
        )
        .map_err(|e| e.to_string())?;
        let t = Instant::now();
        for entry in index.entries() {
            let mut m = st_host::kexec::Memfd::named(c"probe-x").map_err(|e| e.to_string())?;
            st_format::archive::read_entry(raw.as_slice(), entry, &mut m)
                .map_err(|e| e.to_string())?;
        }
        out.push_str(&format!(" extract_thp={:.3}", secs(t)));
    }
    // Free everything before the kernel makes its copies (a 256 MiB package in a 1 GiB guest).
    drop(raw);

    // 5. kexec_file_load with and without the initramfs, in the same A-B-A order.
    for (suffix, on) in modes {
        if huge(on) {
            kexec_times(&mut http, &url("vmlinuz")?, &url("initramfs")?, suffix, out)?;
        }
    }

    // (not the E2E-PROBE prefix: bench-boot waits for that line)
    println!("probe-step:{}", out.trim_start_matches("E2E-PROBE"));
    // 6. stboot's memory history before kexec_file_load: the archive buffer (as large as the
    // initramfs) is touched before the memfds are filled and freed just before the load. Then
    // the same with part of the freed memory taken again (a "ballast" held across the load).
    if huge(true) {
        for (suffix, ballast_div) in [("_after_free", 0usize), ("_after_free_ballast", 8)] {
            kexec_after_free(
                &mut http,
                &url("vmlinuz")?,
                &url("initramfs")?,
                suffix,
                ballast_div,
                out,
            )?;
        }
        // 7. stboot's own path, step by step: the archive hashed into a HashingBuffer, kernel
        // and initramfs extracted from it into memfds (stored blocks through writev), the
        // archive freed, then the load.
        kexec_stboot_path(&mut http, &url("os.zip")?, "", out)?;
    }
    Ok(())
}

fn kexec_stboot_path(
    http: &mut HttpTransport,
    zip: &url::Url,
    suffix: &str,
    out: &mut String,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut sink = st_verify::HashingBuffer::default();
    http.get(zip, u64::MAX, deadline, &mut sink)
        .map_err(|e| e.to_string())?;
    let archive = sink.finish().map_err(|e| e.to_string())?;
    let index = st_format::archive::ArchiveIndex::parse(
        archive.bytes(),
        &st_format::archive::ArchiveLimits::default(),
    )
    .map_err(|e| e.to_string())?;
    let files = || index.entries().iter().filter(|e| !e.is_dir());
    let kernel_entry = files().find(|e| e.name().contains("vmlinuz"));
    let initramfs_entry = files().max_by_key(|e| e.uncompressed_size());
    let (Some(k), Some(i)) = (kernel_entry, initramfs_entry) else {
        return Err("no kernel or initramfs entry".into());
    };
    let mut kernel = st_host::kexec::Memfd::named(c"k3").map_err(|e| e.to_string())?;
    let mut initramfs = st_host::kexec::Memfd::named(c"i3").map_err(|e| e.to_string())?;
    let t = Instant::now();
    st_format::archive::read_entry(archive.bytes(), k, &mut kernel).map_err(|e| e.to_string())?;
    st_format::archive::read_entry(archive.bytes(), i, &mut initramfs)
        .map_err(|e| e.to_string())?;
    let extract = secs(t);
    drop(index);
    drop(archive);
    let before = meminfo(&["MemFree", "ShmemHugePages", "AnonPages"]);
    let t = Instant::now();
    st_host::kexec::load(&kernel, Some(&initramfs), "console=ttyS0").map_err(|e| e.to_string())?;
    let part = format!(
        " extract_stboot_path{suffix}={extract:.3} kexec_load_stboot_path{suffix}={:.3} mem_stboot_path{suffix}={before}",
        secs(t)
    );
    println!("probe-step:{part}");
    out.push_str(&part);
    st_host::kexec::unload().map_err(|e| e.to_string())?;
    Ok(())
}

fn meminfo(keys: &[&str]) -> String {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    keys.iter()
        .filter_map(|k| {
            let line = text.lines().find(|l| l.starts_with(&format!("{k}:")))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{k}={}M", kib / 1024))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// kexec_file_load after a buffer the size of the initramfs was touched before the memfds were
/// filled and freed just before the load (stboot's order: archive, extraction, free, load);
/// with `ballast_div` > 0, 1/`ballast_div` of it is touched again after the free and held.
fn kexec_after_free(
    http: &mut HttpTransport,
    kernel_url: &url::Url,
    initramfs_url: &url::Url,
    suffix: &str,
    ballast_div: usize,
    out: &mut String,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut raw: Vec<u8> = Vec::new();
    http.get(initramfs_url, u64::MAX, deadline, &mut raw)
        .map_err(|e| e.to_string())?;
    let mut kernel = MemSink(st_host::kexec::Memfd::named(c"k2").map_err(|e| e.to_string())?);
    http.get(kernel_url, u64::MAX, deadline, &mut kernel)
        .map_err(|e| e.to_string())?;
    let mut initramfs = st_host::kexec::Memfd::named(c"i2").map_err(|e| e.to_string())?;
    initramfs.write_all(&raw).map_err(|e| e.to_string())?;
    let len = raw.len();
    drop(raw);
    let ballast: Vec<u8> = vec![1u8; len.checked_div(ballast_div).unwrap_or(0)];
    let before = meminfo(&["MemFree", "ShmemHugePages", "AnonPages"]);
    let t = Instant::now();
    st_host::kexec::load(&kernel.0, Some(&initramfs), "console=ttyS0")
        .map_err(|e| e.to_string())?;
    let part = format!(
        " kexec_load{suffix}={:.3} ballast{suffix}={}M mem{suffix}={before}",
        secs(t),
        ballast.len() >> 20
    );
    // On the console at once too: a later step may run out of memory.
    println!("probe-step:{part}");
    out.push_str(&part);
    st_host::kexec::unload().map_err(|e| e.to_string())?;
    drop(ballast);
    Ok(())
}

fn kexec_times(
    http: &mut HttpTransport,
    kernel_url: &url::Url,
    initramfs_url: &url::Url,
    suffix: &str,
    out: &mut String,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut kernel = MemSink(st_host::kexec::Memfd::named(c"k").map_err(|e| e.to_string())?);
    http.get(kernel_url, u64::MAX, deadline, &mut kernel)
        .map_err(|e| e.to_string())?;
    let kernel = kernel.0;
    let mut initramfs = MemSink(st_host::kexec::Memfd::named(c"i").map_err(|e| e.to_string())?);
    http.get(initramfs_url, u64::MAX, deadline, &mut initramfs)
        .map_err(|e| e.to_string())?;
    let initramfs = initramfs.0;
    let t = Instant::now();
    st_host::kexec::load(&kernel, None, "console=ttyS0").map_err(|e| e.to_string())?;
    out.push_str(&format!(
        " kernel_bytes={} kexec_load_kernel_only{suffix}={:.3}",
        kernel.len(),
        secs(t)
    ));
    st_host::kexec::unload().map_err(|e| e.to_string())?;
    let t = Instant::now();
    st_host::kexec::load(&kernel, Some(&initramfs), "console=ttyS0").map_err(|e| e.to_string())?;
    out.push_str(&format!(
        " initramfs_bytes={} kexec_load{suffix}={:.3}",
        initramfs.len(),
        secs(t)
    ));
    st_host::kexec::unload().map_err(|e| e.to_string())?;
    Ok(())
}

/// A memfd as a download sink.
struct MemSink(st_host::kexec::Memfd);

impl Write for MemSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl stboot::fetch::Sink for MemSink {
    fn expect(&mut self, _len: u64) -> Result<(), String> {
        Ok(())
    }
}

fn bare_get(url: &url::Url) -> Result<Vec<u8>, String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let mut s = TcpStream::connect((host, port)).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        url.path()
    )
    .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).map_err(|e| e.to_string())?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = head
        .split("content-length:")
        .nth(1)
        .and_then(|v| v.lines().next())
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

//! `cargo xtask bench-age`: st-age against Debian's `age` on the same file: decryption (of
//! one file made by `age -e`) and encryption throughput, best of N, and the peak RSS of a
//! decryption (both stream). Prints a markdown table for docs/benchmarks.md.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::util::{cargo, output, render, run, say, target_dir};

/// Flags of `cargo xtask bench-age`.
#[derive(Args, Debug)]
pub(crate) struct BenchAgeArgs {
    /// Plaintext size in MiB (random bytes).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// Timed runs per command; the best is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Keep the work directory under target/bench/ afterwards.
    #[arg(long)]
    keep: bool,
}

const MIB: u64 = 1024 * 1024;

/// Runs the benchmark.
pub(crate) fn run_bench_age(args: &BenchAgeArgs) -> Result<()> {
    let age = Path::new("/usr/bin/age");
    if !age.is_file() {
        bail!("needs Debian's age (apt-get install age; listed in xtask/debian-packages.txt)");
    }
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "st-age",
        "--example",
        "st-age",
        "--locked",
    ]))?;
    let ours = target_dir().join("release/examples/st-age");
    let age_version = output(Command::new(age).arg("--version")).unwrap_or_default();

    let dir = target_dir()
        .join("bench")
        .join(format!("age-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = bench(args, &dir, age, &ours, age_version.trim());
    if args.keep {
        say!("bench-age: keeping {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn bench(
    args: &BenchAgeArgs,
    dir: &Path,
    age: &Path,
    ours: &Path,
    age_version: &str,
) -> Result<()> {
    let p = |name: &str| dir.join(name);
    let plain = p("plain");
    write_random(&plain, args.size_mib * MIB)?;
    run(Command::new("age-keygen")
        .arg("-o")
        .arg(p("key.txt"))
        .stderr(Stdio::null()))?;
    let recipient = output(Command::new("age-keygen").arg("-y").arg(p("key.txt")))?;
    let recipient = recipient.trim().to_owned();
    // One ciphertext made by age, decrypted by both.
    run(Command::new(age)
        .args(["-e", "-r", &recipient, "-o"])
        .arg(p("plain.age"))
        .arg(&plain))?;

    let age_dec = || {
        let mut c = Command::new(age);
        c.args(["-d", "-i"])
            .arg(p("key.txt"))
            .arg("-o")
            .arg(p("out-age"))
            .arg(p("plain.age"));
        c
    };
    let ours_dec = || {
        let mut c = Command::new(ours);
        c.arg("decrypt")
            .arg(p("key.txt"))
            .arg(p("plain.age"))
            .arg(p("out-ours"));
        c
    };
    let age_enc = || {
        let mut c = Command::new(age);
        c.args(["-e", "-r", &recipient, "-o"])
            .arg(p("enc-age"))
            .arg(&plain);
        c
    };
    let ours_enc = || {
        let mut c = Command::new(ours);
        c.arg("encrypt")
            .arg(&recipient)
            .arg(&plain)
            .arg(p("enc-ours"));
        c
    };
    let rm = |names: &[&str]| {
        for n in names {
            let _ = std::fs::remove_file(p(n));
        }
    };
    let t_age_dec = best_of(args.runs, || {
        rm(&["out-age"]);
        age_dec()
    })?;
    let t_ours_dec = best_of(args.runs, || {
        rm(&["out-ours"]);
        ours_dec()
    })?;
    if !same(&plain, &p("out-age"))? || !same(&plain, &p("out-ours"))? {
        bail!("a decryption differs from the plaintext");
    }
    let t_age_enc = best_of(args.runs, || {
        rm(&["enc-age"]);
        age_enc()
    })?;
    let t_ours_enc = best_of(args.runs, || {
        rm(&["enc-ours"]);
        ours_enc()
    })?;
    // Each side's ciphertext decrypts with the other.
    rm(&["out-age", "out-ours"]);
    run(Command::new(age)
        .args(["-d", "-i"])
        .arg(p("key.txt"))
        .arg("-o")
        .arg(p("out-age"))
        .arg(p("enc-ours")))?;
    run(Command::new(ours)
        .arg("decrypt")
        .arg(p("key.txt"))
        .arg(p("enc-age"))
        .arg(p("out-ours")))?;
    if !same(&plain, &p("out-age"))? || !same(&plain, &p("out-ours"))? {
        bail!("a cross decryption differs from the plaintext");
    }
    rm(&["out-age", "out-ours"]);
    let rss_age = peak_rss(age_dec())?;
    rm(&["out-ours"]);
    let rss_ours = peak_rss(ours_dec())?;

    let mbps = |t: Duration| (args.size_mib * MIB) as f64 / 1e6 / t.as_secs_f64();
    let kib =
        |r: Option<u64>| r.map_or("?".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
    say!(
        "bench-age: {} MiB random, best of {}, {cpu}",
        args.size_mib,
        args.runs
    );
    println!(
        "| {} MiB, best of {} | decrypt | encrypt | decrypt peak RSS |",
        args.size_mib, args.runs
    );
    println!("|---|---|---|---|");
    println!(
        "| st-age (release, example `st-age`) | {:.3} s, {:.0} MB/s | {:.3} s, {:.0} MB/s | {} |",
        t_ours_dec.as_secs_f64(),
        mbps(t_ours_dec),
        t_ours_enc.as_secs_f64(),
        mbps(t_ours_enc),
        kib(rss_ours)
    );
    println!(
        "| age {age_version} (Debian) | {:.3} s, {:.0} MB/s | {:.3} s, {:.0} MB/s | {} |",
        t_age_dec.as_secs_f64(),
        mbps(t_age_dec),
        t_age_enc.as_secs_f64(),
        mbps(t_age_enc),
        kib(rss_age)
    );
    Ok(())
}

/// Best wall time of `runs` runs (`make` gives a fresh command and may clean up, untimed).
fn best_of(runs: u32, mut make: impl FnMut() -> Command) -> Result<Duration> {
    let mut best = Duration::MAX;
    for i in 1..=runs {
        let mut c = make();
        let _ = Command::new("sync").status();
        let line = render(&c);
        let start = Instant::now();
        let status = c.stdin(Stdio::null()).stdout(Stdio::null()).status()?;
        let took = start.elapsed();
        if !status.success() {
            bail!("`{line}` failed: {status}");
        }
        say!(
            "bench-age: run {i}/{runs}: {:.3}s  {line}",
            took.as_secs_f64()
        );
        best = best.min(took);
    }
    Ok(best)
}

/// Peak RSS in KiB through `/usr/bin/time -f %M`, or `None` without it.
fn peak_rss(c: Command) -> Result<Option<u64>> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return Ok(None);
    }
    let out = Command::new(time)
        .args(["-f", "%M"])
        .arg(c.get_program())
        .args(c.get_args())
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("`{}` failed", render(&c));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(stderr.lines().rev().find_map(|l| l.trim().parse().ok()))
}

fn same(a: &PathBuf, b: &PathBuf) -> Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// `len` bytes of xorshift64* output.
fn write_random(path: &Path, len: u64) -> Result<()> {
    let mut w = BufWriter::with_capacity(1 << 22, File::create(path)?);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 22];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(())
}

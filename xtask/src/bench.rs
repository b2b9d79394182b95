//! `cargo xtask bench`: the `stmgr ospkg create` / `verify` benchmarks.
//!
//! Prints the figures with their targets and a markdown row to paste into
//! `docs/benchmarks.md`. Informational: exits 0 whether targets are met or
//! not, and fails only when a command fails.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::util::{Steps, cargo, cmd, render, run, say, target_dir};

/// Flags of `cargo xtask bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Total OS package payload size (kernel 8 MiB + initramfs the rest), in MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(9..))]
    size_mib: u64,
    /// Keep the work directory under target/bench/ afterwards.
    #[arg(long)]
    keep: bool,
    /// Timed runs per command; the best is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

const MIB: u64 = 1024 * 1024;
const KERNEL_MIB: u64 = 8;
const CHUNK: usize = 4 * 1024 * 1024;

/// Removes the work directory on drop unless asked to keep it.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            say!("bench: keeping {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            say!("bench: could not remove {}: {e}", self.path.display());
        }
    }
}

/// One benchmark figure.
struct Figure {
    name: &'static str,
    value: String,
    target: String,
    pass: Option<bool>,
}

/// Runs the benchmarks.
pub(crate) fn run_bench(args: &BenchArgs) -> Result<()> {
    let mut steps = Steps::default();
    let machine = machine_info();
    for line in &machine.lines {
        say!("bench: machine: {line}");
    }

    steps.run("build stmgr (release)", || {
        run(cargo().args(["build", "--release", "-p", "stmgr", "--locked"]))
    })?;
    let stmgr = target_dir().join("release").join("stmgr");
    if !stmgr.is_file() {
        bail!("{} not found after the build", stmgr.display());
    }
    let bin_size = std::fs::metadata(&stmgr)?.len();

    let bench_root = target_dir().join("bench");
    let work = WorkDir {
        path: bench_root.join(format!("run-{}", std::process::id())),
        keep: args.keep,
    };
    let dir = &work.path;
    std::fs::create_dir_all(dir.join("copy"))
        .with_context(|| format!("creating {}", dir.display()))?;
    say!("bench: work directory {}", dir.display());

    let kernel = dir.join("kernel");
    let initramfs = dir.join("initramfs");
    steps.run("generate payload", || {
        write_random(&kernel, KERNEL_MIB * MIB, 0x9e37_79b9_7f4a_7c15)?;
        write_random(
            &initramfs,
            (args.size_mib - KERNEL_MIB) * MIB,
            0xd1b5_4a32_d192_ed03,
        )
    })?;

    let in_dir = |program: &Path| {
        let mut c = Command::new(program);
        c.current_dir(dir);
        c
    };
    steps.run("keys", || {
        run(in_dir(&stmgr).args([
            "keygen",
            "certificate",
            "--is-ca",
            "--cert-out",
            "root.pem",
            "--key-out",
            "root.key",
        ]))?;
        run(in_dir(&stmgr).args([
            "keygen",
            "certificate",
            "--root-cert",
            "root.pem",
            "--root-key",
            "root.key",
            "--cert-out",
            "leaf.pem",
            "--key-out",
            "leaf.key",
        ]))
    })?;

    // Both sides run with a warm page cache (dropping it needs root and
    // would disturb other work on the machine).
    let copy_dir = dir.join("copy");
    let cp = steps.run("time cp", || {
        best_of(args.runs, || {
            clean(&[copy_dir.join("kernel"), copy_dir.join("initramfs")])?;
            let mut c = cmd("cp");
            c.arg(&kernel).arg(&initramfs).arg(&copy_dir);
            Ok(c)
        })
    })?;
    let create_cmd = || {
        clean(&[dir.join("pkg.zip"), dir.join("pkg.json")])?;
        let mut c = in_dir(&stmgr);
        c.args([
            "ospkg",
            "create",
            "--kernel",
            "kernel",
            "--initramfs",
            "initramfs",
            "--out",
            "pkg",
        ]);
        Ok(c)
    };
    let create = steps.run("time stmgr ospkg create", || best_of(args.runs, create_cmd))?;
    let create_rss = steps.run("rss stmgr ospkg create", || peak_rss(create_cmd()?))?;
    let zip_size = std::fs::metadata(dir.join("pkg.zip"))?.len();

    steps.run("sign", || {
        run(in_dir(&stmgr).args([
            "ospkg", "sign", "--key", "leaf.key", "--cert", "leaf.pem", "--ospkg", "pkg.zip",
        ]))
    })?;

    let openssl = steps.run("time openssl dgst", || {
        best_of(args.runs, || {
            let mut c = in_dir(Path::new("openssl"));
            c.args(["dgst", "-sha256", "pkg.zip"]);
            Ok(c)
        })
    })?;
    let verify_cmd = || {
        let mut c = in_dir(&stmgr);
        c.args([
            "ospkg",
            "verify",
            "--ospkg",
            "pkg.zip",
            "--root-certs",
            "root.pem",
        ]);
        Ok(c)
    };
    let verify = steps.run("time stmgr ospkg verify", || best_of(args.runs, verify_cmd))?;
    let verify_rss = steps.run("rss stmgr ospkg verify", || peak_rss(verify_cmd()?))?;

    // Report.
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    let secs = |d: Duration| format!("{:.3} s", d.as_secs_f64());
    let rate = |d: Duration| format!("{:.0} MiB/s", mib(zip_size) / d.as_secs_f64());
    let create_ratio = create.as_secs_f64() / cp.as_secs_f64();
    let verify_ratio = verify.as_secs_f64() / openssl.as_secs_f64();
    let rss_text = |r: Option<u64>| match r {
        Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
        None => "n/a".to_owned(),
    };
    let figures = [
        Figure {
            name: "cp kernel+initramfs",
            value: format!("{} ({})", secs(cp), rate(cp)),
            target: "-".into(),
            pass: None,
        },
        Figure {
            name: "stmgr ospkg create",
            value: format!("{} ({})", secs(create), rate(create)),
            target: "-".into(),
            pass: None,
        },
        Figure {
            name: "create / cp",
            value: format!("{create_ratio:.2}x"),
            target: "<= 2.00x".into(),
            pass: Some(create_ratio <= 2.0),
        },
        Figure {
            name: "create peak RSS",
            value: rss_text(create_rss),
            target: "-".into(),
            pass: None,
        },
        Figure {
            name: "openssl dgst -sha256",
            value: format!("{} ({})", secs(openssl), rate(openssl)),
            target: "-".into(),
            pass: None,
        },
        Figure {
            name: "stmgr ospkg verify",
            value: format!("{} ({})", secs(verify), rate(verify)),
            target: "-".into(),
            pass: None,
        },
        Figure {
            name: "verify / openssl",
            value: format!("{verify_ratio:.2}x"),
            target: "<= 1.25x".into(),
            pass: Some(verify_ratio <= 1.25),
        },
        Figure {
            name: "verify peak RSS",
            value: rss_text(verify_rss),
            target: "<= 64 MiB".into(),
            pass: verify_rss.map(|kib| kib <= 64 * 1024),
        },
        Figure {
            name: "stmgr binary size",
            value: format!("{:.2} MiB", mib(bin_size)),
            target: "-".into(),
            pass: None,
        },
    ];

    steps.summary();
    println!();
    println!(
        "Benchmark: {} MiB payload (kernel {KERNEL_MIB} MiB), pkg.zip {:.1} MiB, best of {} runs, warm page cache",
        args.size_mib,
        mib(zip_size),
        args.runs
    );
    for line in &machine.lines {
        println!("  {line}");
    }
    println!();
    println!("| Figure | Value | Target | Result |");
    println!("|---|---|---|---|");
    for f in &figures {
        let result = match f.pass {
            Some(true) => "PASS",
            Some(false) => "OVER",
            None => "",
        };
        println!("| {} | {} | {} | {result} |", f.name, f.value, f.target);
    }
    println!();
    println!("Row for docs/benchmarks.md (results table):");
    println!();
    println!(
        "| {} | {} | {} | {} MiB | {} | {} | {create_ratio:.2}x | {} | {} | {verify_ratio:.2}x | {} | {:.2} MiB |",
        cmd_line(cmd("date").args(["-u", "+%Y-%m-%d"])),
        cmd_line(cmd("git").args(["describe", "--always", "--dirty", "--abbrev=7"])),
        machine.short,
        args.size_mib,
        secs(cp),
        secs(create),
        secs(openssl),
        secs(verify),
        rss_text(verify_rss),
        mib(bin_size),
    );
    Ok(())
}

/// Runs the command `runs` times (fresh from `make` each time, which may also
/// clean up outputs beforehand, untimed; then `sync`, untimed) and returns the
/// best wall time.
fn best_of(runs: u32, mut make: impl FnMut() -> Result<Command>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for i in 1..=runs {
        let mut c = make()?;
        // Flush the previous run's dirty pages (untimed) so that their
        // writeback does not land in this run's time.
        if !crate::util::succeeds(&mut Command::new("sync")) {
            say!("bench: warning: sync failed");
        }
        let line = render(&c);
        let start = Instant::now();
        let status = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("could not start `{line}`"))?;
        let took = start.elapsed();
        if !status.success() {
            bail!("`{line}` failed: {status}");
        }
        say!("bench: run {i}/{runs}: {:.3}s  {line}", took.as_secs_f64());
        best = best.min(took);
    }
    Ok(best)
}

/// Peak RSS in KiB of one run, via `/usr/bin/time -f %M`; `None` if that
/// tool is missing.
fn peak_rss(c: Command) -> Result<Option<u64>> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        say!(
            "bench: /usr/bin/time not found, peak RSS not measured (install with: apt-get install time)"
        );
        return Ok(None);
    }
    let mut t = Command::new(time);
    t.arg("-f")
        .arg("%M")
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(d) = c.get_current_dir() {
        t.current_dir(d);
    }
    let line = render(&t);
    let out = t
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `%M` is printed on the last line of stderr, after anything the child wrote.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().parse::<u64>().ok())
        .with_context(|| format!("could not parse peak RSS from `{line}`: {stderr}"))?;
    say!("bench: peak RSS {kib} KiB  {}", render(&c));
    Ok(Some(kib))
}

fn clean(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    Ok(())
}

/// Writes `len` bytes of xorshift64* output, in 4 MiB chunks.
fn write_random(path: &Path, len: u64, seed: u64) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(CHUNK, file);
    let mut state = seed | 1;
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    say!("bench: wrote {} ({} MiB)", path.display(), len / MIB);
    Ok(())
}

/// Output of a command, trimmed, or `?` if it failed.
fn cmd_line(c: &mut Command) -> String {
    c.stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

struct Machine {
    lines: Vec<String>,
    short: String,
}

fn machine_info() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let sha_ni = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "sha_ni"));
    let nproc = cmd_line(&mut cmd("nproc"));
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(
            || "?".to_owned(),
            |kib| format!("{:.1}", kib / 1024.0 / 1024.0),
        );
    let sha = if sha_ni { "sha_ni" } else { "no sha_ni" };
    Machine {
        lines: vec![
            format!("CPU: {model} ({sha})"),
            format!("nproc: {nproc}"),
            format!("RAM: {mem_gib} GiB"),
            format!("kernel: {}", cmd_line(cmd("uname").arg("-r"))),
            format!("rustc: {}", cmd_line(cmd("rustc").arg("--version"))),
            format!("openssl: {}", cmd_line(cmd("openssl").arg("version"))),
        ],
        short: format!("{model}, {nproc} cores, {sha}, {mem_gib} GiB"),
    }
}

//! `cargo xtask bench-attest --guest`: the attestation round trip against the agent in a QEMU
//! guest on swtpm. Boots the attestation guest of the e2e scenario once ([`super::attest::boot`])
//! and times `stattest check` (release build) N times: the wall clock of the whole command on
//! the host, and its parts as `stattest check --timings` reports them (keys, challenge, quote,
//! verify). Also the agent's binary size and its resident memory at start (its console line
//! `st-agent: resident memory N KiB (VmRSS)`). Prints a table for docs/benchmarks.md.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::attest::{Narrate, boot, console_line, vendor_args};
use super::{Ctx, Env, accel_from_env, fresh_dir, kernel};
use crate::util::{cargo, cmd, run, say, target_dir};

/// Progress lines `bench-attest: what`.
struct Progress;

impl Narrate for Progress {
    fn step(&mut self, what: &str) {
        say!("bench-attest: {what}");
    }
    fn show(&mut self, what: &str) {
        say!("bench-attest:   {what}");
    }
}

/// The parts `stattest check --timings` reports, in its order.
const PARTS: [&str; 6] = ["load", "keys", "challenge", "quote", "verify", "total"];

/// `stattest` in the release profile (as a verifier would ship it).
fn build_stattest_release() -> Result<PathBuf> {
    run(cargo().args(["build", "--locked", "--release", "-p", "stattest"]))?;
    let bin = target_dir().join("release").join("stattest");
    ensure!(bin.is_file(), "no {} after the build", bin.display());
    Ok(bin)
}

/// The milliseconds of each of [`PARTS`] in a `stattest: timings: load 1.0 ms, ...` line.
fn parse_timings(text: &str) -> Result<[f64; PARTS.len()]> {
    let line = text
        .lines()
        .find_map(|l| l.split_once("stattest: timings: ").map(|(_, r)| r))
        .context("stattest printed no timings line")?;
    let mut out = [0.0; PARTS.len()];
    for (slot, part) in out.iter_mut().zip(PARTS) {
        *slot = line
            .split(", ")
            .find_map(|f| f.strip_prefix(part)?.trim().strip_suffix(" ms"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {part:?} in the timings line {line:?}"))?;
    }
    Ok(out)
}

/// (median, min, max) of `v` (not empty).
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    (at(v.len() / 2), at(0), at(v.len().saturating_sub(1)))
}

/// Boot once, time `runs` checks, print the table.
pub(crate) fn run_guest(runs: u32) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    crate::deps::ensure(crate::deps::For::Demo)?;
    let stattest = build_stattest_release()?;
    let env = Env::new(accel_from_env()?, kernel::get()?);
    let dir = target_dir().join("bench-attest");
    fresh_dir(&dir)?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let guest = boot(&ctx, &mut Progress)?;
    let agent_size = fs::metadata(&guest.agent_binary)?.len();
    let rss = console_line(
        &guest.vm,
        "st-agent: resident memory",
        Duration::from_secs(10),
    )
    .and_then(|l| {
        l.split("resident memory ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse::<u64>()
            .ok()
    });
    let mut wall = Vec::new();
    let mut parts: Vec<Vec<f64>> = vec![Vec::new(); PARTS.len()];
    for i in 1..=runs {
        let mut c = cmd(&stattest);
        c.args([
            "check",
            "--timings",
            "--agent",
            &guest.agent,
            "--trust-policy",
        ])
        .arg(&guest.trust_dir);
        vendor_args(&mut c, &guest.ca);
        let t = Instant::now();
        let out = c.output().context("running stattest check")?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.status.success() && text.contains("accepted: "),
            "run {i}: stattest check did not accept: {text}"
        );
        let p = parse_timings(&text)?;
        say!(
            "bench-attest: run {i}/{runs}: {ms:.1} ms wall clock ({})",
            {
                let fields: Vec<String> = PARTS
                    .iter()
                    .zip(p)
                    .map(|(n, v)| format!("{n} {v:.1}"))
                    .collect();
                fields.join(", ")
            }
        );
        wall.push(ms);
        for (v, x) in parts.iter_mut().zip(p) {
            v.push(x);
        }
    }
    let lines = guest.vm.lines();
    let served = lines
        .iter()
        .filter(|l| l.contains("POST /st/attest/v1/quote -> 200"))
        .count();
    ensure!(
        served >= usize::try_from(runs)?,
        "the agent logged {served} quotes for {runs} checks"
    );
    println!(
        "\nAttestation round trip, `stattest check` (release) on the host against st-agent in the \
         QEMU guest ({:?}) on swtpm, {runs} runs, ms:\n",
        ctx.accel()
    );
    println!("| part | median | min | max |");
    println!("|---|---|---|---|");
    let (m, lo, hi) = stats(&mut wall);
    println!(
        "| wall clock of `stattest check` (process start to exit) | {m:.1} | {lo:.1} | {hi:.1} |"
    );
    let what = [
        "load: trust policy, vendor CAs",
        "keys: `GET keys` (TCP, TLS, JSON)",
        "challenge: the credential (host)",
        "quote: `POST quote` (TLS, ActivateCredential, Quote)",
        "verify: `st_attest::verify`",
        "total inside `check`",
    ];
    for (v, name) in parts.iter_mut().zip(what) {
        let (m, lo, hi) = stats(v);
        println!("| {name} | {m:.1} | {lo:.1} | {hi:.1} |");
    }
    println!(
        "\nst-agent: {agent_size} bytes ({}, static musl, profile stboot); resident memory at start: {}",
        guest.agent_binary.display(),
        rss.map_or_else(|| "not reported".to_owned(), |k| format!("{k} KiB (VmRSS)"))
    );
    drop(guest);
    Ok(())
}

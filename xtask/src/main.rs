//! Project automation for stboot-rs, run as `cargo xtask <command>`.
//!
//! Progress lines go to stderr prefixed with `xtask:`; a failing step makes
//! the process exit non-zero with an error naming that step.

mod bench;
mod bench_age;
mod bench_attest;
mod bench_sigsum;
mod deps;
mod e2e;
mod fuzz;
mod layering;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::util::say;

/// stboot-rs project automation.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// fmt, clippy, rustdoc, tests (nextest if available), layering check, test-vector check, e2e.
    Test(test::TestArgs),
    /// Only the layering check (pure crates: no I/O stacks, no ambient clock).
    Layering,
    /// Run the cargo-fuzz targets for a fixed time each (needs a nightly toolchain).
    Fuzz(fuzz::FuzzArgs),
    /// Benchmark `stmgr ospkg create`/`verify` against cp/openssl; prints a markdown table.
    Bench(bench::BenchArgs),
    /// The main job, end to end: install what is missing, make keys, build and sign an OS
    /// package, serve it over HTTPS (nginx on loopback), build the stboot image, boot it in QEMU
    /// and show the console until the booted OS reports in. Exit 0 only then.
    Demo(e2e::demo::DemoArgs),
    /// stboot boot figures in QEMU: 64 and 256 MiB packages over plain HTTP, phases, a bare GET
    /// of the same bytes for comparison; prints a table for docs/benchmarks.md.
    BenchBoot(e2e::bootbench::BenchBootArgs),
    /// What measured boot costs: stboot's measure phase and boot times under SeaBIOS and UEFI,
    /// without a TPM and with swtpm (sha256 only, four banks); prints a table.
    BenchMeasure(e2e::measurebench::BenchMeasureArgs),
    /// Regenerate the scenario vectors in testdata/vectors (deterministic), or with --check
    /// only compare them with a fresh generation.
    GenVectors {
        /// Compare only; fail naming every file that differs.
        #[arg(long)]
        check: bool,
    },
    /// End-to-end scenarios: QEMU (TCG), a Debian kernel, nginx with TLS, test OS packages.
    E2e(e2e::E2eArgs),
    /// st-age against Debian's age: decryption and encryption throughput on one random file
    /// (256 MiB by default), best of N; prints a table for docs/benchmarks.md.
    BenchAge(bench_age::BenchAgeArgs),
    /// Time to parse and verify a Sigsum proof (st-sigsum, release build); prints a table for
    /// docs/benchmarks.md.
    BenchSigsum,
    /// Time to verify one attestation (st-attest on a real swtpm quote, release build) and to
    /// make one credential; prints a table. `--guest`: the round trip against the agent in QEMU.
    BenchAttest(bench_attest::BenchAttestArgs),
    // New subcommands go here, plus one arm below.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Test(args) => test::run(args),
        Cmd::Layering => layering::check(),
        Cmd::Fuzz(args) => fuzz::run_fuzz(args),
        Cmd::Bench(args) => bench::run_bench(args),
        Cmd::GenVectors { check } => gen_vectors(*check),
        Cmd::Demo(args) => e2e::demo::run(args),
        Cmd::BenchBoot(args) => e2e::bootbench::run(args),
        Cmd::BenchMeasure(args) => e2e::measurebench::run(args),
        Cmd::E2e(args) => e2e::run(args),
        Cmd::BenchAge(args) => bench_age::run_bench_age(args),
        Cmd::BenchSigsum => bench_sigsum::run(),
        Cmd::BenchAttest(args) => bench_attest::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn gen_vectors(check: bool) -> anyhow::Result<()> {
    let mut c = util::cargo();
    c.args([
        "run",
        "--quiet",
        "--locked",
        "-p",
        "st-testvectors",
        "--bin",
        "gen-vectors",
        "--",
    ]);
    if check {
        c.arg("--check");
    }
    util::run(&mut c)
}

//! Project automation for stboot-rs, run as `cargo xtask <command>`.
//!
//! Progress lines go to stderr prefixed with `xtask:`; a failing step makes
//! the process exit non-zero with an error naming that step.

mod bench;
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
    /// fmt, clippy, tests (nextest if available), layering check, test-vector check, e2e hook.
    Test(test::TestArgs),
    /// Only the layering check (pure crates: no I/O stacks, no ambient clock).
    Layering,
    /// Run the cargo-fuzz targets for a fixed time each (needs a nightly toolchain).
    Fuzz(fuzz::FuzzArgs),
    /// Benchmark `stmgr ospkg create`/`verify` against cp/openssl; prints a markdown table.
    Bench(bench::BenchArgs),
    // New subcommands (e.g. `GenVectors(vectors::Args)`) go here, plus one arm below.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Test(args) => test::run(args),
        Cmd::Layering => layering::check(),
        Cmd::Fuzz(args) => fuzz::run_fuzz(args),
        Cmd::Bench(args) => bench::run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
